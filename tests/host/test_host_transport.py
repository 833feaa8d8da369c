"""Opening ports: by URL only, exclusively, with errors that say what to do next."""

import io
import os
import socket

import pytest
import serial

from host.transport import LinkError, PortError, hexdump, open_port


@pytest.fixture
def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    yield s
    s.close()


@pytest.mark.req("LINK-CLIENT-2")
def test_a_url_opens_and_the_first_write_leads_with_a_delimiter():
    port = open_port("loop://")
    try:
        port.write(b"ab")
        port.write(b"cd")
        assert port.read(0.2) == b"\x00ab" + b"cd"
        assert port.read(0.01) == b""
    finally:
        port.close()


@pytest.mark.req("LINK-CLIENT-2")
def test_a_socket_is_drained_in_one_read_and_a_closed_peer_is_a_link_error(listener):
    port = open_port(f"socket://127.0.0.1:{listener.getsockname()[1]:d}")
    conn, _ = listener.accept()
    try:
        conn.sendall(bytes(range(1, 200)))
        got = b""
        while len(got) < 199:
            chunk = port.read(1.0)
            assert chunk, "nothing arrived"
            got += chunk
        assert got == bytes(range(1, 200))
        conn.close()
        with pytest.raises(LinkError, match="lost the connection to socket://"):
            port.read(1.0)
    finally:
        port.close()


@pytest.mark.req("LINK-CLIENT-2")
def test_a_device_path_opens_exclusively():
    controller, device = os.openpty()
    path = os.ttyname(device)
    try:
        first = open_port(path)
        try:
            with pytest.raises(PortError, match="in use by another program"):
                open_port(path)
            os.write(controller, b"\x01\x02\x03")
            assert first.read(1.0) == b"\x01\x02\x03"
        finally:
            first.close()
    finally:
        os.close(controller)
        os.close(device)


@pytest.mark.req("LINK-CLIENT-2")
def test_the_simulator_handler_is_registered_once_and_opens():
    for _ in range(2):
        port = open_port("sim://?seed=2&speed=0")
        assert port.serial.simulator.rig is not None
        port.close()
    assert serial.protocol_handler_packages.count("sim.urlhandler") == 1


@pytest.mark.req("LINK-CLIENT-2")
@pytest.mark.parametrize(
    "url, says",
    [
        (
            "/dev/tonus-no-such-board",
            "does not exist: check the USB cable, or list boards with 'tonus devices'",
        ),
        ("nope://x", "is not a port URL tonus knows"),
        ("socket://", "needs a host and a port"),
        ("sim://?seed=-1", "the simulator cannot start from sim://"),
    ],
)
def test_open_failures_say_what_to_do_next(url, says):
    from host.errors import TonusError

    with pytest.raises(TonusError, match=says):
        open_port(url)


@pytest.mark.req("LINK-CLIENT-2")
def test_nothing_listening_points_at_tonus_sim(listener):
    addr = listener.getsockname()
    listener.close()  # a port that was free a moment ago
    with pytest.raises(PortError, match=r"nothing listens at .* 'tonus sim --listen"):
        open_port("socket://{}:{:d}".format(*addr))


def test_the_wire_log_records_both_directions():
    log = io.StringIO()
    port = open_port("loop://", wire_log=log)
    try:
        port.write(b"\x01\xff")
        port.read(0.2)
    finally:
        port.close()
    lines = log.getvalue().splitlines()
    assert [ln.split(None, 1)[1] for ln in lines] == ["> 00 01 ff", "< 00 01 ff"]


@pytest.mark.req("LINK-CLIENT-1")
def test_hexdump_shows_offsets_hex_and_text_and_cuts_long_data():
    out = hexdump(b"tonus\x00\x01" + bytes(300), limit=32).splitlines()
    assert out[0] == "  0000  74 6f 6e 75 73 00 01 00 00 00 00 00 00 00 00 00  |tonus...........|"
    assert out[1].startswith("  0010  00")
    assert out[2] == "  ... 275 more bytes"
