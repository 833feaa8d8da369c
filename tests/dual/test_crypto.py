"""SHA-512, Ed25519 and COSE_Sign1 verification on both runtimes."""

from dualtest import raises, req, unhex, vectors

from protocol import codec, cose, ed25519, errors
from protocol.sha512 import SHA512, sha512

V = vectors("ed25519.json")
P = vectors("protocols.json")


@req("PROT-VERIFY-1")
def test_sha512_fips_vectors_and_streaming():
    for msg, digest in V["sha512"]:
        assert sha512(unhex(msg)).hexdigest() == digest
    msg = unhex(V["sha512"][2][0])
    h = SHA512()
    for i in range(0, len(msg), 37):
        h.update(msg[i : i + 37])
    assert h.hexdigest() == V["sha512"][2][1]
    assert h.hexdigest() == V["sha512"][2][1]  # digest() leaves the state as it was


@req("PROT-VERIFY-1")
def test_ed25519_rfc8032_and_negative_vectors():
    for case in V["ed25519"]:
        got = ed25519.verify(unhex(case["public"]), unhex(case["message"]), unhex(case["signature"]))
        assert got is case["valid"], case["name"]


@req("PROT-VERIFY-1")
def test_ed25519_malformed_lengths_raise_and_checkpoints_are_called():
    case = V["ed25519"][0]
    raises(errors.BAD_KEY_ENCODING, ed25519.verify, unhex(case["public"])[:31], b"", unhex(case["signature"]))
    raises(errors.BAD_KEY_ENCODING, ed25519.verify, unhex(case["public"]), b"", unhex(case["signature"]) + b"\x00")
    calls = [0]

    def tick():
        calls[0] += 1

    assert ed25519.verify(unhex(case["public"]), b"", unhex(case["signature"]), tick)
    assert calls[0] >= 8  # a 253-step doubling chain, a call every 32 steps


def _signed(name):
    return unhex(P["cases"][name]["cose"])


def _keys():
    return {unhex(P["kid"]): unhex(P["public_key"])}


def _rebuild(protected=None, unprotected=None, payload=None, signature=None, tag=18):
    v = codec.loads(_signed("v1")).value
    parts = [v[0] if protected is None else protected, v[1] if unprotected is None else unprotected,
             v[2] if payload is None else payload, v[3] if signature is None else signature]
    return codec.dumps(codec.Tag(tag, parts)) if tag == 18 else codec.dumps(parts)


@req("PROT-VERIFY-1", "PROT-SIGN-1")
def test_cose_sign1_valid_and_kid():
    kid, payload = cose.verify_sign1(_signed("v1"), _keys())
    assert kid == unhex(P["kid"]) == cose.kid_for(unhex(P["public_key"]))
    assert codec.loads(payload)["sequence"] == 1


@req("PROT-VERIFY-1")
def test_cose_sign1_refusals():
    keys = _keys()
    kid = unhex(P["kid"])
    raises(errors.BAD_SIGNATURE, cose.verify_sign1, _signed("tampered"), keys)
    raises(errors.UNKNOWN_KID, cose.verify_sign1, _signed("stranger"), keys)
    raises(errors.UNKNOWN_KID, cose.verify_sign1, _signed("v1"), {})
    raises(errors.BAD_ALG, cose.verify_sign1, _rebuild(protected=codec.dumps({1: -7, 4: kid})), keys)
    raises(errors.BAD_ALG, cose.verify_sign1, _rebuild(protected=codec.dumps({4: kid}), unprotected={1: -8}), keys)
    raises(errors.BAD_COSE, cose.verify_sign1, _rebuild(protected=codec.dumps({1: -8, 2: [99], 4: kid})), keys)
    raises(errors.BAD_COSE, cose.verify_sign1, _rebuild(protected=codec.dumps({1: -8, 4: kid[:7]})), keys)
    raises(errors.BAD_COSE, cose.verify_sign1, _rebuild(tag=0), keys)
    raises(errors.BAD_COSE, cose.verify_sign1, _signed("v1")[:-1], keys)
    raises(errors.BAD_COSE, cose.verify_sign1, _signed("v1") + b"\x00", keys)
    raises(errors.BAD_COSE, cose.verify_sign1, _rebuild(signature=bytes(63)), keys)
    # a changed protected header breaks the signature even with the same alg and kid
    raises(errors.BAD_SIGNATURE, cose.verify_sign1, _rebuild(protected=codec.dumps({1: -8, 3: 0, 4: kid})), keys)
    raises(errors.BAD_SIGNATURE, cose.verify_sign1, _signed("v1"), keys, b"other aad")
