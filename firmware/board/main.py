# The Pico's /main.py: tonus flash copies this file as source (MicroPython
# runs main.py from source only; every module it imports is precompiled).
# It is copied last, after the rest of the image is verified on the board,
# so a flash cut short boots to the REPL, never to a half-copied application.
#
# Ctrl-C off before anything is imported: MicroPython turns it on for main.py,
# and a host may be sending frames as soon as USB is up (after a power cut it
# keeps talking). A 0x03 in a frame (COBS removes only 0x00) that arrived while
# the modules load raised KeyboardInterrupt there, the boot ended at the REPL,
# and the REPL took the host's next frames as keystrokes (0x04: a soft reboot,
# into the same race). pico_main turns it back on for a maintenance boot.
# No name is bound for it: the heap this boot leaves must not change for it.
__import__("micropython").kbd_intr(-1)
from firmware.pico_main import main  # noqa: E402

main()
