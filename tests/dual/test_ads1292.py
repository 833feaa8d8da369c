"""ADS1292R register values, frame decoding and calibration, on both runtimes."""

import json
import sys
from array import array

from dualtest import MICROPYTHON, Lcg, req, skip
from firmware import ads1292 as ads
from firmware import hal as H


def _here():
    f = __file__
    i = f.rfind("/")
    return f[:i] if i >= 0 else "."


def _profile():
    with open(_here() + "/../../firmware/profiles/pico.json") as f:
        return json.load(f)


class FakeSpi:
    """The chip's command decoder over SPI: register file, WREG, RREG, single-byte commands."""

    def __init__(self, chip_id=0x73, stuck=None):
        self.regs = bytearray(12)
        self.regs[0] = chip_id
        self.stuck = stuck  # (register, value) that ignores writes
        self.log = []  # what the chip understood, in order
        self._cmd = []
        self._read = (0, 0)
        self.cs = 1
        self.cs_log = []
        self.sleeps = 0

    def pin(self, v):
        self.cs = v
        self.cs_log.append(v)

    def sleep_us(self, us):
        assert us >= 8  # 4 tCLK at 512 kHz between command bytes
        self.sleeps += 1

    def write(self, buf):
        assert self.cs == 0, "a byte sent without chip select"
        for b in buf:
            self._cmd.append(b)
            c = self._cmd
            if c[0] & 0xE0 == ads.WREG:
                if len(c) >= 2 and len(c) == c[1] + 3:
                    a = c[0] & 0x1F
                    for i in range(c[1] + 1):
                        if self.stuck is None or self.stuck[0] != a + i:
                            self.regs[a + i] = c[2 + i]
                    self.log.append(("WREG", a, bytes(c[2:])))
                    self._cmd = []
            elif c[0] & 0xE0 == ads.RREG:
                if len(c) == 2:
                    self._read = (c[0] & 0x1F, c[1] + 1)
                    self._cmd = []
            else:
                self.log.append(c[0])
                self._cmd = []

    def readinto(self, buf, write=0):
        assert self.cs == 0 and write == 0
        a, n = self._read
        assert len(buf) == n
        for i in range(n):
            buf[i] = self.regs[a + i]
        self.log.append(("RREG", a, n))


@req("HW-AFE-1")
def test_register_values_for_both_rates():
    r2k = ads.registers(2000, 6, 2420000, 22, 950)
    r1k = ads.registers(1000, 6, 2420000, 22, 950)
    # CONFIG1 CONFIG2 LOFF CH1SET CH2SET RLD_SENS LOFF_SENS LOFF_STAT RESP1 RESP2 GPIO
    assert r2k == bytes((0x04, 0xE0, 0x14, 0x00, 0x81, 0x33, 0x03, 0x00, 0x02, 0x03, 0x0C))
    assert r1k == bytes((0x03,)) + r2k[1:]
    assert len(r2k) == ads.N_CONFIG
    # gain 12, 6 nA at 70 %, 4 V reference
    r = ads.registers(2000, 12, 4033000, 6, 700)
    assert r[ads.CH1SET - 1] == 0x60 and r[ads.LOFF - 1] == 0xF0 and r[ads.CONFIG2 - 1] == 0xF0


@req("HW-AFE-1")
def test_unsupported_settings_are_refused():
    for args in (
        (3000, 6, 2420000, 22, 950),
        (2000, 5, 2420000, 22, 950),
        (2000, 6, 3300000, 22, 950),
        (2000, 6, 2420000, 10, 950),
        (2000, 6, 2420000, 22, 960),
    ):
        try:
            ads.registers(*args)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (args,))


@req("HW-AFE-1")
def test_start_configures_verifies_and_streams():
    spi = FakeSpi()
    chip = ads.Ads1292(spi, spi.pin, spi.sleep_us)
    regs = ads.registers(2000, 6, 2420000, 22, 950)
    assert chip.start(regs)
    assert spi.log == [
        ads.SDATAC,
        ("RREG", ads.ID, 1),
        ("WREG", ads.CONFIG1, regs),
        ("RREG", ads.CONFIG1, ads.N_CONFIG),
        ads.RDATAC,
        ads.START,
    ]
    assert spi.cs == 0  # held low for the PIO's frame reads
    assert spi.sleeps >= 2 + ads.N_CONFIG
    chip.stop()
    assert spi.log[-2:] == [ads.STOP, ads.SDATAC] and spi.cs == 1


@req("HW-AFE-1")
def test_start_fails_on_a_wrong_chip_or_a_register_that_does_not_hold():
    regs = ads.registers(2000, 6, 2420000, 22, 950)
    spi = FakeSpi(chip_id=0x53)  # an ADS1292: no lead-off on RLD, different part
    assert not ads.Ads1292(spi, spi.pin, spi.sleep_us).start(regs)
    assert ads.RDATAC not in spi.log
    spi = FakeSpi(stuck=(ads.LOFF_SENS, 0))
    assert not ads.Ads1292(spi, spi.pin, spi.sleep_us).start(regs)
    assert ads.RDATAC not in spi.log
    # status bits in LOFF_STAT and GPIO data bits are not configuration
    read = bytearray(regs)
    read[ads.LOFF_STAT - 1] |= 0x1F
    read[ads.GPIO - 1] |= 0x03
    assert ads.readback_ok(regs, read)
    read[ads.LOFF_STAT - 1] |= 0x40
    assert not ads.readback_ok(regs, read)


FRAMES = [
    # status ch1 ch2 -> (LOFF_STAT[4:0], ch1, ch2)
    ("C00000 000001 FFFFFF", (0, 1, -1)),
    ("C08000 7FFFFF 800000", (0x01, 8388607, -8388608)),  # IN1P off
    ("C10000 800001 000000", (0x02, -8388607, 0)),  # IN1N off
    ("C78000 FFFF85 123456", (0x0F, -123, 0x123456)),
    ("C80000 000000 000000", (0x10, 0, 0)),  # RLD off
    ("CFE000 400000 C00000", (0x1F, 4194304, -4194304)),  # GPIO bits set too
]


@req("HW-AFE-1", "HW-AFE-2")
def test_frames_decode_with_lead_off_bits_and_sign():
    for hexframe, want in FRAMES:
        frame = bytes.fromhex(hexframe.replace(" ", ""))
        assert ads.decode_frame(frame) == want, hexframe
        w = ads.frame_word(frame)
        assert w >> ads.WORD_LOFF_SHIFT == want[0]
        assert w < 1 << 30  # a small int on MicroPython
        code = w & 0xFFFFFF
        assert (code - (1 << 24) if code & 0x800000 else code) == want[1]


def _reference(cal_args, code):
    vref_uv, gain, ppm, off = cal_args
    return (code - off) * vref_uv * 10.0 * (1 + ppm / 1e6) / (gain * 8388608.0)


def _convert_one(cal, code, loff=0):
    out = array("i", [0])
    flags = ads.convert(
        array("I", [loff << ads.WORD_LOFF_SHIFT | (code & 0xFFFFFF)]), 0, 0, 0, 1, out, 0, cal
    )
    return out[0], flags


CALS = [
    (2420000, 6, 0, 0),
    (2420000, 1, 0, 0),
    (2420000, 12, 0, 0),
    (4033000, 1, 100000, -65536),
    (2420000, 6, -1500, 1234),
    (2420000, 8, 2500, 65536),
]


@req("HW-AFE-1")
def test_calibration_is_exact_to_rounding_against_a_float_reference():
    rnd = Lcg(7)
    for args in CALS:
        cal = ads.Calibration(*args)
        assert (1 << 23) <= cal.k < (1 << 24) and cal.shift >= 19
        lsb = args[0] * 10.0 * (1 + args[2] / 1e6) / (args[1] * 8388608.0)  # 0.1 µV per code
        bound = 0.5 + lsb / 2 + 1e-6
        codes = [
            0,
            1,
            -1,
            63,
            64,
            -64,
            4095,
            4096,
            -4097,
            262143,
            262144,
            -262145,
            8388607,
            -8388608,
            args[3],
            args[3] + 1,
            args[3] - 1,
        ]
        codes += [rnd.below(1 << 24) - (1 << 23) for _ in range(300)]
        for c in codes:
            got, _ = _convert_one(cal, c)
            # exact: round-half-up of (c - offset) * k / 2**shift, in exact integers
            num = (c - args[3]) * cal.k
            assert got == (num + (1 << (cal.shift - 1))) >> cal.shift, (args, c)
            ref = _reference(args, c)
            assert abs(got - ref) <= bound, (args, c, got, ref)


@req("HW-AFE-1")
def test_calibration_intermediates_stay_small_ints():
    # the largest products convert() forms, for the largest K any profile can give
    for args in CALS:
        cal = ads.Calibration(*args)
        k = cal.k
        assert 63 * k + ((63 * k) >> 6) < 1 << 30
        assert 33 * k + k < 1 << 30  # (c >> 18) for |c| <= 2**23 + 2**16
        assert ((33 * k + k) + (1 << (cal.shift - 19))) < 1 << 30


@req("HW-AFE-1")
def test_convert_allocates_nothing_even_at_full_scale():
    from array import array

    cal = ads.Calibration(4033000, 1, 100000, -65536)  # the largest K a profile can give
    ring = array("I", [0x7FFFFF, 0x800000, 0x1FFFFFFF, 0x10800000, 0, 1, 0xFFFFFF, 0x13FC0000])
    out = array("i", [0] * 8)
    if not MICROPYTHON:
        skip("CPython boxes ints; the MicroPython leg checks with heap_lock")
    import micropython

    micropython.heap_lock()  # a big int anywhere in convert() raises MemoryError here
    try:
        flags = ads.convert(ring, 0, 7, 0, 8, out, 0, cal)
    finally:
        micropython.heap_unlock()
    assert flags == H.EMG_LEAD_OFF | H.EMG_SATURATED
    for i in range(8):
        assert out[i] == _convert_one(cal, ring[i] & 0xFFFFFF)[0]


@req("HW-AFE-1", "DEV-PERF-1")
def test_the_viper_conversion_matches_the_plain_one_bit_for_bit():
    if not ads.FAST:
        skip("no native emitters here (%s): firmware/ads_viper.py cannot load" % sys.implementation.name)
    rnd = Lcg(11)
    size = 64
    words = [0x7FFFFF, 0x800000, 0x1FFFFFFF, 0x10800000, 0, 1, 0xFFFFFF, 0x13FC0000, 0x7C0000, 0x840000]
    while len(words) < 5 * size:  # base size, then a ring of 4 * size words
        words.append(rnd.below(0x20) << 24 | rnd.below(1 << 24))
    ring = array("I", words)
    for args in CALS:
        cal = ads.Calibration(*args)
        for start, n, at in ((0, size, 0), (3 * size - 5, size, 7), (17, 200, 1)):
            fast = array("i", [0] * 256)
            plain = array("i", [0] * 256)
            f1 = ads.convert(ring, size, 4 * size - 1, start, n, fast, at, cal)
            f2 = ads.convert_plain(
                ring, size, 4 * size - 1, start, n, plain, at, cal.k, cal.offset, cal.shift - 18
            )
            assert f1 == f2 and fast == plain, (args, start)


@req("HW-AFE-1")
def test_calibration_refuses_what_the_arithmetic_cannot_hold():
    for args in ((2420000, 7, 0, 0), (2420000, 6, 100001, 0), (2420000, 6, 0, 65537), (0, 6, 0, 0)):
        try:
            ads.Calibration(*args)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (args,))


@req("HW-AFE-1")
def test_default_gain_values():
    cal = ads.Calibration(2420000, 6)
    # 1 LSB = 2.42 V / (6 * 2**23) = 48.08 nV = 0.48081 (0.1 µV)
    assert _convert_one(cal, 1000000)[0] == 480811  # 48.08 mV
    assert _convert_one(cal, -1000000)[0] == -480811
    assert _convert_one(cal, 1)[0] == 0 and _convert_one(cal, 2)[0] == 1
    assert _convert_one(cal, 8388607)[0] == 4033333  # +FS = Vref / gain = 403.3 mV


@req("HW-AFE-2")
def test_saturation_and_lead_off_flags():
    cal = ads.Calibration(2420000, 6)
    assert _convert_one(cal, ads.SAT_CODE - 1)[1] == 0
    assert _convert_one(cal, ads.SAT_CODE)[1] == H.EMG_SATURATED
    assert _convert_one(cal, -ads.SAT_CODE + 1)[1] == 0
    assert _convert_one(cal, -ads.SAT_CODE)[1] == H.EMG_SATURATED
    assert _convert_one(cal, ads.FULL_SCALE)[1] == H.EMG_SATURATED
    assert _convert_one(cal, -8388608)[1] == H.EMG_SATURATED
    for bit, flagged in (
        (ads.IN1P_OFF, True),
        (ads.IN1N_OFF, True),
        (ads.RLD_OFF, True),
        (ads.IN2P_OFF, False),
        (ads.IN2N_OFF, False),
    ):
        assert _convert_one(cal, 5, bit)[1] == (H.EMG_LEAD_OFF if flagged else 0), bit
    assert _convert_one(cal, ads.SAT_CODE, ads.IN1P_OFF)[1] == H.EMG_LEAD_OFF | H.EMG_SATURATED


@req("HW-AFE-1")
def test_convert_walks_a_wrapping_ring():
    from array import array

    cal = ads.Calibration(2420000, 6)
    ring = array("I", [0] * 32)
    base, mask = 16, 15  # the aligned half of a doubled allocation, as on the board
    for i in range(16):
        ring[base + i] = (100 * i) & 0xFFFFFF
    out = array("i", [0] * 10)
    flags = ads.convert(ring, base, mask, 12, 8, out, 2, cal)  # indices 12..19 wrap to slots 12..15, 0..3
    assert flags == 0
    want = [_convert_one(cal, 100 * ((12 + i) & 15))[0] for i in range(8)]
    assert list(out[2:]) == want and out[0] == 0 and out[1] == 0


@req("HW-PROFILE-1", "HW-AFE-1")
def test_the_board_profile_gives_a_working_front_end():
    p = _profile()
    afe = p["afe"]
    regs = ads.registers(
        afe["rate_hz"], afe["gain"], afe["vref_uv"], afe["loff_current_na"], afe["loff_threshold_pct10"]
    )
    assert regs[0] in (ads.RATES[1000], ads.RATES[2000])
    cal = ads.Calibration(afe["vref_uv"], afe["gain"], afe["cal_gain_ppm"], afe["cal_offset_code"])
    # a rest tone of 1-5 µV spans many codes: 100 codes are under 10 µV
    assert _convert_one(cal, 100)[0] < 100
    assert p["output"]["hw_max_ua"] <= p["output"]["dac_full_scale_ua"]
