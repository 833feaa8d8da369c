"""The byte pipe to a board: the only place a port is opened.

Every port is opened by URL through `serial.serial_for_url(url,
exclusive=True)`, so a device path, `socket://host:port` (the simulator over
TCP), `sim://` (the simulator in this process, handler in sim/urlhandler),
`spy://` and `rfc2217://` all work the same way. Nothing here knows about
frames or messages; host/client.py does.
"""

import errno
import importlib
import select
import time
from types import ModuleType
from typing import Protocol, TextIO

from host.errors import TonusError, UsageError

_SIM_HANDLERS = "sim.urlhandler"
_READ_CHUNK = 65536


class LinkError(TonusError):
    """The link failed or the device sent something invalid.

    `data` holds the offending bytes (a frame, a payload, or what arrived
    before a timeout) and is shown as a hexdump after the message.
    """

    def __init__(self, message: str, data: bytes | bytearray | memoryview = b"") -> None:
        self.data = bytes(data)
        if self.data:
            message = f"{message}\n{hexdump(self.data)}"
        super().__init__(message)


class PortError(LinkError):
    """The port could not be opened, or no board was found; the message says what to try next."""


def hexdump(data: bytes, limit: int = 256) -> str:
    """Offset, hex and ASCII columns, 16 bytes a row; long data is cut at `limit`."""
    rows = []
    shown = data[:limit]
    for off in range(0, len(shown), 16):
        chunk = shown[off : off + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        rows.append(f"  {off:04x}  {hexes!s:<47}  |{text}|")
    if len(data) > limit:
        rows.append(f"  ... {len(data) - limit:d} more bytes")
    return "\n".join(rows)


def _register_sim_handler(serial: ModuleType) -> None:
    # serial_for_url looks URL schemes up in these packages, in order
    if _SIM_HANDLERS not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(_SIM_HANDLERS)


def _open_hint(url: str, exc: Exception) -> str:
    err = getattr(exc, "errno", None)
    text = str(exc)
    if url.lower().startswith("sim://"):
        # the simulator's own files (flash_dir, scenario), not a cable
        return f"the simulator cannot start from {url}: {text}; check its flash_dir and scenario"
    if err == errno.ENOENT or "No such file" in text or "FileNotFoundError" in text:
        return f"{url} does not exist: check the USB cable, or list boards with 'tonus devices'"
    if err == errno.EACCES or "Permission denied" in text:
        return f"no permission to open {url}: add your user to the 'dialout' group (Linux) and log in again"
    if err == errno.EBUSY or "exclusively lock" in text or "busy" in text.lower():
        return f"{url} is in use by another program (mpremote, a serial monitor?): close it and retry"
    if err == errno.ECONNREFUSED or "refused" in text.lower():
        return f"nothing listens at {url}: start the simulator with 'tonus sim --listen HOST:PORT'"
    return f"cannot open {url} ({text}): check the --port value and that the board is attached"


def _check_socket_url(url: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = bool(parts.hostname) and parts.port is not None and 0 < parts.port < 65536
    except ValueError:
        ok = False
    if not ok:
        raise UsageError(
            f"--port {url} needs a host and a port: socket://HOST:PORT, e.g. socket://127.0.0.1:5555 "
            "as 'tonus sim --listen' prints it"
        )


def open_port(url: str, *, timeout: float = 1.0, wire_log: TextIO | None = None) -> "Port":
    """Open `url` exclusively and return a Port.

    timeout: seconds a write may block before the link counts as broken.
    wire_log: a text stream that receives every byte in and out as hex lines.
    """
    import serial

    _register_sim_handler(serial)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sim":
        try:
            # serial_for_url hides import errors behind "protocol not known"
            importlib.import_module(_SIM_HANDLERS + ".protocol_sim")
        except ImportError as e:
            raise PortError(f"the in-process simulator is not available here ({e})") from e
    if scheme == "socket":
        _check_socket_url(url)
    try:
        ser = serial.serial_for_url(url, exclusive=True, timeout=0, write_timeout=timeout)
    except ValueError as e:
        raise UsageError(f"--port {url} is not a port URL tonus knows ({e})") from e
    except (serial.SerialException, OSError) as e:
        raise PortError(_open_hint(url, e)) from e
    return Port(ser, url, wire_log)


class SerialPort(Protocol):
    """What Port uses of a pyserial port: serial_for_url's, or the simulator's handler (which has
    no fileno(): Port reads it through pyserial's own timeout instead of select())."""

    timeout: float | None

    @property
    def in_waiting(self) -> int: ...

    def fileno(self) -> int: ...
    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes, /) -> int | None: ...
    def close(self) -> None: ...


class Port:
    """Reads that wait at most a given time, writes that send everything.

    Ports with a file descriptor (serial devices, sockets) are waited on with
    select() and then drained in one non-blocking read; others (the
    in-process simulator, which advances its clock while the host waits)
    are read with pyserial's own timeout.
    """

    def __init__(self, ser: SerialPort, url: str = "", wire_log: TextIO | None = None) -> None:
        self.serial = ser  # the pyserial object; the simulator hangs its rig off it
        self.url = url or str(getattr(ser, "port", ""))
        self._log = wire_log
        self._t0 = time.monotonic()
        self._started = False
        self._timeout = ser.timeout
        self._fd: int | None
        try:
            self._fd = ser.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        if self._fd is not None and self._timeout != 0:
            self._set_timeout(0)

    def _set_timeout(self, seconds: float) -> None:
        # pyserial reconfigures the port on every change; change only when needed
        self.serial.timeout = seconds
        self._timeout = seconds

    def read(self, timeout: float) -> bytes:
        """Bytes that arrived within `timeout` seconds; b"" if none did."""
        import serial

        try:
            if self._fd is not None:
                ready, _, _ = select.select([self._fd], [], [], timeout)
                data = self.serial.read(_READ_CHUNK) if ready else b""
            else:
                if self._timeout != timeout:
                    self._set_timeout(timeout)
                data = self.serial.read(1)
                if data:
                    pending = self.serial.in_waiting
                    if pending:
                        data += self.serial.read(pending)
        except (serial.SerialException, OSError) as e:
            raise LinkError(
                f"lost the connection to {self.url} ({e}): check the cable or the simulator"
            ) from e
        if data and self._log is not None:
            self._trace(self._log, "<", data)
        return data

    def write(self, data: bytes) -> None:
        """Send all of `data`. The first write leads with one 0x00 so that
        whatever the device saw before (noise, a REPL line) ends as a dropped
        frame rather than corrupting the first request."""
        import serial

        if not self._started:
            data = b"\x00" + bytes(data)
            self._started = True
        try:
            self.serial.write(data)
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"cannot write to {self.url} ({e}): check the cable or the simulator") from e
        if self._log is not None:
            self._trace(self._log, ">", data)

    def _trace(self, log: TextIO, direction: str, data: bytes) -> None:
        log.write("{:10.6f} {} {}\n".format(time.monotonic() - self._t0, direction, bytes(data).hex(" ")))

    def close(self) -> None:
        self.serial.close()
