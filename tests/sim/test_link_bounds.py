"""The simulated board's link: bounded buffers, fresh starts, and time that waits for the host.

A real USB CDC has a 512-byte receive ring and pushes back on a host that
writes ahead of the firmware; a host that reconnects starts afresh in both
directions; and an in-process host that was slow (its own work, a loaded
CPU) never finds that the device gave up on its heartbeat meanwhile.
"""

import socket
import threading
import time

import pytest

from firmware.maintenance import MARKER
from host.client import Client, StateChanged
from host.transport import LinkError, open_port
from protocol import codec, framing
from protocol import messages as m
from sim.board import RX_RING
from sim.runner import Simulator
from sim.server import LinkServer, open_listener


def _maintenance_boot(sim):
    """A bare board, as after MAINTENANCE_ENTER: no application reads the link, no watchdog runs."""
    sim.board.fs_write(MARKER, b"\x00")
    sim.reset()
    assert sim.maintenance_boot


@pytest.fixture
def served(tmp_path, request):
    """(simulator, (host, port)) of an unpaced simulator served on loopback in a thread."""
    sim = Simulator(seed=2, flash_dir=tmp_path / "flash")
    if getattr(request, "param", None) == "maintenance":
        _maintenance_boot(sim)
    listener = open_listener("127.0.0.1", 0)
    stop = threading.Event()
    thread = threading.Thread(target=LinkServer(sim, listener).serve, args=(stop,), daemon=True)
    thread.start()
    yield sim, listener.getsockname()[:2]
    stop.set()
    thread.join(10)
    listener.close()
    sim.close()


def _hello_frame(seq):
    return framing.encode(codec.dumps(m.build(m.REQUEST, seq, m.HELLO, min_version=1, max_version=1)))


def _answer(sock, seq, seconds=10):
    decoder = framing.Decoder()
    sock.settimeout(seconds)
    while True:
        data = sock.recv(4096)
        assert data, "the server closed the connection"
        for payload in decoder.feed(data):
            kind, got, _mtype, _body = m.parse(codec.loads(payload))
            if got == seq:
                return kind


@pytest.mark.req("SIM-LINK-2")
@pytest.mark.parametrize("served", ["maintenance"], indirect=True)
def test_a_firmware_that_does_not_read_pushes_back_on_a_tcp_host(served):
    sim, addr = served
    with socket.create_connection(addr) as sock:
        sock.setblocking(False)
        chunk = b"\x01" * 65536
        last_progress = time.monotonic()
        deadline = last_progress + 10
        stalled = False
        while time.monotonic() < deadline and not stalled:
            try:
                sock.send(chunk)
                last_progress = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)
                # once the kernel's socket buffers are full, nothing drains them any more
                stalled = time.monotonic() - last_progress > 0.5
        assert stalled
        assert 0 <= sim.host_room() <= RX_RING


@pytest.mark.req("SIM-LINK-2")
def test_an_in_process_write_waits_for_room_and_then_times_out(tmp_path):
    port = open_port("sim://?seed=2&flash_dir=%s" % (tmp_path / "flash"), timeout=0.5)
    try:
        sim = port.serial.simulator
        port.write(b"\x00" * 100)  # fits: the firmware drains the ring as it runs
        _maintenance_boot(sim)
        t0 = sim.clock.us
        with pytest.raises(LinkError):
            port.write(b"\x01" * (2 * RX_RING))
        assert sim.host_room() == 0
        assert sim.clock.us - t0 >= 500_000  # the write timeout, in simulated time
    finally:
        port.close()


@pytest.mark.req("SIM-LINK-2")
def test_a_replaced_hosts_half_frame_does_not_spoil_the_next_hosts_first(served):
    _sim, addr = served
    with socket.create_connection(addr) as old:
        old.sendall(b"\x00" + _hello_frame(1)[:9])  # cut off mid-frame
        time.sleep(0.2)
    with socket.create_connection(addr) as new:
        new.sendall(_hello_frame(2))  # no leading delimiter: a host need not send one
        assert _answer(new, 2) == m.RESPONSE


@pytest.mark.req("SIM-TIME-1")
def test_a_slow_in_process_host_keeps_its_heartbeat(tmp_path):
    heartbeat_ms = 200  # shorter than the 250 ms a paced clock would catch up at once
    with Client.open("sim://?seed=4&speed=20&flash_dir=%s" % (tmp_path / "flash")) as c:
        c.stream(True)
        c.session_start(demo_s=60, heartbeat_ms=heartbeat_ms).unwrap()
        states = []
        for _ in range(15):
            time.sleep(0.15)  # the host is busy: 3 s of simulated time at speed 20
            item = c.poll(0.01)
            while item is not None:
                if isinstance(item, StateChanged):
                    states.append((item.to_state, item.reason))
                item = c.poll(0)
        assert c.info().state == "RUNNING", states
