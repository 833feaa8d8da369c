"""`tonus provision` on a simulator's flash: keys trusted, rotated, revoked; policy set."""

import json

import pytest

from host.cli import main
from protocol import record
from sim.runner import Simulator


@pytest.fixture
def keys(tmp_path, monkeypatch):
    monkeypatch.setenv("TONUS_KEY_PASSPHRASE", "clinic-secret-1")
    out = []
    for name in ("a", "b"):
        assert main(["keys", "new", "--out", str(tmp_path / name)]) == 0
        out.append(tmp_path / (name + ".pub"))
    return out


def _kids(capsys):
    return json.loads(capsys.readouterr().out.splitlines()[-1])["trusted_kids"]


@pytest.mark.req("PROT-KEYS-1")
def test_trust_rotate_revoke_and_the_device_audits_each_change(tmp_path, keys, capsys):
    flash = tmp_path / "flash"
    capsys.readouterr()
    assert (
        main(
            [
                "--json",
                "provision",
                "--flash-dir",
                str(flash),
                "--trust",
                str(keys[0]),
                "--max-amplitude-ma",
                "40",
            ]
        )
        == 0
    )
    first = _kids(capsys)
    with Simulator(flash_dir=flash) as sim:
        sim.run_for(50)
        assert sorted(k.hex() for k in sim.ctrl.therapy.keys) == first
        assert sim.ctrl.policy_max_ua == 40000
    assert (
        main(
            ["--json", "provision", "--flash-dir", str(flash), "--trust", str(keys[1]), "--revoke", first[0]]
        )
        == 0
    )
    second = _kids(capsys)
    assert len(second) == 1 and second != first
    with Simulator(flash_dir=flash) as sim:
        sim.run_for(50)
        assert sorted(k.hex() for k in sim.ctrl.therapy.keys) == second
        audit = record.unpack((flash / "audit").read_bytes())
        assert [a[1] for a in audit].count(4) == 2  # two key-set changes, each audited once


@pytest.mark.req("PROT-KEYS-1")
def test_bad_provisioning_requests_change_nothing(tmp_path, keys, capsys):
    flash = tmp_path / "flash"
    assert main(["provision", "--flash-dir", str(flash), "--trust", str(keys[0])]) == 0
    before = (flash / "keys").read_bytes()
    assert main(["provision", "--flash-dir", str(flash), "--revoke", "00" * 8]) == 1
    assert main(["provision", "--flash-dir", str(flash), "--revoke", "xyz"]) == 1
    assert main(["provision", "--flash-dir", str(flash), "--max-amplitude-ma", "101"]) == 2
    assert (
        main(["provision", "--flash-dir", str(flash), "--trust", str(tmp_path / "a")]) == 1
    )  # a private key
    assert (flash / "keys").read_bytes() == before
    assert not (flash / "policy").exists()
    assert "not trusted" in capsys.readouterr().err


@pytest.mark.req("PROT-KEYS-1", "PROT-SIG-2")
def test_a_small_order_key_is_never_trusted(tmp_path, capsys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    identity = (1).to_bytes(32, "little")  # the neutral point: every (R=identity, S=0) would "verify"
    pem = Ed25519PublicKey.from_public_bytes(identity).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "evil.pub").write_bytes(pem)
    assert (
        main(["provision", "--flash-dir", str(tmp_path / "flash"), "--trust", str(tmp_path / "evil.pub")])
        == 1
    )
    assert "full order" in capsys.readouterr().err
    assert not (tmp_path / "flash" / "keys").exists()


@pytest.mark.req("EMG-CHAIN-1", "PROT-KEYS-1")
def test_the_mains_frequency_is_provisioned_without_touching_the_amplitude(tmp_path, keys, capsys):
    flash = tmp_path / "flash"
    assert main(["provision", "--flash-dir", str(flash), "--max-amplitude-ma", "30"]) == 0
    assert main(["--json", "provision", "--flash-dir", str(flash), "--mains-hz", "60"]) == 0
    pol = json.loads(capsys.readouterr().out.splitlines()[-1])["policy"]
    assert pol == {"amplitude_max_ua": 30000, "mains_hz": 60}
    with Simulator(flash_dir=flash) as sim:
        sim.run_for(50)
        assert sim.ctrl.emg.chain.mains_hz == 60 and sim.ctrl.policy_max_ua == 30000
    assert main(["provision", "--flash-dir", str(flash), "--mains-hz", "55"]) == 2  # usage: 50 or 60
