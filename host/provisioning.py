"""What provisioning writes to a device: trusted clinician keys and policy limits.

Records use protocol/record.py, the device's own format. The device holds
public keys only (its flash can be read out). Keys are added and removed
(rotation, revocation) by rewriting the keys record; the device audits every
change of its key set at the next boot.
"""

from pathlib import Path

from host import atomic
from host.errors import TonusError
from host.signing import kid_for
from protocol import ed25519, record

KEYS = "keys"
POLICY = "policy"


def updated_keys(current, add=(), revoke=()):
    """The new {kid: public key} map; revoke takes kids as hex strings."""
    keys = dict(current)
    for pub in add:
        # the device would refuse every signature by such a key; say so now
        if not ed25519.valid_public_key(pub):
            raise TonusError("that public key is not a valid Ed25519 key of full order; it cannot be trusted")
        keys[kid_for(pub)] = pub
    for kid_hex in revoke:
        try:
            kid = bytes.fromhex(kid_hex)
        except ValueError as e:
            raise TonusError(f"{kid_hex!r} is not a key id (16 hex digits)") from e
        if kid not in keys:
            raise TonusError(f"key {kid_hex} is not trusted on this device")
        del keys[kid]
    return keys


def policy(amplitude_max_ua, mains_hz=None):
    if not 0 <= amplitude_max_ua <= 100000:
        raise TonusError("the policy's maximum amplitude must be 0 to 100 mA")
    pol = {"amplitude_max_ua": amplitude_max_ua}
    if mains_hz is not None:
        if mains_hz not in (50, 60):
            raise TonusError("the mains frequency where the device is used is 50 or 60 Hz")
        pol["mains_hz"] = mains_hz  # the display path's notch
    return pol


class FlashDir:
    """A simulator's flash directory (tonus sim --flash-dir)."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise atomic.file_error(self.path, e, "use the flash folder") from None

    def read(self, name):
        f = self.path / name
        if not f.exists():
            return None
        try:
            return record.unpack(f.read_bytes())
        except Exception as e:
            raise TonusError(f"the {name} record in {self.path} is damaged; provision it anew") from e

    def write(self, name, value):
        atomic.write_bytes(self.path / name, record.pack(value))
