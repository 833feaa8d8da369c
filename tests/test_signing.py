"""Clinician keys and COSE_Sign1 signing on the host."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from host import signing
from host.errors import TonusError
from protocol import codec
from tools import make_protocol_vectors


@pytest.mark.req("PROT-SIGN-1")
def test_new_key_round_trip_with_passphrase(tmp_path):
    priv, pub = signing.new_key("correct horse battery")
    (tmp_path / "k.pem").write_bytes(priv)
    (tmp_path / "k.pub").write_bytes(pub)
    assert b"ENCRYPTED PRIVATE KEY" in priv
    key = signing.load_private(tmp_path / "k.pem", "correct horse battery")
    assert signing.public_raw(key.public_key()) == signing.load_public(tmp_path / "k.pub")
    with pytest.raises(signing.KeyFileError):
        signing.load_private(tmp_path / "k.pem", "wrong passphrase!")
    with pytest.raises(signing.KeyFileError):
        signing.new_key("short")
    with pytest.raises(signing.KeyFileError):
        signing.load_public(tmp_path / "k.pem")


@pytest.mark.req("PROT-SIGN-1")
def test_cose_sign1_layout():
    key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    pub = signing.public_raw(key.public_key())
    signed = signing.sign_document({"id": "x", "sequence": 1}, key)
    tag = codec.loads(signed)
    assert tag.tag == 18
    protected, unprotected, payload, sig = tag.value
    assert codec.loads(protected) == {1: -8, 4: signing.kid_for(pub)}
    assert unprotected == {} and len(sig) == 64
    assert codec.loads(payload) == {"id": "x", "sequence": 1}
    kid, doc = signing.open_signed(signed, pub)
    assert kid == signing.kid_for(pub) and doc["sequence"] == 1
    broken = bytearray(signed)
    broken[-70] ^= 1
    with pytest.raises(TonusError):
        signing.open_signed(bytes(broken), pub)


@pytest.mark.req("PROT-SIGN-1")
def test_committed_device_vectors_are_what_the_generator_makes():
    committed = json.loads(make_protocol_vectors.OUT.read_text())
    assert committed == json.loads(json.dumps(make_protocol_vectors.build()))
