"""protocol.sha512 on both runtimes: FIPS 180-4 examples, padding boundaries, streaming."""

from dualtest import MICROPYTHON, Lcg, req, skip, unhex, vectors
from protocol.sha512 import SHA512, sha512

V = vectors("ed25519.json")


@req("PROT-SIG-1")
def test_fips_180_4_examples():
    # "", "abc", the 896-bit two-block message, 1000 x "a"
    for msg, digest in V["sha512"]:
        assert sha512(unhex(msg)).hexdigest() == digest
        assert sha512(unhex(msg)).digest() == unhex(digest)


@req("PROT-SIG-1")
def test_messages_around_the_padding_boundaries():
    # 111 bytes leave room for the 0x80 byte and the 16-byte length; 112 do not
    for msg, digest in V["sha512_boundaries"]:
        assert SHA512(unhex(msg)).hexdigest() == digest, len(msg) // 2


@req("PROT-SIG-1")
def test_streaming_split_at_odd_boundaries():
    cases = V["sha512"][2:] + V["sha512_boundaries"]
    rng = Lcg(512)
    for msg, digest in cases:
        m = unhex(msg)
        for step in (1, 3, 7, 37, 111, 127, 128, 129, 200):
            h = SHA512()
            for i in range(0, len(m), step):
                h.update(m[i : i + step])
            assert h.hexdigest() == digest
        # random cuts, with empty updates and every bytes-like type
        h = SHA512()
        i = 0
        n = 0
        while i < len(m):
            j = i + rng.below(140)
            part = m[i:j]
            kind = n % 3
            h.update(part if kind == 0 else bytearray(part) if kind == 1 else memoryview(m)[i:j])
            h.update(b"")
            i = j
            n += 1
        assert h.hexdigest() == digest


@req("PROT-SIG-1")
def test_digest_leaves_the_state_alone_and_copy_forks_it():
    msg, digest = V["sha512"][2]
    m = unhex(msg)
    h = SHA512(m[:50])
    first = h.digest()
    assert h.digest() == first  # digest() twice, same answer
    fork = h.copy()
    h.update(m[50:])
    assert h.hexdigest() == digest
    assert fork.digest() == first
    fork.update(m[50:])
    assert fork.hexdigest() == digest


@req("PROT-SIG-1")
def test_only_bytes_are_hashed():
    h = SHA512()
    for bad in ("abc", 3, None, [1, 2]):
        try:
            h.update(bad)
        except TypeError:
            continue
        raise AssertionError("update(%r) was accepted" % (bad,))
    assert h.hexdigest() == V["sha512"][0][1]


@req("PROT-SIG-1")
def test_one_million_a():
    if MICROPYTHON:
        skip("7813 blocks take about 7 s on the WebAssembly port; the 1000-byte example covers 8 blocks")
    h = SHA512()
    chunk = b"a" * 1000
    for _ in range(1000):
        h.update(chunk)
    assert h.hexdigest() == V["sha512_million_a"]
