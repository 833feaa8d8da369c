"""COSE_Sign1 (RFC 9052) verification with EdDSA, for the device.

Strict on what the device must be sure of:

- the input is the bare tag-18 item and nothing else, in our deterministic
  CBOR (protocol/codec.py): [protected: bstr, unprotected: map,
  payload: bstr, signature: bstr of 64];
- the protected header is a map with alg (1) = -8 (EdDSA) and kid (4), a
  bstr of 8 bytes (the first 8 bytes of SHA-256 of the raw public key)
  naming a key in the caller's trusted_keys;
- alg in the unprotected header is refused (it is not signed, and RFC 9052
  forbids a label in both buckets), as are kid there and crit (2) anywhere:
  this verifier understands no critical header parameter;
- the payload is attached (a detached payload, nil, is refused).

The signature is checked over the exact bytes received: the Sig_structure is
built from the protected header and payload byte strings as they arrived,
never from a re-encoding of decoded maps.

Refusal codes, for callers to branch on: BAD_COSE (malformed, or a header
this verifier does not accept), BAD_ALG (alg missing, unprotected, or not
EdDSA), UNKNOWN_KID (no trusted key of that id), BAD_SIGNATURE (the
signature does not verify), BAD_KEY_ENCODING (a trusted key that is not 32
bytes: a provisioning fault).
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
SIG_LEN = 64
CONTEXT = "Signature1"


def kid_for(public_key):
    """The key id: the first 8 bytes of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(bytes(public_key)).digest()[:KID_LEN]


def sig_structure(protected, payload, external_aad=b""):
    """The bytes that are signed (RFC 9052 section 4.4):
    ["Signature1", protected, external_aad, payload] in deterministic CBOR."""
    for v in (protected, payload, external_aad):
        if not isinstance(v, (bytes, bytearray, memoryview)):
            raise TypeError("Sig_structure parts are byte strings")
    return codec.dumps([CONTEXT, bytes(protected), bytes(external_aad), bytes(payload)])


def _loads(data, what):
    # codec errors become BAD_COSE; the codec's own name stays in the detail.
    # (no `raise ... from`: MicroPython prints a warning for it on stdout,
    # which on the board is the link)
    try:
        return codec.loads(data)
    except ProtocolError as e:
        err = e
    raise ProtocolError(BAD_COSE, "%s: %s" % (what, err.name))


def verify_sign1(data, trusted_keys, external_aad=b"", checkpoint=None):
    """(kid, payload) of a valid COSE_Sign1 by a trusted key; ProtocolError otherwise.

    trusted_keys maps kid (8 bytes) to a raw 32-byte Ed25519 public key.
    checkpoint() is called during verification (the device feeds its watchdog).
    """
    item = _loads(data, "not deterministic CBOR")
    if not isinstance(item, codec.Tag) or item.tag != TAG:
        raise ProtocolError(BAD_COSE, "not a tag-18 COSE_Sign1")
    v = item.value
    if not isinstance(v, list) or len(v) != 4:
        raise ProtocolError(BAD_COSE, "COSE_Sign1 has four parts")
    protected, unprotected, payload, signature = v
    if not isinstance(protected, bytes):
        raise ProtocolError(BAD_COSE, "the protected header is a byte string")
    if not isinstance(unprotected, dict):
        raise ProtocolError(BAD_COSE, "the unprotected header is a map")
    if payload is None:
        raise ProtocolError(BAD_COSE, "detached payloads are not accepted")
    if not isinstance(payload, bytes):
        raise ProtocolError(BAD_COSE, "the payload is a byte string")
    if not isinstance(signature, bytes) or len(signature) != SIG_LEN:
        raise ProtocolError(BAD_COSE, "an EdDSA signature is %d bytes" % SIG_LEN)
    # an empty protected header is the zero-length string (RFC 9052 section 3)
    header = _loads(protected, "protected header") if protected else {}
    if not isinstance(header, dict):
        raise ProtocolError(BAD_COSE, "the protected header is not a map")
    if HDR_ALG in unprotected:
        raise ProtocolError(BAD_ALG, "alg must be in the protected header only")
    if HDR_CRIT in header or HDR_CRIT in unprotected:
        raise ProtocolError(BAD_COSE, "critical header parameters are not understood here")
    if HDR_KID in unprotected:
        raise ProtocolError(BAD_COSE, "kid must be in the protected header only")
    alg = header.get(HDR_ALG)
    if alg is None:
        raise ProtocolError(BAD_ALG, "no alg in the protected header")
    if alg is True or alg is False or alg != ALG_EDDSA:
        raise ProtocolError(BAD_ALG, "only EdDSA (-8) is accepted")
    kid = header.get(HDR_KID)
    if not isinstance(kid, bytes) or len(kid) != KID_LEN:
        raise ProtocolError(BAD_COSE, "kid must be a byte string of %d bytes" % KID_LEN)
    key = trusted_keys.get(kid)
    if key is None:
        raise ProtocolError(UNKNOWN_KID, "key %s is not trusted here" % kid.hex())
    err = None  # type: ProtocolError | None
    try:
        to_verify = sig_structure(protected, payload, external_aad)
    except ProtocolError as e:
        err = e
    if err is not None:
        raise ProtocolError(BAD_COSE, "Sig_structure: %s" % err.name)
    if not ed25519.verify(key, to_verify, signature, checkpoint):
        raise ProtocolError(BAD_SIGNATURE, "signature does not verify")
    return kid, payload
