"""An emulated Pico: MicroPython's RPI_PICO firmware in rp2040js with this tree deployed, and its board.

image.py builds what it boots, board.py runs it and acts on its board,
board.mjs is the emulator with the board's parts around the chip.
docs/emulated-pico.md describes it.
"""
