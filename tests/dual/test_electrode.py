"""Electrode safety rules, exact at their boundaries, on both runtimes."""

from dualtest import req
from protocol import electrode as e

# (amp µA, pw µs, f Hz, area mm², rms µA, density ok, shannon ok), checked
# against the float formulas I*sqrt(2*pw*f) and log10(Q/A)+log10(Q) <= 1.5
CASES = [
    (30000, 300, 35, 675, 4347, True, True),
    (50000, 250, 50, 320, 7905, False, False),
    (100000, 450, 100, 2500, 30000, True, False),
    (10000, 200, 10, 320, 632, True, True),
]


@req("SAF-ELECTRODE-1")
def test_rules_against_reference_values():
    for amp, pw, f, area, rms, dens, shan in CASES:
        assert e.rms_ua(amp, pw, f) == rms
        assert e.density_ok(amp, pw, f, area) is dens
        assert e.shannon_ok(amp, pw, area) is shan


@req("SAF-ELECTRODE-1")
def test_max_amplitude_is_the_exact_boundary():
    for name in e.PROBES:
        area = e.PROBES[name][0]
        for pw in (50, 100, 200, 250, 300, 450):
            for f in (1, 10, 35, 50, 100):
                top = e.max_amplitude_ua(pw, f, area)
                assert e.density_ok(top, pw, f, area) and e.shannon_ok(top, pw, area)
                assert not (e.density_ok(top + 1, pw, f, area) and e.shannon_ok(top + 1, pw, area))


@req("SAF-ELECTRODE-1")
def test_density_boundary_is_two_milliamps_per_square_centimetre():
    # 1 cm² = 100 mm²; DC-equivalent RMS of 2000 µA is exactly the limit
    # 2*pw*f = 1e6 makes RMS equal to the amplitude
    assert e.density_ok(2000, 500, 1000, 100)
    assert not e.density_ok(2001, 500, 1000, 100)
    assert e.density_ua_per_cm2(2000, 500, 1000, 100) == 2000


@req("SAF-ELECTRODE-1")
def test_shannon_boundary_k_one_and_a_half():
    # A = 1 cm²: Q² <= 10**1.5 µC² -> Q <= 5.6234 µC = 5623413 pC
    assert e.shannon_ok(5623413, 1, 100)
    assert not e.shannon_ok(5623414, 1, 100)


@req("SAF-ELECTRODE-1")
def test_probe_areas_are_positive_integers():
    for name in e.PROBES:
        area, text = e.PROBES[name]
        assert isinstance(area, int) and area > 0 and text
