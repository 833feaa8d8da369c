"""protocol.ed25519 / protocol.cose against cryptography's Ed25519 (OpenSSL)."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from host import signing
from protocol import cose, ed25519
from protocol.errors import ProtocolError


@pytest.mark.req("PROT-VERIFY-1")
@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=300), st.integers(0, 511))
def test_signatures_from_cryptography_verify_and_corruptions_do_not(seed, message, bit):
    key = Ed25519PrivateKey.from_private_bytes(seed)
    pub = signing.public_raw(key.public_key())
    sig = key.sign(message)
    assert ed25519.verify(pub, message, sig)
    bad = bytearray(sig)
    bad[bit // 8] ^= 1 << (bit % 8)
    assert not ed25519.verify(pub, message, bytes(bad))


@pytest.mark.req("PROT-VERIFY-1", "PROT-SIGN-1")
@settings(max_examples=20, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.integers(0, 1000), max_size=5), st.integers(0, 10**6))
def test_host_signed_documents_verify_on_the_device_code(doc, cut):
    key = Ed25519PrivateKey.generate()
    pub = signing.public_raw(key.public_key())
    signed = signing.sign_document(doc, key)
    kid, payload = cose.verify_sign1(signed, {cose.kid_for(pub): pub})
    assert kid == signing.kid_for(pub)
    broken = bytearray(signed)
    broken[cut % len(signed)] ^= 0x20
    with pytest.raises(ProtocolError):
        cose.verify_sign1(bytes(broken), {cose.kid_for(pub): pub})
