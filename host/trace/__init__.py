"""Requirement traceability: which test verifies which requirement, and with what result.

    matrix   requirements, recorded test results and the gate (stdlib only)
    render   the matrix as Markdown, HTML and JUnit XML
    plugin   the pytest plugin the root conftest.py registers
    cli      `tonus-trace`: render or check the last recorded results

docs/qa.md says how QA uses it.
"""
