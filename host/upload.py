"""Sending a signed protocol to a device: chunked, resumable, verified there.

The device announces where to continue (PROTOCOL_BEGIN with the same size
and SHA-256 resumes), so a dropped connection costs only the chunk in
flight. What the device stores is decided by its own verification.
"""

import hashlib

from host.client import Client
from host.errors import TonusError
from host.transport import LinkError
from protocol import messages as m

ATTEMPTS = 5


def upload(open_client, signed, progress=None):
    """Upload `signed` through clients from open_client(); return the stored summary.

    open_client() gives a context manager yielding a connected Client; it is called again after a lost
    connection, up to ATTEMPTS times. progress(sent, total) reports bytes.
    """
    if len(signed) > m.UPLOAD_MAX:
        raise TonusError(f"a signed protocol is at most {m.UPLOAD_MAX:d} bytes; this one has {len(signed)}")
    digest = hashlib.sha256(signed).digest()
    last = None
    for _ in range(ATTEMPTS):
        try:
            with open_client() as client:
                return _send(client, signed, digest, progress)
        except LinkError as e:
            last = e  # the connection dropped: reconnect and resume
    raise TonusError(f"the upload did not complete after {ATTEMPTS:d} connections: {last}")


def _send(client: Client, signed, digest, progress):
    offset = client.protocol_begin(len(signed), digest).unwrap().offset
    while offset < len(signed):
        if progress:
            progress(offset, len(signed))
        r = client.protocol_chunk(offset, signed[offset : offset + m.UPLOAD_CHUNK])
        if not r.ok and r.name == "UPLOAD_OFFSET":
            # an answer lost on the way: ask the device where it stands
            offset = client.protocol_begin(len(signed), digest).unwrap().offset
            continue
        offset = r.unwrap().offset
    if progress:
        progress(len(signed), len(signed))
    return client.protocol_commit().unwrap().protocol
