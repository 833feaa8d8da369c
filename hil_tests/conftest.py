"""One suite, several targets.

    pytest hil_tests                                   # the in-process simulator (default)
    pytest hil_tests --target socket://127.0.0.1:PORT  # a `tonus sim` started apart
    pytest hil_tests --target /dev/ttyACM0             # a board
    pytest hil_tests --target emulated-pico            # MicroPython on an emulated RP2040 (needs
                                                       # TONUS_PICO_FIRMWARE, docs/emulated-pico.md)

A target is a URL plus what it can do. Tests declare what they need with
@pytest.mark.needs(...) and are skipped, with the reason, on targets that
lack it; differences between targets live here, never in a test.

Capabilities:
  rig        the bench can act on the board: press the e-stop and the
             patient's button, pull a lead, power-cycle, read the output stage
  fast_time  the device clock can run ahead of the wall clock, so minutes
             of device time (pause limits, check timeouts) cost seconds

Each test gets a fresh connection. The in-process simulator is a new board
for every test; a shared target (socket, board, the emulated Pico, which
boots once per run) is brought back to IDLE or DONE with no fault before
each test.

Declared properties of a target (never `if` branches in a test):
  tick_ms    how late a device-timed transition may come (one main-loop pass)
  slowdown   wall seconds per second of device time, at most: waits and link
             timeouts are stretched by it (the emulated Pico runs 5-20x slower
             than real time on a loaded machine)
  rig        what the bench can do; a rig method the target lacks skips the test
             that calls it, with the reason (tools/emulated_pico/rig.py LACKS)
"""

from pathlib import Path

import pytest

from firmware.hal import OUT_HOLD_MIN_MS
from hil_tests.watch import Watch
from host.client import ACTIVE_STATES, Client
from host.transport import open_port

DEFAULT_TARGET = "sim://?seed=1&patient=healthy&speed=0"
EMULATED = "emulated-pico"
_EMULATED_SLOWDOWN = 25.0  # ~7x measured on 2 loaded cores; room for CI's neighbours
_LINK_TIMEOUT_S = 2.0
_EMULATED_PROTOCOL = (
    Path(__file__).resolve().parent.parent / "examples" / "protocols" / "stimulation-trial-1min.toml"
)
CAPABILITIES = ("rig", "fast_time")
_SIM_TICK_MS = 5  # sim/runner.py TICK_MS: the firmware's loop period in the simulator
# a board's pass, its collection included, is at most what the output's hold bridges: a
# transition due just after a pass began is seen by the next (an emulated Pico met 34 ms)
_BOARD_LOOP_MS = OUT_HOLD_MIN_MS


def pytest_addoption(parser):
    g = parser.getgroup("tonus", "tonus hardware-in-the-loop targets")
    g.addoption(
        "--target",
        default=DEFAULT_TARGET,
        metavar="URL",
        help=(
            f"device to test: sim://..., socket://HOST:PORT, a serial device or {EMULATED} "
            "(default: %(default)s)"
        ),
    )
    g.addoption(
        "--rig",
        metavar="FILE",
        help="test-rig description for a board target (e-stop, button, lead-off, power); not implemented yet",
    )


def pytest_collection_modifyitems(items):
    # the interlock tests provision a shared target for stimulation (a device policy, an approved
    # protocol, which refuses demo sessions): everything else runs before them
    items.sort(key=lambda item: item.path.name == "test_interlocks.py")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "needs(*capabilities): run only on targets that have them ({})".format(", ".join(CAPABILITIES)),
    )


class Target:
    def __init__(self, url, rig_file, emulated=None):
        self.url = url
        self.in_process = url.lower().startswith("sim://")
        self.emulated = emulated  # the running EmulatedPico behind url, if that is the target
        if self.in_process:
            self.capabilities = frozenset(CAPABILITIES)
        elif emulated is not None:
            self.capabilities = frozenset(("rig",))
        else:
            self.capabilities = frozenset()
        self._rig_file = rig_file
        # how late a device-timed transition may come: one pass of its main loop
        self.tick_ms = (
            _SIM_TICK_MS
            if self.in_process or (url.lower().startswith("socket://") and emulated is None)
            else _BOARD_LOOP_MS
        )
        self.slowdown = _EMULATED_SLOWDOWN if emulated is not None else 1.0
        self.client = None
        self.rig = None
        self.recorded = False  # its facts are in the traceability record
        self._stim_provisioned = False

    def missing(self, needed):
        """Why a test needing `needed` cannot run here, or None."""
        lacking = [c for c in needed if c not in self.capabilities]
        if not lacking:
            return None
        if "rig" in lacking and self._rig_file and not self.in_process:
            return "--rig for board targets is not implemented yet"
        return "target {} lacks {}".format(self.url, ", ".join(lacking))

    def connect(self):
        timeout = _LINK_TIMEOUT_S * self.slowdown
        self.client = Client(open_port(self.url, timeout=timeout), timeout=timeout)
        if self.in_process:
            self.rig = self.client.port.serial.simulator.rig
        elif self.emulated is not None:
            from tools.emulated_pico.rig import EmulatedRig

            self.rig = EmulatedRig(self.emulated)
        return self.client

    def provision_stimulation(self, protocol, policy_ua):
        """The emulated board as a clinic leaves it for stimulation (once a run): a device policy
        and the run's clinician key written in its maintenance boot, the protocol approved with
        that key; a client on it. Until then the bench is unprovisioned, as the link and session
        tests need it (hil_tests/test_interlocks.py runs last)."""
        if not self._stim_provisioned:
            self._stim_provisioned = True
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            from tools.emulated_pico.board import approve, provisioning_files

            key = Ed25519PrivateKey.generate()
            self.release()  # mpremote takes the port
            self.emulated.write_files(provisioning_files(key.public_key(), policy_ua))
            approve(self.connect(), protocol, key, self.slowdown)
        return self.client

    def release(self):
        """Close the connection, e.g. so that a CLI run can open the port."""
        if self.client is not None:
            self.client.close()
            self.client = None


def _bring_to_rest(c):
    """A shared target may come with a session or a latched fault from before."""
    info = c.info().unwrap()
    if info.state in ACTIVE_STATES:
        c.session_stop().unwrap()
        info = c.info().unwrap()
    if info.state == "FAULT":
        r = c.fault_clear()
        if not r.ok:
            pytest.fail(f"the target is in FAULT and will not clear it ({r.name}): release its e-stop")
    while c.poll(0) is not None:
        pass


@pytest.fixture(scope="session")
def target_spec(request):
    url = request.config.getoption("--target")
    if url != EMULATED:
        yield Target(url, request.config.getoption("--rig"))
        return
    from tools.emulated_pico import image
    from tools.emulated_pico.board import EmulatedPico

    # the bench comes unprovisioned, as the link and session tests need it; the interlock tests,
    # run last, provision it for stimulation (Target.provision_stimulation)
    try:
        pico = EmulatedPico.start()
    except image.Unavailable as e:
        pytest.skip(f"the emulated Pico cannot run: {e}")
    with pico:
        if pico.wait_event("usb", 120) is None:
            pytest.fail("the emulated Pico did not enumerate on USB")
        yield Target(pico.url, request.config.getoption("--rig"), emulated=pico)


def _record(config, target):
    """Tell the traceability record what the target is: kind, serial, firmware, image hash (once)."""
    from host.trace import provenance

    trace = config.pluginmanager.get_plugin("tonus-trace")
    if trace is None or target.recorded:
        return
    c = target.client
    trace.record_target(
        provenance.target_facts(target.url, c.hello().unwrap(), c.info().unwrap(), config.rootpath)
    )
    target.recorded = True


@pytest.fixture
def target(target_spec, request, monkeypatch):
    needed = [c for mark in request.node.iter_markers("needs") for c in mark.args]
    why = target_spec.missing(needed)
    if why:
        pytest.skip(why)
    monkeypatch.setattr(Watch, "slowdown", target_spec.slowdown)
    target_spec.connect()
    try:
        _record(request.config, target_spec)
        if not target_spec.in_process:
            _bring_to_rest(target_spec.client)
        yield target_spec
    finally:
        if target_spec.emulated is not None and target_spec.rig is not None:
            target_spec.rig.restore()  # a failed test must not leave the next its e-stop pressed
        target_spec.release()
        target_spec.rig = None


@pytest.fixture
def client(target):
    return target.client
