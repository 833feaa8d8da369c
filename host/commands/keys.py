"""`tonus keys new|show`: clinician signing keys."""

import json


def register(sub):
    p = sub.add_parser("keys", help="clinician signing keys")
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    n = ks.add_parser("new", help="create an Ed25519 key pair (private key encrypted with a passphrase)")
    n.add_argument("--out", required=True, help="private key file to write; the public key goes to OUT.pub")
    n.add_argument("--force", action="store_true", help="overwrite existing files")
    n.set_defaults(run=run_new)
    s = ks.add_parser("show", help="print a key's id (kid) and public key")
    s.add_argument("key", help="a .pub file")
    s.set_defaults(run=run_show)


def _ask_new_passphrase():
    import getpass

    from host.errors import TonusError

    first = getpass.getpass("passphrase for the new key: ")
    if getpass.getpass("again: ") != first:
        raise TonusError("the passphrases differ; nothing was written")
    return first


def run_new(args):
    import os
    from pathlib import Path

    from host import signing
    from host.errors import TonusError

    out = Path(args.out)
    pub = out.with_name(out.name + ".pub")
    for f in (out, pub):
        if f.exists() and not args.force:
            raise TonusError("%s exists; choose another --out or pass --force" % f)
    private_pem, public_pem = signing.new_key(signing.passphrase_from_env_or(_ask_new_passphrase))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem)
    pub.write_bytes(public_pem)
    kid = signing.kid_for(signing.load_public(pub)).hex()
    if args.json:
        print(json.dumps({"private_key": str(out), "public_key": str(pub), "kid": kid}))
    else:
        print("private key: %s (keep it; it is encrypted with your passphrase)" % out)
        print("public key:  %s (give it to whoever provisions the devices)" % pub)
        print("kid:         %s" % kid)


def run_show(args):
    from host import signing

    raw = signing.load_public(args.key)
    out = {"kid": signing.kid_for(raw).hex(), "public_key": raw.hex()}
    print(json.dumps(out) if args.json else "kid %s\npublic key %s" % (out["kid"], out["public_key"]))
