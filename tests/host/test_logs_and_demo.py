"""The clinician's log pull, the patient's rating and the one-command demonstration."""

import json

import pytest
from cliutil import run_cli


@pytest.mark.req("UX-LOG-1", "UX-CLI-1")
def test_sessions_are_logged_rated_and_pulled(capsys, tmp_path):
    port = "sim://?seed=2&speed=0&flash_dir=%s" % (tmp_path / "flash")
    for n in (12, 11):
        assert (
            run_cli(
                capsys,
                "--port",
                port,
                "session",
                "run",
                "--demo-seconds",
                str(n),
                "--out",
                str(tmp_path / "s.json"),
            )[0]
            == 0
        )
    code, out, _ = run_cli(capsys, "--port", port, "session", "rate", "6")
    assert code == 0 and out.strip() == "session 1 rated 6/10"
    code, out, _ = run_cli(capsys, "--port", port, "session", "rate", "11")
    assert code == 2  # refused by the command line before the device sees it
    code, out, _ = run_cli(capsys, "--port", port, "--json", "logs", "pull", "--out", str(tmp_path / "logs"))
    assert code == 0 and json.loads(out)["sessions"] == 2 and json.loads(out)["missing"] == []
    data = json.loads((tmp_path / "logs" / "sessions.json").read_text())
    assert [d["seq"] for d in data] == [0, 1]
    assert [d["pain"] for d in data] == [None, 6]
    assert data[0]["duration_s"] == pytest.approx(12, abs=0.1) and data[0]["end_reason"] == "FINISHED"
    assert data[0]["rest_uv"] > 0 and data[0]["faults"] == [] and data[0]["host_time_s"] > 1.7e9
    assert (tmp_path / "logs" / "sessions.cbor").stat().st_size > 0


@pytest.mark.req("UX-LOG-1")
def test_rating_with_an_empty_log_says_so(capsys, tmp_path):
    code, _out, err = run_cli(capsys, "--port", "sim://?seed=3&speed=0", "session", "rate", "2")
    assert code == 1 and "no session yet" in err


@pytest.mark.req("EMG-SCORE-2", "EMG-PACED-1", "UX-CLI-1")
def test_the_demo_runs_a_relaxation_session_and_prints_its_score(capsys, tmp_path):
    code, out, err = run_cli(capsys, "demo", "--out", str(tmp_path / "demo"))
    assert code == 0, err
    assert "approved protocol relax-downtrain" in out
    assert "phase 2, relaxation: 600.0 of 600.0 s" in out and "time at or below target" in out
    saved = json.loads((tmp_path / "demo" / "scores.json").read_text())
    relax = saved["scores"]["phases"][1]
    assert relax["type"] == "relaxation" and 0 < relax["below_target_percent"] < 100
    assert saved["protocol"] == "relax-downtrain"
    assert (tmp_path / "demo" / "session.tonus").stat().st_size > 0
    assert (tmp_path / "demo" / "report.html").exists() and "the practice journal:" in out


@pytest.mark.req("EMG-GLAZER-1", "EMG-GLAZER-2", "UX-CLI-1")
def test_a_glazer_assessment_on_the_simulator_prints_and_saves_the_norm_comparison(capsys, tmp_path):
    out_file = tmp_path / "glazer.json"
    code, out, err = run_cli(
        capsys,
        "--port",
        "sim://?seed=0&patient=healthy&speed=0",
        "session",
        "run",
        "--protocol",
        "examples/protocols/glazer-assessment.toml",
        "--out",
        str(out_file),
    )
    assert code == 0, err
    assert "Glazer assessment" in out and "Oleksy" in out and "against norms" in out
    g = json.loads(out_file.read_text())["glazer"]
    rows = {r["measure"]: r for r in g["normative"]["rows"]}
    assert set(rows) == {
        "pre_baseline_uv",
        "phasic_peak_uv",
        "tonic_mean_uv",
        "endurance_mean_uv",
        "post_baseline_uv",
    }
    # a healthy simulated woman rests near the norm
    assert abs(rows["pre_baseline_uv"]["z"]) < 1.5 and abs(rows["post_baseline_uv"]["z"]) < 1.5
    assert g["phasic"]["peak_uv"] > 3 * g["pre_baseline"]["mean_uv"]
    assert g["endurance"]["median_frequency_slope_hz_per_s"] < 0  # she tires over the minute
    # a healthy woman within one SD of every norm, measured as the norms were (EMG-GLAZER-2)
    assert all(r["verdict"] == "within 1 SD" for r in rows.values()), rows
    # device and host: the same quantities under the same names (EMG-GLAZER-2)
    saved = json.loads(out_file.read_text())
    (device,) = [p for p in saved["scores"]["phases"] if p["type"] == "glazer"]
    host = {r["measure"]: r["value_uv"] for r in saved["glazer"]["normative"]["rows"]}
    assert "phasic_peak_uv" in device and "contraction_uv" not in device  # no mixed "mean while contracting"
    # the same definitions on the same envelope; the host samples it every 10 ms, the device every 50 ms
    assert host["phasic_peak_uv"] == pytest.approx(device["phasic_peak_uv"], rel=0.06)
    assert host["tonic_mean_uv"] == pytest.approx(device["tonic_uv"], rel=0.03)
    assert host["endurance_mean_uv"] == pytest.approx(device["endurance_uv"], rel=0.03)
    assert host["pre_baseline_uv"] == pytest.approx(device["pre_baseline_uv"], abs=0.3)
