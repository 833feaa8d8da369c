"""The emulated Pico as a Python object: start it, act on its board, read what it does.

    with EmulatedPico.start(patient="healthy", seed=1) as pico:
        print(pico.url)                   # socket://127.0.0.1:PORT, the board's USB CDC
        pico.press_estop(); pico.state()  # output stage, e-stop, EMG counters, resets, board time

The board is tools/emulated_pico/board.mjs under Node (rp2040js from npm,
installed by `npm ci` into this folder on first use, as pinned by its
package-lock.json), running MicroPython's RPI_PICO firmware with this tree
deployed as `tonus flash` deploys it (image.py). The ADS1292R model streams
a simulated patient's EMG (sim/patient.py, sim/emg_model.py): this side
turns the model's samples into the ring words the firmware's capture program
produces (LOFF_STAT << 24 | channel-1 code) and sends them ahead of need.
"""

import base64
import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from firmware import ads1292 as ads
from tools.emulated_pico import image

HERE = Path(__file__).resolve().parent
_REPLY_S = 30.0  # the board runs between host turns: a request waits at most one slice, but CI is loaded
_CHUNK = 1000  # EMG words per message (0.5 s at 2 kHz)


class BoardError(Exception):
    """The emulated board refused a request or is gone."""


def ensure_node_modules():
    """Install the pinned rp2040js with `npm ci` unless it is there already; Unavailable if it cannot be."""
    meta = HERE / "node_modules" / "rp2040js" / "package.json"
    want = json.loads((HERE / "package.json").read_text())["dependencies"]["rp2040js"]
    if meta.exists() and json.loads(meta.read_text())["version"] == want:
        return
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        raise image.Unavailable("node and npm are needed for the emulated Pico (rp2040js)")
    proc = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0 or not meta.exists():
        raise image.Unavailable(f"npm ci of rp2040js failed: {proc.stderr.strip()[-400:]}")


def ring_words(samples_dv, status, afe):
    """Ring words for model samples (0.1 µV): the 24-bit code the ADS1292R gives, lead-off in bits 24-28.

    The inverse of firmware/ads1292.py Calibration: code = dv * gain * 2**23 / (10 * Vref[µV]),
    clipped to the converter's range.
    """
    scale = afe["gain"] * (1 << 23) / (10.0 * afe["vref_uv"])
    codes = np.clip(
        np.rint(np.asarray(samples_dv, dtype=np.float64) * scale), -ads.FULL_SCALE, ads.FULL_SCALE
    )
    words = codes.astype(np.int64) & 0xFFFFFF
    if status & 1:  # H.EMG_LEAD_OFF
        words |= ads.EMG_LOFF << ads.WORD_LOFF_SHIFT
    return words.astype("<u4")


def provisioning_files(public_key, policy_ua):
    """The /data records `tonus flash --provision` writes: trust public_key (Ed25519), a device policy."""
    from host import signing
    from host.provisioning import KEYS, POLICY, policy, updated_keys
    from protocol import record

    return {
        f"{image.flashing.DATA_DIR}/{KEYS}": record.pack(
            updated_keys({}, add=[signing.public_raw(public_key)])
        ),
        f"{image.flashing.DATA_DIR}/{POLICY}": record.pack(policy(policy_ua)),
    }


def approve(client, path, private_key, slowdown=25.0):
    """Sign the protocol file at path for the board behind client and upload it, as a clinician would.

    The board must trust private_key's public key (provisioning_files at start). The sequence is
    raised above what the board last stored, so one board takes protocols one after another.
    slowdown: wall seconds per board second at most; the signature check takes seconds of board
    time, so the commit's wait is stretched by it (a commit sent again would be a rollback).
    """
    import contextlib

    from host import signing, therapy_file
    from host.requests import ProtocolCommit
    from host.upload import upload

    doc, problems = therapy_file.load(path)
    if problems:
        raise ValueError(f"{path} has problems; 'tonus protocol check' lists them")
    doc["device"] = client.hello().unwrap().serial
    doc["sequence"] = max(doc["sequence"], client.protocol_show().unwrap().max_sequence + 1)
    kept = client.timeout
    client.timeout = max(kept, ProtocolCommit.min_timeout * slowdown)
    try:
        return upload(lambda: contextlib.nullcontext(client), signing.sign_document(doc, private_key))
    finally:
        client.timeout = kept


class PatientFeed:
    """Ring words from sim's patient model, in order, as many as asked."""

    def __init__(self, afe, patient="healthy", seed=0):
        from sim.emg_model import EmgModel
        from sim.patient import Patient

        self.afe = afe
        rate = self.afe["rate_hz"]
        self.patient = Patient(patient, seed, rate)
        self.model = EmgModel(self.patient, seed, rate)
        self.sent = []  # every word sent, for checking what the firmware read

    def take(self, n):
        samples, status = self.model.take(n)
        words = ring_words(samples, status, self.afe)
        self.sent.append(words.copy())
        return words

    def words(self):
        return np.concatenate(self.sent) if self.sent else np.zeros(0, dtype="<u4")


class EmulatedPico:
    """A running emulated board. Use start(); close() (or the with-block) ends it."""

    def __init__(self, proc, workdir, feed, owns_workdir):
        self._proc = proc
        self._workdir = workdir
        self._owns = owns_workdir
        self.feed = feed
        self.events = queue.Queue()  # resets, USB enumerations, as dicts
        self.log = []  # the harness's stderr lines
        self._replies = {}
        self._cond = threading.Condition()
        self._next_id = 1
        self._wlock = threading.Lock()
        self.port = None
        self._ready = threading.Event()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._ready.wait(60):
            self.close()
            raise BoardError("the emulated board did not start: {}".format("\n".join(self.log[-10:])))
        self._feed_emg()  # the first words are there before the front end starts converting

    @classmethod
    def start(
        cls,
        patient="healthy",
        seed=1,
        estop_open=False,
        load_ohms=1000,
        workdir=None,
        extra_files=None,
        root=image.flashing.ROOT,
        hold_start=False,
    ):
        """Build the image of this tree, boot it, return once the USB CDC listens.

        extra_files: more {path: bytes} for the board's filesystem (measurement scripts).
        root: the source tree whose firmware/ and protocol/ are deployed.
        hold_start: START held at power-on, so the board boots to its maintenance REPL (mpremote).
        Raises image.Unavailable when the firmware, the bootrom or Node is missing.
        """
        uf2 = image.firmware_path()
        ensure_node_modules()
        owns = workdir is None
        workdir = Path(workdir or tempfile.mkdtemp(prefix="tonus-pico-"))
        built = image.build(workdir, root=root, extra=extra_files)
        prof = json.loads((Path(root) / image.flashing.PROFILE).read_text())
        cfg = {
            "firmware": str(uf2),
            "bootrom": str(built["bootrom"]),
            "fs_image": str(built["fs_image"]),
            "fs_offset": image.FS_OFFSET,
            "pins": prof["pins"],
            "output": prof["output"],
            "hold_ms": prof["output"]["hold_ms"],
            "load_ohms": load_ohms,
            "estop_open": estop_open,
            "hold_start": hold_start,
            "emg_low_water": prof["afe"]["rate_hz"] // 5,
            "host": "127.0.0.1",
            "port": 0,
        }
        proc = subprocess.Popen(
            ["node", str(HERE / "board.mjs"), json.dumps(cfg)],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        feed = PatientFeed(prof["afe"], patient, seed)
        return cls(proc, workdir, feed, owns)

    # -- plumbing ---------------------------------------------------------

    def _send(self, msg):
        with self._wlock:
            try:
                self._proc.stdin.write(json.dumps(msg) + "\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, ValueError) as e:
                raise BoardError("the emulated board has exited") from e

    def _read_stdout(self):
        for line in self._proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                self.log.append(line.rstrip())
                continue
            if "id" in msg:
                with self._cond:
                    self._replies[msg["id"]] = msg
                    self._cond.notify_all()
            elif msg["ev"] == "emg_need":
                self._feed_emg()
            elif msg["ev"] == "ready":
                self.port = msg["port"]
                self._ready.set()
            else:
                self.events.put(msg)
        with self._cond:
            self._cond.notify_all()

    def _feed_emg(self):
        self._send({"op": "emg", "data": base64.b64encode(self.feed.take(_CHUNK).tobytes()).decode()})

    def _read_stderr(self):
        for line in self._proc.stderr:
            self.log.append(line.rstrip())

    def request(self, op, **args):
        with self._cond:
            rid = self._next_id
            self._next_id += 1
        self._send(dict(args, id=rid, op=op))
        deadline = time.monotonic() + _REPLY_S
        with self._cond:
            while rid not in self._replies:
                if self._proc.poll() is not None:
                    raise BoardError("the emulated board has exited: {}".format("\n".join(self.log[-10:])))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BoardError(f"the emulated board did not answer {op}")
                self._cond.wait(left)
            reply = self._replies.pop(rid)
        if not reply.pop("ok"):
            raise BoardError(reply["error"])
        reply.pop("id")
        return reply

    # -- the board --------------------------------------------------------

    @property
    def url(self):
        return f"socket://127.0.0.1:{self.port:d}"

    def state(self):
        """Output stage, e-stop, buttons, EMG counters, resets, flash operations and board time (ns)."""
        return self.request("state")

    def board_ms(self):
        return self.state()["t_ns"] / 1e6

    def press_estop(self):
        """Open the e-stop loop (a press); returns the board time (ns) it happened at."""
        return self.request("estop", open=True)["t_ns"]

    def release_estop(self):
        return self.request("estop", open=False)["t_ns"]

    def button(self, name, pressed):
        """Press or release start, up or down."""
        return self.request("button", name=name, pressed=pressed)["t_ns"]

    def set_load(self, ohms):
        """The electrodes' load in ohms, or None for an open electrode."""
        self.request("load", ohms=ohms)

    def power_cycle(self):
        """Cut and restore the supply: a new chip around the same flash (waits for nothing)."""
        while not self.events.empty():  # what happened before the cut
            self.events.get_nowait()
        self.request("power_cycle")

    def write_files(self, files):
        """Put {path: bytes} on the board's filesystem as a bench would: a power cycle with START
        held (the maintenance boot), mpremote, a power cycle into the application. The host's
        port must be free (one host at a time)."""
        self.button("start", True)
        self.power_cycle()
        if self.wait_event("usb", 120) is None:
            raise BoardError("the board did not come back in its maintenance boot")
        self.wait_board_ms(200)
        script = "import os\n"
        for path in sorted({p.rsplit("/", 1)[0] for p in files if "/" in p.lstrip("/")}):
            script += f"try:\n    os.mkdir({path!r})\nexcept OSError:\n    pass\n"
        for path, data in files.items():
            script += f"with open({path!r}, 'wb') as f:\n    f.write({bytes(data)!r})\n"
        mpremote = shutil.which("mpremote", path=str(Path(sys.executable).parent)) or "mpremote"
        r = subprocess.run(
            [mpremote, "connect", self.url, "exec", script],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        self.button("start", False)
        if r.returncode != 0:
            raise BoardError(f"writing files on the board failed: {r.stderr[-500:]}")
        self.power_cycle()
        if self.wait_event("usb", 120) is None:
            raise BoardError("the board did not come back after its files were written")

    def console(self):
        """The last bytes the board wrote on its USB since its last reset, a host listening or not."""
        return base64.b64decode(self.request("console")["data"])

    def profile(self, on, every=997, top=200):
        """Start sampling the CPU's PC every `every` cycles, or stop and return [(pc, count)]."""
        r = self.request("profile", on=on, every=every, top=top)
        return [tuple(s) for s in r.get("samples", [])]

    def wait_board_ms(self, ms, timeout=None):
        """Wait until `ms` more milliseconds of board time have passed; returns the state then."""
        t_end = self.state()["t_ns"] + ms * 1e6
        deadline = time.monotonic() + (timeout or max(60.0, ms / 1000 * 60))
        while True:
            s = self.state()
            if s["t_ns"] >= t_end:
                return s
            if time.monotonic() > deadline:
                raise BoardError(f"board time did not reach +{ms:g} ms")
            time.sleep(min(0.2, (t_end - s["t_ns"]) / 1e9))

    def wait_event(self, ev, timeout):
        """The next event of kind ev ("reset", "usb"), or None after timeout seconds of wall time."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = self.events.get(timeout=left)
            except queue.Empty:
                return None
            if msg["ev"] == ev:
                return msg

    def close(self):
        if self._proc.poll() is None:
            try:
                self._send({"id": 0, "op": "quit"})
                self._proc.wait(5)
            except (BoardError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()
        if self._owns and os.environ.get("TONUS_PICO_KEEP") != "1":
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
