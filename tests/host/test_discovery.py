"""Boards are found by USB identity from the OS's port list; ports are never opened."""

from types import SimpleNamespace

import pytest

from host.discovery import MICROPYTHON_PID, RASPBERRY_PI_VID, find_boards, resolve_port
from host.errors import TonusError


def port(device, vid=RASPBERRY_PI_VID, pid=MICROPYTHON_PID, serial="E66164084319392A"):
    return SimpleNamespace(
        device=device,
        vid=vid,
        pid=pid,
        serial_number=serial,
        description="Board in FS mode",
        manufacturer="MicroPython",
        product="Board in FS mode",
        location="1-1:1.0",
    )


def listing(*ports):
    return lambda: list(ports)


OTHERS = (
    port("/dev/ttyUSB0", vid=0x0403, pid=0x6001, serial="FTDI1"),  # another instrument: never ours
    port("/dev/ttyACM9", pid=0x000A, serial="PICOSDK"),  # a Pico running something else
    SimpleNamespace(
        device="/dev/ttyS0",
        vid=None,
        pid=None,
        serial_number=None,
        description="n/a",
        manufacturer=None,
        product=None,
        location=None,
    ),
)


@pytest.mark.req("LINK-CLIENT-2")
def test_only_raspberry_pi_micropython_ports_are_boards():
    boards = find_boards(listing(port("/dev/ttyACM1", serial="B"), *OTHERS, port("/dev/ttyACM0", serial="A")))
    assert [(b.device, b.serial_number) for b in boards] == [("/dev/ttyACM0", "A"), ("/dev/ttyACM1", "B")]
    assert boards[0].to_json()["manufacturer"] == "MicroPython"


@pytest.mark.req("LINK-CLIENT-2")
def test_an_explicit_port_is_used_as_given_without_looking():
    def never():
        raise AssertionError("must not list ports")

    assert resolve_port("socket://127.0.0.1:5", never) == "socket://127.0.0.1:5"
    assert resolve_port("/dev/ttyACM3", never) == "/dev/ttyACM3"


@pytest.mark.req("LINK-CLIENT-2")
def test_the_single_attached_board_is_picked():
    assert resolve_port(None, listing(*OTHERS, port("/dev/ttyACM4"))) == "/dev/ttyACM4"


@pytest.mark.req("LINK-CLIENT-2")
def test_several_boards_are_told_apart_by_serial_number():
    ports = listing(port("/dev/ttyACM0", serial="AAAA"), port("/dev/ttyACM1", serial="BBBB"))
    with pytest.raises(
        TonusError, match=r"several boards attached: /dev/ttyACM0 \(id:AAAA\), /dev/ttyACM1 \(id:BBBB\)"
    ):
        resolve_port(None, ports)
    assert resolve_port("id:bbbb", ports) == "/dev/ttyACM1"
    with pytest.raises(TonusError, match="no attached board has serial number CCCC"):
        resolve_port("id:CCCC", ports)


@pytest.mark.req("LINK-CLIENT-2")
def test_no_board_says_how_to_name_one():
    with pytest.raises(TonusError, match="no tonus board found: connect one, or pass --port"):
        resolve_port(None, listing(*OTHERS))
