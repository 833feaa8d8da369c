"""What CLI tests share: running `tonus` in-process, and a `tonus sim` served on TCP."""

import contextlib
import selectors
import subprocess
import sys
from pathlib import Path

import pytest

from host.cli import main

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30


def run_cli(capsys, *argv):
    """(exit code, stdout, stderr) of `tonus ARGV` run in this process."""
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@contextlib.contextmanager
def served_sim(log_path, *args):
    """`tonus sim --listen 127.0.0.1:0 ARGS` in its own process; yields its socket:// URL."""
    with open(log_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "host.cli", "sim", "--listen", "127.0.0.1:0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(START_TIMEOUT_S):
                pytest.fail(
                    f"tonus sim printed no URL within {START_TIMEOUT_S:d} s:\n{Path(log_path).read_text()}"
                )
        url = proc.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:"), (url, Path(log_path).read_text())
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
