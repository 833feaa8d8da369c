"""tonus view in headless chromium: sample-to-screen latency, the page's cost over a session, drops.

usage: python -m benchmarks.view_latency [--latency-s S] [--minutes M] [--speed X]

Runs the view on the in-process simulator (a hypertonic patient, a
relaxation protocol: 1 min baseline, relaxation, 1 min baseline) with the
clinician's page open in Debian's chromium (Playwright), and prints:

- sample-to-screen latency, p50/p99: from the device's time of a frame's
  newest sample (its HAL clock when the host received the frame, less the
  frame's age in samples) to the page's redraw that showed it (the page
  stamps each redraw; both clocks are this computer's). Paced in real time,
  as a board is, for --latency-s seconds. Goal: p99 <= 100 ms.
- the page over an M-minute session run X times faster than real time (the
  page then draws X times more frames a second than with a board): the
  renderer's main-thread busy time per wall second and its JS heap, every
  few simulated minutes (flat is good), from Chrome's Performance metrics.
- frames: delivered by the link, in the recording, missed by the page (it
  fell behind and the server skipped them for it, or the device could not
  send them), and missing from
  the recording although the link delivered them (must be 0).
"""

import argparse
import itertools
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from host import simclinic, therapy_file
from host.client import Client
from host.recording import Recorder, read
from host.view import serving
from host.view.state import plan_of
from protocol import messages as m
from tools import chromium

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "protocols" / "relaxation-downtraining.toml"


def protocol(folder, minutes):
    text = EXAMPLE.read_text(encoding="utf-8")
    head = text[: text.index("[[phase]]")].replace("max_session_minutes = 20", "max_session_minutes = 60")
    relax_s = max(60, int(minutes * 60) - 120)
    phases = (
        '[[phase]]\ntype = "baseline"\nduration_s = 60\n\n'
        f'[[phase]]\ntype = "relaxation"\nduration_s = {relax_s:d}\ntarget_percent = 80\nhold_s = 10\n'
        "tone_margin_percent = 100\n\n"
        '[[phase]]\ntype = "baseline"\nduration_s = 60\n'
    )
    path = Path(folder) / "bench.toml"
    path.write_text(head + phases, encoding="utf-8")
    return path


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


def run(args):
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    if exe is None:
        sys.exit("Debian's chromium is needed: apt-get install chromium")
    folder = Path(tempfile.mkdtemp(prefix="tonus-view-bench-"))
    ages = {}  # frame end index -> device age (ms) of its newest sample when the host got it
    with Client.open("sim://?seed=11&patient=hypertonic&speed=1") as c:
        proto = protocol(folder, args.minutes)
        simclinic.approve(c, proto)
        sim = simclinic.simulator_of(c)
        rate = c.info().unwrap().limits.emg_rate_hz
        rec_path = folder / "bench.tonus"
        plan = plan_of(therapy_file.load(proto)[0])
        # the heartbeat counts device time: at X times real time it allows the host 1/X of the
        # wall time a board would; keep it the board's second
        heartbeat_ms = int(1000 * max(1.0, args.speed))
        with (
            Recorder(rec_path, c.info().unwrap()) as rec,
            serving(c, rec, plan, heartbeat_ms) as (feed, server),
        ):

            def on_frame(frame, msg):
                ages[frame.end_index] = sim.board.now_ms() - (frame.end_index - 1) * 1000 / rate

            feed.on_frame = on_frame
            url = server.url
            with sync_playwright() as p:
                browser = chromium.launch(p, exe)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")
                page.goto(url)
                page.wait_for_function("window.tonus && window.tonus.live.connected")
                page.click("button[data-cmd=start]")
                time.sleep(args.latency_s)
                stamps = page.evaluate("window.tonus.rendered")
                latencies = [
                    ages[i] + (shown - got) for i, got, shown in stamps if i in ages and shown >= got
                ]
                print(
                    f"sample-to-screen latency over {len(latencies)} redraws in real time "
                    f"({args.latency_s:d} s):"
                )
                print(
                    f"  p50 {percentile(latencies, 0.5):.1f} ms   p99 {percentile(latencies, 0.99):.1f} ms"
                    f"   max {max(latencies):.1f} ms   (goal: p99 <= 100 ms)"
                )
                print(
                    "  of which device to host p50 "
                    f"{statistics.median(ages[i] for i, _g, _s in stamps if i in ages):.1f} ms, host "
                    f"to screen p50 {statistics.median(s - g for _i, g, s in stamps):.1f} ms"
                )

                print(f"  frames the device could not send meanwhile: {c.missed[m.STREAM]:d}")
                sim.clock.set_speed(args.speed)
                print(f"\nthe page over a {args.minutes:d}-minute session at {args.speed:g}x real time:")
                print("  device min   page busy (s per wall s)   JS heap MB   page frames")
                last_busy, last_wall = _busy(cdp), time.monotonic()
                next_min = (feed.view.tracker.elapsed_ms // 60000 // args.every + 1) * args.every
                while feed.alive and c.state != "DONE":
                    elapsed_min = feed.view.tracker.elapsed_ms / 60000
                    if elapsed_min >= next_min:
                        busy, now = _busy(cdp), time.monotonic()
                        heap = _metric(cdp, "JSHeapUsedSize") / 1e6
                        frames = page.evaluate("window.tonus.live.stats.frames")
                        print(
                            f"  {elapsed_min:10.0f}   {(busy - last_busy) / max(now - last_wall, 1e-9):24.3f}"
                            f"   {heap:10.1f}   {frames:11d}"
                        )
                        last_busy, last_wall = busy, now
                        next_min += args.every
                    time.sleep(0.5)
                time.sleep(1)
                stats = page.evaluate("window.tonus.live.stats")
                browser.close()
    recording = read(rec_path)
    ends = [e for e in recording.events if type(e).__name__ == "StateChanged" and e.from_state == "RUNNING"]
    print("\nthe session ended: {}".format(", ".join(f"{e.to_state} ({e.reason})" for e in ends)))
    frames = recording.frames
    unsent = sum((b.seq - a.seq - 1) % m.SEQ_MODULO for a, b in itertools.pairwise(frames))
    print(
        f"frames: {feed.view.tracker.frames:d} delivered by the link, {len(frames)} in the "
        f"recording (missing from it: {feed.view.tracker.frames - len(frames):d}); "
        f"the device could not send {unsent:d} (the link counted {c.missed[m.STREAM]:d})"
    )
    print(
        (
            "the page: {:d} frames shown; {:d} missing in what it got, of which {:d} it skipped while behind "
            "and the rest the device could not send"
        ).format(stats["frames"], stats["missed"], stats["behind"])
    )
    shutil.rmtree(folder, ignore_errors=True)


def _metric(cdp, name):
    return {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}[name]


def _busy(cdp):
    return _metric(cdp, "TaskDuration")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--latency-s", type=int, default=30, help="seconds of real-time streaming for the latency"
    )
    ap.add_argument("--minutes", type=int, default=30, help="length of the session")
    ap.add_argument(
        "--speed", type=float, default=4.0, help="times real time for the session after the latency"
    )
    ap.add_argument("--every", type=int, default=3, help="print the page's cost every N device minutes")
    run(ap.parse_args())


if __name__ == "__main__":
    main()
