"""Fixtures shared by the host tests: a real browser, and one recorded demonstration session."""

import os
import shutil
import subprocess

import pytest

from host.cli import main


@pytest.fixture(scope="session")
def chromium_exe():
    """The Debian chromium binary, installed with apt-get when missing (a one-time cost)."""
    exe = shutil.which("chromium")
    if exe is None:
        cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:  # a stale package list: fetch it, then try once more
            subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        exe = shutil.which("chromium")
        if exe is None:
            pytest.skip(f"chromium is not installed and apt-get could not install it: {done.stderr[-300:]}")
    return exe


@pytest.fixture
def browser(chromium_exe):
    """A playwright browser on that chromium (tools/chromium.py)."""
    from playwright.sync_api import sync_playwright

    from tools import chromium

    with sync_playwright() as p:
        b = chromium.launch(p, chromium_exe)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def recorded_demo(tmp_path_factory):
    """A 20 s demonstration session recorded by `session run --record`: (recording, scores file).

    Recorded once for every test that reads one; a test that changes the files copies them first.
    """
    d = tmp_path_factory.mktemp("demo")
    code = main(
        [
            "--port",
            "sim://?seed=0&patient=healthy&speed=0",
            "--json",
            "session",
            "run",
            "--demo-seconds",
            "20",
            "--record",
            str(d / "s.tonus"),
            "--out",
            str(d / "s.json"),
        ]
    )
    assert code == 0
    return d / "s.tonus", d / "s.json"
