import json

import pytest

from host.cli import main


@pytest.mark.req("LINK-FRAME-2", "LINK-MSG-1")
def test_link_check_reports_every_message_intact(capsys):
    assert main(["--json", "link-check"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["noise_frames_dropped"] == len(out["messages"])
    assert {r["type"] for r in out["messages"]} >= {"HELLO", "INFO", "EMG"}
    assert all(r["ok"] for r in out["messages"])
