"""`tonus sim --listen`: one URL line on stdout, one host at a time, loopback only by default."""

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocol import codec, framing
from protocol import messages as m
from sim.server import ListenError, parse_listen

pytestmark = pytest.mark.req("SIM-TCP-1")

ROOT = Path(__file__).resolve().parents[2]


def start(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "host.cli", "sim", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def url_line(proc, timeout=30):
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    assert sel.select(timeout), "tonus sim printed no URL"
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        raise AssertionError(f"tonus sim exited with {proc.returncode}: {proc.stderr.read()}")
    return line


def hello(sock, seq=1):
    """Send HELLO and return its response, read off the socket."""
    sock.sendall(
        b"\x00" + framing.encode(codec.dumps(m.build(m.REQUEST, seq, m.HELLO, min_version=1, max_version=1)))
    )
    decoder = framing.Decoder()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        data = sock.recv(4096)
        assert data, "the server closed the connection"
        for payload in decoder.feed(data):
            msg = m.parse(codec.loads(payload))
            if msg[0] == m.RESPONSE and msg[1] == seq:
                return msg
    raise AssertionError("no HELLO response")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serves_the_link_and_stops_cleanly(stop_signal):
    proc = start("--listen", "127.0.0.1:0", "--seed", "5")
    try:
        line = url_line(proc)
        match = re.fullmatch(r"socket://127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        port = int(match.group(1))
        first = socket.create_connection(("127.0.0.1", port), timeout=10)
        reply = hello(first)
        assert reply[3][2] == "sim"
        # a second host replaces the first, which sees its connection end
        second = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert hello(second, seq=9)[1] == 9
        first.settimeout(5)
        assert first.recv(4096) == b""
        first.close()
        second.close()
        proc.send_signal(stop_signal)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert out == ""  # nothing after the URL line
    assert "host connected" in err


def test_refuses_a_non_loopback_address():
    proc = start("--listen", "0.0.0.0:0")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert out == ""
    assert "not a loopback address" in err and "--allow-remote" in err


def test_a_bad_scenario_is_reported_before_listening(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[event]]\nat_ms = 1\naction = 'explode'\n")
    proc = start("--scenario", os.fspath(bad))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert out == ""
    assert "bad.toml: event 1: unknown action 'explode'" in err


@pytest.mark.parametrize("text", ["127.0.0.1:0", "localhost:8080", "[::1]:0"])
def test_loopback_listen_addresses_are_accepted(text):
    host, port = parse_listen(text)
    assert host in ("127.0.0.1", "localhost", "::1")
    assert 0 <= port <= 65535


@pytest.mark.parametrize(
    "text", ["10.1.2.3:0", "0.0.0.0:0", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", ":0"]
)
def test_bad_or_remote_listen_addresses_are_refused(text):
    with pytest.raises(ListenError):
        parse_listen(text)


def test_remote_listening_needs_the_explicit_flag():
    assert parse_listen("0.0.0.0:0", allow_remote=True) == ("0.0.0.0", 0)
