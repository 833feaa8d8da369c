"""SHA-512 (FIPS 180-4) in plain Python: MicroPython's hashlib has SHA-256 only.

The same code runs on both runtimes; the tests compare it with CPython's
hashlib. Ed25519 verification hashes the whole signed document with it, so
the compression function keeps big-integer operations few: on MicroPython
every 64-bit value is a heap-allocated big int, and the number of operations,
not their width, sets the time.

A 64-bit rotation is a shift of the word duplicated into 128 bits:
x * (2**64 + 1) == x | x << 64, so rotr(x, n) == (xx >> n) & MASK, and the
three rotations of a sigma share one duplication. The sigmas are left
unmasked: they only feed sums that are masked, and bits above 64 in an
addend do not change the low 64 bits of a sum.
"""

import struct

# fmt: off
_K = (
    0x428A2F98D728AE22, 0x7137449123EF65CD, 0xB5C0FBCFEC4D3B2F, 0xE9B5DBA58189DBBC,
    0x3956C25BF348B538, 0x59F111F1B605D019, 0x923F82A4AF194F9B, 0xAB1C5ED5DA6D8118,
    0xD807AA98A3030242, 0x12835B0145706FBE, 0x243185BE4EE4B28C, 0x550C7DC3D5FFB4E2,
    0x72BE5D74F27B896F, 0x80DEB1FE3B1696B1, 0x9BDC06A725C71235, 0xC19BF174CF692694,
    0xE49B69C19EF14AD2, 0xEFBE4786384F25E3, 0x0FC19DC68B8CD5B5, 0x240CA1CC77AC9C65,
    0x2DE92C6F592B0275, 0x4A7484AA6EA6E483, 0x5CB0A9DCBD41FBD4, 0x76F988DA831153B5,
    0x983E5152EE66DFAB, 0xA831C66D2DB43210, 0xB00327C898FB213F, 0xBF597FC7BEEF0EE4,
    0xC6E00BF33DA88FC2, 0xD5A79147930AA725, 0x06CA6351E003826F, 0x142929670A0E6E70,
    0x27B70A8546D22FFC, 0x2E1B21385C26C926, 0x4D2C6DFC5AC42AED, 0x53380D139D95B3DF,
    0x650A73548BAF63DE, 0x766A0ABB3C77B2A8, 0x81C2C92E47EDAEE6, 0x92722C851482353B,
    0xA2BFE8A14CF10364, 0xA81A664BBC423001, 0xC24B8B70D0F89791, 0xC76C51A30654BE30,
    0xD192E819D6EF5218, 0xD69906245565A910, 0xF40E35855771202A, 0x106AA07032BBD1B8,
    0x19A4C116B8D2D0C8, 0x1E376C085141AB53, 0x2748774CDF8EEB99, 0x34B0BCB5E19B48A8,
    0x391C0CB3C5C95A63, 0x4ED8AA4AE3418ACB, 0x5B9CCA4F7763E373, 0x682E6FF3D6B2B8A3,
    0x748F82EE5DEFB2FC, 0x78A5636F43172F60, 0x84C87814A1F0AB72, 0x8CC702081A6439EC,
    0x90BEFFFA23631E28, 0xA4506CEBDE82BDE9, 0xBEF9A3F7B2C67915, 0xC67178F2E372532B,
    0xCA273ECEEA26619C, 0xD186B8C721C0C207, 0xEADA7DD6CDE0EB1E, 0xF57D4F7FEE6ED178,
    0x06F067AA72176FBA, 0x0A637DC5A2C898A6, 0x113F9804BEF90DAE, 0x1B710B35131C471B,
    0x28DB77F523047D84, 0x32CAAB7B40C72493, 0x3C9EBE0A15C9BEBC, 0x431D67C49C100D4C,
    0x4CC5D4BECB3E42B6, 0x597F299CFC657E2A, 0x5FCB6FAB3AD6FAEC, 0x6C44198C4A475817,
)
_H0 = (
    0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
    0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179,
)
# fmt: on
_M = 0xFFFFFFFFFFFFFFFF
_DUP = 0x10000000000000001  # x * _DUP == x | x << 64 for x < 2**64
_BLOCK = 128


def _compress(h, data, start, end):
    """Run the compression function over data[start:end] (whole blocks) into h."""
    K = _K
    M = _M
    DUP = _DUP
    unpack_from = struct.unpack_from
    for off in range(start, end, _BLOCK):
        w = list(unpack_from(">16Q", data, off))
        for t in range(16, 80):
            x = w[t - 15]
            xx = x * DUP
            y = w[t - 2]
            yy = y * DUP
            # sigma0 = rotr1 ^ rotr8 ^ shr7; sigma1 = rotr19 ^ rotr61 ^ shr6 (unmasked)
            w.append(
                (
                    w[t - 16]
                    + ((((xx >> 7) ^ xx) >> 1) ^ (x >> 7))
                    + w[t - 7]
                    + ((((yy >> 42) ^ yy) >> 19) ^ (y >> 6))
                )
                & M
            )
        a, b, c, d, e, f, g, hh = h
        bc = b ^ c
        for t in range(80):
            ee = e * DUP
            aa = a * DUP
            ab = a ^ b
            # Sigma1(e) = rotr14 ^ rotr18 ^ rotr41; Ch(e, f, g) = g ^ (e & (f ^ g))
            t1 = hh + ((ee ^ (ee >> 4) ^ (ee >> 27)) >> 14) + (g ^ (e & (f ^ g))) + K[t] + w[t]
            # Sigma0(a) = rotr28 ^ rotr34 ^ rotr39; Maj(a, b, c) = ((a ^ b) & (b ^ c)) ^ b,
            # and this round's a ^ b is the next round's b ^ c
            t2 = ((aa ^ (aa >> 6) ^ (aa >> 11)) >> 28) + ((ab & bc) ^ b)
            bc = ab
            # plain stores: a tuple assignment of eight would allocate a tuple per round
            hh = g
            g = f
            f = e
            e = (d + t1) & M
            d = c
            c = b
            b = a
            a = (t1 + t2) & M
        h[0] = (h[0] + a) & M
        h[1] = (h[1] + b) & M
        h[2] = (h[2] + c) & M
        h[3] = (h[3] + d) & M
        h[4] = (h[4] + e) & M
        h[5] = (h[5] + f) & M
        h[6] = (h[6] + g) & M
        h[7] = (h[7] + hh) & M


class SHA512:
    """Streaming SHA-512: update(data) any number of times, then digest()."""

    digest_size = 64
    block_size = _BLOCK

    def __init__(self, data=b""):
        self._h = list(_H0)
        self._buf = b""  # fewer than 128 bytes not yet compressed
        self._len = 0
        if data:
            self.update(data)

    def update(self, data):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("SHA-512 takes bytes")
        n = len(data)
        if n == 0:
            return
        self._len += n
        buf = self._buf
        if buf:
            # complete the pending block first, then work on data in place
            take = _BLOCK - len(buf)
            buf = buf + bytes(data[:take])
            if len(buf) < _BLOCK:
                self._buf = buf
                return
            _compress(self._h, buf, 0, _BLOCK)
            data = data[take:]
            n -= take
        whole = n - n % _BLOCK
        if whole:
            _compress(self._h, data, 0, whole)
        self._buf = bytes(data[whole:])

    def digest(self):
        # pad a copy of the state: digest() may be called again, or more data added
        n = self._len
        tail = self._buf + b"\x80" + bytes((111 - n) % _BLOCK) + struct.pack(">QQ", n >> 61, (n << 3) & _M)
        h = list(self._h)
        _compress(h, tail, 0, len(tail))
        return struct.pack(">8Q", h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])

    def hexdigest(self):
        return self.digest().hex()

    def copy(self):
        other = SHA512()
        other._h = list(self._h)
        other._buf = self._buf
        other._len = self._len
        return other


def sha512(data=b""):
    """A SHA512 object fed with data (hashlib style: sha512(m).digest())."""
    return SHA512(data)
