"""`tonus keys` and `tonus protocol check|sign` as a clinician uses them."""

import json
from pathlib import Path

import pytest

from host import signing
from host.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "protocols"


@pytest.fixture
def key(tmp_path, monkeypatch):
    monkeypatch.setenv("TONUS_KEY_PASSPHRASE", "clinic-secret-1")
    assert main(["keys", "new", "--out", str(tmp_path / "dr.key")]) == 0
    return tmp_path / "dr.key"


@pytest.mark.req("PROT-SIGN-1", "UX-CLI-1")
def test_keys_new_writes_a_private_file_only_the_owner_reads(key, capsys):
    assert key.stat().st_mode & 0o077 == 0
    assert main(["--json", "keys", "show", str(key) + ".pub"]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["kid"] == signing.kid_for(bytes.fromhex(out["public_key"])).hex()
    assert main(["keys", "new", "--out", str(key)]) == 1  # never overwrites silently


@pytest.mark.req("PROT-SCHEMA-1", "UX-CLI-1")
def test_check_prints_delivery_and_exits_zero(capsys):
    assert main(["--json", "protocol", "check", str(EXAMPLES / "ets-weak-pelvic-floor.toml")]) == 0
    out = json.loads(capsys.readouterr().out)
    ets = out["delivery"]["phases"][2]
    assert out["ok"] and ets["type"] == "ets" and ets["rms_density_ma_cm2"] < 2


@pytest.mark.req("PROT-SCHEMA-1", "UX-CLI-1")
def test_check_reports_problems_with_lines_and_exits_nonzero(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        (EXAMPLES / "ets-weak-pelvic-floor.toml")
        .read_text()
        .replace("frequency_hz = 35", "frequency_hz = 135")
    )
    assert main(["protocol", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "line 50: phase[3].frequency_hz: frequency 135 Hz is outside 1 Hz to 100 Hz" in err
    assert main(["--json", "protocol", "check", str(bad)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["problems"][0]["line"] == 50


@pytest.mark.req("PROT-SIGN-1", "PROT-SCREEN-1")
def test_sign_refuses_incomplete_screening_and_signs_a_clean_file(key, tmp_path, capsys):
    src = (EXAMPLES / "relaxation-downtraining.toml").read_text()
    incomplete = tmp_path / "incomplete.toml"
    incomplete.write_text(src.replace("pregnancy = false\n", ""))
    assert (
        main(["protocol", "sign", str(incomplete), "--key", str(key), "--out", str(tmp_path / "x.cose")]) == 1
    )
    assert "screening is incomplete" in capsys.readouterr().err
    assert not (tmp_path / "x.cose").exists()
    good = tmp_path / "good.cose"
    assert (
        main(
            [
                "protocol",
                "sign",
                str(EXAMPLES / "relaxation-downtraining.toml"),
                "--key",
                str(key),
                "--out",
                str(good),
            ]
        )
        == 0
    )
    _kid, doc = signing.open_signed(good.read_bytes(), signing.load_public(str(key) + ".pub"))
    assert doc["id"] == "relax-downtrain" and doc["screening"]["attested_by"].startswith("A. Example")


@pytest.mark.req("PROT-SIGN-1")
def test_wrong_passphrase_is_a_clear_error(key, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TONUS_KEY_PASSPHRASE", "not-the-passphrase")
    args = [
        "protocol",
        "sign",
        str(EXAMPLES / "glazer-assessment.toml"),
        "--key",
        str(key),
        "--out",
        str(tmp_path / "g.cose"),
    ]
    assert main(args) == 1
    assert "wrong passphrase" in capsys.readouterr().err
