"""How fast the simulator runs a streamed session with the host in the loop, in-process and over TCP.

usage: python -m benchmarks.session_speed [--minutes M] [--repeats R]

A demonstration session of M simulated minutes (default 30), hypertonic
patient, seed 0, EMG streamed to a host client that decodes every frame:
- in-process: sim:// unpaced, the simulator running inside the client's
  reads (lockstep); the CPU time of this process is simulator + host.
- over TCP: a separately started `tonus sim --speed 0` (unpaced: it runs as
  fast as it can while the host takes its output) and the client here; the
  simulator's CPU time is read from /proc for its process.
"x real time" is simulated seconds per CPU second (and per wall second,
which the machine's load also decides). Every run counts dropped samples
(gaps in the stream's sample indices and in its sequence numbers, frames
that failed their CRC) and hashes every byte the host received: the same
seed gives the same bytes, run after run and version after version, unless
the firmware's behaviour changed. Figures are min / median of the repeats.
"""

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time

from host.client import Client, EmgFrame, StateChanged
from protocol import messages as m

IN_PROCESS = "sim://?seed=0&patient=hypertonic&speed=0"
SERVER = [
    "-m",
    "host.cli",
    "sim",
    "--listen",
    "127.0.0.1:0",
    "--speed",
    "0",
    "--seed",
    "0",
    "--patient",
    "hypertonic",
]
HOST_TIME_S = 1_700_000_000  # a fixed start time keeps the device's bytes the same from run to run


def session(url, minutes, server_cpu=None):
    """Figures of one session through url; server_cpu() gives the serving process's CPU seconds, if any."""
    digest = hashlib.sha256()
    with Client.open(url) as c:
        read = c.port.read

        def hashing(timeout):
            data = read(timeout)
            digest.update(data)
            return data

        c.port.read = hashing
        c.stream(True)
        c.session_start(demo_s=int(minutes * 60), host_time_s=HOST_TIME_S).unwrap()
        frames = samples = gaps = 0
        end = None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        srv0 = server_cpu() if server_cpu else None
        while True:
            item = c.poll(10.0)
            if item is None:
                raise RuntimeError("the session stalled")
            if isinstance(item, EmgFrame):
                if end is not None and item.first_index != end:
                    gaps += item.first_index - end
                end = item.end_index
                frames += 1
                samples += item.count
            elif isinstance(item, StateChanged) and item.to_state == "DONE":
                break
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        srv = server_cpu() - srv0 if server_cpu else None
        lost_frames = c.missed[m.STREAM] + c.dropped_frames
    return {
        "cpu": cpu,
        "wall": wall,
        "server_cpu": srv,
        "frames": frames,
        "samples": samples,
        "dropped_samples": gaps,
        "lost_frames": lost_frames,
        "digest": digest.hexdigest(),
    }


def _proc_cpu(pid):
    """CPU seconds (user + system) of process pid, from /proc (Linux)."""
    with open(f"/proc/{pid:d}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _served(minutes):
    server = subprocess.Popen(
        [sys.executable, *SERVER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        url = server.stdout.readline().strip()
        if not url.startswith("socket://"):
            raise RuntimeError("tonus sim did not start")
        cpu = (lambda: _proc_cpu(server.pid)) if os.path.exists(f"/proc/{server.pid:d}/stat") else None
        return session(url, minutes, cpu)
    finally:
        server.terminate()
        server.wait(10)


def _report(title, runs, sim_s, server):
    print(title)
    for i, r in enumerate(runs):
        line = "  run {:d}: {:d} frames, {:d} samples, {:d} dropped samples, {:d} lost frames".format(
            i + 1, r["frames"], r["samples"], r["dropped_samples"], r["lost_frames"]
        )
        print(line + ", bytes sha256 {}".format(r["digest"][:16]))

    def row(label, key):
        xs = [sim_s / r[key] for r in runs]
        print(f"  {label!s:<44} min {min(xs):7.1f}  median {statistics.median(xs):7.1f}  (x real time)")

    if server:
        row("simulator process, per CPU second", "server_cpu")
        row("host process, per CPU second", "cpu")
    else:
        row("simulator + host (one process), per CPU second", "cpu")
    row("per wall second", "wall")
    if server:
        # an unpaced server runs on while a request is on its way: the session starts at another instant
        print("  (over TCP the bytes depend on when each request arrives; in-process they cannot)")
    else:
        same = len({r["digest"] for r in runs}) == 1
        print("  the same bytes in every run: %s" % ("yes" if same else "NO"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sim_s = args.minutes * 60
    print(
        f"{args.minutes:g}-minute demonstration session, hypertonic patient, seed 0, EMG streamed to the host"
    )
    runs = [session(IN_PROCESS, args.minutes) for _ in range(args.repeats)]
    _report("in-process (sim://, unpaced)", runs, sim_s, server=False)
    runs = [_served(args.minutes) for _ in range(args.repeats)]
    _report(
        "over TCP (tonus sim --speed 0, socket://)", runs, sim_s, server=runs[0]["server_cpu"] is not None
    )


if __name__ == "__main__":
    main()
