"""Root conftest: every pytest run here gets the requirement traceability plugin.

qa/trace_plugin.py refuses unknown requirement IDs, records each test's
result against the IDs it names, writes the matrix to build/trace/ and fails
a whole-suite run when a safety requirement has no passing test
(docs/qa.md).
"""

pytest_plugins = ["qa.trace_plugin"]
