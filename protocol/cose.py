"""COSE_Sign1 (RFC 9052) verification with EdDSA, for the device.

Strict on what the device must be sure of: the bare tag-18 item, alg -8
(EdDSA) in the PROTECTED header (alg only in the unprotected header is
refused: it is not signed), a kid of 8 bytes in the protected header naming
a trusted key, no critical headers it does not understand, an attached
payload. The signature is checked over the exact bytes received, never a
re-encoding.
"""

import hashlib

from protocol import codec, ed25519
from protocol.errors import BAD_ALG, BAD_COSE, BAD_SIGNATURE, UNKNOWN_KID, ProtocolError

TAG = 18
ALG_EDDSA = -8
HDR_ALG = 1
HDR_CRIT = 2
HDR_KID = 4
KID_LEN = 8


def kid_for(public_key):
    """The key id: the first 8 bytes of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public_key).digest()[:KID_LEN]


def sig_structure(protected, payload, external_aad=b""):
    """The bytes that are signed (RFC 9052 section 4.4)."""
    return codec.dumps(["Signature1", protected, external_aad, payload])


def verify_sign1(data, trusted_keys, external_aad=b"", checkpoint=None):
    """(kid, payload) of a valid COSE_Sign1 by a trusted key; ProtocolError otherwise."""
    try:
        item = codec.loads(data)
    except ProtocolError as e:
        raise ProtocolError(BAD_COSE, "not deterministic CBOR: %s" % e.name) from e
    if not isinstance(item, codec.Tag) or item.tag != TAG:
        raise ProtocolError(BAD_COSE, "not a tagged COSE_Sign1")
    v = item.value
    if not isinstance(v, list) or len(v) != 4:
        raise ProtocolError(BAD_COSE, "COSE_Sign1 has four parts")
    protected, unprotected, payload, signature = v
    if not isinstance(protected, bytes) or not isinstance(unprotected, dict):
        raise ProtocolError(BAD_COSE, "malformed headers")
    if not isinstance(payload, bytes):
        raise ProtocolError(BAD_COSE, "the payload must be attached")
    if not isinstance(signature, bytes) or len(signature) != 64:
        raise ProtocolError(BAD_COSE, "an EdDSA signature is 64 bytes")
    try:
        header = codec.loads(protected)
    except ProtocolError as e:
        raise ProtocolError(BAD_COSE, "protected header: %s" % e.name) from e
    if not isinstance(header, dict):
        raise ProtocolError(BAD_COSE, "protected header is not a map")
    if HDR_ALG in unprotected or HDR_KID in unprotected:
        raise ProtocolError(BAD_ALG, "alg and kid must be protected")
    if header.get(HDR_ALG) != ALG_EDDSA:
        raise ProtocolError(BAD_ALG, "only EdDSA (-8) is accepted")
    if HDR_CRIT in header:
        raise ProtocolError(BAD_COSE, "critical headers are not understood")
    kid = header.get(HDR_KID)
    if not isinstance(kid, bytes) or len(kid) != KID_LEN:
        raise ProtocolError(BAD_COSE, "kid must be %d bytes" % KID_LEN)
    key = trusted_keys.get(kid)
    if key is None:
        raise ProtocolError(UNKNOWN_KID, "key %s is not trusted here" % kid.hex())
    if not ed25519.verify(key, sig_structure(protected, payload, external_aad), signature, checkpoint):
        raise ProtocolError(BAD_SIGNATURE, "signature does not verify")
    return kid, payload
