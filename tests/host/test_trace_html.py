"""The traceability matrix's HTML in a real browser: it fits a 1280 px page."""

import pytest

from host.trace import render
from host.trace.matrix import Results


def _results():
    reqs = [
        {
            "id": f"SAF-LONG-{i:d}",
            "title": "A requirement with a long title " * 3,
            "text": "x",
            "source": "y",
            "safety": i % 2 == 0,
            "board": i == 1,
        }
        for i in range(6)
    ]
    long_id = "hil_tests/test_a_very_long_module_name_about_the_output_stage.py::test_" + "that_goes_on_" * 12
    tests = [
        {
            "nodeid": long_id + f"[{leg}]",
            "leg": "hil",
            "target": "socket://127.0.0.1:54321",
            "reqs": [r["id"] for r in reqs],
            "outcome": "failed" if leg == "b" else "passed",
            "duration": 0.1,
            "message": "assert " + "0123456789" * 30,
            "details": "Traceback\n" + "y" * 600,
            "run": 0,
            "target_kind": "simulator",
        }
        for leg in "ab"
    ]
    run = {
        "command": "pytest hil_tests --target socket://127.0.0.1:54321 " + "-k something " * 10,
        "started": "2026-11-21T09:00:00+0000",
        "finished": "2026-11-21T09:10:00+0000",
        "whole_suite": False,
        "python": "3.11.7",
        "target": "socket://127.0.0.1:54321",
        "operator": "A. Tester",
        "git": {"commit": "f" * 40, "dirty": True, "branch": "main"},
        "firmware_version": "0.1.0",
        "tools": {f"pkg-{i:d}": f"1.{i:d}.0" for i in range(40)},
        "targets": [
            {
                "url": "socket://127.0.0.1:54321",
                "kind": "simulator",
                "serial": "A9265168D7A5AFA7",
                "board": "sim",
                "firmware_version": "0.1.0",
                "image_sha256": "e" * 64,
                "image_from": "the simulator runs the firmware sources of this tree",
            }
        ],
    }
    return Results(reqs, [run], tests)


@pytest.mark.req("DEV-TRACE-5")
def test_the_html_matrix_fits_a_1280_px_page(browser, tmp_path):
    page_file = tmp_path / "matrix.html"
    html = render.html_page(_results())
    assert '<meta name="viewport"' in html and "e" * 64 in html and "f" * 40 in html
    page_file.write_text(html)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_file.as_uri())
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
