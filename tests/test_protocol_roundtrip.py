"""The clinician's round trip through the CLI, on a simulator with persistent flash.

keys new -> protocol check -> sign -> provision -> upload -> session run ->
protocol show reports the reduced budget; a one-byte tamper is refused and
the device keeps what it had. Each CLI call boots the simulated board from
the same flash, like a device power-cycled between uses.
"""

import json
from pathlib import Path

import pytest

from host.cli import main

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "protocols" / "relaxation-downtraining.toml"


def _json(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.mark.req("PROT-UPLOAD-1", "PROT-VERIFY-1", "PROT-BUDGET-1", "PROT-SIGN-1", "UX-CLI-1")
def test_approve_upload_run_and_budget(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TONUS_KEY_PASSPHRASE", "clinic-secret-1")
    key = tmp_path / "dr.key"
    signed = tmp_path / "relax.cose"
    port = "sim://?seed=0&speed=0&flash_dir=%s" % (tmp_path / "flash")
    assert main(["keys", "new", "--out", str(key)]) == 0
    assert main(["protocol", "check", str(EXAMPLE)]) == 0
    assert main(["protocol", "sign", str(EXAMPLE), "--key", str(key), "--out", str(signed)]) == 0
    assert main(["provision", "--flash-dir", str(tmp_path / "flash"), "--trust", str(key) + ".pub"]) == 0
    capsys.readouterr()

    assert main(["--port", port, "--json", "protocol", "upload", str(signed)]) == 0
    stored = _json(capsys)["stored"]
    assert stored["id"] == "relax-downtrain" and stored["remaining"] == 28
    assert main(["--port", port, "session", "run", "--out", str(tmp_path / "scores.json")]) == 0
    capsys.readouterr()
    assert main(["--port", port, "--json", "protocol", "show"]) == 0
    shown = _json(capsys)
    assert shown["protocol"]["remaining"] == 27 and shown["max_sequence"] == 1

    tampered = tmp_path / "tampered.cose"
    data = bytearray(signed.read_bytes())
    data[data.find(b"P-0042") + 3] ^= 1
    tampered.write_bytes(bytes(data))
    assert main(["--port", port, "protocol", "upload", str(tampered)]) == 4
    assert "BAD_SIGNATURE" in capsys.readouterr().err
    assert main(["--port", port, "--json", "protocol", "show"]) == 0
    assert _json(capsys)["protocol"]["sha256"] == shown["protocol"]["sha256"]

    assert main(["--port", port, "session", "start"]) == 4  # 20 h between sessions
    assert "INTERVAL_NOT_ELAPSED" in capsys.readouterr().err


@pytest.mark.req("PROT-UPLOAD-1")
def test_upload_refuses_files_that_are_not_signed_protocols(tmp_path, capsys):
    junk = tmp_path / "junk.cose"
    junk.write_bytes(b"\x00not cbor")
    assert main(["--port", "sim://?seed=0&speed=0", "protocol", "upload", str(junk)]) == 1
    assert "not a signed tonus protocol" in capsys.readouterr().err
    assert (
        main(["--port", "sim://?seed=0&speed=0", "protocol", "upload", str(tmp_path / "missing.cose")]) == 1
    )


@pytest.mark.req("PROT-UPLOAD-1")
def test_upload_refuses_a_protocol_outside_its_calendar_validity(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TONUS_KEY_PASSPHRASE", "clinic-secret-1")
    key = tmp_path / "dr.key"
    assert main(["keys", "new", "--out", str(key)]) == 0
    future = tmp_path / "future.toml"
    future.write_text(EXAMPLE.read_text().replace("valid_from = 2026-11-20", "valid_from = 2999-01-01"))
    signed = tmp_path / "future.cose"
    assert main(["protocol", "sign", str(future), "--key", str(key), "--out", str(signed)]) == 0
    capsys.readouterr()
    assert main(["--port", "sim://?seed=0&speed=0", "protocol", "upload", str(signed)]) == 1
    assert "not valid before 2999-01-01" in capsys.readouterr().err


@pytest.mark.req("UX-CLI-1", "PROT-BUDGET-1")
def test_info_names_the_protocol_and_its_budget(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TONUS_KEY_PASSPHRASE", "clinic-secret-1")
    key, signed, flash = tmp_path / "dr.key", tmp_path / "g.cose", tmp_path / "flash"
    glazer = EXAMPLE.with_name("glazer-assessment.toml")
    assert main(["keys", "new", "--out", str(key)]) == 0
    assert main(["protocol", "sign", str(glazer), "--key", str(key), "--out", str(signed)]) == 0
    assert main(["provision", "--flash-dir", str(flash), "--trust", str(key) + ".pub"]) == 0
    port = f"sim://?seed=0&speed=0&flash_dir={flash}"
    assert main(["--port", port, "protocol", "upload", str(signed)]) == 0
    capsys.readouterr()
    assert main(["--port", port, "info", "--json"]) == 0
    p = _json(capsys)["protocol"]
    assert (p["id"], p["sequence"], p["remaining"], p["probe"]) == (
        "glazer-assessment",
        1,
        4,
        "vaginal-2plate",
    )
    assert main(["--port", port, "info"]) == 0
    assert "glazer-assessment v1 for P-0042, 4 of 4 sessions left" in capsys.readouterr().out
