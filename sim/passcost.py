"""What a main-loop pass costs on the board, so the simulator stops hiding it.

Without this module the simulator runs Controller.step() atomically on a 5 ms
tick with unlimited CPU: no pass is long, no garbage collector pauses, and an
interrupt can only land between two passes. A Pico is not like that
(docs/simulator.md, "Pass cost"). With a PassCost the simulator:

- gives every pass a duration drawn from the profile (a base with jitter),
  spread over the pass's HAL calls, so time moves inside the pass;
- models the heap: each pass allocates the profile's bytes; when the free
  heap runs out the collector pauses the pass at one of its HAL calls, as an
  allocation anywhere would trigger it; a firmware that calls hal.collect()
  gets a collection there once in COLLECT_PASSES calls, or once
  COLLECT_REQUESTS link requests came in since the last, as board_pico does;
- charges every request the firmware answers (a RESPONSE or ERROR it
  writes) its time and heap in the pass that answers it, so a host that
  sends many at once lengthens that pass as on the board;
- delivers interrupts inside the pass: a scenario event that is an interrupt
  on the board (an e-stop, a button, a lead coming off) reaches the firmware
  between two of its HAL calls; during a flash write or erase interrupts are
  held off and land when it completes, as on an RP2040.

Everything is drawn from one seeded generator: the same seed and firmware
give the same run. The board's figures are in PROFILES; a test can build its
own PassProfile to pin a pass length.
"""

import random
from typing import NamedTuple

from protocol import codec, framing
from protocol import messages as m
from protocol.errors import ProtocolError


class PassProfile(NamedTuple):
    pass_us: tuple  # (lo, hi): a pass's CPU time, uniform between the two
    alloc_bytes: int = 0  # heap allocated per pass in steady state
    heap_free: int = 93_024  # free heap after boot
    gc_pause_us: tuple = (600, 14_000)  # (lo, hi): one collection
    flash_us: int = (
        45_000  # one storage write or remove: a 4 KiB erase on the emulated board, interrupts held off
    )
    calls_per_pass: int = 24  # first guess of the HAL calls in a pass; then the last pass's count
    request_us: int = 0  # CPU time of one request answered (decode, handler, reply framed)
    request_alloc: int = 0  # heap one request answered allocates


# Figures measured on the real MicroPython v1.28.0 RPI_PICO firmware in an
# RP2040 emulator (flash zero-wait: a board can be up to 2x slower).
# "emulated-pico-9f234f9": the firmware before issue 12 (shared
# EMULATED_PICO.md): an idle pass 1.58-2.25 ms, a stream frame 6.2 ms and
# 5,360 B (one per 5 passes: ~1,100 B per pass), 93,024 B free after the
# imports, GC pauses 0.6-14 ms. "emulated-pico": the firmware after it
# (benchmarks/pico_board.py, 2026-12-06, streaming at 2 kHz): passes p50
# 9.4 ms, p99 15.4 ms, 0 B per pass, 53,984 B free, collections 37.5 ms
# (47.9 ms during a stimulation session), a PING answered just after a
# collection 6.6 ms and 1,120 B (an INFO 28.6 ms and 4,832 B).
PROFILES = {
    "emulated-pico-9f234f9": PassProfile(pass_us=(1580, 2250 + 6200), alloc_bytes=1100),
    "emulated-pico": PassProfile(
        pass_us=(4000, 15_400),
        heap_free=53_984,
        gc_pause_us=(37_500, 47_900),
        request_us=6_600,
        request_alloc=1_120,
    ),
}

# Interrupt sources on the board: these scenario actions may land inside a pass.
INTERRUPTS = frozenset(("estop_press", "estop_release", "button", "lead_off", "saturation", "stall_emg"))
_FLASH_CALLS = frozenset(("fs_write", "fs_remove"))
COLLECT_PASSES = 200  # board_pico.py's collect() runs the collector once in this many calls
COLLECT_REQUESTS = 8  # ... or once this many requests came in since the last collection


class PassCost:
    def __init__(self, profile, seed=0):
        if isinstance(profile, str):
            if profile not in PROFILES:
                raise ValueError(
                    f"unknown pass-cost profile {profile!r} (known: {', '.join(sorted(PROFILES))})"
                )
            profile = PROFILES[profile]
        lo, hi = profile.pass_us
        if not 0 < lo <= hi:
            raise ValueError(f"pass_us must be 0 < lo <= hi, not {profile.pass_us!r}")
        self.profile = profile
        self._rnd = random.Random(seed)
        self._calls_guess = profile.calls_per_pass
        self._free = profile.heap_free
        self._collect_calls = 0
        self._collect_requests = 0
        self.passes = 0
        # (t_us, pause_us, at): at is "collect" (the firmware's point) or a HAL call's name
        self.collections = []
        self.longest_pass_us = 0
        self._reset_pass()

    def _reset_pass(self):
        self._left_us = 0
        self._share_us = 0
        self._calls = 0
        self._gc_at = -1
        self._start_us = 0

    # -- the runner's side ---------------------------------------------------------

    def begin(self, now_us):
        """A pass starts at now_us: draw its cost and where an allocation-driven GC would land."""
        p = self.profile
        self._start_us = now_us
        self._left_us = self._rnd.randint(*p.pass_us)
        self._share_us = self._left_us // max(self._calls_guess, 1)
        self._calls = 0
        self._free -= p.alloc_bytes
        self._gc_at = self._rnd.randrange(max(self._calls_guess, 1)) if self._free < 0 else -1

    def end(self, now_us):
        """The pass returned at now_us: the CPU time it has left to spend, in µs."""
        self.passes += 1
        self._calls_guess = self._calls
        left = self._left_us
        if self._gc_at >= 0:  # the heap ran out in the last stretch of the pass
            left += self._collect(now_us, "end")
        self._left_us = 0
        self.longest_pass_us = max(self.longest_pass_us, now_us + left - self._start_us)
        return left

    # -- inside a HAL call -------------------------------------------------------------

    def before_call(self, name, now_us, args=()):
        """µs that pass before HAL call `name` takes effect (its share of the pass, a GC pause)."""
        spend = min(self._share_us, self._left_us)
        self._left_us -= spend
        if name == "collect":
            self._collect_calls += 1
            requests = args[0]
            if self._collect_calls >= COLLECT_PASSES or requests - self._collect_requests >= COLLECT_REQUESTS:
                self._collect_calls = 0
                self._collect_requests = requests
                spend += self._collect(now_us + spend, "collect")
        elif self._calls == self._gc_at:
            spend += self._collect(now_us + spend, name)
        self._calls += 1
        return spend

    def after_call(self, name):
        """µs the call itself keeps the CPU with interrupts held off (flash), 0 for the others."""
        return self.profile.flash_us if name in _FLASH_CALLS else 0

    def answered(self):
        """The firmware answered a request in this pass: its time and heap count against the pass."""
        p = self.profile
        self._left_us += p.request_us
        self._share_us = max(self._share_us, self._left_us // max(self._calls_guess - self._calls, 1))
        self._free -= p.request_alloc
        if self._free < 0 and self._gc_at < 0:
            self._gc_at = self._calls  # the heap ran out: the next allocation, the next call

    def _collect(self, t_us, at):
        pause = self._rnd.randint(*self.profile.gc_pause_us)
        self.collections.append((t_us, pause, at))
        self._free = self.profile.heap_free
        self._gc_at = -1
        return pause


class CostedHal:
    """The board as the firmware sees it when passes cost time: every HAL call moves the clock.

    Attributes that are not methods (ceilings, serial) pass through; methods
    are looked up on the board at each call, so a failure injected on the
    board (SimBoard.inject_failure) still takes effect.
    """

    def __init__(self, board, cost, run_to):
        self._board = board
        self._cost = cost
        self._run_to = run_to  # run_to(t_us, interrupts_held): move time, deliver the interrupts due

    def __getattr__(self, name):
        value = getattr(self._board, name)
        if not callable(value):
            return value

        def call(*args):
            return self._call(name, getattr(self._board, name), args)

        return call

    def _call(self, name, fn, args):
        clock = self._board.clock
        spend = self._cost.before_call(name, clock.us, args)
        if spend:
            self._run_to(clock.us + spend, False)
        result = fn(*args)
        if name == "link_write" and _is_answer(args[0]):
            self._cost.answered()
        held = self._cost.after_call(name)
        if held:
            self._run_to(clock.us + held, True)
        return result


def _is_answer(frame):
    """True if frame is a RESPONSE or ERROR: the firmware answered a request."""
    if len(frame) < 2:  # the delimiter the link sends first
        return False
    try:
        kind = codec.loads(framing.decode(bytes(frame)))[0]
    except ProtocolError:
        return False
    return kind in (m.RESPONSE, m.ERROR)
