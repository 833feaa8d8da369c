"""Clinician keys and COSE_Sign1 signing of protocol documents (host only).

Keys are Ed25519 (RFC 8032) from `cryptography`. The private key is stored
as PKCS#8 PEM encrypted with the clinician's passphrase; the public key as
SubjectPublicKeyInfo PEM. The signed file is the bare tag-18 COSE_Sign1
(RFC 9052) over the protocol's deterministic CBOR, with alg -8 (EdDSA) and
the kid (first 8 bytes of SHA-256 of the raw public key) in the protected
header; the device verifies these exact bytes.
"""

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from host.errors import TonusError
from protocol import codec

ALG_EDDSA = -8
HDR_ALG = 1
HDR_KID = 4
PASSPHRASE_ENV = "TONUS_KEY_PASSPHRASE"
MIN_PASSPHRASE = 8


class KeyFileError(TonusError):
    """A key file that cannot be used, or a wrong passphrase."""


def kid_for(public_raw):
    return hashlib.sha256(public_raw).digest()[:8]


def public_raw(public_key):
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def new_key(passphrase):
    """(private PEM encrypted with passphrase, public PEM) of a fresh key."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise KeyFileError(f"choose a passphrase of at least {MIN_PASSPHRASE:d} characters")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    return private_pem, public_pem(key.public_key())


def public_pem(public_key):
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private(path, passphrase):
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise KeyFileError(f"cannot read key {path}: {e.strerror}") from e
    try:
        key = serialization.load_pem_private_key(data, passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as e:
        raise KeyFileError(f"cannot open {path}: wrong passphrase, or not a tonus private key") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return key


def load_public(path):
    """The raw 32-byte public key from a .pub PEM file (or a private key file's public half)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise KeyFileError(f"cannot read key {path}: {e.strerror}") from e
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as e:
        raise KeyFileError(f"{path} is not a public key in PEM form") from e
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return public_raw(key)


def passphrase_from_env_or(prompt):
    """The passphrase from TONUS_KEY_PASSPHRASE, else from prompt() (e.g. getpass)."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value is not None:
        return value
    try:
        return prompt()
    except EOFError:
        raise KeyFileError(
            f"no terminal to ask for the passphrase: run this in a terminal, or set {PASSPHRASE_ENV}"
        ) from None


def sign_document(doc, private_key):
    """COSE_Sign1 bytes over the document's deterministic CBOR."""
    payload = codec.dumps(doc)
    kid = kid_for(public_raw(private_key.public_key()))
    protected = codec.dumps({HDR_ALG: ALG_EDDSA, HDR_KID: kid})
    to_sign = codec.dumps(["Signature1", protected, b"", payload])
    signature = private_key.sign(to_sign)
    return codec.dumps(codec.Tag(18, [protected, {}, payload, signature]))


def open_signed(signed, public_raw_key=None):
    """(kid, document) of a signed file; checks the signature when a key is given.

    The host reads files it is about to upload or show; the device's own
    verification (protocol/cose.py) is what decides.
    """
    tag = codec.loads(signed)
    if not isinstance(tag, codec.Tag) or not isinstance(tag.value, list) or len(tag.value) != 4:
        raise TonusError("not a COSE_Sign1 protocol file")
    protected, _unprotected, payload, signature = tag.value
    header = codec.loads(protected)
    kid = header.get(HDR_KID, b"")
    if public_raw_key is not None:
        to_sign = codec.dumps(["Signature1", protected, b"", payload])
        try:
            Ed25519PublicKey.from_public_bytes(public_raw_key).verify(signature, to_sign)
        except InvalidSignature as e:
            raise TonusError(
                "the signature does not match: the file was altered or signed with another key"
            ) from e
    return kid, codec.loads(payload)
