"""protocol.ed25519 on both runtimes: RFC 8032 vectors, strictness, edge cases, checkpoints."""

from dualtest import raises, req, unhex, vectors
from protocol import ed25519, errors

V = vectors("ed25519.json")
P = 2**255 - 19


def _case(name):
    for c in V["ed25519"]:
        if c["name"] == name:
            return unhex(c["public"]), unhex(c["message"]), unhex(c["signature"])
    raise KeyError(name)


@req("PROT-SIG-2")
def test_written_out_constants_are_the_derived_ones():
    # ed25519.py writes these out so that importing it costs no exponentiation
    assert -121665 * pow(121666, P - 2, P) % P == ed25519._D
    assert ed25519._D2 == 2 * ed25519._D % P
    assert pow(2, (P - 1) // 4, P) == ed25519._SQRT_M1
    assert ed25519._SQRT_M1 * ed25519._SQRT_M1 % P == P - 1
    assert 4 * pow(5, P - 2, P) % P == ed25519._BY
    # the base point's standard encoding decodes to (BX, BY)
    assert ed25519._decode(unhex("58" + "66" * 31)) == (ed25519._BX, ed25519._BY)
    assert ed25519._P == P and ed25519._L == 2**252 + 27742317777372353535851937790883648493


@req("PROT-SIG-2")
def test_rfc8032_section_7_1_vectors():
    names = []
    for c in V["ed25519"]:
        if c["source"] == "RFC 8032 section 7.1":
            names.append(c["name"])
            assert ed25519.verify(unhex(c["public"]), unhex(c["message"]), unhex(c["signature"])) is True, c[
                "name"
            ]
    assert len(names) == 5  # TEST 1, 2, 3, 1024, SHA(abc)


@req("PROT-SIG-2")
def test_negative_and_edge_vectors():
    seen = 0
    for c in V["ed25519"]:
        got = ed25519.verify(unhex(c["public"]), unhex(c["message"]), unhex(c["signature"]))
        assert got is c["valid"], "%s: %s (%s)" % (c["name"], got, c["why"])
        seen += 1
    assert seen >= 38


@req("PROT-SIG-2")
def test_taming_the_many_eddsas_cases_as_libsodium():
    # only case 3 (mixed-order A and R, both equations hold) is accepted
    verdicts = [
        ed25519.verify(unhex(c["public"]), unhex(c["message"]), unhex(c["signature"]))
        for c in V["ed25519"]
        if "taming_case" in c
    ]
    assert verdicts == [False, False, False, True] + [False] * 8


@req("PROT-SIG-2")
def test_wrong_lengths_raise():
    for c in V["malformed"]:
        raises(
            getattr(errors, c["error"]),
            ed25519.verify,
            unhex(c["public"]),
            unhex(c["message"]),
            unhex(c["signature"]),
        )
    pub, msg, sig = _case("RFC 8032 7.1 TEST 1")
    raises(errors.BAD_KEY_ENCODING, ed25519.verify, pub.hex(), msg, sig)  # text, not bytes
    raises(errors.BAD_KEY_ENCODING, ed25519.verify, pub, msg, None)
    raises(errors.BAD_KEY_ENCODING, ed25519.valid_public_key, pub[:31])
    try:
        ed25519.verify(pub, "text message", sig)
    except TypeError:
        pass
    else:
        raise AssertionError("a text message was accepted")


@req("PROT-SIG-2")
def test_bytes_like_inputs():
    pub, msg, sig = _case("RFC 8032 7.1 TEST 1024")
    assert ed25519.verify(bytearray(pub), memoryview(msg), bytearray(sig)) is True
    assert ed25519.verify(memoryview(pub), bytearray(msg), memoryview(sig)) is True


@req("PROT-SIG-2")
def test_results_are_booleans_and_repeatable():
    pub, msg, sig = _case("RFC 8032 7.1 TEST 3")
    for _ in range(3):
        assert ed25519.verify(pub, msg, sig) is True
        assert ed25519.verify(pub, msg + b"x", sig) is False


@req("PROT-SIG-2")
def test_valid_public_key():
    for name in ("RFC 8032 7.1 TEST 1", "RFC 8032 7.1 TEST 2", "RFC 8032 7.1 TEST SHA(abc)"):
        assert ed25519.valid_public_key(_case(name)[0]) is True
    # small order, non-canonical, not on the curve, torsion component
    for name in (
        "identity public key, R = identity, S = 0",
        "public key y = p (non-canonical)",
        "public key not on the curve",
        "mixed-order public key, equation holds",
        "Taming the many EdDSAs, case 3",
        "Taming the many EdDSAs, case 10",
    ):
        assert ed25519.valid_public_key(_case(name)[0]) is False, name


@req("PROT-SIG-2")
def test_scalar_digits_recompose():
    # the signed-digit recoding behind the scalar multiplications
    L = ed25519._L
    for n in (0, 1, 15, 16, 17, 31, 32, 33, 2**252, L - 1, 2**253 - 1, L // 3, 0x5555 << 200):
        ds = ed25519._digits(n)
        total = 0
        last = -5
        for i in range(len(ds)):
            d = ds[i]
            if d:
                assert d % 2 == 1 and -15 <= d <= 15
                assert i - last >= 5  # at most one nonzero digit in any five
                last = i
                total += d << i if d > 0 else -((-d) << i)
        assert total == n


@req("PROT-SIG-4")
def test_checkpoint_is_called_during_the_arithmetic_and_the_hashing():
    calls = [0]

    def tick():
        calls[0] += 1

    pub, msg, sig = _case("RFC 8032 7.1 TEST 1")  # empty message: arithmetic only
    assert ed25519.verify(pub, msg, sig, tick) is True
    assert calls[0] >= 8  # about 253 doublings, one call every 32
    calls[0] = 0
    pub, msg, sig = _case("RFC 8032 7.1 TEST 1024")  # 1023 bytes: one hashing chunk
    assert ed25519.verify(pub, msg, sig, tick) is True
    assert calls[0] >= 9
    # a refused signature calls it too when it gets as far as the arithmetic
    calls[0] = 0
    assert ed25519.verify(pub, msg + b"!", sig, tick) is False
    assert calls[0] >= 9
