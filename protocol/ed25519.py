"""Ed25519 signature verification (RFC 8032 section 5.1.7), plain Python, both runtimes.

Follows the RFC's section 6 reference arithmetic (extended coordinates),
strictly: an encoding of a coordinate >= p, a point off the curve, or
S >= L is refused. The group equation is checked without the cofactor,
[S]B = R + [k]A, which the RFC permits and common libraries use.
Verification only: signing happens on the clinician's computer.
"""

from protocol.errors import BAD_KEY_ENCODING, ProtocolError
from protocol.sha512 import sha512

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_CHECK_EVERY = 32  # doubling steps between checkpoint() calls


def _recover_x(y, sign):
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _decode_point(s):
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


def _add(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul2(s, p, k, q, checkpoint):
    """[s]p + [k]q in one doubling chain (Shamir's trick); s, k < 2**253."""
    pq = _add(p, q)
    acc = (0, 1, 1, 0)
    for i in range(252, -1, -1):
        acc = _add(acc, acc)
        bits = ((s >> i) & 1) | (((k >> i) & 1) << 1)
        if bits == 1:
            acc = _add(acc, p)
        elif bits == 2:
            acc = _add(acc, q)
        elif bits == 3:
            acc = _add(acc, pq)
        if checkpoint is not None and i % _CHECK_EVERY == 0:
            checkpoint()
    return acc


def _equal(p, q):
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % _P)


def verify(public_key, message, signature, checkpoint=None):
    """True if signature is a valid Ed25519 signature of message by public_key.

    Malformed lengths raise ProtocolError; every other failure is False.
    checkpoint() is called during the long arithmetic (the device feeds its
    watchdog there).
    """
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise ProtocolError(BAD_KEY_ENCODING, "an Ed25519 public key is 32 bytes")
    if not isinstance(signature, bytes) or len(signature) != 64:
        raise ProtocolError(BAD_KEY_ENCODING, "an Ed25519 signature is 64 bytes")
    a = _decode_point(public_key)
    if a is None:
        return False
    r_bytes = signature[:32]
    r = _decode_point(r_bytes)
    if r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    h = sha512(r_bytes + public_key)
    message = bytes(message)
    for i in range(0, len(message), 1024):
        h.update(message[i : i + 1024])
        if checkpoint is not None:
            checkpoint()
    k = int.from_bytes(h.digest(), "little") % _L
    # [S]B = R + [k]A  <=>  [S]B + [k](-A) = R
    neg_a = (_P - a[0], a[1], a[2], (_P - a[3]) % _P)
    return _equal(_mul2(s, _G, k, neg_a, checkpoint), r)
