"""A 30-minute simulated session with the host client in the loop, and request latency.

usage: python -m benchmarks.session_speed [--minutes M] [--pings N]
Prints simulated seconds per wall second for a streamed demonstration
session through sim:// (the simulator in-process, in lockstep with the
client's reads, every EMG frame decoded by the client), and the median and
95th-percentile round trip of a PING on sim:// and on a separately started
`tonus sim` over TCP (paced to the wall clock, as a board would be).
"""

import argparse
import statistics
import subprocess
import sys
import time

from host.client import Client, EmgFrame, StateChanged


def session(minutes):
    with Client.open("sim://?seed=0&patient=hypertonic&speed=0") as c:
        c.stream(True)
        c.session_start(demo_s=int(minutes * 60)).unwrap()
        frames = samples = 0
        t0 = time.perf_counter()
        while True:
            item = c.poll(5.0)
            if item is None:
                raise RuntimeError("the session stalled")
            if isinstance(item, EmgFrame):
                frames += 1
                samples += item.count
            elif isinstance(item, StateChanged) and item.to_state == "DONE":
                break
        wall = time.perf_counter() - t0
    return wall, frames, samples


def pings(url, n):
    with Client.open(url) as c:
        c.ping()
        rtts = []
        for _ in range(n):
            t0 = time.perf_counter()
            c.ping().unwrap()
            rtts.append(time.perf_counter() - t0)
    rtts.sort()
    return statistics.median(rtts) * 1000, rtts[int(0.95 * (len(rtts) - 1))] * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--pings", type=int, default=200)
    args = ap.parse_args()
    wall, frames, samples = session(args.minutes)
    sim_s = args.minutes * 60
    print(f"{args.minutes:g}-minute demonstration session, hypertonic patient, EMG streamed to the client")
    print(f"  wall time {wall:.1f} s for {sim_s:.0f} simulated s: {sim_s / wall:.1f} simulated s per wall s")
    print(f"  {frames} EMG frames, {samples} samples ({samples / sim_s:.0f} per simulated s)")
    med, p95 = pings("sim://?seed=0&speed=0", args.pings)
    print(f"PING round trip, sim:// in-process: median {med:.2f} ms, p95 {p95:.2f} ms (wall)")
    server = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "sim", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        med_t, p95_t = pings(url, args.pings)
    finally:
        server.terminate()
        server.wait(10)
    print(f"PING round trip, tonus sim over TCP (real time): median {med_t:.2f} ms, p95 {p95_t:.2f} ms")
    print(f"ratio TCP / in-process median: {med_t / med:.1f}")


if __name__ == "__main__":
    main()
