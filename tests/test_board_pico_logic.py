"""The Pico board module's logic on CPython, with machine/rp2 replaced by fakes.

The fakes record what the board asks of the hardware; the fake rp2.asm_pio
assembles the real PIO programs into instruction lists, and a small
cycle-counting PIO interpreter runs them, so the pulse timing words and the
AFE frame capture are checked against the programs themselves.
"""

import importlib
import json
import sys
import types
from collections import deque
from pathlib import Path

import pytest

from firmware import ads1292 as ads
from firmware import hal as H

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "firmware" / "profiles" / "pico.json"

# -- a PIO assembler (the asm_pio DSL) -----------------------------------------

_NAMES = ("pins", "x", "y", "null", "isr", "osr", "pin", "irq_src", "x_dec", "block", "noblock")


class Instr:
    def __init__(self, op, *args):
        self.op = op
        self.args = args
        self.sideset = 0
        self.dly = 0

    def side(self, v):
        self.sideset = v
        return self

    def delay(self, d):
        self.dly = d
        return self


class Program:
    def __init__(self, opts):
        self.opts = opts
        self.code = []
        self.labels = {}
        self.wrap_target = 0
        self.wrap = None


def asm_pio(**opts):
    def assemble(fn):
        prog = Program(opts)

        def emit(op):
            def make(*args):
                ins = Instr(op, *args)
                prog.code.append(ins)
                return ins

            return make

        def irq(*args):  # the wait source and the irq instruction share a name
            return emit("irq")(*args)

        names = {n: n for n in _NAMES}
        names.update(
            wrap_target=lambda: setattr(prog, "wrap_target", len(prog.code)),
            wrap=lambda: setattr(prog, "wrap", len(prog.code) - 1),
            label=lambda name: prog.labels.__setitem__(name, len(prog.code)),
            irq=irq,
        )
        for op in ("wait", "set", "nop", "jmp", "in_", "push", "pull", "mov", "out"):
            names[op] = emit(op)
        # like MicroPython: the body sees the assembler's names and nothing of its module
        g = fn.__globals__
        saved = dict(g)
        g.clear()
        g.update(names)
        try:
            fn()
        finally:
            g.clear()
            g.update(saved)
        if prog.wrap is None:
            prog.wrap = len(prog.code) - 1
        assert len(prog.code) <= 32, "a PIO holds 32 instructions"
        return prog

    return assemble


class Pio:
    """Cycle-counting interpreter for the instructions our programs use."""

    def __init__(self, prog, tx=(), pin_in=None):
        self.p = prog
        self.pc = 0
        self.x = self.y = self.osr = self.isr = 0
        self.tx = deque(tx)
        self.rx = []
        self.side = 0
        self.setpins = 0
        self.jmp_pin = 0
        self.irq = 0
        self.t = 0
        self.pin_in = pin_in or (lambda t, i: 0)  # (cycle, index from in_base) -> 0/1
        self.on_side = None  # called with (cycle, side value) when the side-set changes

    def _src(self, name):
        return {"x": self.x, "y": self.y, "osr": self.osr, "isr": self.isr, "null": 0}[name]

    def step(self):
        ins = self.p.code[self.pc]
        if ins.sideset != self.side:
            self.side = ins.sideset
            if self.on_side:
                self.on_side(self.t, self.side)
        nxt = self.pc + 1 if self.pc != self.p.wrap else self.p.wrap_target
        op, a = ins.op, ins.args
        if op == "wait":
            pol, src, idx = a
            level = (self.irq >> idx) & 1 if callable(src) else self.pin_in(self.t, idx)  # irq: the function
            if level != pol:
                self.t += 1
                return False  # stalled
        elif op == "pull":
            if self.tx:
                self.osr = self.tx.popleft()
            elif a and a[0] == "noblock":
                self.osr = self.x
            else:
                self.t += 1
                return False
        elif op == "set":
            if a[0] == "pins":
                self.setpins = a[1]
            else:
                setattr(self, a[0], a[1])
        elif op == "jmp":
            if len(a) == 1:
                nxt = self.p.labels[a[0]]
            elif a[0] == "pin":
                if self.jmp_pin:
                    nxt = self.p.labels[a[1]]
            elif a[0] == "x_dec":
                if self.x:
                    nxt = self.p.labels[a[1]]
                self.x = (self.x - 1) & 0xFFFFFFFF
        elif op == "mov":
            setattr(self, a[0], self._src(a[1]))
        elif op == "out":
            n = a[1]
            setattr(self, a[0], self.osr & ((1 << n) - 1))
            self.osr >>= n
        elif op == "in_":
            n = a[1]
            self.isr = ((self.isr << n) | self.pin_in(self.t, 0)) & 0xFFFFFFFF
        elif op == "push":
            self.rx.append(self.isr)
            self.isr = 0
        elif op != "nop":
            raise AssertionError("instruction not modelled: " + op)
        self.pc = nxt
        self.t += 1 + ins.dly
        return True

    def run_until(self, t_end):
        while self.t < t_end:
            self.step()


# -- fake machine / rp2 / micropython / uctypes / select -------------------------


class FakePin:
    OUT = 1
    IN = 0
    PULL_UP = 1
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, board, pin_id, mode=None, pull=None, value=None):
        self.id = pin_id
        self.level = 0 if value is None else value
        self.toggles = 0
        self.pull = pull
        board.pins[pin_id] = self

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = 1 if v else 0
        return None

    __call__ = value

    def toggle(self):
        self.level ^= 1
        self.toggles += 1

    def irq(self, trigger=None, handler=None, hard=False):
        self.handler = handler


class FakeChip:
    """An ADS1292R on SPI0: register file, ID, WREG/RREG/command parsing."""

    def __init__(self):
        self.regs = bytearray(12)
        self.regs[ads.ID] = 0x73
        self.cmds = []
        self._pending = []

    def write(self, buf):
        for b in bytes(buf):
            self._pending.append(b)
            self._parse()

    def _parse(self):
        p = self._pending
        op = p[0]
        if op & 0xE0 == ads.WREG:
            if len(p) >= 2 and len(p) == 2 + p[1] + 1:
                a = op & 0x1F
                self.regs[a : a + p[1] + 1] = bytes(p[2:])
                self.cmds.append(("WREG", a, bytes(p[2:])))
                p.clear()
        elif op & 0xE0 == ads.RREG:
            if len(p) == 2:
                self._read = (op & 0x1F, p[1] + 1)
                p.clear()
        else:
            self.cmds.append(op)
            p.clear()

    def readinto(self, buf, write=0):
        a, n = self._read
        buf[:] = self.regs[a : a + n]


class FakeSpi:
    def __init__(self, board, bus, **kw):
        self.bus = bus
        self.kw = kw
        self.writes = []
        board.spis[bus] = self
        self.chip = board.chip if bus == 0 else None

    def write(self, buf):
        self.writes.append(bytes(buf))
        if self.chip:
            self.chip.write(buf)

    def readinto(self, buf, write=0):
        self.chip.readinto(buf, write)


class FakeSm:
    def __init__(self, board, sm_id, prog=None, **kw):
        self.id = sm_id
        self.prog = prog
        self.kw = kw
        self.running = False
        self.execs = []
        self.restarts = 0
        self.rx = deque()
        board.sms[sm_id] = self

    def active(self, v=None):
        if v is None:
            return self.running
        self.running = bool(v)
        return self.running

    def exec(self, code):
        self.execs.append(code)

    def restart(self):
        self.restarts += 1

    def rx_fifo(self):
        return len(self.rx)

    def get(self):
        return self.rx.popleft()


class FakeDma:
    def __init__(self, board):
        self.count = 0
        self.running = False
        self.configs = []
        board.dmas.append(self)

    def pack_ctrl(self, **kw):
        return dict(kw)

    def config(self, read=None, write=None, count=None, ctrl=None, trigger=False):
        self.configs.append({"read": read, "write": write, "count": count, "ctrl": ctrl})
        self.count = count
        self.running = trigger

    def active(self, v=None):
        if v is None:
            return self.running
        self.running = bool(v)
        return self.running


class Board:
    """The fake hardware world; its modules go into sys.modules."""

    def __init__(self):
        self.pins = {}
        self.spis = {}
        self.sms = {}
        self.dmas = []
        self.chip = FakeChip()
        self.mem = {}
        self.adc = {26: 0, 27: 0, 28: 0}
        self.addr = {}  # id(obj) -> fake address
        self.next_addr = 0x20001010  # 16-byte aligned like GC blocks, not 8 KiB aligned
        self.encoded = {}
        self.us = 0
        board = self

        class Mem(dict):
            def __missing__(self, k):
                return 0

        m = types.ModuleType("machine")
        m.Pin = lambda *a, **k: FakePin(board, *a, **k)
        for n in ("OUT", "IN", "PULL_UP", "IRQ_FALLING", "IRQ_RISING"):
            setattr(m.Pin, n, getattr(FakePin, n))
        m.SPI = lambda bus, **kw: FakeSpi(board, bus, **kw)

        class Adc:
            def __init__(self, pin):
                self.pin = pin.id

            def read_u16(self):
                return board.adc[self.pin]

        m.ADC = Adc
        m.mem32 = self.mem = Mem()
        m.unique_id = lambda: b"\xe6\x61\x38\x52\x83\x1f\x2a\x2c"
        m.reset_cause = lambda: 1
        m.WDT_RESET = 3
        m.PWRON_RESET = 1
        m.disable_irq = lambda: 0
        m.enable_irq = lambda s: None
        m.idle = lambda: None

        class Pwm:
            def __init__(self, pin):
                pass

            def duty_u16(self, v):
                pass

            def freq(self, v):
                pass

        class Timer:
            PERIODIC = 1

            def __init__(self, i):
                pass

            def init(self, **kw):
                pass

            def deinit(self):
                pass

        m.PWM = Pwm
        m.Timer = Timer
        m.WDT = lambda timeout: types.SimpleNamespace(feed=lambda: None)
        self.machine = m

        r = types.ModuleType("rp2")
        r.asm_pio = asm_pio

        def encode(text, sideset_count):
            code = 0x10000 + len(board.encoded)
            board.encoded[code] = text
            return code

        r.asm_pio_encode = encode
        r.PIO = types.SimpleNamespace(OUT_LOW=2, OUT_HIGH=3, IN_LOW=0, SHIFT_LEFT=0, SHIFT_RIGHT=1)
        r.StateMachine = lambda i, prog=None, **kw: FakeSm(board, i, prog, **kw)
        r.DMA = lambda: FakeDma(board)
        self.rp2 = r

        mp = types.ModuleType("micropython")
        mp.kbd_intr = lambda c: None
        mp.const = lambda v: v
        self.micropython = mp

        u = types.ModuleType("uctypes")

        def addressof(obj):
            if id(obj) not in board.addr:
                board.addr[id(obj)] = board.next_addr
                board.next_addr += 0x10000 + 0x10  # next buffer is 16-byte aligned
            return board.addr[id(obj)]

        u.addressof = addressof
        self.uctypes = u

        sel = types.ModuleType("select")
        sel.POLLIN = 1
        sel.POLLOUT = 4
        sel.poll = lambda: types.SimpleNamespace(register=lambda *a: None, poll=lambda t: [])
        self.select = sel

    def text(self, code):
        return self.encoded.get(code)


@pytest.fixture
def board(monkeypatch, tmp_path):
    b = Board()
    for name in ("machine", "rp2", "micropython", "uctypes", "select"):
        monkeypatch.setitem(sys.modules, name, getattr(b, name))
    stdio = types.SimpleNamespace(buffer=None)
    monkeypatch.setattr(sys, "stdin", stdio)
    monkeypatch.setattr(sys, "stdout", stdio)
    mods = ("pico_pio", "board_profile", "pico_capture", "pico_output", "board_pico")
    saved = {"firmware." + n: sys.modules.pop("firmware." + n, None) for n in mods}
    try:
        b.pio = importlib.import_module("firmware.pico_pio")
        b.prof = importlib.import_module("firmware.board_profile")
        b.cap = importlib.import_module("firmware.pico_capture")
        b.outs = importlib.import_module("firmware.pico_output")
        b.bp = importlib.import_module("firmware.board_pico")
        b.bp.DATA_DIR = str(tmp_path / "data")
        b.prof.PROFILE_PATH = str(PROFILE)
        # one clock for the HAL and both stages, so a test can turn it
        b.time = types.SimpleNamespace(
            ticks_ms=lambda: 0,
            ticks_us=lambda: b.us,
            ticks_diff=lambda a, c: a - c,
            sleep_us=lambda n: None,
            sleep_ms=lambda n: None,
        )
        b.bp.time = b.cap.time = b.outs.time = b.time
        yield b
    finally:
        for n, mod in saved.items():
            sys.modules.pop(n, None)
            if mod is not None:
                sys.modules[n] = mod


def _hal(board, profile=None, tmp_path=None):
    if profile is not None:
        path = tmp_path / "pico.json"
        path.write_text(profile if isinstance(profile, str) else json.dumps(profile))
        board.prof.PROFILE_PATH = str(path)
    return board.bp.PicoHal()


def _produce(board, hal, codes, loff=0):
    """What the capture PIO + DMA do: one word per sample into the ring, the DMA count going down."""
    dma = hal._capture._dma
    for c in codes:
        done = board.cap.ARM - dma.count
        hal._capture._ring[hal._capture._ring_base + ((hal._capture._base + done) & board.cap._RING_MASK)] = (
            loff << 24
        ) | (c & 0xFFFFFF)
        dma.count -= 1


# -- front end ----------------------------------------------------------------------


@pytest.mark.req("HW-AFE-1")
def test_front_end_is_configured_verified_and_streaming(board):
    hal = _hal(board)
    assert hal.profile_ok and hal.afe_ok and hal.emg_rate_hz == 2000
    chip = board.chip
    want = ads.registers(2000, 6, 2420000, 22, 950)
    assert chip.cmds[0] == ads.SDATAC
    assert ("WREG", ads.CONFIG1, want) in chip.cmds
    assert chip.cmds[-2:] == [ads.RDATAC, ads.START]
    assert board.spis[0].kw["phase"] == 1  # SPI mode 1
    sm = board.sms[0]
    assert sm.running and sm.prog is board.pio.afe_capture
    assert sm.kw["in_base"].id == hal_pin(board, "afe_dout") and sm.kw["sideset_base"].id == hal_pin(
        board, "afe_sclk"
    )
    dma = hal._capture._dma
    cfg = dma.configs[-1]
    assert cfg["ctrl"]["ring_sel"] is True and cfg["ctrl"]["ring_size"] == 13 and cfg["ctrl"]["treq_sel"] == 4
    assert cfg["write"] % 8192 == 0  # the ring is naturally aligned for the hardware wrap
    assert cfg["write"] == board.addr[id(hal._capture._ring)] + 4 * hal._capture._ring_base


def hal_pin(board, name):
    return board.prof.PINS[name]


@pytest.mark.req("HW-AFE-1")
def test_ring_drains_in_order_with_absolute_indices(board):
    hal = _hal(board)
    cal = hal._capture._cal
    buf = [0] * 50
    assert hal.emg_index() == 0 and hal.emg_read(buf) == 0
    _produce(board, hal, range(-30, 90))
    assert hal.emg_read(buf) == 50 and hal.emg_index() == 50
    one = [0]
    ads.convert([(-30 + 7) & 0xFFFFFF], 0, 0, 0, 1, one, 0, cal)
    assert buf[7] == one[0]
    assert hal.emg_read(buf) == 50 and hal.emg_read(buf) == 20 and hal.emg_index() == 120
    assert hal.emg_status() == 0


@pytest.mark.req("HW-AFE-1")
def test_ring_wraps_and_a_lapped_reader_reports_overrun(board):
    cap = board.cap
    hal = _hal(board)
    buf = [0] * 4096
    _produce(board, hal, [5] * (cap.RING_SAMPLES - 100))
    assert hal.emg_read(buf) == cap.RING_SAMPLES - 100
    _produce(board, hal, [7] * 1000)  # wraps the ring, no lap
    assert hal.emg_read(buf) == 1000 and set(buf[:1000]) == {buf[0]}
    assert hal.emg_status() & H.EMG_OVERRUN == 0
    written = cap.RING_SAMPLES - 100 + 1000
    _produce(board, hal, [9] * (cap.RING_SAMPLES + 500))  # the reader was away too long
    written += cap.RING_SAMPLES + 500
    idx = hal.emg_index()
    assert idx == written - cap.RING_SAMPLES + cap._LAP_MARGIN
    assert hal.emg_status() & H.EMG_OVERRUN
    assert hal.emg_read(buf) == written - idx
    assert hal.emg_status() & H.EMG_OVERRUN == 0  # reported once


@pytest.mark.req("HW-AFE-2")
def test_lead_off_lasts_while_the_status_bits_say_so_and_saturation_is_flagged(board):
    hal = _hal(board)
    buf = [0] * 100
    _produce(board, hal, [0] * 10, loff=ads.IN1N_OFF)
    hal.emg_read(buf)
    assert hal.emg_status() & H.EMG_LEAD_OFF
    assert hal.emg_status() & H.EMG_LEAD_OFF  # no new samples: still off
    _produce(board, hal, [0] * 10, loff=ads.IN2P_OFF)  # channel 2 is not ours
    hal.emg_read(buf)
    assert hal.emg_status() == 0
    _produce(board, hal, [ads.SAT_CODE, 0, 0])
    hal.emg_read(buf)
    assert hal.emg_status() == H.EMG_SATURATED


@pytest.mark.req("HW-AFE-1")
def test_a_chip_that_does_not_answer_leaves_the_front_end_off(board):
    board.chip.regs[ads.ID] = 0xFF
    hal = _hal(board)
    assert hal.profile_ok and not hal.afe_ok
    assert hal.emg_read([0] * 10) == 0 and hal.emg_status() & H.EMG_LEAD_OFF
    assert 0 not in board.sms


# -- profile --------------------------------------------------------------------------


def _profile():
    return json.loads(PROFILE.read_text())


@pytest.mark.req("HW-PROFILE-1")
def test_profile_sets_the_ceilings(board):
    hal = _hal(board)
    p = _profile()
    assert hal.hw_max_ua == p["output"]["hw_max_ua"] == 100000
    assert hal.compliance_mv == p["output"]["compliance_mv"]
    assert hal.dummy_load_ohm == p["output"]["dummy_load_ohm"]
    assert hal.profile_error == ""


@pytest.mark.req("HW-PROFILE-1")
@pytest.mark.parametrize(
    "mutate, reason",
    [
        (None, "missing"),
        ("{not json", "invalid"),
        (lambda p: p["pins"].__setitem__("leg_a", 3), "invalid"),
        (lambda p: p["output"].__setitem__("hw_max_ua", 200000), "invalid"),
        (lambda p: p["output"].__setitem__("hw_max_ua", 100050), "invalid"),
        (lambda p: p["afe"].__setitem__("rate_hz", 500), "invalid"),
        (lambda p: p["afe"].__setitem__("gain", 5), "invalid"),
        (lambda p: p["afe"].pop("vref_uv"), "invalid"),
        (lambda p: p["output"].__setitem__("compliance_mv", "60 V"), "invalid"),
    ],
)
def test_a_missing_or_invalid_profile_fails_safe(board, tmp_path, mutate, reason):
    if mutate is None:
        board.prof.PROFILE_PATH = str(tmp_path / "absent.json")
        hal = board.bp.PicoHal()
    elif isinstance(mutate, str):
        hal = _hal(board, mutate, tmp_path)
    else:
        p = _profile()
        mutate(p)
        hal = _hal(board, p, tmp_path)
    assert not hal.profile_ok and hal.profile_error.startswith(reason)
    assert hal.hw_max_ua == 0 and hal.compliance_mv == 0
    assert board.sms == {} and board.chip.cmds == []  # no analog stage was touched
    assert board.pins[board.prof.PIN_OUT_ENABLE].level == 0
    with pytest.raises(RuntimeError):
        hal.stim_configure(50, 200, 50)
    with pytest.raises(ValueError, match="amplitude out of range"):
        hal.stim_amplitude(100)
    hal.stim_amplitude(0)
    hal.stim_stop()
    out = [9, 9, 9, 9]
    hal.stim_sense(out)
    assert out == [0, 0, 0, 0]
    assert hal.emg_status() & H.EMG_LEAD_OFF


@pytest.mark.req("HW-PROFILE-1")
def test_profile_pins_are_unique_and_leave_the_pio_groups_consecutive():
    pins = _profile()["pins"]
    assert len(set(pins.values())) == len(pins)
    assert pins["afe_drdy"] == pins["afe_dout"] + 1
    assert pins["leg_b"] == pins["leg_a"] + 1
    assert pins["th_i2"] == pins["th_i1"] + 1 and pins["th_v"] == pins["th_i1"] + 2
    assert {pins["sense_i1"], pins["sense_i2"], pins["sense_v"]} <= {26, 27, 28}  # ADC0..2


# -- output stage: dynamic enable -----------------------------------------------------


@pytest.mark.req("HW-ENABLE-1")
def test_keepalive_toggles_the_pump_only_while_enabled(board):
    po = board.outs
    hal = _hal(board)
    ka = board.pins[board.prof.PIN_OUT_KEEPALIVE]
    sense = board.pins[board.prof.PIN_OUT_SENSE]
    hal.out_keepalive()
    assert ka.toggles == 0 and not hal.out_enabled()
    hal.out_enable(True)
    assert ka.toggles == po._PUMP_EDGES  # pre-charged at once
    sense.level = 1  # the pump holds the stage's enable up
    assert hal.out_enabled()
    for _i in range(5):
        before = ka.level
        hal.out_keepalive()
        assert ka.level != before
    hal.out_enable(True)  # re-asserting pumps nothing
    assert ka.toggles == po._PUMP_EDGES + 5
    sense.level = 0  # keepalive lapsed: the pump dropped the enable
    assert not hal.out_enabled()
    hal.out_keepalive()
    assert ka.toggles == po._PUMP_EDGES + 5  # it stays down until an explicit enable


@pytest.mark.req("HW-ENABLE-1", "HW-PULSE-1")
def test_out_enable_off_stops_the_engine_and_grounds_both_legs(board):
    hal = _hal(board)
    board.pins[board.prof.PIN_OUT_SENSE].level = 1
    hal.out_enable(True)
    hal.stim_configure(35, 250, 50)
    hal.stim_start()
    sm = board.sms[4]
    assert sm.running and hal._output._feed.running
    sm.execs.clear()
    hal.out_enable(False)
    assert board.pins[board.prof.PIN_OUT_ENABLE].level == 0
    assert not sm.running and not hal._output._feed.running
    assert [board.text(c) for c in sm.execs] == ["set(pins, 0) .side(0)"]


@pytest.mark.req("SAF-ESTOP-1")
def test_the_estop_irq_writes_registers_at_addresses_made_once(board):
    # On an RP2040 a register address above 2**30 is a big int: a sum made in the
    # hard IRQ allocates, raises MemoryError and disables the e-stop IRQ for good
    # (seen on the emulated board). Every address the IRQ path uses must be one of
    # the module's own objects, not a new one.
    from firmware.safety import Safety

    po = board.outs
    hal = _hal(board)
    board.pins[board.prof.PIN_OUT_SENSE].level = 1
    safety = Safety(hal)
    hal.out_enable(True)
    hal.stim_configure(35, 250, 50)
    hal.stim_start()
    used = []
    mem = board.mem

    class Spy:
        def __setitem__(self, k, v):
            used.append(k)
            mem[k] = v

        def __getitem__(self, k):
            used.append(k)
            return mem[k]

    board.machine.mem32 = Spy()
    try:
        safety.estop_irq()
    finally:
        board.machine.mem32 = mem
    assert board.pins[board.prof.PIN_OUT_ENABLE].level == 0
    made_once = [v for v in vars(po).values() if isinstance(v, int)]
    assert used and all(any(k is v for v in made_once) for k in used), used


# -- pulse engine --------------------------------------------------------------------


@pytest.mark.req("HW-PULSE-1")
def test_pulse_engine_wiring(board):
    hal = _hal(board)
    sm = board.sms[4]
    assert sm.prog is board.pio.pulse_train and sm.kw["freq"] == board.pio.PULSE_FREQ
    assert sm.kw["sideset_base"].id == board.prof.PIN_LEG_A
    assert sm.kw["set_base"].id == board.prof.PIN_TH_I1
    assert sm.kw["jmp_pin"].id == board.prof.PIN_ESTOP
    assert board.mem[board.outs._PIO1 + board.outs._IRQ_FORCE] == 1 << board.pio.STOP_IRQ  # parked
    assert hal._output._desc is not None


@pytest.mark.req("HW-PULSE-1")
def test_start_loads_the_descriptor_and_stop_parks_between_pulses(board):
    po, pio = board.outs, board.pio
    hal = _hal(board)
    with pytest.raises(RuntimeError):
        hal.stim_start()  # not configured
    hal.stim_configure(100, 50, 0)
    assert list(hal._output._desc) == list(pio.pulse_words(100, 50, 0))
    sm = board.sms[4]
    sm.rx.extend([0, 0])  # stale pulse marks of an earlier train
    board.mem[po._PIO1 + po._IRQ] = 0
    hal.stim_start()
    assert board.mem[po._PIO1 + po._IRQ] == 1 << pio.STOP_IRQ  # the stop flag was cleared
    assert sm.rx_fifo() == 0 and sm.restarts == 1 and sm.running
    assert [board.text(c) for c in sm.execs[-4:]] == ["pull(noblock) .side(0)"] * 4
    feed = hal._output._feed.configs[-1]
    assert feed["read"] is hal._output._desc and feed["write"] == po._PIO1 + po._TXF0
    assert feed["ctrl"]["ring_size"] == 3 and feed["ctrl"]["treq_sel"] == 8
    counter = hal._output._counter
    out = [0, 0, 0, 0]
    counter.count -= 7  # seven pulses completed
    board.adc.update({26: 0x8000, 27: 0x7FF0, 28: 0x1000})
    hal.stim_sense(out)
    assert out[H.SENSE_PULSES] == 7
    assert out[H.SENSE_UA] == (0x800 * 132000 + 2048) >> 12
    assert out[H.SENSE_UA_2] == (0x7FF * 132000 + 2048) >> 12
    assert out[H.SENSE_MV] == (0x100 * 82500 + 2048) >> 12
    board.mem[po._PIO1 + po._IRQ_FORCE] = 0
    hal.stim_stop()
    assert board.mem[po._PIO1 + po._IRQ_FORCE] == 1 << pio.STOP_IRQ
    assert sm.running  # it finishes the pulse in progress by itself


@pytest.mark.req("HW-PULSE-1")
@pytest.mark.parametrize(
    "args",
    [
        (0, 200, 50),
        (101, 200, 50),
        (50, 49, 0),
        (50, 451, 0),
        (50, 200, -1),
        (50, 200, 101),
        (50.0, 200, 0),
        (True, 200, 0),
    ],
)
def test_invalid_timing_is_refused_even_after_firmware_validation(board, args):
    hal = _hal(board)
    hal.stim_configure(50, 200, 50)
    with pytest.raises(ValueError, match=r"out of range|must be integers"):
        hal.stim_configure(*args)
    assert list(hal._output._desc) == list(board.pio.pulse_words(50, 200, 50))  # the old timing stays


@pytest.mark.req("HW-PULSE-1")
def test_amplitude_goes_to_the_dac_in_100_ua_steps(board):
    hal = _hal(board)
    spi = board.spis[1]
    assert spi.writes[-1] == bytes((0x30, 0x00))  # zero at power-up
    hal.stim_amplitude(100000)
    code = (100000 * 4096 + 51200) // 102400
    assert code == 4000 and spi.writes[-1] == bytes((0x30 | code >> 8, code & 0xFF))
    hal.stim_amplitude(100)
    assert spi.writes[-1] == bytes((0x30, 4))  # 100 µA is 4 LSB: finer than the 100 µA step
    for bad in (-100, 100100, 150, 1000.0):
        with pytest.raises(ValueError, match="amplitude out of range"):
            hal.stim_amplitude(bad)


@pytest.mark.req("HW-PULSE-1")
def test_start_waits_for_a_pulse_in_progress(board):
    po = board.outs
    hal = _hal(board)
    hal.stim_configure(50, 450, 100)
    hal.stim_start()
    pc_reg = po._PIO1 + po._SM0_ADDR
    seen = []

    def ticks_us():
        # a leg is on for the first few polls, then the program reaches its rest loop
        seen.append(1)
        board.mem[pc_reg] = hal._output._pulse_pc0 + (10 if len(seen) < 5 else 26)
        return len(seen)

    board.time.ticks_us = ticks_us
    hal.stim_stop()
    hal.stim_configure(50, 450, 100)
    hal.stim_start()
    assert len(seen) >= 5


# -- the PIO programs themselves ---------------------------------------------------------


def _legs_trace(pio_mod, words, cycles, estop_at=None, stop_at=None):
    """Run pulse_train fed words forever; return [(cycle, side)] of every leg change, and the machine."""
    prog = pio_mod.pulse_train
    m = Pio(prog)
    trace = []
    m.on_side = lambda t, s: trace.append((t, s))
    holds = []
    while m.t < cycles:
        if len(m.tx) < 4:
            m.tx.extend(words)
        if estop_at is not None and m.t >= estop_at:
            m.jmp_pin = 1
        if stop_at is not None and m.t >= stop_at:
            m.irq |= 1 << pio_mod.STOP_IRQ
        before = m.setpins
        m.step()
        if m.setpins != before:
            holds.append((m.t, before, m.setpins))
    return trace, m, holds


def _segments(trace):
    """(side, duration in cycles) of each completed stretch."""
    return [(trace[i][1], trace[i + 1][0] - trace[i][0]) for i in range(len(trace) - 1)]


@pytest.mark.req("HW-PULSE-1")
@pytest.mark.parametrize(
    "f, phase, gap", [(100, 50, 0), (100, 450, 100), (50, 200, 3), (35, 301, 7), (1, 450, 100)]
)
def test_pulse_program_timing_matches_the_words(board, f, phase, gap):
    pio = board.pio
    w = pio.pulse_words(f, phase, gap)
    cyc_us = pio.PULSE_FREQ // 1000000
    period = (1000000 + f // 2) // f
    trace, m, _ = _legs_trace(pio, w, (2 * period + 2 * phase + 200) * cyc_us)
    seg = _segments(trace)
    # A on, both off (gap), B on, both off (rest), A on ...
    assert [s for s, _ in seg[:4]] == [1, 0, 2, 0]
    a, g, b, r = (d for _, d in seg[:4])
    assert a == b == phase * cyc_us  # equal by construction, and exact
    assert g == max(gap, pio.DEAD_US) * cyc_us
    assert a + g + b + r == period * cyc_us
    assert seg[4] == (1, a)  # the next pulse is the same
    assert len(m.rx) >= 1  # one mark per completed pulse


@pytest.mark.req("HW-PULSE-1")
def test_pulse_words_at_the_edges(board):
    pio = board.pio
    # 1 Hz, 450 µs, 100 µs: halves 223 + 223 (+4 fixed), gap count 97 (+3), rest 1e6 - 900 - 100 - 5
    assert pio.pulse_words(1, 450, 100) == (223 | 223 << 10 | 97 << 20, 998995)
    # 100 Hz, 50 µs, no gap: halves 23 + 23, the gap is the 3 µs dead time, rest 10000 - 100 - 3 - 5
    assert pio.pulse_words(100, 50, 0) == (23 | 23 << 10, 9892)
    # an odd phase splits unevenly but both phases use the same split
    assert pio.pulse_words(10, 51, 1) == (23 | 24 << 10, 100000 - 102 - 3 - 5)


@pytest.mark.req("HW-PULSE-1")
def test_track_and_hold_gates_hold_mid_phase_and_at_the_end_of_phase_one(board):
    pio = board.pio
    w = pio.pulse_words(50, 200, 20)
    trace, _, holds = _legs_trace(pio, w, 2 * 1100)
    a_on = trace[0][0]
    b_on = trace[2][0]
    # (cycle, pins before, pins after): I1 released at mid phase 1, V at its end, I2 at mid phase 2
    t_i1 = next(t for t, before, after in holds if before & 1 and not after & 1)
    t_v = next(t for t, before, after in holds if before & 4 and not after & 4)
    t_i2 = next(t for t, before, after in holds if before & 2 and not after & 2)
    cyc = pio.PULSE_FREQ // 1000000
    assert abs((t_i1 - a_on) - 100 * cyc) <= 2 * cyc
    assert abs((t_i2 - b_on) - 100 * cyc) <= 2 * cyc
    assert t_i1 - a_on == t_i2 - b_on
    assert t_v - a_on <= 200 * cyc + 1


@pytest.mark.req("HW-PULSE-1", "HW-ENABLE-1")
def test_estop_pin_grounds_both_legs_within_a_microsecond_and_stays(board):
    pio = board.pio
    w = pio.pulse_words(100, 450, 100)
    at = 2 * 100  # mid first phase
    trace, _, _ = _legs_trace(pio, w, 2 * 20000, estop_at=at)
    assert trace[-1][1] == 0
    off = next(t for t, s in trace if t >= at and s == 0)
    assert off - at <= pio.PULSE_FREQ // 1000000
    assert all(t <= off for t, s in trace if s)


@pytest.mark.req("HW-PULSE-1")
def test_stop_flag_finishes_the_pulse_then_parks_with_legs_low(board):
    pio = board.pio
    w = pio.pulse_words(100, 200, 50)
    at = 2 * 100  # inside the first phase
    trace, m, _ = _legs_trace(pio, w, 2 * 30000, stop_at=at)
    seg = _segments([*trace, (m.t, None)])
    assert [s for s, _ in seg] == [1, 0, 2, 0]  # one whole biphasic pulse, then nothing
    assert seg[0][1] == seg[2][1] == 400
    assert m.p.code[m.pc].op == "wait"


@pytest.mark.req("HW-PULSE-1")
def test_without_descriptors_the_engine_stalls_with_legs_low(board):
    pio = board.pio
    m = Pio(pio.pulse_train)
    m.run_until(1000)
    assert m.side == 0 and m.p.code[m.pc].op == "pull"


@pytest.mark.req("HW-AFE-1")
def test_capture_program_pushes_the_frame_word(board):
    """Drive afe_capture with a chip model: DRDY falls, DOUT shifts a bit out on each SCLK rise."""
    frames = [
        bytes.fromhex("C000007FFFFF123456"),
        bytes.fromhex("C78000800000000000"),  # LOFF_STAT = 0x0F
        bytes.fromhex("C08000FFFF85ABCDEF"),  # IN1P off, a small negative code
    ]
    for frame in frames:
        bits = [(frame[i // 8] >> (7 - i % 8)) & 1 for i in range(72)]
        state = {"i": -1, "sclk": 0, "drdy": 1}
        m = Pio(board.pio.afe_capture)

        def on_side(t, s, state=state):
            if s and not state["sclk"]:
                state["i"] += 1  # the chip shifts the next bit out on the rising edge
            if not s and state["sclk"]:
                state["drdy"] = 1  # and releases DRDY on the first falling edge
            state["sclk"] = s

        m.on_side = on_side

        def pin_in(t, idx, state=state, bits=bits):
            if idx == 1:
                if t == 20:
                    state["drdy"] = 0  # a conversion completes
                return state["drdy"]
            return bits[state["i"]] if 0 <= state["i"] < 72 else 0

        m.pin_in = pin_in
        m.run_until(400)
        assert m.rx == [ads.frame_word(frame)]
        assert state["i"] == 71  # exactly 72 clocks
        assert m.p.code[m.pc].op == "wait"
