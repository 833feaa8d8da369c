"""sim:// through pyserial: parameters checked, reads in lockstep with simulated time."""

import time

import pytest
import serial

from protocol import codec, faults, framing
from protocol import messages as m
from sim.board import serial_for_seed

pytestmark = pytest.mark.req("SIM-URL-1")


@pytest.fixture(autouse=True)
def sim_urls():
    if "sim.urlhandler" not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append("sim.urlhandler")


@pytest.fixture
def open_port(tmp_path):
    ports = []

    def open_(query="", **kw):
        url = f"sim://?flash_dir={tmp_path / 'flash'}" + ("&" + query if query else "")
        port = serial.serial_for_url(url, exclusive=True, **kw)
        ports.append(port)
        return port

    yield open_
    for p in ports:
        p.close()


def frame(seq, mtype, **fields):
    return framing.encode(codec.dumps(m.build(m.REQUEST, seq, mtype, **fields)))


def read_messages(port, want, decoder):
    """Read as a host client does on any port: one byte (waiting), then whatever is waiting."""
    got = []
    while len(got) < want:
        data = port.read(1)
        if not data:
            break
        data += port.read(port.in_waiting)
        got += [m.parse(codec.loads(p)) for p in decoder.feed(data)]
    return got


@pytest.mark.parametrize(
    "url, message",
    [
        ("sim://?colour=blue", "unknown parameter 'colour'"),
        ("sim://?seed=-1", "bad seed"),
        ("sim://?seed=x", "bad seed"),
        ("sim://?seed=1&seed=2", "given 2 times"),
        ("sim://?patient=athlete", "bad patient"),
        ("sim://?speed=-2", "bad speed"),
        ("sim://?speed=nan", "bad speed"),
        ("sim://?scenario=", "bad scenario"),
        ("sim://?scenario=/nonexistent/s.toml", "cannot read"),
        ("sim://board7?seed=1", "expected sim://?"),
        ("sim://?seed", "malformed query"),
    ],
)
def test_bad_urls_raise_serial_exception(url, message):
    with pytest.raises(serial.SerialException) as info:
        serial.serial_for_url(url, exclusive=True)
    assert message in str(info.value)


def test_a_read_returns_as_soon_as_the_device_answers(open_port):
    port = open_port("seed=3&patient=weak", timeout=2)
    sim = port.simulator
    port.write(b"\x00" + frame(1, m.HELLO, min_version=1, max_version=m.PROTOCOL_VERSION))
    start = sim.now_ms
    (reply,) = read_messages(port, 1, framing.Decoder())
    assert reply[:3] == (m.RESPONSE, 1, m.HELLO)
    assert reply[3][3] == serial_for_seed(3)
    assert sim.now_ms - start <= 10  # one or two ticks, not the 2 s timeout
    assert sim.patient.name == "weak"


def test_a_read_timeout_is_simulated_time_when_unpaced(open_port):
    port = open_port(timeout=0.5)
    sim = port.simulator
    port.write(b"\x00" + frame(1, m.HELLO, min_version=1, max_version=m.PROTOCOL_VERSION))
    assert port.read(1000)  # the HELLO response and the device's first delimiter
    start_ms = sim.now_ms
    assert port.read(1000) == b""  # an idle device says nothing
    assert 500 <= sim.now_ms - start_ms < 505  # the timeout ran on simulated time
    port.timeout = 0  # non-blocking: one tick passes when nothing waits
    before = sim.now_ms
    assert port.read(10) == b""
    assert sim.now_ms - before == 5
    port.timeout = None  # blocking reads stop at the cap, never hang
    before = sim.now_ms
    assert port.read(10) == b""
    assert sim.now_ms - before == 1000


def test_rig_actions_show_up_on_the_port(open_port):
    port = open_port(timeout=1)
    decoder = framing.Decoder()
    port.write(b"\x00" + frame(1, m.HELLO, min_version=1, max_version=m.PROTOCOL_VERSION))
    read_messages(port, 1, decoder)
    port.simulator.rig.press_estop()
    events = read_messages(port, 2, decoder)
    assert (m.EVENT, m.FAULT) in [(e[0], e[2]) for e in events]
    fault = next(e for e in events if e[2] == m.FAULT)
    assert fault[3][0] == faults.ESTOP
    port.write(frame(2, m.PING))
    port.simulator.run_for(20)
    assert port.in_waiting > 0
    port.reset_input_buffer()
    assert port.in_waiting == 0
    assert port.out_waiting == 0


def test_paced_reads_wait_in_wall_time(open_port):
    port = open_port("speed=1", timeout=0.2)
    sim = port.simulator
    wall = time.monotonic()
    assert port.read(10) == b"\x00"  # the device's first delimiter, then silence
    elapsed = time.monotonic() - wall
    assert elapsed >= 0.19  # a loaded machine may take longer, never less
    assert 150 <= sim.now_ms <= 1000 * elapsed + 10  # simulated time never ran ahead of the wall clock


def test_a_closed_port_refuses_io(open_port):
    port = open_port()
    port.close()
    with pytest.raises(serial.PortNotOpenError):
        port.read(1)
    with pytest.raises(serial.PortNotOpenError):
        port.write(b"x")
