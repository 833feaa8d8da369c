"""Find tonus boards by USB identity; never by writing to ports.

A port on a clinic PC may belong to another medical device, so boards are
recognised from what the operating system already knows: the Raspberry Pi
vendor id with MicroPython's product id. The USB serial number is the
board's flash unique id, which tells several boards apart.
"""

from dataclasses import asdict, dataclass

from host.errors import TonusError
from host.transport import PortError

RASPBERRY_PI_VID = 0x2E8A
MICROPYTHON_PID = 0x0005
ID_PREFIX = "id:"  # --port id:SERIAL picks a board by serial number, as mpremote does


@dataclass(frozen=True)
class Board:
    device: str  # what to pass to --port
    serial_number: str | None
    description: str
    manufacturer: str | None
    product: str | None
    location: str | None

    def to_json(self):
        return asdict(self)


def _is_board(p):
    return p.vid == RASPBERRY_PI_VID and p.pid == MICROPYTHON_PID


def find_boards(comports=None):
    """Attached boards, sorted by device name. `comports` is for tests."""
    if comports is None:
        from serial.tools.list_ports import comports
    return sorted(
        (
            Board(p.device, p.serial_number, p.description, p.manufacturer, p.product, p.location)
            for p in comports()
            if _is_board(p)
        ),
        key=lambda b: b.device,
    )


def resolve_port(port, comports=None):
    """The URL to open for a --port value.

    A URL or device path is used as given; `id:SERIAL` picks the board with
    that USB serial number; nothing picks the one attached board.
    """
    if port and not port.startswith(ID_PREFIX):
        return port
    boards = find_boards(comports)
    if port:
        wanted = port[len(ID_PREFIX) :].upper()
        for b in boards:
            if (b.serial_number or "").upper() == wanted:
                return b.device
        raise PortError(f"no attached board has serial number {wanted}; list them with 'tonus devices'")
    if not boards:
        raise PortError(
            "no tonus board found: connect one, or pass --port (a device path, "
            "socket://HOST:PORT for 'tonus sim', or sim:// for the in-process simulator)"
        )
    if len(boards) > 1:
        names = ", ".join(f"{b.device} (id:{b.serial_number})" for b in boards)
        raise TonusError(f"several boards attached: {names}; choose one with --port id:SERIAL")
    return boards[0].device
