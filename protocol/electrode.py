"""Electrode safety rules shared by the host's protocol check and the device.

Integers only, compared exactly (no floats: MicroPython on the RP2040 has
single precision). Units: current µA, phase width µs, frequency Hz, area mm²,
charge pC.

- RMS current of a symmetric biphasic pulse train: I·sqrt(2·pw·f).
- RMS current density at most 2 mA/cm² = 20 µA/mm² (the IEC 60601-2-10
  warning level for current density).
- Charge per phase within the Shannon criterion
  log10(Q/A) = k - log10(Q), Q in µC per phase, A in cm², with k <= 1.5: a
  conservative margin below the k of about 1.85 where Shannon's data first
  showed tissue damage. Equivalently Q²/A <= 10**1.5.

The probe table holds the contact area of ONE electrode (the smaller, where
they differ), from the electrode geometry, rounded down: a smaller area only
makes the limits stricter.
"""

from protocol.intmath import isqrt

DENSITY_LIMIT_UA_PER_MM2 = 20  # 2 mA/cm²
# 10**1.5 * 1e12, floored (conservative): with Q in pC and A in mm²,
# Q²/A <= 10**1.5 (µC², cm²)  <=>  Q_pC**2 * 100 <= this * A_mm2
_SHANNON_PC2_PER_MM2 = 31622776601683

# probe type -> (contact area of one electrode in mm², description)
PROBES = {
    "vaginal-2plate": (675, "vaginal probe, two longitudinal plates 45 x 15 mm"),
    "anal-2ring": (320, "anal probe, two rings 8 mm wide on a 13 mm body"),
    "surface-50x50": (2500, "perineal surface electrodes 50 x 50 mm"),
}


def rms_ua(amp_ua, pw_us, freq_hz):
    """RMS current (floor) of a symmetric biphasic train."""
    return isqrt(amp_ua * amp_ua * 2 * pw_us * freq_hz // 1000000)


def charge_pc(amp_ua, pw_us):
    """Charge per phase in pC (µA x µs)."""
    return amp_ua * pw_us


def density_ok(amp_ua, pw_us, freq_hz, area_mm2):
    """RMS current density <= 2 mA/cm², exactly: I²·2·pw·f·1e-6 <= (20·A)²."""
    lim = DENSITY_LIMIT_UA_PER_MM2 * area_mm2
    return amp_ua * amp_ua * 2 * pw_us * freq_hz <= lim * lim * 1000000


def shannon_ok(amp_ua, pw_us, area_mm2):
    """Charge per phase inside Shannon's k <= 1.5, exactly."""
    q = charge_pc(amp_ua, pw_us)
    return q * q * 100 <= _SHANNON_PC2_PER_MM2 * area_mm2


def max_amplitude_ua(pw_us, freq_hz, area_mm2):
    """The largest current (µA) both rules allow for these pulse parameters."""
    lim = DENSITY_LIMIT_UA_PER_MM2 * area_mm2
    by_density = isqrt(lim * lim * 1000000 // (2 * pw_us * freq_hz))
    by_shannon = isqrt(_SHANNON_PC2_PER_MM2 * area_mm2 // 100) // pw_us
    return min(by_density, by_shannon)


def density_ua_per_cm2(amp_ua, pw_us, freq_hz, area_mm2):
    """RMS current density in µA/cm² (integer), for reports."""
    return rms_ua(amp_ua, pw_us, freq_hz) * 100 // area_mm2
