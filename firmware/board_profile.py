"""The Pico board's pin map and its board profile (firmware/profiles/pico.json, docs/hardware.md).

Pins are fixed here, because the output enable must be driven low before any
file is read; the profile must name the same pins and gives the analog scales
and ceilings, which parse_profile() checks before any stage starts on them.
"""

from firmware import ads1292 as ads
from firmware import hal as H

PIN_OUT_KEEPALIVE = 0  # drives the charge pump that holds the output enable
PIN_AFE_RESET = 1  # ADS1292R PWDN/RESET, active low
PIN_AFE_SCLK = 2
PIN_AFE_DIN = 3
PIN_AFE_DOUT = 4
PIN_AFE_DRDY = 5  # must follow DOUT: the capture program waits on in_base + 1
PIN_AFE_CS = 6
PIN_TH_I1 = 7  # track-and-hold gates, consecutive for the PIO set pins
PIN_TH_I2 = 8
PIN_TH_V = 9
PIN_LEG_A = 10  # H-bridge legs, consecutive for the PIO side-set
PIN_LEG_B = 11
PIN_DUMMY_LOAD = 12  # dummy-load relay driver, active high, pulled down: the electrodes at reset
PIN_DAC_CS = 13
PIN_DAC_SCK = 14
PIN_DAC_SDI = 15
PIN_OUT_ENABLE = 16  # active high; pulled down on the board so reset means off
PIN_ESTOP = 17  # normally-closed loop to ground, pulled up: open/broken = stop
PIN_BTN_START = 18
PIN_BTN_UP = 19
PIN_BTN_DOWN = 20
PIN_BUZZER = 21
PIN_OUT_SENSE = 22  # the enable as the output stage sees it (static AND charge pump)
# SPI1 RX, which the bus claims though the DAC answers nothing: the Pico's own
# VBUS-sense input, so no header pin is lost to it (not on a Pico W: its radio uses GPIO 24)
PIN_DAC_RX = 24
PIN_LED = 25
PIN_SENSE_I1 = 26  # ADC0: first-phase current, held
PIN_SENSE_I2 = 27  # ADC1: second-phase current, held
PIN_SENSE_V = 28  # ADC2: electrode voltage, held
PINS = {
    "out_keepalive": PIN_OUT_KEEPALIVE,
    "afe_reset": PIN_AFE_RESET,
    "afe_sclk": PIN_AFE_SCLK,
    "afe_din": PIN_AFE_DIN,
    "afe_dout": PIN_AFE_DOUT,
    "afe_drdy": PIN_AFE_DRDY,
    "afe_cs": PIN_AFE_CS,
    "th_i1": PIN_TH_I1,
    "th_i2": PIN_TH_I2,
    "th_v": PIN_TH_V,
    "leg_a": PIN_LEG_A,
    "leg_b": PIN_LEG_B,
    "dummy_load": PIN_DUMMY_LOAD,
    "dac_cs": PIN_DAC_CS,
    "dac_sck": PIN_DAC_SCK,
    "dac_sdi": PIN_DAC_SDI,
    "out_enable": PIN_OUT_ENABLE,
    "estop": PIN_ESTOP,
    "btn_start": PIN_BTN_START,
    "btn_up": PIN_BTN_UP,
    "btn_down": PIN_BTN_DOWN,
    "buzzer": PIN_BUZZER,
    "out_sense": PIN_OUT_SENSE,
    "dac_rx": PIN_DAC_RX,
    "led": PIN_LED,
    "sense_i1": PIN_SENSE_I1,
    "sense_i2": PIN_SENSE_I2,
    "sense_v": PIN_SENSE_V,
}
PROFILE_PATH = "firmware/profiles/pico.json"  # deployed by tonus flash (host/flashing.py PROFILE)

_MAX_SCALE = 1 << 18  # a 12-bit reading times a full scale stays under 2**30


def _int(d, key, low, high):
    v = d[key]
    if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
        raise ValueError("profile %s out of range" % key)
    return v


def parse_profile(d):
    """Check a decoded board profile; return (output, afe) dicts or raise ValueError/KeyError/TypeError."""
    pins = d["pins"]
    for name, pin in PINS.items():
        if pins[name] != pin:
            raise ValueError("profile pin %s is not this board's" % name)
    out = d["output"]
    fs = _int(out, "dac_full_scale_ua", 1, _MAX_SCALE - 1)
    hw = _int(out, "hw_max_ua", 0, fs)
    if hw % 100:
        raise ValueError("profile hw_max_ua is not in 100 µA steps")
    _int(out, "compliance_mv", 1, 200000)
    _int(out, "sense_full_scale_ua", 1, _MAX_SCALE - 1)
    _int(out, "sense_full_scale_mv", 1, _MAX_SCALE - 1)
    _int(out, "dummy_load_ohm", 1, 100000)
    # the charge pump's shortest hold: longer than the loop's longest keepalive gap, and a
    # hung MCU still loses the output within OUT_HOLD_MS
    _int(out, "hold_ms", H.OUT_HOLD_MIN_MS, H.OUT_HOLD_MS)
    afe = d["afe"]
    if _int(afe, "rate_hz", 1000, 2000) not in (1000, 2000):
        raise ValueError("profile rate_hz must be 1000 or 2000")
    ads.registers(
        afe["rate_hz"], afe["gain"], afe["vref_uv"], afe["loff_current_na"], afe["loff_threshold_pct10"]
    )
    ads.Calibration(afe["vref_uv"], afe["gain"], afe["cal_gain_ppm"], afe["cal_offset_code"])
    return out, afe
