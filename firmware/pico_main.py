"""Entry point on the Pico: the board's /main.py (firmware/board/main.py) calls main().

Two ways to boot. Normally the application: the HAL, the controller's loop
and its watchdog. A maintenance boot instead when the last run asked for one
(MAINTENANCE_ENTER, sent by `tonus flash`) or the START button is held at
power-on, the way back when the application cannot answer the link: the
output-enable stays low, no peripheral or watchdog is started, Ctrl-C works
and main() returns to the REPL, where mpremote deploys. Nothing is printed:
stdout is the link.
"""

import micropython

micropython.alloc_emergency_exception_buf(100)

# A free run low in the heap for the call frames of the loop, taken before any module of
# ours loads and given back after boot (see main())
_LOW_ROOM = [bytearray(4096)]

import gc
import os

import machine

from firmware import maintenance
from firmware.board_pico import DATA_DIR, PicoHal
from firmware.board_profile import PIN_BTN_START, PIN_OUT_ENABLE

_ROOM_BYTES = 16 * 1024


class _Records:
    """The two storage calls the boot decision needs, before the HAL starts any peripheral."""

    def fs_read(self, name):
        try:
            with open(DATA_DIR + "/" + name, "rb") as f:
                return f.read()
        except OSError:
            return None

    def fs_remove(self, name):
        try:
            os.remove(DATA_DIR + "/" + name)
        except OSError:
            pass  # absent


def start_held():
    # pulled up: a held button reads 0
    return machine.Pin(PIN_BTN_START, machine.Pin.IN, machine.Pin.PULL_UP).value() == 0


def main():
    machine.Pin(PIN_OUT_ENABLE, machine.Pin.OUT, value=0)  # off before anything else, on either path
    # the marker first, so it is consumed even when the button is held too
    if maintenance.take_marker(_Records()) or start_held():
        _LOW_ROOM.clear()
        micropython.kbd_intr(3)  # Ctrl-C back for mpremote: the board's main.py turned it off first
        return
    # the HAL's large buffers (the DMA ring wants 8 KB on an 8 KB boundary) before the controller's
    # modules fragment the heap: imported first, they left no such run free on the board
    hal = PicoHal()
    room = bytearray(_ROOM_BYTES)  # see below
    from firmware.controller import Controller

    ctrl = Controller(hal)
    ctrl.boot()
    # MicroPython puts the state of every call with more than 11 words of locals and stack
    # on the heap (and frees it on return), and each such allocation searches the allocation
    # table from the first free block for a run long enough. Loading the controller's modules
    # leaves the heap a comb of one-block holes between objects kept for good; searched across
    # on every such call, it took 40-80 % of the CPU on the emulated RP2040. Taken before them
    # and given back now, the room is a long free run ahead of that comb, where those searches
    # end at once. Not taken before the HAL: at the boot's peak it left too little heap.
    # The low room does the same below the HAL's modules: the frames' searches start at the
    # lowest free block, and a collection during the HAL's start (its DMA ring) lets the
    # controller's modules fill the holes there that the searches used to end in (pass p99
    # 9 -> 15 ms on the emulated RP2040 without it).
    del room
    _LOW_ROOM.clear()
    gc.collect()
    while True:
        ctrl.step()
        hal.idle()
