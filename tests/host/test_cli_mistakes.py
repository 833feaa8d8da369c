"""The careless uses of `tonus`, as a table: no traceback, the documented exit code,
a message that names the fix, and no file left behind.

Exit codes (README): 0 ok, 1 error, 2 usage, 3 link error, 4 device refused,
130 interrupted. Each row runs `tonus` in this process in an empty folder;
a row's files are made by its setup, and after the run the folder holds
exactly those files again (a half-written or temporary file fails the row).
"""

import errno
import json
import os
from pathlib import Path

import pytest

from host.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "protocols"
RELAX = (EXAMPLES / "relaxation-downtraining.toml").read_text()
ETS = (EXAMPLES / "ets-weak-pelvic-floor.toml").read_text()
SIM = "sim://?seed=1&speed=0"
PASS_ENV = "TONUS_KEY_PASSPHRASE"
USAGE, ERROR, LINK, REFUSED, INTERRUPTED = 2, 1, 3, 4, 130


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _key(tmp):
    os.environ[PASS_ENV] = "passphrase-1"
    assert main(["keys", "new", "--out", str(tmp / "dr.key")]) == 0


def _protocol(text):
    def setup(tmp):
        _key(tmp)
        (tmp / "p.toml").write_text(text)

    return setup


def _edit(old, new, src=RELAX):
    assert old in src, old
    return _protocol(src.replace(old, new, 1))


def _fail_os(name, err):
    """Make os.<name> fail with errno err while tonus runs (a full or read-only disk)."""

    def setup(tmp, monkeypatch):
        real = getattr(os, name)

        def failing(*a, **k):
            if name == "write" and a and a[0] in (0, 1, 2):
                return real(*a, **k)  # the terminal still works
            raise OSError(err, os.strerror(err))

        monkeypatch.setattr(os, name, failing)

    return setup


def _no_terminal(tmp, monkeypatch):
    monkeypatch.delenv(PASS_ENV, raising=False)

    def getpass(prompt=""):
        raise EOFError

    monkeypatch.setattr("getpass.getpass", getpass)


def _interrupt_at(target):
    def setup(tmp, monkeypatch):
        def interrupted(*a, **k):
            raise KeyboardInterrupt

        monkeypatch.setattr(target, interrupted)

    return setup


def _earlier_demo(tmp):
    (tmp / "tonus-demo").mkdir()
    (tmp / "tonus-demo" / "scores.json").write_text("{}")


def _file(name, data=b"x"):
    def setup(tmp):
        (tmp / name).write_bytes(data)

    return setup


def _estopped_flash(tmp):
    # a latched fault survives in the simulator's flash folder
    assert main(["--port", "sim://?seed=1&speed=0&flash_dir=%s" % (tmp / "flash"), "estop"]) == 0


SIGN = ["protocol", "sign", "{tmp}/p.toml", "--key", "{tmp}/dr.key", "--out", "{tmp}/p.cose"]
CHECK = ["protocol", "check", "{tmp}/p.toml"]

# (id, argv, setup(tmp), patch(tmp, monkeypatch) for the run only, exit code, words the message must hold)
CASES = [
    # -- numbers: ASCII digits, in range, nothing rounded -----------------
    (
        "level-arabic-digit",
        ["--port", SIM, "session", "level", "\u0663"],
        None,
        None,
        USAGE,
        "is not a number 0 to 100 mA",
    ),
    ("level-inf", ["--port", SIM, "session", "level", "inf"], None, None, USAGE, "is not a number"),
    ("level-nan", ["--port", SIM, "session", "level", "nan"], None, None, USAGE, "is not a number"),
    (
        "level-negative",
        ["session", "level", "--", "-1"],
        None,
        None,
        USAGE,
        "outside: give a number 0 to 100 mA",
    ),
    ("level-too-high", ["session", "level", "101"], None, None, USAGE, "outside"),
    ("level-too-fine", ["session", "level", "12.34"], None, None, USAGE, "finer than the steps of 0.1 mA"),
    ("level-underscore", ["session", "level", "1_0"], None, None, USAGE, "is not a number"),
    ("level-space", ["session", "level", " 5"], None, None, USAGE, "is not a number"),
    ("level-empty", ["session", "level", ""], None, None, USAGE, "is not a number"),
    ("level-exponent", ["session", "level", "1e1"], None, None, USAGE, "is not a number"),
    ("run-level-inf", ["session", "run", "--level", "inf"], None, None, USAGE, "is not a number"),
    (
        "run-heartbeat-arabic",
        ["session", "run", "--heartbeat-ms", "\u0665\u0660\u0660"],
        None,
        None,
        USAGE,
        "whole number 100 to 65535 ms",
    ),
    ("run-heartbeat-short", ["session", "run", "--heartbeat-ms", "50"], None, None, USAGE, "100 to 65535 ms"),
    ("run-heartbeat-float", ["session", "run", "--heartbeat-ms", "500.5"], None, None, USAGE, "whole number"),
    ("run-demo-zero", ["session", "run", "--demo-seconds", "0"], None, None, USAGE, "1 to 65535 s"),
    ("run-demo-inf", ["session", "run", "--demo-seconds", "inf"], None, None, USAGE, "whole number"),
    (
        "start-demo-devanagari",
        ["session", "start", "--demo-seconds", "\u0969\u0966"],
        None,
        None,
        USAGE,
        "whole number",
    ),
    ("rate-eleven", ["session", "rate", "11"], None, None, USAGE, "0 to 10"),
    ("rate-arabic", ["session", "rate", "\u0663"], None, None, USAGE, "0 to 10"),
    ("rate-session-negative", ["session", "rate", "3", "--session", "-2"], None, None, USAGE, "whole number"),
    ("monitor-duration-zero", ["monitor", "--duration", "0"], None, None, USAGE, "above 0"),
    ("monitor-duration-nan", ["monitor", "--duration", "nan"], None, None, USAGE, "is not a number"),
    ("monitor-duration-inf", ["monitor", "--duration", "inf"], None, None, USAGE, "is not a number"),
    (
        "record-seconds-nan",
        ["record", "--out", "{tmp}/r.tonus", "--seconds", "nan"],
        None,
        None,
        USAGE,
        "is not a number",
    ),
    (
        "record-seconds-negative",
        ["record", "--out", "{tmp}/r.tonus", "--seconds", "-3"],
        None,
        None,
        USAGE,
        "outside",
    ),
    ("demo-seed-negative", ["demo", "--seed", "-1"], None, None, USAGE, "whole number 0 to"),
    ("demo-seed-arabic", ["demo", "--seed", "\u0661"], None, None, USAGE, "whole number"),
    ("demo-speed-inf", ["demo", "--speed", "inf"], None, None, USAGE, "is not a number"),
    ("demo-speed-nan", ["demo", "--speed", "nan"], None, None, USAGE, "is not a number"),
    ("demo-level-inf", ["demo", "--level", "inf"], None, None, USAGE, "is not a number"),
    (
        "provision-max-inf",
        ["provision", "--flash-dir", "{tmp}/f", "--max-amplitude-ma", "inf"],
        None,
        None,
        USAGE,
        "is not a number",
    ),
    (
        "provision-max-nan",
        ["provision", "--flash-dir", "{tmp}/f", "--max-amplitude-ma", "nan"],
        None,
        None,
        USAGE,
        "is not a number",
    ),
    (
        "provision-max-negative",
        ["provision", "--flash-dir", "{tmp}/f", "--max-amplitude-ma", "-5"],
        None,
        None,
        USAGE,
        "outside",
    ),
    (
        "provision-max-too-high",
        ["provision", "--flash-dir", "{tmp}/f", "--max-amplitude-ma", "101"],
        None,
        None,
        USAGE,
        "outside",
    ),
    (
        "provision-max-too-fine",
        ["provision", "--flash-dir", "{tmp}/f", "--max-amplitude-ma", "1.0001"],
        None,
        None,
        USAGE,
        "finer",
    ),
    (
        "provision-max-arabic",
        ["provision", "--flash-dir", "{tmp}/f", "--max-amplitude-ma", "\u0663\u0660"],
        None,
        None,
        USAGE,
        "is not a number",
    ),
    (
        "provision-mains-55",
        ["provision", "--flash-dir", "{tmp}/f", "--mains-hz", "55"],
        None,
        None,
        USAGE,
        "choose from 50, 60",
    ),
    ("selftest-timeout-inf", ["selftest", "--timeout", "inf"], None, None, USAGE, "is not a number"),
    ("selftest-timeout-zero", ["selftest", "--timeout", "0"], None, None, USAGE, "above 0"),
    # -- ports ------------------------------------------------------------------
    ("port-socket-no-host", ["--port", "socket://", "info"], None, None, USAGE, "socket://HOST:PORT"),
    (
        "port-socket-no-port",
        ["--port", "socket://127.0.0.1", "info"],
        None,
        None,
        USAGE,
        "needs a host and a port",
    ),
    (
        "port-socket-bad-port",
        ["--port", "socket://127.0.0.1:99999", "info"],
        None,
        None,
        USAGE,
        "needs a host and a port",
    ),
    (
        "port-socket-only-port",
        ["--port", "socket://:77", "info"],
        None,
        None,
        USAGE,
        "needs a host and a port",
    ),
    (
        "port-unknown-scheme",
        ["--port", "gopher://x", "info"],
        None,
        None,
        USAGE,
        "not a port URL tonus knows",
    ),
    (
        "port-missing-device",
        ["--port", "/dev/tonus-no-such-board", "info"],
        None,
        None,
        LINK,
        "check the USB cable",
    ),
    (
        "port-nobody-listens",
        ["--port", "socket://127.0.0.1:1", "info"],
        None,
        None,
        LINK,
        "tonus sim --listen",
    ),
    (
        "port-sim-flash-dir-a-file",
        ["--port", "sim://?speed=0&flash_dir={tmp}/afile", "info"],
        _file("afile"),
        None,
        LINK,
        "flash_dir",
    ),
    (
        "port-sim-unknown-parameter",
        ["--port", "sim://?bogus=1", "info"],
        None,
        None,
        LINK,
        "unknown parameter 'bogus'",
    ),
    ("port-id-unknown", ["--port", "id:FEEDFACE", "info"], None, None, LINK, "tonus devices"),
    ("port-none-no-board", ["info"], None, None, LINK, "pass --port"),
    # -- files: written whole or not at all ------------------------------------
    (
        "keys-out-missing-folder",
        ["keys", "new", "--out", "{tmp}/no/dr.key"],
        None,
        None,
        ERROR,
        "folder does not exist",
    ),
    (
        "keys-out-a-folder",
        ["keys", "new", "--out", "{tmp}/d"],
        lambda t: (t / "d").mkdir(),
        None,
        ERROR,
        "exists",
    ),
    (
        "keys-out-read-only",
        ["keys", "new", "--out", "{tmp}/dr.key"],
        None,
        _fail_os("open", errno.EROFS),
        ERROR,
        "read-only",
    ),
    (
        "keys-out-full-disk",
        ["keys", "new", "--out", "{tmp}/dr.key"],
        None,
        _fail_os("write", errno.ENOSPC),
        ERROR,
        "disk is full",
    ),
    (
        "keys-out-fsync-fails",
        ["keys", "new", "--out", "{tmp}/dr.key"],
        None,
        _fail_os("fsync", errno.EIO),
        ERROR,
        "cannot write",
    ),
    (
        "keys-out-exists",
        ["keys", "new", "--out", "{tmp}/old.key"],
        _file("old.key"),
        None,
        ERROR,
        "pass --force",
    ),
    (
        "keys-no-terminal",
        ["keys", "new", "--out", "{tmp}/dr.key"],
        None,
        _no_terminal,
        ERROR,
        "set TONUS_KEY_PASSPHRASE",
    ),
    ("keys-show-missing", ["keys", "show", "{tmp}/none.pub"], None, None, ERROR, "cannot read key"),
    (
        "keys-show-not-a-key",
        ["keys", "show", "{tmp}/x.pub"],
        _file("x.pub", b"hello"),
        None,
        ERROR,
        "not a public key",
    ),
    (
        "sign-out-missing-folder",
        [*SIGN[:-1], "{tmp}/no/p.cose"],
        _protocol(RELAX),
        None,
        ERROR,
        "folder does not exist",
    ),
    ("sign-out-a-folder", [*SIGN[:-1], "{tmp}"], _protocol(RELAX), None, ERROR, "that is a folder"),
    ("sign-out-full-disk", SIGN, _protocol(RELAX), _fail_os("write", errno.ENOSPC), ERROR, "disk is full"),
    ("sign-out-read-only", SIGN, _protocol(RELAX), _fail_os("open", errno.EROFS), ERROR, "read-only"),
    (
        "sign-out-no-permission",
        SIGN,
        _protocol(RELAX),
        _fail_os("open", errno.EACCES),
        ERROR,
        "no permission",
    ),
    ("sign-no-terminal", SIGN, _protocol(RELAX), _no_terminal, ERROR, "set TONUS_KEY_PASSPHRASE"),
    (
        "sign-missing-key",
        [*SIGN[:4], "{tmp}/none.key", *SIGN[5:]],
        _protocol(RELAX),
        None,
        ERROR,
        "cannot read key",
    ),
    (
        "sign-a-public-key",
        [*SIGN[:4], "{tmp}/dr.key.pub", *SIGN[5:]],
        _protocol(RELAX),
        None,
        ERROR,
        "not a tonus private key",
    ),
    (
        "sign-missing-protocol",
        ["protocol", "sign", "{tmp}/none.toml", "--key", "{tmp}/dr.key", "--out", "{tmp}/p.cose"],
        _key,
        None,
        ERROR,
        "none.toml",
    ),
    (
        "provision-flash-dir-a-file",
        ["provision", "--flash-dir", "{tmp}/afile", "--max-amplitude-ma", "20"],
        _file("afile"),
        None,
        ERROR,
        "flash folder",
    ),
    (
        "provision-trust-missing",
        ["provision", "--flash-dir", "{tmp}/f", "--trust", "{tmp}/none.pub"],
        lambda t: (t / "f").mkdir(),
        None,
        ERROR,
        "cannot read key",
    ),
    (
        "provision-full-disk",
        ["provision", "--flash-dir", "{tmp}/f", "--max-amplitude-ma", "20"],
        lambda t: (t / "f").mkdir(),
        _fail_os("write", errno.ENOSPC),
        ERROR,
        "disk is full",
    ),
    (
        "logs-out-a-file",
        ["--port", SIM, "logs", "pull", "--out", "{tmp}/afile"],
        _file("afile"),
        None,
        ERROR,
        "cannot create the folder",
    ),
    (
        "logs-out-full-disk",
        ["--port", SIM, "logs", "pull", "--out", "{tmp}/logs"],
        lambda t: (t / "logs").mkdir(),
        _fail_os("write", errno.ENOSPC),
        ERROR,
        "disk is full",
    ),
    (
        "run-out-missing-folder",
        ["--port", SIM, "session", "run", "--demo-seconds", "5", "--out", "{tmp}/no/s.json"],
        None,
        None,
        ERROR,
        "folder does not exist",
    ),
    (
        "run-out-a-folder",
        ["--port", SIM, "session", "run", "--demo-seconds", "5", "--out", "{tmp}"],
        None,
        None,
        ERROR,
        "that is a folder",
    ),
    (
        "record-out-missing-folder",
        ["--port", SIM, "record", "--out", "{tmp}/no/r.tonus", "--seconds", "1"],
        None,
        None,
        ERROR,
        "r.tonus",
    ),
    (
        "record-out-exists",
        ["--port", SIM, "record", "--out", "{tmp}/r.tonus", "--seconds", "1"],
        _file("r.tonus"),
        None,
        ERROR,
        "choose another name",
    ),
    (
        "demo-out-a-file",
        ["demo", "--out", "{tmp}/afile"],
        _file("afile"),
        None,
        ERROR,
        "cannot create the folder",
    ),
    ("demo-twice", ["demo", "--out", "{tmp}/tonus-demo"], _earlier_demo, None, ERROR, "--force"),
    (
        "demo-unknown-patient",
        ["demo", "--patient", "nobody", "--out", "{tmp}/d"],
        None,
        None,
        ERROR,
        "choose one of",
    ),
    (
        "demo-missing-protocol",
        ["demo", "--protocol", "{tmp}/none.toml", "--out", "{tmp}/d"],
        None,
        None,
        ERROR,
        "--protocol",
    ),
    # -- protocol files -------------------------------------------------------------
    ("check-missing-file", CHECK, None, None, ERROR, "p.toml"),
    ("check-a-folder", ["protocol", "check", "{tmp}"], None, None, ERROR, "cannot read"),
    ("check-binary", CHECK, _file("p.toml", b"\x00\xff\xfe"), None, ERROR, "p.toml"),
    ("check-not-toml", CHECK, _file("p.toml", b"id = = 3"), None, ERROR, "not valid TOML"),
    ("check-inf", CHECK, _edit("sessions = 28", "sessions = inf"), None, ERROR, "finite"),
    ("check-nan", CHECK, _edit("sessions = 28", "sessions = nan"), None, ERROR, "finite"),
    (
        "check-inf-amplitude",
        CHECK,
        _edit("amplitude_max_ma = 40", "amplitude_max_ma = inf", ETS),
        None,
        ERROR,
        "finite",
    ),
    (
        "check-nan-amplitude",
        CHECK,
        _edit("amplitude_max_ma = 40", "amplitude_max_ma = -nan", ETS),
        None,
        ERROR,
        "finite",
    ),
    (
        "check-huge-amplitude",
        CHECK,
        _edit("amplitude_max_ma = 40", "amplitude_max_ma = 1e308", ETS),
        None,
        ERROR,
        "amplitude",
    ),
    (
        "check-digit-as-text",
        CHECK,
        _edit("amplitude_max_ma = 40", 'amplitude_max_ma = "\u0663"', ETS),
        None,
        ERROR,
        "must be a number",
    ),
    (
        "check-nul-in-id",
        CHECK,
        _edit('id = "relax-downtrain"', 'id = "relax\\u0000"'),
        None,
        ERROR,
        "control characters",
    ),
    (
        "check-rlo-in-approver",
        CHECK,
        _edit('approved_by = "A.', 'approved_by = "\\u202eA.'),
        None,
        ERROR,
        "bidirectional",
    ),
    (
        "check-newline-in-patient",
        CHECK,
        _edit('patient = "P-0042"', 'patient = "P-\\n0042"'),
        None,
        ERROR,
        "control characters",
    ),
    (
        "check-wide-id",
        CHECK,
        _edit('id = "relax-downtrain"', 'id = "%s"' % ("\u6cbb" * 40)),
        None,
        ERROR,
        "bytes of UTF-8",
    ),
    (
        "check-emoji-approver",
        CHECK,
        _edit(
            'approved_by = "A. Example, pelvic-floor physiotherapist"',
            'approved_by = "%s"' % ("\U0001f600" * 64),
        ),
        None,
        ERROR,
        "bytes of UTF-8",
    ),
    ("check-sequence-zero", CHECK, _edit("sequence = 1", "sequence = 0"), None, ERROR, "sequence number"),
    (
        "check-sequence-huge",
        CHECK,
        _edit("sequence = 1", "sequence = 4294967296"),
        None,
        ERROR,
        "sequence number",
    ),
    ("sign-inf", SIGN, _edit("sessions = 28", "sessions = inf"), None, ERROR, "finite"),
    (
        "sign-nul",
        SIGN,
        _edit('id = "relax-downtrain"', 'id = "a\\u0000b"'),
        None,
        ERROR,
        "control characters",
    ),
    (
        "sign-bidi",
        SIGN,
        _edit('patient = "P-0042"', 'patient = "P-\\u202e0042"'),
        None,
        ERROR,
        "bidirectional",
    ),
    (
        "upload-missing-file",
        ["--port", SIM, "protocol", "upload", "{tmp}/none.cose"],
        None,
        None,
        ERROR,
        "cannot read",
    ),
    (
        "upload-not-signed",
        ["--port", SIM, "protocol", "upload", "{tmp}/x.cose"],
        _file("x.cose", b"junk"),
        None,
        ERROR,
        "tonus protocol sign",
    ),
    # -- silent substitutions ---------------------------------------------------------
    ("run-without-protocol", ["--port", SIM, "session", "run"], None, None, ERROR, "--demo-seconds N"),
    (
        "run-without-protocol-records-nothing",
        ["--port", SIM, "session", "run", "--record", "{tmp}/r.tonus"],
        None,
        None,
        ERROR,
        "no approved protocol",
    ),
    ("start-without-protocol", ["--port", SIM, "session", "start"], None, None, ERROR, "--protocol FILE"),
    (
        "refused-start-records-nothing",
        [
            "--port",
            "sim://?seed=1&speed=0&flash_dir={tmp}/flash",
            "session",
            "run",
            "--demo-seconds",
            "20",
            "--record",
            "{tmp}/r.tonus",
        ],
        _estopped_flash,
        None,
        REFUSED,
        "tonus fault clear",
    ),
    (
        "level-without-session",
        ["--port", SIM, "session", "level", "5"],
        None,
        None,
        REFUSED,
        "no session running",
    ),
    # -- usage -----------------------------------------------------------------------
    ("no-command", [], None, None, USAGE, "required"),
    ("unknown-command", ["frobnicate"], None, None, USAGE, "invalid choice"),
    ("unknown-option", ["info", "--colour"], None, None, USAGE, "unrecognized arguments"),
    ("session-no-action", ["session"], None, None, USAGE, "required"),
    # -- Ctrl-C, anywhere -------------------------------------------------------------
    (
        "ctrl-c-while-starting",
        ["info"],
        None,
        _interrupt_at("host.cli.build_parser"),
        INTERRUPTED,
        "interrupted",
    ),
    (
        "ctrl-c-while-connecting",
        ["--port", SIM, "info"],
        None,
        _interrupt_at("host.client.Client.open"),
        INTERRUPTED,
        "interrupted",
    ),
    (
        "ctrl-c-while-signing",
        SIGN,
        _protocol(RELAX),
        _interrupt_at("host.signing.sign_document"),
        INTERRUPTED,
        "interrupted",
    ),
    ("ctrl-c-while-writing", SIGN, _protocol(RELAX), _interrupt_at("os.fsync"), INTERRUPTED, "interrupted"),
    (
        "ctrl-c-while-recording-starts",
        ["--port", SIM, "record", "--out", "{tmp}/r.tonus"],
        None,
        _interrupt_at("host.client.Client.stream"),
        INTERRUPTED,
        "interrupted",
    ),
    (
        "ctrl-c-while-session-starts",
        ["--port", SIM, "session", "run", "--demo-seconds", "20", "--record", "{tmp}/r.tonus"],
        None,
        _interrupt_at("host.client.Client.session_start"),
        INTERRUPTED,
        "interrupted",
    ),
]

# every command that talks to a board takes --port (and --json) after its name too
PORT_COMMANDS = [
    ["info"],
    ["estop"],
    ["fault", "clear"],
    ["selftest"],
    ["monitor"],
    ["session", "start"],
    ["session", "pause"],
    ["session", "resume"],
    ["session", "stop"],
    ["session", "run"],
    ["session", "level", "5"],
    ["session", "rate", "3"],
    ["logs", "pull", "--out", "{tmp}/logs"],
    ["record", "--out", "{tmp}/r.tonus"],
    ["protocol", "show"],
    ["protocol", "remove"],
]
CASES += [
    (
        "port-after-" + "-".join(w for w in cmd if not w.startswith("{")),
        [*cmd, "--json", "--port", "socket://"],
        None,
        None,
        USAGE,
        "needs a host and a port",
    )
    for cmd in PORT_COMMANDS
]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TONUS_PORT", raising=False)
    monkeypatch.setenv(PASS_ENV, "passphrase-1")
    monkeypatch.setattr("serial.tools.list_ports.comports", list)
    return tmp_path


@pytest.mark.req("UX-CLI-2", "UX-CLI-3")
@pytest.mark.parametrize("argv,setup,patch,code,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_careless_use(isolated, monkeypatch, capsys, argv, setup, patch, code, words):
    tmp = isolated
    if setup is not None:
        setup(tmp)
        capsys.readouterr()
    before = _files(tmp)
    with monkeypatch.context() as mp:
        if callable(patch):
            patch(tmp, mp)
        got = main([a.replace("{tmp}", str(tmp)) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    assert got == code, (got, err)
    assert words in err, err
    assert err.startswith(("tonus: ", "usage: ")), err
    if code == USAGE and "--json" not in argv:
        assert out == ""
    assert _files(tmp) == before  # nothing half-written, no temporary file, no stray output


@pytest.mark.req("UX-CLI-3")
def test_the_table_covers_the_campaigns_classes():
    assert len(CASES) >= 130


@pytest.mark.req("UX-CLI-3")
def test_a_private_key_is_whole_or_absent_after_a_full_disk(isolated, monkeypatch, capsys):
    with monkeypatch.context() as mp:
        _fail_os("write", errno.ENOSPC)(isolated, mp)
        assert main(["keys", "new", "--out", "dr.key"]) == 1
    assert _files(isolated) == []
    # and so the next try works, and signing with it works
    assert main(["keys", "new", "--out", "dr.key"]) == 0
    assert Path("dr.key").stat().st_size > 0 and Path("dr.key").stat().st_mode & 0o077 == 0


@pytest.mark.req("UX-CLI-1")
def test_an_unexpected_error_is_one_line_that_says_it_is_a_bug(isolated, monkeypatch, capsys):
    def broken(*a, **k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("host.commands.keys.run_show", broken)
    monkeypatch.setattr("host.cli.importlib.import_module", _wrapping_keys(broken))
    assert main(["keys", "show", "x.pub"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "bug in tonus" in err and "TONUS_DEBUG=1" in err


def _wrapping_keys(broken):
    import importlib

    real = importlib.import_module

    def load(name):
        mod = real(name)
        if name == "host.commands.keys":
            mod.run_show = broken
        return mod

    return load


@pytest.mark.req("UX-CLI-4")
def test_a_level_above_the_phase_maximum_is_said_not_silently_clamped(capsys):
    from types import SimpleNamespace

    from host.client import StimEvent
    from host.commands.session import _level_setter

    asked = []
    c = SimpleNamespace(stim_level=lambda ua: asked.append(ua) or SimpleNamespace(ok=True, level_ua=ua))
    notes = []
    view = SimpleNamespace(note=lambda text, item: notes.append(text))
    ready = StimEvent(
        seq=0, state="READY", time_ms=0, level_ua=0, limit_ua=25000, impedance_ohm=800, triggers=0
    )
    _level_setter(c, SimpleNamespace(level=40000, json=True), view)(ready)
    out, err = capsys.readouterr()
    assert asked == [25000] and notes == ["level set to 25.0 mA"]
    assert "--level 40.0 mA is above this phase's approved maximum of 25.0 mA" in err
    line = json.loads(out)
    assert line["type"] == "note" and line["requested_ua"] == 40000 and line["limit_ua"] == 25000
    # an ETS phase without --level waits at 0 mA: said, not silent
    _level_setter(c, SimpleNamespace(level=None, json=False), view)(ready)
    out, err = capsys.readouterr()
    assert asked == [25000] and "ready at 0 mA" in err and "--level" in err and out == ""


@pytest.mark.req("UX-CLI-4", "SAF-LEVEL-1")
def test_session_level_keeps_the_link_alive_while_it_holds_the_level(monkeypatch, capsys):
    import contextlib
    from types import SimpleNamespace

    states = ["RUNNING", "RUNNING", "RUNNING", "DONE"]
    polled = []

    def info():
        polled.append(1)
        return SimpleNamespace(unwrap=lambda: SimpleNamespace(state=states[len(polled) - 1]))

    c = SimpleNamespace(
        stim_level=lambda ua: SimpleNamespace(unwrap=lambda: SimpleNamespace(level_ua=ua)), info=info
    )
    monkeypatch.setattr("host.commands._connect.connected", lambda args: contextlib.nullcontext(c))
    monkeypatch.setattr("time.sleep", lambda s: None)
    assert main(["--port", SIM, "session", "level", "12.5"]) == 0
    out, err = capsys.readouterr()
    assert out == "stimulation level 12.5 mA\n" and len(polled) == 4
    assert "holds while this command runs; Ctrl-C lets go" in err and "back to 0 mA" in err
