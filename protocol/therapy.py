"""Therapy protocols: the schema and the rules, one definition for host and device.

A protocol document is a map with text keys and integer values in device
units (µA, µs, ms, s, 0.1 µV, Hz, percent). The host builds it from the
clinician's TOML (clinical units) and signs its deterministic CBOR; the
device re-validates the very same document against the same rules and
against its own limits, whatever the signature says.

validate() returns every problem it finds as (path, message); a path is a
tuple of keys and list indices, e.g. ("phases", 2, "pulse_width_us"), so the
host can point at the file line. Messages speak the clinician's language.
"""

from protocol import electrode
from protocol.codec import is_int
from protocol.phase_kinds import STIM_KINDS, uses_stimulation

FORMAT = 1
MAX_PHASES = 16
# Sequence numbers: the highest a protocol may carry, and the largest step
# above the highest one a device accepted. One signature with a huge number
# would otherwise use up the space and lock the device out of every later
# protocol; with the step bounded it takes millions of approvals.
SEQUENCE_MAX = 0xFFFFFFFF
SEQUENCE_STEP_MAX = 1000

# contraindication screening items: True means the condition is present
SCREENING = (
    ("active_infection", "active vaginal or pelvic infection"),
    ("unprocessed_trauma", "unprocessed trauma (psychotherapy comes first)"),
    ("recent_surgery_or_postpartum", "recent gynaecological surgery or postpartum recovery"),
    ("pregnancy", "pregnancy"),
    ("unexplained_bleeding", "unexplained bleeding"),
    ("panic_or_dissociation", "panic or dissociation during practice"),
    ("implanted_electronics", "pacemaker or other implanted electronics"),
)
# present conditions that rule out stimulation but not EMG biofeedback
STIM_ONLY_CONTRAINDICATIONS = ("pregnancy", "implanted_electronics")

# Pulse parameters common to the stimulating phases:
# key -> (low, high, clinical name, unit)
_PULSE = {
    "frequency_hz": (1, 100, "frequency", "Hz"),
    "pulse_width_us": (50, 450, "pulse width", "µs"),
    "interphase_gap_us": (0, 100, "interphase gap", "µs"),
    "amplitude_max_ua": (0, 100000, "maximum amplitude", "µA"),
    "ramp_up_ms": (0, 5000, "ramp up", "ms"),
    "ramp_down_ms": (0, 5000, "ramp down", "ms"),
}
AMPLITUDE_STEP_UA = 500  # the patient adjusts in 0.5 mA steps
# the smallest setting (0.1 mA, the device's resolution) must be at most 2 %
# of the maximum (IEC 60601-2-10 201.12.1.101): a maximum of at least 5 mA
AMPLITUDE_MIN_MAX_UA = 5000

# phase type -> {key: (low, high, clinical name, unit, required)}
PHASES = {
    "baseline": {
        "duration_s": (10, 600, "duration", "s", True),
    },
    "relaxation": {
        "duration_s": (60, 3600, "duration", "s", True),
        "target_dv": (5, 500, "absolute target", "0.1 µV", False),
        "target_percent": (50, 150, "target relative to baseline", "%", False),
        "hold_s": (1, 60, "hold time", "s", True),
        # a hold survives an excursion above target (or an untrusted stretch) this short
        "hold_grace_ms": (0, 3000, "grace for brief excursions within a hold", "ms", False),
        "tone_margin_percent": (5, 100, "rest-tone rise that advises stopping", "%", True),
    },
    "work_rest": {
        "repetitions": (1, 50, "repetitions", "", True),
        "work_s": (2, 30, "work time", "s", True),
        "rest_s": (2, 60, "rest time", "s", True),
        "target_percent_mvc": (10, 100, "target", "% of MVC", True),
    },
    "mvc": {
        "attempts": (1, 5, "attempts", "", True),
        "contraction_s": (2, 10, "contraction time", "s", True),
        "rest_s": (10, 120, "rest between attempts", "s", True),
    },
    "glazer": {
        "phasic_rest_s": (5, 60, "rest between phasic contractions", "s", True),
    },
    "ets": {
        "duration_s": (60, 3600, "duration", "s", True),
        "threshold_percent_mvc": (10, 90, "trigger threshold", "% of MVC", True),
        "hold_ms": (100, 5000, "time above threshold to trigger", "ms", True),
        "on_ms": (1000, 20000, "stimulation on time", "ms", True),
        "rest_ms": (2000, 60000, "rest after stimulation", "ms", True),
    },
    "stimulation": {
        "duration_s": (60, 3600, "duration", "s", True),
        "on_ms": (0, 60000, "on time (0: continuous)", "ms", True),
        "off_ms": (0, 120000, "off time", "ms", True),
    },
}


def _add_pulse(spec):
    for key, (lo, hi, name, unit) in _PULSE.items():
        spec[key] = (lo, hi, name, unit, True)


for _kind in STIM_KINDS:
    _add_pulse(PHASES[_kind])

# Glazer assessment timing (fixed by the method): pre-rest 60 s, 5 phasic
# contractions of 2 s (each followed by the configured rest), 5 tonic of 10 s
# with 10 s rest, 60 s endurance, post-rest 60 s
GLAZER_FIXED_S = 60 + 5 * 2 + 5 * (10 + 10) + 60 + 60

_TOP = {
    "format": "format version",
    "id": "protocol id",
    "sequence": "sequence number",
    "patient": "patient pseudonym",
    "probe": "probe type",
    "device": "device serial number",
    "approved_by": "approving clinician",
    "approved_on": "approval date",
    "budget": "session budget",
    "limits": "limits",
    "screening": "contraindication screening",
    "phases": "phases",
}
_OPTIONAL_TOP = {
    "valid_from": "valid from",
    "valid_until": "valid until",
    "title": "title",
    "notes": "notes",
    "emg": "EMG settings",
}
# the envelope the scores and feedback use: RMS over this window (whole 50 ms steps)
_EMG = {"window_ms": (50, 1000, "envelope window", "ms", False)}
EMG_WINDOW_STEP_MS = 50
_BUDGET = {
    "sessions": (1, 1000, "number of sessions", ""),
    "min_interval_s": (0, 7 * 86400, "minimum time between sessions", "s"),
    "max_session_s": (60, 7200, "maximum session length", "s"),
}
_LIMITS = {"amplitude_max_ua": (0, 100000, "maximum amplitude", "µA")}


# Text limits are in encoded UTF-8 bytes, not characters: the device's
# replies (INFO, PROTOCOL_SHOW, the commit reply) must fit one frame whatever
# script a clinician writes in. field -> (min bytes, max bytes)
TEXT_BYTES = {
    "id": (1, 40),
    "patient": (1, 32),
    "device": (8, 32),
    "approved_by": (1, 64),
    "attested_by": (1, 64),
    "title": (1, 80),
    "notes": (0, 400),
}
# bidirectional controls reorder what a reader sees (U+061C, U+200E/F,
# U+202A..E, U+2066..9): a text that displays differently from what was
# signed has no place in an approval
_BIDI = (0x061C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069)


def text_problem(v, key):
    """Why v cannot be the text field key, or None."""
    lo, hi = TEXT_BYTES[key]
    if not isinstance(v, str):
        return "must be text"
    n = len(v.encode())
    if n < lo or n > hi:
        return "must be %d to %d bytes of UTF-8 (this is %d)" % (lo, hi, n)
    for c in v:
        o = ord(c)
        if o < 0x20 or 0x7F <= o <= 0x9F:
            return "must not contain control characters (found U+%04X)" % o
        if o in _BIDI:
            return "must not contain bidirectional controls (found U+%04X)" % o
    return None


def _text_check(p, path, v, key, what):
    why = text_problem(v, key)
    if why:
        p.add(path, "%s %s" % (what, why))


def _date(v):
    # YYYY-MM-DD; the host checks the calendar, the device only the form
    if not (isinstance(v, str) and len(v) == 10 and v[4] == "-" and v[7] == "-"):
        return False
    for i in (0, 1, 2, 3, 5, 6, 8, 9):
        if not ("0" <= v[i] <= "9"):
            return False
    return 1 <= int(v[5:7]) <= 12 and 1 <= int(v[8:10]) <= 31


def _fmt(v, unit):
    return "%d %s" % (v, unit) if unit else "%d" % v


class _Problems:
    def __init__(self):
        self.items = []

    def add(self, path, msg):
        self.items.append((path, msg))

    def ranged(self, path, v, lo, hi, name, unit):
        if not is_int(v):
            self.add(path, "%s must be a whole number%s" % (name, (" of " + unit) if unit else ""))
            return False
        if v < lo or v > hi:
            self.add(
                path, "%s %s is outside %s to %s" % (name, _fmt(v, unit), _fmt(lo, unit), _fmt(hi, unit))
            )
            return False
        return True

    def table(self, base, doc, spec, name):
        """Check a map against {key: (lo, hi, name, unit[, required])}; True if all present and valid."""
        if not isinstance(doc, dict):
            self.add(base, "%s must be a table" % name)
            return False
        ok = True
        for key in doc:
            if key not in spec:
                self.add(base + (key,), "unknown setting '%s' in %s" % (key, name))
                ok = False
        for key in spec:
            entry = spec[key]
            required = entry[4] if len(entry) > 4 else True
            if key not in doc:
                if required:
                    self.add(base + (key,), "%s is missing from %s" % (entry[2], name))
                    ok = False
                continue
            ok = self.ranged(base + (key,), doc[key], entry[0], entry[1], entry[2], entry[3]) and ok
        return ok


def phase_seconds(phase):
    """Planned length of a validated phase in seconds (ETS and stimulation: their duration)."""
    kind = phase.get("type")
    if kind == "work_rest":
        return phase.get("repetitions", 0) * (phase.get("work_s", 0) + phase.get("rest_s", 0))
    if kind == "mvc":
        return phase.get("attempts", 0) * (phase.get("contraction_s", 0) + phase.get("rest_s", 0))
    if kind == "glazer":
        return GLAZER_FIXED_S + 5 * phase.get("phasic_rest_s", 0)
    return phase.get("duration_s", 0)


def session_seconds(doc):
    total = 0
    for ph in doc.get("phases", ()):
        if isinstance(ph, dict):
            total += phase_seconds(ph)
    return total


def _check_pulse(p, path, ph, area, cap_ua):
    f = ph["frequency_hz"]
    pw = ph["pulse_width_us"]
    gap = ph["interphase_gap_us"]
    amp = ph["amplitude_max_ua"]
    if amp % AMPLITUDE_STEP_UA:
        p.add(path + ("amplitude_max_ua",), "maximum amplitude must be a multiple of 0.5 mA")
    elif 0 < amp < AMPLITUDE_MIN_MAX_UA:
        p.add(
            path + ("amplitude_max_ua",),
            "maximum amplitude below 5 mA: the smallest step (0.1 mA) would exceed 2 % of it",
        )
    if 2 * pw + gap >= 1000000 // f:
        p.add(
            path + ("pulse_width_us",),
            "two phases of %d µs plus a %d µs gap do not fit in one period at %d Hz" % (pw, gap, f),
        )
    if amp > cap_ua:
        p.add(
            path + ("amplitude_max_ua",),
            "maximum amplitude %d µA exceeds the protocol limit of %d µA" % (amp, cap_ua),
        )
    if area and amp:
        if not electrode.density_ok(amp, pw, f, area):
            p.add(
                path + ("amplitude_max_ua",),
                "RMS current density %d µA/cm² at %d µA exceeds 2 mA/cm² for this probe (at most %d µA here)"
                % (
                    electrode.density_ua_per_cm2(amp, pw, f, area),
                    amp,
                    electrode.max_amplitude_ua(pw, f, area),
                ),
            )
        if not electrode.shannon_ok(amp, pw, area):
            p.add(
                path + ("amplitude_max_ua",),
                (
                    "charge per phase %d nC exceeds the safe charge for this probe "
                    "(Shannon k 1.5; at most %d µA here)"
                )
                % (electrode.charge_pc(amp, pw) // 1000, electrode.max_amplitude_ua(pw, f, area)),
            )
    on_ms = ph.get("on_ms", 0)
    ramps = ph["ramp_up_ms"] + ph["ramp_down_ms"]
    if on_ms and ramps > on_ms:
        p.add(
            path + ("ramp_up_ms",),
            "ramp up plus ramp down (%d ms) is longer than the on time (%d ms)" % (ramps, on_ms),
        )


def _check_phase(p, i, ph, area, cap_ua):
    """Check one phase; True when its settings are all present and in range."""
    path = ("phases", i)
    if not isinstance(ph, dict):
        p.add(path, "phase %d must be a table" % (i + 1))
        return False
    kind = ph.get("type")
    if not isinstance(kind, str) or kind not in PHASES:
        p.add(
            path + ("type",),
            "phase %d has an unknown type %r; use one of %s" % (i + 1, kind, ", ".join(sorted(PHASES))),
        )
        return False
    body = {}
    for k in ph:
        if k != "type":
            body[k] = ph[k]
    if not p.table(path, body, PHASES[kind], "phase %d (%s)" % (i + 1, kind)):
        return False
    if kind == "relaxation" and (("target_dv" in ph) == ("target_percent" in ph)):
        p.add(
            path + ("target_dv",),
            "phase %d: give exactly one target, absolute (µV) or relative to baseline (%%)" % (i + 1),
        )
    if kind == "relaxation" and ph.get("hold_grace_ms", 0) >= ph["hold_s"] * 1000:
        p.add(
            path + ("hold_grace_ms",),
            "phase %d: the grace for brief excursions must be shorter than the hold time" % (i + 1),
        )
    if kind == "stimulation" and ph["on_ms"] == 0 and ph["off_ms"] != 0:
        p.add(
            path + ("off_ms",),
            "phase %d: continuous stimulation (on time 0) cannot have an off time" % (i + 1),
        )
    if kind == "stimulation" and ph["on_ms"] and not ph["off_ms"]:
        p.add(path + ("off_ms",), "phase %d: work/rest stimulation needs an off time" % (i + 1))
    if kind in STIM_KINDS:
        _check_pulse(p, path, ph, area, cap_ua)
    return True


def validate(doc, device_limits=None):
    """Every problem with a protocol document, as a list of (path, message).

    device_limits (on the device) caps amplitude and session length further:
    {"amplitude_max_ua": ..., "max_session_s": ...}; the smallest limit wins.
    """
    p = _Problems()
    if not isinstance(doc, dict):
        p.add((), "a protocol is a table of settings")
        return p.items
    for key in doc:
        if key not in _TOP and key not in _OPTIONAL_TOP:
            p.add((key,), "unknown setting '%s'" % key)
    for key, what in _TOP.items():
        if key not in doc:
            p.add((key,), "%s is missing" % what)
    if p.items:
        return p.items
    if doc["format"] != FORMAT:
        p.add(
            ("format",), "format %r is not understood; this version reads format %d" % (doc["format"], FORMAT)
        )
        return p.items
    _text_check(p, ("id",), doc["id"], "id", "protocol id")
    p.ranged(("sequence",), doc["sequence"], 1, SEQUENCE_MAX, "sequence number", "")
    _text_check(p, ("patient",), doc["patient"], "patient", "patient pseudonym (no names)")
    _text_check(p, ("device",), doc["device"], "device", "device serial number")
    _text_check(p, ("approved_by",), doc["approved_by"], "approved_by", "approving clinician")
    for key in ("title", "notes"):
        if key in doc:
            _text_check(p, (key,), doc[key], key, _OPTIONAL_TOP[key])
    for key in ("approved_on", "valid_from", "valid_until"):
        if key in doc and not _date(doc[key]):
            p.add((key,), "%s must be a date written YYYY-MM-DD" % (_TOP.get(key) or _OPTIONAL_TOP[key]))
    area = 0
    if isinstance(doc["probe"], str) and doc["probe"] in electrode.PROBES:
        area = electrode.PROBES[doc["probe"]][0]
    else:
        p.add(
            ("probe",),
            "unknown probe type %r; this device knows %s"
            % (doc["probe"], ", ".join(sorted(electrode.PROBES))),
        )
    budget_ok = p.table(("budget",), doc["budget"], _BUDGET, "session budget")
    limits_ok = p.table(("limits",), doc["limits"], _LIMITS, "limits")
    cap_ua = doc["limits"]["amplitude_max_ua"] if limits_ok else 0
    max_s = doc["budget"]["max_session_s"] if budget_ok else 0
    if device_limits:
        cap_ua = min(cap_ua, device_limits.get("amplitude_max_ua", cap_ua))
        max_s = min(max_s, device_limits.get("max_session_s", max_s))
    _check_screening(p, doc)
    if "emg" in doc and p.table(("emg",), doc["emg"], _EMG, "EMG settings"):
        w = doc["emg"].get("window_ms", EMG_WINDOW_STEP_MS)
        if w % EMG_WINDOW_STEP_MS:
            p.add(("emg", "window_ms"), "envelope window must be a multiple of 50 ms")
    phases = doc["phases"]
    if not isinstance(phases, list) or not phases:
        p.add(("phases",), "a protocol needs at least one phase")
        return p.items
    if len(phases) > MAX_PHASES:
        p.add(("phases",), "at most %d phases" % MAX_PHASES)
    phases_ok = True
    seen_mvc = False
    for i in range(len(phases)):
        ph = phases[i]
        phases_ok = _check_phase(p, i, ph, area, cap_ua) and phases_ok
        kind = ph.get("type") if isinstance(ph, dict) else None
        if kind == "mvc":
            seen_mvc = True
        elif kind in ("work_rest", "ets") and not seen_mvc:
            p.add(
                ("phases", i, "type"),
                "phase %d (%s) aims at a share of the MVC: put an MVC phase before it" % (i + 1, kind),
            )
    total = session_seconds(doc) if phases_ok else 0
    if budget_ok and total > max_s:
        p.add(
            ("budget", "max_session_s"),
            "the phases last %d s, longer than the allowed session of %d s" % (total, max_s),
        )
    if _screening_blocks_stim(doc) and uses_stimulation(doc):
        p.add(
            ("screening",), "screening found a contraindication to stimulation; remove the stimulation phases"
        )
    return p.items


def _check_screening(p, doc):
    s = doc["screening"]
    if not isinstance(s, dict):
        p.add(("screening",), "contraindication screening must be a table")
        return
    names = {"attested_by": 1, "attested_on": 1}
    for key, _ in SCREENING:
        names[key] = 1
    for key in s:
        if key not in names:
            p.add(("screening", key), "unknown screening item '%s'" % key)
    if "attested_by" not in s:
        p.add(("screening", "attested_by"), "screening must say who attested it")
    else:
        _text_check(p, ("screening", "attested_by"), s["attested_by"], "attested_by", "screening attested by")
    if not _date(s.get("attested_on")):
        p.add(("screening", "attested_on"), "screening must be dated YYYY-MM-DD")
    for key, what in SCREENING:
        v = s.get(key)
        if v is not True and v is not False:
            p.add(("screening", key), "screening is incomplete: answer %s with true or false" % what)
        elif v and key not in STIM_ONLY_CONTRAINDICATIONS:
            p.add(("screening", key), "screening found %s: not suitable for home use" % what)


def _screening_blocks_stim(doc):
    s = doc.get("screening")
    if not isinstance(s, dict):
        return False
    for key in STIM_ONLY_CONTRAINDICATIONS:
        if s.get(key) is True:
            return True
    return False
