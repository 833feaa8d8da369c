"""Ed25519 signature verification (RFC 8032 section 5.1.7), plain Python, both runtimes.

Verification only: clinicians sign on their own computers. What is accepted:

- lengths: a public key of 32 bytes and a signature of 64, else ProtocolError
  BAD_KEY_ENCODING (a caller's or provisioning mistake, not a bad signature);
  every other failure returns False;
- encodings, strictly as RFC 8032 section 5.1.3 decodes them: a y coordinate
  >= p, a point off the curve, or x = 0 with the sign bit set is refused for
  both A (the public key) and R (first half of the signature), never reduced;
- S (second half) must be < L (RFC 8032: "check the range 0 <= s < L");
- A and R must not have small order (order 1, 2, 4 or 8). RFC 8032 does not
  ask for this, libsodium and ed25519-dalek's verify_strict do: a small-order
  A makes one signature verify for many messages. Honest keys and
  signatures never have small order. Points with a torsion component that
  are not small ("mixed order") are not refused here: rejecting them costs a
  scalar multiplication; valid_public_key() does it for provisioning;
- the group equation is the cofactorless one, [S]B == R + [k]A, checked
  exactly (RFC 8032 allows this or the cofactored [8][S]B == [8]R + [8][k]A;
  the cofactorless form is what OpenSSL, and so the host's `cryptography`,
  uses, so host and device agree on every signature a correct signer makes).

With these rules the "Taming the many EdDSAs" edge cases (Chalkias et al.,
2020) come out as for libsodium: only the mixed-order case that satisfies
both equations is accepted.

Arithmetic: extended twisted Edwards coordinates (X:Y:Z:T), the doubling
and addition formulas of RFC 8032 section 5.1.4, and one doubling chain
for [S]B - [k]A with signed odd digits (|d| <= 15) for both scalars against
tables of B, 3B, ..., 15B (made at import) and A, 3A, ..., 15A (made per
call). T is computed only before an addition. Every field value is kept
reduced mod p: on MicroPython each big-integer operation allocates, and
their count, with the operands' size, sets the time.
Nothing here is constant time; verification handles only public data.
"""

from array import array

from protocol.errors import BAD_KEY_ENCODING, ProtocolError
from protocol.sha512 import SHA512

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_MASK255 = 2**255 - 1
# Derived constants, written out so that importing costs no modular
# exponentiation on the board; the tests recompute them on both runtimes.
_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555  # -121665/121666
_D2 = 16295367250680780974490674513165176452449235426866156013048779062215315747161  # 2*d
_SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752  # 2**((p-1)/4)
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960  # 4/5

_CHECK_EVERY = 32  # doubling steps between checkpoint() calls
_HASH_CHUNK = 1024  # message bytes hashed between checkpoint() calls


def _decode(s):
    """(x, y) of the point encoded by 32 bytes s, or None (RFC 8032 section 5.1.3)."""
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= _MASK255
    if y >= _P:
        return None
    P = _P
    yy = y * y % P
    u = (yy - 1) % P
    v = (_D * yy + 1) % P  # never 0: -1/d is not a square
    v3 = v * v % P * v % P
    # x = u v^3 (u v^7)^((p-5)/8): a square root of u/v with one exponentiation
    x = u * v3 % P * pow(u * v3 % P * v3 % P * v % P, (P - 5) // 8, P) % P
    vxx = v * x % P * x % P
    if vxx != u:
        if (vxx + u) % P != 0:
            return None  # u/v is not a square: not on the curve
        x = x * _SQRT_M1 % P
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = P - x
    return x, y


def _dbl(x, y, z):
    """2(X:Y:Z) as completed coordinates (E, F, G, H); T is not needed as input."""
    P = _P
    a = x * x
    b = y * y
    c = z * z
    s = x + y
    s = s * s
    h = (a + b) % P
    g = (a - b) % P
    return (h - s) % P, (c + c + g) % P, g, h


def _add(x, y, z, t, q):
    """(X:Y:Z:T) + Q with Q cached as (Y+X, Y-X, 2Z, 2dT); completed (E, F, G, H)."""
    P = _P
    a = (y - x) * q[1]
    b = (y + x) * q[0]
    c = t * q[3]
    d = z * q[2]
    return (b - a) % P, (d - c) % P, (d + c) % P, (b + a) % P


def _cached(x, y, z, t):
    P = _P
    return (y + x) % P, (y - x) % P, (z + z) % P, t * _D2 % P


def _table(x, y):
    """Cached P, 3P, ..., 15P and their negatives for the affine point (x, y)."""
    P = _P
    t = x * y % P
    z = 1
    e, f, g, h = _dbl(x, y, z)
    twice = _cached(e * f % P, g * h % P, f * g % P, e * h % P)
    pos = [_cached(x, y, z, t)]
    for _ in range(7):
        e, f, g, h = _add(x, y, z, t, twice)
        x = e * f % P
        y = g * h % P
        z = f * g % P
        t = e * h % P
        pos.append(_cached(x, y, z, t))
    # -(X:Y:Z:T) = (-X:Y:Z:-T): Y+X and Y-X swap places, 2dT changes sign
    neg = [(q[1], q[0], q[2], (P - q[3]) % P) for q in pos]
    return pos, neg


def _digits(n):
    """Signed odd digits d[i] in [-15, 15] with n == sum(d[i] * 2**i); n < 2**253.

    Width-5 NAF: at an odd remainder take its value mod 32 as a digit in
    [-15, 15], which clears the next four bits; a negative digit carries one
    into the bits above. On average one digit in six is nonzero, so a
    253-bit scalar costs about 42 additions. Small integers only: it reads
    the scalar's bytes.
    """
    b = n.to_bytes(34, "little")  # two spare zero bytes for the last window
    # signed bytes, not a list: a verify holds three of these, and on a fragmented RP2040 heap
    # a 1 KB run for each (a list's four bytes an entry) was what the allocator failed to find
    out = array("b", bytes(256))
    carry = 0
    i = 0
    while i < 256:
        j = i >> 3
        if ((b[j] >> (i & 7)) & 1) + carry != 1:
            # even remainder: digit 0; a carry meeting a set bit moves up
            i += 1
            continue
        w = (((b[j] | (b[j + 1] << 8) | (b[j + 2] << 16)) >> (i & 7)) & 31) + carry
        if w > 15:
            out[i] = w - 32
            carry = 1
        else:
            out[i] = w
            carry = 0
        i += 5
    return out


def _multi(terms, checkpoint):
    """Sum of [n]Q over terms (digits of n, cached table of Q, of -Q): (X, Y, Z).

    One doubling chain shared by all terms (Straus/Shamir). checkpoint() is
    called every _CHECK_EVERY doublings.
    """
    P = _P
    top = -1
    for ds, _pos, _neg in terms:
        for i in range(255, top, -1):
            if ds[i]:
                top = i
                break
    x, y, z = 0, 1, 1
    for i in range(top, -1, -1):
        e, f, g, h = _dbl(x, y, z)
        for ds, pos, neg in terms:
            d = ds[i]
            if d:
                # T of the running point, needed by the addition
                x = e * f % P
                y = g * h % P
                z = f * g % P
                t = e * h % P
                e, f, g, h = _add(x, y, z, t, pos[d >> 1] if d > 0 else neg[(-d) >> 1])
        x = e * f % P
        y = g * h % P
        z = f * g % P
        if checkpoint is not None and i % _CHECK_EVERY == 0:
            checkpoint()
    return x, y, z


def _small_order(x, y):
    """True if [8](x, y) is the neutral element (order 1, 2, 4 or 8)."""
    P = _P
    z = 1
    for _ in range(3):
        e, f, g, h = _dbl(x, y, z)
        x = e * f % P
        y = g * h % P
        z = f * g % P
    return x == 0  # only (0, 1) and (0, -1) have x = 0, and [8]P is never (0, -1)


_B_POS, _B_NEG = _table(_BX, _BY)


def _as_bytes(v, n, code, what):
    if not isinstance(v, (bytes, bytearray, memoryview)) or len(v) != n:
        raise ProtocolError(code, "an Ed25519 %s is %d bytes" % (what, n))
    return bytes(v)


def valid_public_key(public_key, checkpoint=None):
    """True if public_key is a canonical encoding of a point of order L.

    Stricter than verify() needs: it also refuses keys with a torsion
    component, which takes one scalar multiplication (about a verification).
    Meant for provisioning, not for every signature.
    """
    pk = _as_bytes(public_key, 32, BAD_KEY_ENCODING, "public key")
    a = _decode(pk)
    if a is None or _small_order(a[0], a[1]):
        return False
    pos, neg = _table(a[0], a[1])
    x, y, z = _multi(((_digits(_L), pos, neg),), checkpoint)
    return x == 0 and y == z


def verify(public_key, message, signature, checkpoint=None):
    """True if signature is a valid Ed25519 signature of message by public_key.

    A key or signature of the wrong length (or not bytes) raises
    ProtocolError BAD_KEY_ENCODING; every other failure is False.
    checkpoint(), if given, is called during the long arithmetic and between
    1 KB chunks of hashing (the device feeds its watchdog there).
    """
    pk = _as_bytes(public_key, 32, BAD_KEY_ENCODING, "public key")
    sig = _as_bytes(signature, 64, BAD_KEY_ENCODING, "signature")
    if not isinstance(message, (bytes, bytearray, memoryview)):
        raise TypeError("the message must be bytes")
    s = int.from_bytes(sig[32:], "little")
    if s >= _L:
        return False  # non-canonical S: a malleated copy of some signature
    a = _decode(pk)
    if a is None or _small_order(a[0], a[1]):
        return False
    r_bytes = sig[:32]
    r = _decode(r_bytes)
    if r is None or _small_order(r[0], r[1]):
        return False
    h = SHA512(r_bytes)
    h.update(pk)
    mv = memoryview(message)
    for i in range(0, len(mv), _HASH_CHUNK):
        h.update(mv[i : i + _HASH_CHUNK])
        if checkpoint is not None:
            checkpoint()
    k = int.from_bytes(h.digest(), "little") % _L
    # [S]B == R + [k]A  <=>  [S]B + [k](-A) == R; the -A table is A's with roles swapped
    a_pos, a_neg = _table(a[0], a[1])
    x, y, z = _multi(((_digits(s), _B_POS, _B_NEG), (_digits(k), a_neg, a_pos)), checkpoint)
    P = _P
    return (x - r[0] * z) % P == 0 and (y - r[1] * z) % P == 0
