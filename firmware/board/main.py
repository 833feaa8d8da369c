# The Pico's /main.py: tonus flash copies this file as source (MicroPython
# runs main.py from source only; every module it imports is precompiled).
# It is copied last, after the rest of the image is verified on the board,
# so a flash cut short boots to the REPL, never to a half-copied application.
from firmware.pico_main import main

main()
