"""pyserial handler for sim://: a simulator in this process behind a serial port.

    serial.protocol_handler_packages.append("sim.urlhandler")
    port = serial.serial_for_url("sim://?seed=1&patient=healthy&speed=0", exclusive=True)
    port.simulator.rig.press_estop()

Parameters: seed (int >= 0), patient (a profile in sim/patient.py), speed
(0 = unpaced, 1 = real time, N = N times faster), scenario (path of a TOML
scenario), flash_dir (directory that keeps the board's storage).

There is no thread: the simulator advances inside read() and the other port
calls, so a host client is in lockstep with it. Unpaced (speed 0), a read
runs the simulator until the bytes it wants are there, and its timeout is
simulated time: a device that does not answer costs the client simulated
seconds, not wall-clock ones. A non-blocking read (timeout 0) that finds
nothing lets one tick pass, so a polling loop makes progress. Paced, a read
waits in wall time like on a real port, and simulated time waits for the
host: it moves only while the host is inside a port call, and a read runs
the board only until it has output (docs/simulator.md). A read without a
timeout returns after READ_CAP_MS of simulated time at the latest, so it
cannot hang. The device's receive ring holds RX_RING bytes (sim/board.py):
a write waits until the firmware has read enough, and times out after the
port's write_timeout (simulated when unpaced) like a real port.
"""

import math
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from serial.serialutil import PortNotOpenError, SerialBase, SerialException, SerialTimeoutException

from sim.patient import PROFILES

if TYPE_CHECKING:
    from sim.runner import Simulator

READ_CAP_MS = 1000


def _seed(v):
    n = int(v)
    if n < 0:
        raise ValueError("must be >= 0")
    return n


def _patient(v):
    if v not in PROFILES:
        raise ValueError("must be one of " + ", ".join(sorted(PROFILES)))
    return v


def _speed(v):
    x = float(v)
    if not math.isfinite(x) or x < 0:
        raise ValueError("must be a finite number >= 0")
    return x


def _path(v):
    if not v:
        raise ValueError("must be a path")
    return v


_PARAMS = {"seed": _seed, "patient": _patient, "speed": _speed, "scenario": _path, "flash_dir": _path}


def parse_url(url):
    """Simulator keyword arguments from a sim:// URL; SerialException says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sim" or parts.netloc or parts.path not in ("", "/") or parts.fragment:
        raise SerialException(
            f"{url!r}: expected sim://?seed=N&patient=NAME&speed=X&scenario=PATH&flash_dir=DIR"
        )
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as e:
        raise SerialException(f"{url!r}: malformed query: {e}") from None
    kwargs = {}
    for name, values in query.items():
        if name not in _PARAMS:
            raise SerialException(f"{url!r}: unknown parameter {name!r} (known: {', '.join(_PARAMS)})")
        if len(values) != 1:
            raise SerialException(f"{url!r}: parameter {name!r} given {len(values)} times")
        try:
            kwargs[name] = _PARAMS[name](values[0])
        except ValueError as e:
            raise SerialException(f"{url!r}: bad {name}={values[0]!r}: {e}") from None
    return kwargs


class Serial(SerialBase):
    def __init__(self, *args, **kwargs):
        self.simulator: Simulator | None = None
        self._owned = True  # close() closes the simulator too
        self._lock = threading.Lock()  # a reader thread and a writer thread share one simulator
        self._away_since = None  # wall time the host last left a port call (paced only)
        super().__init__(*args, **kwargs)

    @classmethod
    def attached(cls, simulator):
        """An open port on a simulator that someone else runs and closes (tonus sim's server)."""
        port = cls(timeout=0)
        port.simulator = simulator
        port._owned = False
        port.is_open = True
        return port

    def open(self):
        if self.is_open:
            raise SerialException("Port is already open.")
        if self.port is None:
            raise SerialException("Port must be configured before it can be used.")
        kwargs = parse_url(self.portstr)
        # imported here: pyserial reports an ImportError of the handler module
        # as "protocol not known", which would hide a broken firmware import
        from sim.runner import Simulator

        try:
            self.simulator = Simulator(**kwargs)
        except (ValueError, OSError) as e:
            raise SerialException(f"{self.portstr!r}: {e}") from e
        self.is_open = True

    def close(self):
        if self.is_open:
            self.is_open = False
            if self._owned and self.simulator is not None:
                self.simulator.close()
        super().close()

    def _reconfigure_port(self):
        pass  # baud rate, parity and the like mean nothing on an in-process link

    def _check_open(self) -> "Simulator":
        """The simulator behind the open port."""
        if not self.is_open or self.simulator is None:
            raise PortNotOpenError()
        return self.simulator

    # -- data ---------------------------------------------------------------------

    def read(self, size=1):
        sim = self._check_open()
        if size <= 0:
            return b""
        if sim.clock.speed:
            return self._read_paced(size)
        with self._lock:
            got = bytearray(sim.host_read(size))
            if self.timeout == 0:
                if not got and sim.advance_until_output(sim.tick_ms):
                    got += sim.host_read(size)
                return bytes(got)
            budget_ms = READ_CAP_MS if self.timeout is None else self.timeout * 1000
            end_us = sim.clock.us + round(budget_ms * 1000)
            while len(got) < size and sim.clock.us < end_us:
                sim.advance_until_output((end_us - sim.clock.us) / 1000)
                got += sim.host_read(size - len(got))
        return bytes(got)

    def _read_paced(self, size):
        sim = self._check_open()
        timeout = self.timeout
        if timeout is None:
            timeout = READ_CAP_MS / 1000 / sim.clock.speed
        deadline = time.monotonic() + timeout
        got = bytearray()
        self._host_returns()
        while True:
            with self._lock:
                self._catch_up()
                got += sim.host_read(size - len(got))
                delay = sim.clock.wall_delay(sim.next_tick_us)
            left = deadline - time.monotonic()
            if len(got) >= size or left <= 0:
                self._host_leaves()
                return bytes(got)
            time.sleep(min(delay, left))  # the lock is free meanwhile: a writer can send

    # Paced, simulated time moves only while the host is inside a port call:
    # wall time the host spends elsewhere (its own work, a CPU it did not get)
    # is not caught up, and a call runs the board only until it has output,
    # so the host has its turn (a heartbeat, a reply) before the board goes on.

    def _host_returns(self):
        clock = self._check_open().clock
        if clock.speed and self._away_since is not None:
            clock.anchor()  # what passed while the host was away is not owed
            self._away_since = None

    def _host_leaves(self):
        self._away_since = time.monotonic()

    def _catch_up(self):
        sim = self._check_open()
        due_ms = (sim.clock.due_us() - sim.clock.us) / 1000
        if due_ms > 0:
            sim.advance_until_output(due_ms)

    def write(self, data):
        sim = self._check_open()
        data = bytes(memoryview(data))  # any bytes-like object; a str is a TypeError, as in pyserial
        sent = 0
        if sim.clock.speed:
            self._host_returns()
            budget_ms = math.inf if self.write_timeout is None else self.write_timeout * 1000
            deadline = time.monotonic() + budget_ms / 1000
        else:
            budget_ms = READ_CAP_MS if self.write_timeout is None else self.write_timeout * 1000
            end_us = sim.clock.us + round(budget_ms * 1000)
        while True:
            with self._lock:
                if sim.clock.speed:
                    sim.catch_up()
                sent += sim.host_write(data[sent:])
                if sent == len(data):
                    break
                if not sim.clock.speed:
                    # the receive ring is full: the device must read before the host can go on
                    if sim.clock.us >= end_us:
                        raise SerialTimeoutException(
                            f"the device took no more bytes for {budget_ms / 1000:g} s"
                        )
                    sim.run_for(sim.tick_ms)
                    continue
                delay = sim.clock.wall_delay(sim.next_tick_us)
            if time.monotonic() >= deadline:
                self._host_leaves()
                raise SerialTimeoutException(f"the device took no more bytes for {budget_ms / 1000:g} s")
            time.sleep(delay)
        if sim.clock.speed:
            self._host_leaves()
        return len(data)

    @property
    def in_waiting(self):
        sim = self._check_open()
        with self._lock:
            return sim.host_pending()

    @property
    def out_waiting(self):
        self._check_open()
        return 0  # written bytes reach the device's receive queue at once

    def reset_input_buffer(self):
        sim = self._check_open()
        with self._lock:
            sim.host_read(-1)

    def reset_output_buffer(self):
        self._check_open()

    # -- modem lines: a USB CDC link has none that matter ---------------------------

    def _update_break_state(self):
        pass

    def _update_rts_state(self):
        pass

    def _update_dtr_state(self):
        pass

    @property
    def cts(self):
        self._check_open()
        return True

    @property
    def dsr(self):
        self._check_open()
        return True

    @property
    def ri(self):
        self._check_open()
        return False

    @property
    def cd(self):
        self._check_open()
        return True
