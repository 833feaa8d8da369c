"""`tonus provision`: trust clinician keys and set the device policy."""

import json

from host import cliargs


def register(sub):
    p = sub.add_parser("provision", help="set a device's trusted clinician keys and policy limits")
    p.add_argument("--flash-dir", required=True, help="the simulator's flash directory (boards: tonus flash)")
    p.add_argument("--trust", action="append", default=[], metavar="KEY.pub", help="trust this clinician key")
    p.add_argument("--revoke", action="append", default=[], metavar="KID", help="stop trusting this key id")
    p.add_argument(
        "--max-amplitude-ma",
        type=cliargs.decimal(0, 100, "mA", step="0.001"),
        help="device policy: the most any protocol may use",
    )
    p.add_argument(
        "--mains-hz",
        type=int,
        choices=(50, 60),
        help="device policy: the mains frequency where it is used (notch)",
    )
    p.set_defaults(run=run)


def run(args):
    from host import provisioning, signing

    target = provisioning.FlashDir(args.flash_dir)
    keys = provisioning.updated_keys(
        target.read(provisioning.KEYS) or {},
        [signing.load_public(p) for p in args.trust],
        args.revoke,
    )
    new_policy = None
    if args.max_amplitude_ma is not None or args.mains_hz is not None:
        old = target.read(provisioning.POLICY) or {}
        ua = old.get("amplitude_max_ua", 0)
        if args.max_amplitude_ma is not None:
            ua = args.max_amplitude_ma * 1000
        new_policy = provisioning.policy(int(ua), args.mains_hz or old.get("mains_hz"))
    # everything checked: only now touch the device
    target.write(provisioning.KEYS, keys)
    if new_policy is not None:
        target.write(provisioning.POLICY, new_policy)
    pol = target.read(provisioning.POLICY)
    out = {"trusted_kids": sorted(k.hex() for k in keys), "policy": pol}
    if args.json:
        print(json.dumps(out))
    else:
        print("trusted keys: %s" % (", ".join(out["trusted_kids"]) or "none"))
        print(
            "policy: %s"
            % ("max %.1f mA" % (pol["amplitude_max_ua"] / 1000) if pol else "not set (no stimulation)")
        )
