"""A dropped connection mid-upload resumes where the device stopped."""

import contextlib

import pytest

from host import provisioning
from host.client import Client
from host.signing import kid_for, open_signed, public_raw, sign_document
from host.transport import LinkError, open_port
from host.upload import upload
from protocol import messages as m
from tools.make_protocol_vectors import TRUSTED, build

VECTORS = build()


@pytest.mark.req("PROT-UPLOAD-1")
def test_resume_after_a_dropped_connection(tmp_path):
    flash = provisioning.FlashDir(tmp_path / "flash")
    pub = public_raw(TRUSTED.public_key())
    flash.write(provisioning.KEYS, {kid_for(pub): pub})
    flash.write(provisioning.POLICY, provisioning.policy(50000))
    # the vectors are signed for the test serial; re-sign the same document for this simulator
    _kid, doc = open_signed(bytes.fromhex(VECTORS["cases"]["v1"]["cose"]))
    port = open_port(f"sim://?seed=0&speed=0&flash_dir={flash.path}")
    doc["device"] = port.serial.simulator.board.serial
    signed = sign_document(doc, TRUSTED)
    assert len(signed) > 2 * m.UPLOAD_CHUNK

    connections = []
    starts = []

    @contextlib.contextmanager
    def open_client():
        client = Client(port)
        connections.append(client)
        if len(connections) == 1:
            real = client.protocol_chunk

            def dropping(offset, data):
                if offset > 0:
                    raise LinkError("cable pulled")
                return real(offset, data)

            client.protocol_chunk = dropping
        yield client

    def progress(sent, total):
        if len(starts) < len(connections):
            starts.append(sent)

    stored = upload(open_client, signed, progress)
    port.close()
    assert len(connections) == 2
    assert starts == [0, m.UPLOAD_CHUNK]  # the second connection continued, not restarted
    assert stored.sequence == 1 and stored.patient == "P-0042"
