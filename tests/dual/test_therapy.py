"""The therapy-protocol schema and rules shared by host and device, on both runtimes."""

from dualtest import req
from protocol import therapy
from therapy_docs import valid


def _paths(problems):
    return [p for p, _m in problems]


def _broken(edit):
    doc = valid()
    edit(doc)
    return therapy.validate(doc)


@req("PROT-SCHEMA-1")
def test_the_valid_protocol_has_no_problems():
    assert therapy.validate(valid()) == []
    assert therapy.session_seconds(valid()) == 60 + 99 + 600 + 300
    assert therapy.uses_stimulation(valid())


@req("PROT-SCHEMA-1")
def test_missing_unknown_and_mistyped_settings_are_named():
    def drop(doc):
        del doc["device"]

    assert _paths(_broken(drop)) == [("device",)]
    probs = _broken(lambda d: d.update({"colour": "blue"}))
    assert probs == [(("colour",), "unknown setting 'colour'")]
    probs = _broken(lambda d: d["phases"][0].update({"duration_s": "60"}))
    assert probs == [(("phases", 0, "duration_s"), "duration must be a whole number of s")]
    probs = _broken(lambda d: d["phases"][0].update({"duration_s": True}))
    assert _paths(probs) == [("phases", 0, "duration_s")]
    probs = _broken(lambda d: d["phases"].append({"type": "yoga"}))
    assert _paths(probs) == [("phases", 4, "type")] and "unknown type" in probs[0][1]
    assert therapy.validate([]) == [((), "a protocol is a table of settings")]


@req("PROT-SCHEMA-1")
def test_out_of_range_values_explain_the_range():
    probs = _broken(lambda d: d["phases"][2].update({"frequency_hz": 150}))
    assert probs == [(("phases", 2, "frequency_hz"), "frequency 150 Hz is outside 1 Hz to 100 Hz")]
    probs = _broken(lambda d: d["phases"][2].update({"pulse_width_us": 20}))
    assert _paths(probs) == [("phases", 2, "pulse_width_us")]
    probs = _broken(lambda d: d["phases"][2].update({"interphase_gap_us": 101}))
    assert _paths(probs) == [("phases", 2, "interphase_gap_us")]
    probs = _broken(lambda d: d["budget"].update({"sessions": 0}))
    assert _paths(probs) == [("budget", "sessions")]


@req("PROT-SCHEMA-1", "SAF-ELECTRODE-1")
def test_inconsistent_stimulation_is_refused_not_clamped():
    probs = _broken(
        lambda d: d["phases"][2].update(
            {"frequency_hz": 100, "pulse_width_us": 450, "interphase_gap_us": 100, "amplitude_max_ua": 10000}
        )
    )
    assert probs == []
    # 2 x 450 + 100 fits 10 ms at 100 Hz; a 5 kHz-like request cannot exist (range), but ramps can
    probs = _broken(lambda d: d["phases"][2].update({"ramp_up_ms": 4000, "ramp_down_ms": 3000}))
    assert probs and "longer than the on time" in probs[0][1]
    probs = _broken(lambda d: d["phases"][2].update({"amplitude_max_ua": 30250}))
    assert "multiple of 0.5 mA" in probs[0][1]
    probs = _broken(lambda d: d["phases"][2].update({"amplitude_max_ua": 45000}))
    assert "exceeds the protocol limit" in probs[0][1]


@req("SAF-ELECTRODE-1")
def test_electrode_limits_refuse_an_anal_probe_at_vaginal_currents():
    def anal(doc):
        doc["probe"] = "anal-2ring"
        doc["phases"][2].update({"pulse_width_us": 450, "frequency_hz": 50, "amplitude_max_ua": 40000})

    msgs = [m for _p, m in _broken(anal)]
    assert any("RMS current density" in m for m in msgs)
    assert any("Shannon" in m for m in msgs)


@req("PROT-SCHEMA-1")
def test_session_length_must_fit_the_budget_and_the_device():
    probs = _broken(lambda d: d["budget"].update({"max_session_s": 900}))
    assert probs == [
        (("budget", "max_session_s"), "the phases last 1059 s, longer than the allowed session of 900 s")
    ]
    probs = therapy.validate(valid(), {"max_session_s": 600, "amplitude_max_ua": 20000})
    msgs = [m for _p, m in probs]
    assert any("longer than the allowed session of 600 s" in m for m in msgs)
    assert any("exceeds the protocol limit of 20000" in m for m in msgs)


@req("PROT-SCREEN-1")
def test_screening_must_be_complete_and_clear():
    probs = _broken(lambda d: d["screening"].pop("pregnancy"))
    assert probs == [
        (("screening", "pregnancy"), "screening is incomplete: answer pregnancy with true or false")
    ]
    probs = _broken(lambda d: d["screening"].pop("attested_by"))
    assert _paths(probs) == [("screening", "attested_by")]
    probs = _broken(lambda d: d["screening"].update({"active_infection": True}))
    assert "not suitable for home use" in probs[0][1]


@req("PROT-SCREEN-1")
def test_implants_rule_out_stimulation_but_not_biofeedback():
    probs = _broken(lambda d: d["screening"].update({"implanted_electronics": True}))
    assert probs == [
        (("screening",), "screening found a contraindication to stimulation; remove the stimulation phases")
    ]

    def biofeedback_only(doc):
        doc["screening"]["implanted_electronics"] = True
        del doc["phases"][2]

    assert _broken(biofeedback_only) == []


@req("PROT-SCHEMA-1")
def test_relaxation_needs_exactly_one_target():
    probs = _broken(lambda d: d["phases"][3].update({"target_dv": 50}))
    assert "exactly one target" in probs[0][1]


@req("PROT-SCHEMA-1", "EMG-HOLD-1")
def test_hold_grace_is_optional_bounded_and_shorter_than_the_hold():
    assert "hold_grace_ms" not in valid()["phases"][3]  # the device's default (1000 ms) applies
    assert _broken(lambda d: d["phases"][3].update({"hold_grace_ms": 500})) == []
    assert _broken(lambda d: d["phases"][3].update({"hold_grace_ms": 0})) == []
    probs = _broken(lambda d: d["phases"][3].update({"hold_grace_ms": 3001}))
    assert probs and probs[0][0][-1] == "hold_grace_ms"
    probs = _broken(lambda d: d["phases"][3].update({"hold_s": 2, "hold_grace_ms": 2000}))
    assert probs and "shorter than the hold time" in probs[0][1]


@req("PROT-SCHEMA-1")
def test_dates_and_texts():
    assert _paths(_broken(lambda d: d.update({"approved_on": "20.11.2026"}))) == [("approved_on",)]
    assert _paths(_broken(lambda d: d.update({"valid_until": "2027-13-01"}))) == [("valid_until",)]
    assert _paths(_broken(lambda d: d.update({"patient": ""}))) == [("patient",)]
    assert _paths(_broken(lambda d: d.update({"format": 2}))) == [("format",)]


def _leaves(obj, path, out):
    if isinstance(obj, dict):
        for k in obj:
            _leaves(obj[k], path + (k,), out)
    elif isinstance(obj, list):
        for i in range(len(obj)):
            _leaves(obj[i], path + (i,), out)
    out.append(path)


def _set(doc, path, value):
    if not path:
        return value
    cur = doc
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return doc


@req("PROT-SCHEMA-1", "LINK-FUZZ-1")
def test_any_malformed_document_gets_problems_never_an_exception():
    from dualtest import Lcg

    rnd = Lcg(31)
    odd = ["", "x" * 100, None, True, False, -1, 0, 1 << 70, [], {}, [1], {"type": "ets"}, 3, "2026-02-30"]
    for _ in range(400):
        doc = valid()
        for _n in range(1 + rnd.below(3)):
            paths = []
            _leaves(doc, (), paths)  # what exists after the previous mutation
            doc = _set(doc, paths[rnd.below(len(paths))], odd[rnd.below(len(odd))])
            if not isinstance(doc, (dict, list)):
                break
        probs = therapy.validate(doc)
        assert isinstance(probs, list)
        for path, msg in probs:
            assert isinstance(path, tuple) and isinstance(msg, str) and msg


@req("EMG-SCORE-3")
def test_shares_of_mvc_need_an_mvc_phase_first():
    def no_mvc(doc):
        del doc["phases"][1]

    probs = _broken(no_mvc)
    assert probs == [
        (("phases", 1, "type"), "phase 2 (ets) aims at a share of the MVC: put an MVC phase before it")
    ]

    def mvc_after(doc):
        doc["phases"][1], doc["phases"][2] = doc["phases"][2], doc["phases"][1]

    assert _paths(_broken(mvc_after)) == [("phases", 1, "type")]


@req("SAF-AMPLITUDE-1", "PROT-SCHEMA-1")
def test_a_maximum_too_small_for_the_2_percent_minimum_step_is_refused():
    probs = _broken(lambda d: d["phases"][2].update({"amplitude_max_ua": 4500}))
    assert probs == [
        (
            ("phases", 2, "amplitude_max_ua"),
            "maximum amplitude below 5 mA: the smallest step (0.1 mA) would exceed 2 % of it",
        )
    ]
    assert _broken(lambda d: d["phases"][2].update({"amplitude_max_ua": 5000})) == []


@req("EMG-CHAIN-1", "PROT-SCHEMA-1")
def test_the_envelope_window_is_a_protocol_setting_in_50_ms_steps():
    assert _broken(lambda d: d.update({"emg": {"window_ms": 500}})) == []
    assert _broken(lambda d: d.update({"emg": {}})) == []
    assert _broken(lambda d: d.update({"emg": {"window_ms": 275}})) == [
        (("emg", "window_ms"), "envelope window must be a multiple of 50 ms")
    ]
    assert _paths(_broken(lambda d: d.update({"emg": {"window_ms": 2000}}))) == [("emg", "window_ms")]
    assert _paths(_broken(lambda d: d.update({"emg": {"notch": 50}}))) == [("emg", "notch")]
