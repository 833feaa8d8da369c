"""What a test run's evidence must say about where it came from (IEC 62304 configuration records).

Standard library only, like the rest of host/trace: the commit and whether
the tree differed from it, who ran the tests and when, the Python and the
versions of tonus and every package it declares, and what the targets were
(kind, serial, firmware version and the hash of the image they ran).
"""

import getpass
import importlib.metadata
import os
import platform
import re
import subprocess

SIMULATOR_IMAGE = "the simulator runs the firmware sources of this tree"


def git_state(root):
    """{"commit", "dirty", "branch"} of the checkout at root; values None with "error" when there is none."""

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        # tracked files changed, staged or not, or files git does not ignore: the run is not of `commit`
        dirty = bool(git("status", "--porcelain"))
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
    except (OSError, subprocess.SubprocessError) as e:
        return {
            "commit": None,
            "dirty": None,
            "branch": None,
            "error": f"not a git checkout ({type(e).__name__})",
        }
    return {"commit": commit, "dirty": dirty, "branch": branch}


def operator():
    """Who ran the tests: TONUS_OPERATOR (a name or ID for the record), else the login name."""
    name = os.environ.get("TONUS_OPERATOR", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _name(requirement):
    return re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]


def tool_versions(extra=("pytest",)):
    """{distribution: version} of tonus, every package it declares (all extras) and `extra`; the
    packages not installed are "not installed"."""
    out = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    try:
        out["tonus"] = importlib.metadata.version("tonus")
        names = [_name(r) for r in importlib.metadata.requires("tonus") or ()]
    except importlib.metadata.PackageNotFoundError:
        out["tonus"] = "not installed"
        names = []
    for name in sorted(set(names) | set(extra), key=str.lower):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def source_image_sha256(root):
    """host/flashing.py's image_hash of the firmware sources in root, as the simulator runs them."""
    from host import flashing

    files = [(item.remote, item.source.read_bytes()) for item in flashing.image_items(root) if item.source]
    return flashing.image_hash(files).hex()


def target_facts(url, hello, info, root):
    """What a HIL target was: kind (simulator, board), serial, board, firmware version and image hash."""
    simulator = info.board == "sim"
    facts = {
        "url": url,
        "kind": "simulator" if simulator else "board",
        "serial": info.serial,
        "board": info.board,
        "firmware_version": info.firmware_version,
    }
    if hello.firmware_hash:
        facts["image_sha256"], facts["image_from"] = hello.firmware_hash.hex(), "reported by the device"
    elif simulator:
        facts["image_sha256"], facts["image_from"] = source_image_sha256(root), SIMULATOR_IMAGE
    else:
        facts["image_sha256"], facts["image_from"] = (
            None,
            "the device reports none: not deployed by tonus flash",
        )
    return facts
