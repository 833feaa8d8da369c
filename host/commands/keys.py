"""`tonus keys new|show`: clinician signing keys."""

import json
import os


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
    from pathlib import Path

    from host import atomic, signing
    from host.errors import TonusError

    out = Path(args.out)
    pub = out.with_name(out.name + ".pub")
    for f in (out, pub):
        if os.path.lexists(f) and not args.force:
            raise TonusError(f"{f} exists; choose another --out or pass --force")
    private_pem, public_pem = signing.new_key(signing.passphrase_from_env_or(_ask_new_passphrase))
    # the public half first: a private key is never left without its own
    old_pub = pub.read_bytes() if pub.is_file() else None
    atomic.write_bytes(pub, public_pem, overwrite=args.force)
    try:
        atomic.write_bytes(out, private_pem, mode=0o600, overwrite=args.force)
    except TonusError:
        if old_pub is None:
            pub.unlink()
        else:
            atomic.write_bytes(pub, old_pub)  # the pair as it was
        raise
    kid = signing.kid_for(signing.load_public(pub)).hex()
    if args.json:
        print(json.dumps({"private_key": str(out), "public_key": str(pub), "kid": kid}))
    else:
        print(f"private key: {out} (keep it; it is encrypted with your passphrase)")
        print(f"public key:  {pub} (give it to whoever provisions the devices)")
        print(f"kid:         {kid}")


def run_show(args):
    from host import signing

    raw = signing.load_public(args.key)
    out = {"kid": signing.kid_for(raw).hex(), "public_key": raw.hex()}
    print(json.dumps(out) if args.json else "kid {}\npublic key {}".format(out["kid"], out["public_key"]))
