"""zcbor in an environment of its own (it needs cbor2 5.x; the host uses 6.x)."""

import subprocess
import sys
from pathlib import Path

from tools.mpwasm import ROOT, Unavailable, pins

VENV = ROOT / ".cache" / "zcbor-venv"
SCRIPT = Path(__file__).resolve().parent / "cddl_validate.py"


def python():
    """The venv's interpreter, created and filled on first use."""
    exe = VENV / "bin" / "python"
    marker = VENV / "tonus-pins.txt"
    wanted = "\n".join(pins()["zcbor"])
    if exe.exists() and marker.exists() and marker.read_text() == wanted:
        return exe
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True)
        subprocess.run(
            [str(exe), "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins()["zcbor"]],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        raise Unavailable(f"cannot install zcbor: {getattr(e, 'stderr', '') or e}") from e
    marker.write_text(wanted)
    return exe


def validate(cddl, rule, items):
    """For each CBOR item: None if it matches `rule`, else zcbor's reason."""
    proc = subprocess.run(
        [str(python()), str(SCRIPT), str(cddl), rule],
        input="".join(item.hex() + "\n" for item in items),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != len(items):
        raise RuntimeError(f"zcbor validation did not run: {proc.stderr[-800:]}")
    return [None if line == "ok" else line for line in lines]
