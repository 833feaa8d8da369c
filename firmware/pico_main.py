"""Entry point on the Pico: `import firmware.pico_main` from the board's main.py."""

import micropython

micropython.alloc_emergency_exception_buf(100)

from firmware.board_pico import PicoHal  # noqa: E402
from firmware.controller import Controller  # noqa: E402


def run():
    hal = PicoHal()
    ctrl = Controller(hal)
    ctrl.boot()
    while True:
        ctrl.step()
        hal.idle()


run()
