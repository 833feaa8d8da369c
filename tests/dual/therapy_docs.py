"""Protocol documents for tests: a valid one, and ways to break it."""


def valid():
    return {
        "format": 1,
        "id": "ets-weak-pf",
        "sequence": 3,
        "patient": "P-0042",
        "probe": "vaginal-2plate",
        "device": "E66118604B1F2A2B",
        "approved_by": "A. Example, PT",
        "approved_on": "2026-11-20",
        "valid_until": "2027-02-20",
        "budget": {"sessions": 20, "min_interval_s": 72000, "max_session_s": 1800},
        "limits": {"amplitude_max_ua": 40000},
        "screening": {
            "attested_by": "A. Example, PT",
            "attested_on": "2026-11-20",
            "active_infection": False,
            "unprocessed_trauma": False,
            "recent_surgery_or_postpartum": False,
            "pregnancy": False,
            "unexplained_bleeding": False,
            "panic_or_dissociation": False,
            "implanted_electronics": False,
        },
        "phases": [
            {"type": "baseline", "duration_s": 60},
            {"type": "mvc", "attempts": 3, "contraction_s": 3, "rest_s": 30},
            {
                "type": "ets",
                "duration_s": 600,
                "threshold_percent_mvc": 40,
                "hold_ms": 500,
                "on_ms": 6000,
                "rest_ms": 15000,
                "frequency_hz": 35,
                "pulse_width_us": 250,
                "interphase_gap_us": 50,
                "amplitude_max_ua": 30000,
                "ramp_up_ms": 1000,
                "ramp_down_ms": 1000,
            },
            {
                "type": "relaxation",
                "duration_s": 300,
                "target_percent": 80,
                "hold_s": 10,
                "tone_margin_percent": 30,
            },
        ],
    }
