"""The campaign's plan (seeded cases, every fault kind first), its run, and its table."""

import logging
import random

from host import therapy_file
from protocol import faults
from qa.campaign.bench import PROTOCOL_DIR
from qa.campaign.oracles import FAULTS, LOOP_METHODS, Case, tolerance_ua
from qa.campaign.session import run_case
from sim.patient import PROFILES

PROTOCOLS = ("stimulation-trial-1min.toml", "stimulation-trial-cycled.toml", "ets-trial-short.toml")
POLICIES_UA = (
    25000,
    40000,
    100000,
)  # the device policy; it refuses a protocol above it, so never below 25 mA
HEARTBEATS_MS = (500, 750, 990)  # a host-driven session stops within 1 s of silence


def plan(seed, sessions):
    """`sessions` seeded cases; the first ones cycle through every fault kind, then at random."""
    rnd = random.Random(seed)
    kinds = list(FAULTS)
    cases = []
    for i in range(sessions):
        kind = kinds[i % len(kinds)] if i < 2 * len(kinds) else rnd.choice(kinds)
        cases.append(_case(rnd, i, seed, kind))
    return cases


def _case(rnd, i, seed, kind):
    fault = FAULTS[kind]
    protocols = [p for p in PROTOCOLS if not fault.ets_only or p.startswith("ets")]
    protocol = rnd.choice(protocols)
    host = True if fault.host_only else rnd.random() < 0.5
    policy = rnd.choice(POLICIES_UA)
    limit = min(policy, _limit_of(protocol))
    level = rnd.randrange(3000, limit + 1, 500)
    param = 0.0
    if kind == "overcurrent":
        param = rnd.uniform(25, 100)
    elif kind == "weak_source":
        param = rnd.uniform(25, 80)
    elif kind == "sense_stuck":
        param = float(rnd.choice((0, rnd.randrange(0, 2 * limit, 100))))
    elif kind == "sense_drift":
        param = rnd.choice((-1, 1)) * rnd.uniform(20, 300)
    elif kind == "charge_imbalance":
        # the second phase short of the first by more than the tolerance at her level
        # (short, not over: an over-current second phase is OVERCURRENT first)
        least = 100 * tolerance_ua(level) / level + 5
        param = -rnd.uniform(least, 90)
    elif kind in ("exception", "memory"):
        param = float(rnd.randrange(len(LOOP_METHODS)))
    return Case(
        number=i,
        seed=seed * 100003 + i,
        protocol=protocol,
        patient=rnd.choice(sorted(PROFILES)),
        policy_ua=policy,
        host=host,
        heartbeat_ms=rnd.choice(HEARTBEATS_MS) if host else 0,
        level_ua=level,
        fault=kind,
        at_us=rnd.randrange(500_000, 30_000_000),  # any µs: mid-pulse, mid-tick
        param=round(param, 1),
    )


_LIMITS: dict[str, int] = {}  # protocol file -> its smallest amplitude limit, µA


def _limit_of(protocol):
    if protocol not in _LIMITS:
        doc, _problems = therapy_file.load(PROTOCOL_DIR / protocol)
        stim = [p["amplitude_max_ua"] for p in doc["phases"] if "amplitude_max_ua" in p]
        _LIMITS[protocol] = min([doc["limits"]["amplitude_max_ua"], *stim])
    return _LIMITS[protocol]


def run(cases, jobs=1, progress=None):
    """Run the cases (in `jobs` processes); Results in case order."""
    if jobs <= 1:
        out = []
        for c in cases:
            out.append(run_case(c))
            if progress:
                progress(out[-1])
        return out
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, initializer=quiet) as pool:
        out = []
        for r in pool.map(run_case, cases, chunksize=4):
            out.append(r)
            if progress:
                progress(r)
        return out


def quiet():
    # a watchdog reset or a power cut is what the campaign injects: not news
    logging.getLogger("tonus.sim").setLevel(logging.ERROR)


def table(results):
    """The Markdown table of docs/interlocks.md: per fault kind, sessions, trips and the worst reaction."""
    rows = [
        (
            "| injected fault | expected | requirement | deadline | measured from | sessions | tripped | "
            "reported | worst reaction (ms) | failed |"
        ),
        "| --- | --- | --- | --- | --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for kind, fault in FAULTS.items():
        mine = [r for r in results if r.case.fault == kind]
        if not mine:
            continue
        times = [r.reaction_us for r in mine if r.reaction_us is not None]
        worst = "%.1f" % (max(times) / 1000) if times else "—"
        if kind == "hang":
            wd = [r.extra["watchdog_us"] for r in mine if "watchdog_us" in r.extra]
            if wd:
                worst += "; reset %.0f" % (max(wd) / 1000)
        if kind in ("lead_off", "saturation"):
            worst = "{:d} triggers".format(sum(r.extra.get("triggers_while_flagged", 0) for r in mine))
        seen = sorted({r.code for r in mine if r.code})
        rows.append(
            "| {} | {} | {} | {} | {} | {:d} | {:d} | {} | {} | {:d} |".format(
                kind,
                "/".join(faults.name(c) for c in fault.codes) or "—",
                ", ".join(fault.reqs),
                fault.deadline,
                fault.measured_from,
                len(mine),
                sum(1 for r in mine if r.code),
                ", ".join(faults.name(c) for c in seen) or "—",
                worst,
                sum(1 for r in mine if r.problems),
            )
        )
    return "\n".join(rows)


def describe(r):
    c = r.case
    return "#{:d} {} at {:.6f} s ({}, {}, {}, policy {:d} µA, level {:d} µA, param {}): {}".format(
        c.number,
        c.fault,
        c.at_us / 1e6,
        c.protocol,
        c.patient,
        f"host {c.heartbeat_ms:d} ms" if c.host else "button",
        c.policy_ua,
        c.level_ua,
        c.param,
        "; ".join(r.problems) or "ok",
    )
