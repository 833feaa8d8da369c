"""protocol.cose on both runtimes: golden COSE_Sign1 vectors and each refusal's code."""

from dualtest import raises, req, unhex, vectors
from protocol import codec, cose, errors

V = vectors("cose.json")


def _trusted():
    keys = {}
    for kid in V["trusted"]:
        keys[unhex(kid)] = unhex(V["trusted"][kid])
    return keys


def _case(name):
    for c in V["cases"]:
        if c["name"] == name:
            return c
    raise KeyError(name)


@req("PROT-SIG-3", "PROT-VERIFY-1")
def test_golden_vectors():
    keys = _trusted()
    n = 0
    for c in V["cases"]:
        data = unhex(c["cose"])
        aad = unhex(c.get("aad", ""))
        if c["expect"] == "ok":
            kid, payload = cose.verify_sign1(data, keys, aad)
            assert kid == unhex(V["kid"]), c["name"]
            assert payload == unhex(c["payload"]), c["name"]
        else:
            try:
                raises(getattr(errors, c["expect"]), cose.verify_sign1, data, keys, aad)
            except AssertionError as e:
                raise AssertionError("%s: %s" % (c["name"], e))
        n += 1
    assert n >= 40


@req("PROT-SIG-3")
def test_each_refusal_code_is_exercised():
    expected = set()
    for c in V["cases"]:
        expected.add(c["expect"])
    for name in ("ok", "BAD_SIGNATURE", "BAD_ALG", "UNKNOWN_KID", "BAD_COSE"):
        assert name in expected


@req("PROT-SIG-3")
def test_kid_is_the_sha256_prefix_of_the_public_key():
    pub = unhex(V["public_key"])
    assert cose.kid_for(pub) == unhex(V["kid"])
    assert cose.kid_for(bytearray(pub)) == unhex(V["kid"])
    assert len(cose.kid_for(unhex(V["stranger_public_key"]))) == 8


@req("PROT-SIG-3")
def test_sig_structure_golden_bytes():
    s = V["sig_structure"]
    got = cose.sig_structure(unhex(s["protected"]), unhex(s["payload"]), unhex(s["external_aad"]))
    assert got == unhex(s["expect"])
    assert codec.loads(got) == [
        "Signature1",
        unhex(s["protected"]),
        unhex(s["external_aad"]),
        unhex(s["payload"]),
    ]
    assert cose.sig_structure(b"", b"")[:12] == b"\x84\x6aSignature1"
    try:
        cose.sig_structure("text", b"")
    except TypeError:
        pass
    else:
        raise AssertionError("a text protected header was accepted")


@req("PROT-SIG-3")
def test_the_signed_bytes_are_used_as_received():
    # a validly signed protected header with extra labels verifies: the decoded map
    # is never re-encoded, so nothing about its encoding can drift
    c = _case("valid, unrelated protected label")
    _kid, payload = cose.verify_sign1(unhex(c["cose"]), _trusted())
    assert payload == unhex(c["payload"])


@req("PROT-SIG-3")
def test_external_aad_binds():
    c = _case("valid with external_aad")
    data = unhex(c["cose"])
    keys = _trusted()
    assert cose.verify_sign1(data, keys, unhex(c["aad"]))[1] == unhex(c["payload"])
    raises(errors.BAD_SIGNATURE, cose.verify_sign1, data, keys)
    raises(errors.BAD_SIGNATURE, cose.verify_sign1, data, keys, unhex(c["aad"]) + b"x")
    raises(errors.BAD_SIGNATURE, cose.verify_sign1, unhex(_case("valid")["cose"]), keys, unhex(c["aad"]))


@req("PROT-SIG-3")
def test_trusted_keys_decide():
    data = unhex(_case("valid")["cose"])
    kid = unhex(V["kid"])
    raises(errors.UNKNOWN_KID, cose.verify_sign1, data, {})
    # the right kid pointing at another key: the signature fails
    raises(errors.BAD_SIGNATURE, cose.verify_sign1, data, {kid: unhex(V["stranger_public_key"])})
    # a provisioned key of the wrong length is a provisioning fault, not a bad signature
    raises(errors.BAD_KEY_ENCODING, cose.verify_sign1, data, {kid: unhex(V["public_key"])[:31]})
    # the stranger's file verifies once its key is trusted
    stranger = unhex(V["stranger_public_key"])
    kid2, _payload = cose.verify_sign1(
        unhex(_case("unknown kid")["cose"]), {cose.kid_for(stranger): stranger}
    )
    assert kid2 == cose.kid_for(stranger)


@req("PROT-SIG-3")
def test_not_bytes_is_bad_cose():
    keys = _trusted()
    for bad in (None, "text", 18, [1, 2]):
        raises(errors.BAD_COSE, cose.verify_sign1, bad, keys)
    raises(errors.BAD_COSE, cose.verify_sign1, b"", keys)


@req("PROT-SIG-4")
def test_checkpoint_reaches_the_signature_check():
    calls = [0]

    def tick():
        calls[0] += 1

    cose.verify_sign1(unhex(_case("valid")["cose"]), _trusted(), checkpoint=tick)
    assert calls[0] >= 9
