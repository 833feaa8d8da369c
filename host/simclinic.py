"""A clinic for the simulator: approve a protocol file on a simulated board.

On a real board a protocol runs only after a clinician signed it with her
own key and the board was provisioned to trust that key. A simulator has no
clinician, so for demonstrations and tests this module plays one: it makes
an Ed25519 key for this run only (never written anywhere), provisions the
simulated board to trust it (and, on a board with no device policy yet,
a policy up to the protocol's own limit), sets the file's device line to
the simulator's serial, signs, and uploads through the ordinary verified
path. It refuses
anything that is not a simulator.
"""

from host import signing, therapy_file
from host.errors import TonusError
from host.provisioning import KEYS, POLICY, policy, updated_keys
from host.upload import upload
from protocol import record


def approve_on(simulator, path):
    """approve() on a simulator this process runs (tonus sim --approve), through a port of its own."""
    from host.client import Client
    from host.transport import Port
    from sim.urlhandler.protocol_sim import Serial

    with Client(Port(Serial.attached(simulator), "sim://attached")) as client:
        return approve(client, path)


def simulator_of(client):
    """The in-process Simulator behind a client's sim:// port, or None."""
    return getattr(client.port.serial, "simulator", None)


def approve(client, path):
    """Sign the protocol file at path for the simulated board behind client and upload it."""
    import contextlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    sim = simulator_of(client)
    if sim is None:
        raise TonusError(
            "only a simulator (--port sim://...) runs an unsigned protocol file; for a board, "
            "sign it ('tonus protocol sign') and upload it ('tonus protocol upload')"
        )
    try:
        doc, problems = therapy_file.load(path)
    except therapy_file.ProtocolFileError as e:
        raise TonusError(str(e)) from e
    if problems:
        raise TonusError(f"{path} has problems; 'tonus protocol check {path}' lists them")
    doc["device"] = client.hello().unwrap().serial
    key = Ed25519PrivateKey.generate()
    flash = sim.board.flash
    current = flash.read(KEYS)
    keys = record.unpack(current) if current is not None else {}
    flash.write(KEYS, record.pack(updated_keys(keys, add=[signing.public_raw(key.public_key())])))
    if flash.read(POLICY) is None:
        # an unprovisioned device stimulates at nothing; the clinic provisions up to the protocol's limit
        flash.write(POLICY, record.pack(policy(doc["limits"]["amplitude_max_ua"])))
    sim.power_cycle()  # the device reads its trusted keys at boot, as after provisioning
    client.hello().unwrap()
    signed = signing.sign_document(doc, key)
    return upload(lambda: contextlib.nullcontext(client), signed)
