"""Requirement traceability: which test verifies which requirement, and with what result.

    matrix   requirements, recorded test results and the gate (stdlib only)
    render   the matrix as Markdown, HTML and JUnit XML
    cli      `tonus-trace`: render or check the last recorded results

The pytest plugin that records the results is qa/trace_plugin.py, beside
the tests: it needs pytest, which an installed tonus does not have.

docs/qa.md says how QA uses it.
"""
