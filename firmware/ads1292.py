"""ADS1292R front end: register values, SPI commands, frame decoding, calibration.

Portable (no machine, no rp2): the board hands in its SPI bus and chip-select
pin, tests hand in fakes, and the same code runs on both runtimes. On the
Pico, a PIO program clocks each 72-bit frame after DRDY falls and pushes
one 32-bit word per sample that DMA writes into a RAM ring; frame_word()
is that word's definition, convert() turns a stretch of the ring into
calibrated samples (0.1 µV) in small-int arithmetic.

Datasheet facts used (TI SBAS502): frame = 24-bit status (1100, LOFF_STAT[4:0],
GPIO[1:0], 13 zeros) then two 24-bit two's-complement channels, MSB first;
1 LSB = Vref / (gain * 2**23); internal 512 kHz clock gives 125..8000 SPS;
multi-byte commands need 4 tCLK (7.8 µs) between bytes.
"""

from firmware import hal as H

# commands
WAKEUP = 0x02
STANDBY = 0x04
RESET = 0x06
START = 0x08
STOP = 0x0A
RDATAC = 0x10
SDATAC = 0x11
RDATA = 0x12
RREG = 0x20
WREG = 0x40

# registers
ID = 0x00
CONFIG1 = 0x01
CONFIG2 = 0x02
LOFF = 0x03
CH1SET = 0x04
CH2SET = 0x05
RLD_SENS = 0x06
LOFF_SENS = 0x07
LOFF_STAT = 0x08
RESP1 = 0x09
RESP2 = 0x0A
GPIO = 0x0B
N_CONFIG = GPIO - CONFIG1 + 1  # registers written by configure(): CONFIG1..GPIO

ID_MASK = 0xE3  # REV_ID[7:5] and [1:0]; bits 4..2 are not specified
ID_ADS1292R = 0x63

# register values: datasheet code of each supported setting
RATES = {125: 0, 250: 1, 500: 2, 1000: 3, 2000: 4, 4000: 5, 8000: 6}
GAINS = {6: 0, 1: 1, 2: 2, 3: 3, 4: 4, 8: 5, 12: 6}
VREFS = {2420000: 0x00, 4033000: 0x10}  # µV -> CONFIG2 VREF_4V
LOFF_CURRENTS_NA = {6: 0, 22: 1, 6000: 2, 22000: 3}
LOFF_THRESHOLDS = {
    950: 0,
    925: 1,
    900: 2,
    875: 3,
    850: 4,
    800: 5,
    750: 6,
    700: 7,
}  # 0.1 % of the positive side

# LOFF_STAT bits, as they stand in the status word and in ring words (<< 24)
IN1P_OFF = 0x01
IN1N_OFF = 0x02
IN2P_OFF = 0x04
IN2N_OFF = 0x08
RLD_OFF = 0x10
EMG_LOFF = IN1P_OFF | IN1N_OFF | RLD_OFF  # EMG is channel 1 with the RLD reference electrode

# a ring word: LOFF_STAT[4:0] << 24 | channel 1 code (24 bits, two's complement)
WORD_LOFF_SHIFT = 24
_WORD_LOFF = EMG_LOFF << WORD_LOFF_SHIFT
_CODE_MASK = 0xFFFFFF
_CODE_SIGN = 0x800000
_CODE_WRAP = 0x1000000
FULL_SCALE = 0x7FFFFF
# codes this near full scale are clipped or past the PGA's linear range (~97 %)
SAT_CODE = 0x7C0000

# calibration arithmetic: K < 2**24 and a 6-bit split keep every product < 2**30
_K_LIMIT = 1 << 24
_MIN_SHIFT = 19
MAX_OFFSET_CODE = 1 << 16
MAX_GAIN_PPM = 100000
_TSDECODE_US = 8  # 4 tCLK at 512 kHz


def registers(rate_hz, gain, vref_uv, loff_current_na, loff_threshold_pct10):
    """CONFIG1..GPIO for EMG on channel 1 with DC lead-off detection; ValueError if unsupported."""
    for value, table, what in (
        (rate_hz, RATES, "rate"),
        (gain, GAINS, "gain"),
        (vref_uv, VREFS, "reference"),
        (loff_current_na, LOFF_CURRENTS_NA, "lead-off current"),
        (loff_threshold_pct10, LOFF_THRESHOLDS, "lead-off threshold"),
    ):
        if value not in table:
            raise ValueError("unsupported ADS1292R %s: %r" % (what, value))
    return bytes(
        (
            RATES[rate_hz],  # CONFIG1: continuous conversion
            0x80 | 0x40 | 0x20 | VREFS[vref_uv],  # CONFIG2: lead-off comparators and reference buffer on
            (LOFF_THRESHOLDS[loff_threshold_pct10] << 5)
            | 0x10
            | (LOFF_CURRENTS_NA[loff_current_na] << 2),  # DC lead-off
            GAINS[gain] << 4,  # CH1SET: on, electrode input
            0x81,  # CH2SET: powered down, input shorted (the datasheet asks for both)
            0x20 | 0x10 | 0x02 | 0x01,  # RLD_SENS: RLD buffer on, RLD lead-off sense, driven from IN1P/IN1N
            IN1N_OFF | IN1P_OFF,  # LOFF_SENS: lead-off currents on channel 1
            0x00,  # LOFF_STAT: CLK_DIV 0 for the internal 512 kHz clock
            0x02,  # RESP1: respiration off (bit 1 must be 1)
            0x03,  # RESP2: RLDREF generated internally (bit 0 must be 1)
            0x0C,  # GPIO: both inputs
        )
    )


# bits that read back as written (LOFF_STAT and GPIO also carry live status)
_READBACK_MASK = bytes((0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x40, 0xFF, 0xFF, 0x0C))


def readback_ok(written, read):
    for i in range(N_CONFIG):
        m = _READBACK_MASK[i]
        if written[i] & m != read[i] & m:
            return False
    return True


def decode_frame(frame):
    """(LOFF_STAT[4:0], channel 1 code, channel 2 code) of a 9-byte RDATAC/RDATA frame."""
    loff = ((frame[0] << 8 | frame[1]) >> 7) & 0x1F
    return loff, _code(frame, 3), _code(frame, 6)


def frame_word(frame):
    """The ring word the capture PIO program pushes for this frame."""
    loff = ((frame[0] << 8 | frame[1]) >> 7) & 0x1F
    return loff << WORD_LOFF_SHIFT | (frame[3] << 16 | frame[4] << 8 | frame[5])


def _code(b, i):
    v = b[i] << 16 | b[i + 1] << 8 | b[i + 2]
    if v & _CODE_SIGN:
        v -= _CODE_WRAP
    return v


class Calibration:
    """Codes to 0.1 µV: round((code - offset) * K / 2**shift), K from Vref, gain and a per-board trim.

    K is fixed at construction (big ints are fine there) as the largest
    value under 2**24, so its own rounding adds at most half a code to the
    error; convert() then multiplies in 6-bit slices so that no
    intermediate leaves MicroPython's small ints.
    """

    def __init__(self, vref_uv, gain, gain_ppm=0, offset_code=0):
        if gain not in GAINS or not 0 < vref_uv <= 5000000:
            raise ValueError("bad gain or reference")
        if (
            not -MAX_GAIN_PPM <= gain_ppm <= MAX_GAIN_PPM
            or not -MAX_OFFSET_CODE <= offset_code <= MAX_OFFSET_CODE
        ):
            raise ValueError("calibration trim out of range")
        num = vref_uv * 10 * (1000000 + gain_ppm)  # 0.1 µV per full scale, trimmed
        den = gain * (1 << 23) * 1000000
        shift = _MIN_SHIFT
        if _k(num, den, shift) >= _K_LIMIT:
            raise ValueError("a code is worth too much for the fixed-point scale")
        while _k(num, den, shift + 1) < _K_LIMIT:
            shift += 1
        self.k = _k(num, den, shift)
        self.shift = shift
        self.offset = offset_code


def _k(num, den, shift):
    return ((num << shift) + den // 2) // den


def convert(ring, base, mask, start, n, out, at, cal):
    """Convert the n ring words from absolute index start into out[at:]; return EMG_* flags seen.

    ring[base + (i & mask)] holds sample i (a power-of-two ring); ring and
    out are arrays of 32-bit words ('I' and 'i'). Lead-off and saturation
    come from the raw word, before calibration. In viper where the port has
    native emitters (firmware/ads_viper.py), else convert_plain.
    """
    return _convert(ring, base, mask, start, n, out, at, cal.k, cal.offset, cal.shift - 18)


def convert_plain(ring, base, mask, start, n, out, at, k, off, sh):
    """convert() in plain bytecode, for cal.k, cal.offset, cal.shift - 18: the reference the
    viper kernel must match bit for bit."""
    half = 1 << (sh - 1)
    flags = 0
    for i in range(n):
        w = ring[base + ((start + i) & mask)]
        if w & _WORD_LOFF:
            flags |= H.EMG_LEAD_OFF
        c = w & _CODE_MASK
        if c & _CODE_SIGN:
            c -= _CODE_WRAP
        if c >= SAT_CODE or c <= -SAT_CODE:
            flags |= H.EMG_SATURATED
        c -= off
        # floor(c * k / 2**18) from 6-bit slices of c, each product < 2**30
        t = ((c & 63) * k) >> 6
        t = (((c >> 6) & 63) * k + t) >> 6
        t = (((c >> 12) & 63) * k + t) >> 6
        t += (c >> 18) * k
        out[at + i] = (t + half) >> sh
    return flags


try:
    from firmware.ads_viper import convert as _convert
    from firmware.ads_viper import convert_cal

    # the same in native code: a bytecode call this wide puts its frame on MicroPython's heap
    convert = convert_cal

    FAST = True
except Exception:  # noqa: BLE001 - CPython has no micropython module; ports without native emitters refuse viper
    _convert = convert_plain
    FAST = False


class Ads1292:
    """The chip over SPI while it is not streaming: reset, configure, verify, start.

    spi needs write(buf) and readinto(buf, write_byte); cs is a Pin (called
    with 0/1); sleep_us waits. Once start() returns True the chip streams in
    RDATAC mode with CS held low, and the board hands SCLK to the PIO.
    """

    def __init__(self, spi, cs, sleep_us):
        self._spi = spi
        self._cs = cs
        self._sleep_us = sleep_us
        self._one = bytearray(1)
        cs(1)

    def _send(self, b):
        self._one[0] = b
        self._spi.write(self._one)
        self._sleep_us(_TSDECODE_US)

    def command(self, op):
        self._cs(0)
        self._send(op)
        self._cs(1)

    def write_regs(self, addr, data):
        self._cs(0)
        self._send(WREG | addr)
        self._send(len(data) - 1)
        for b in data:
            self._send(b)
        self._cs(1)

    def read_regs(self, addr, n):
        self._cs(0)
        self._send(RREG | addr)
        self._send(n - 1)
        buf = bytearray(n)
        self._spi.readinto(buf, 0x00)
        self._cs(1)
        return bytes(buf)

    def start(self, regs):
        """Stop streaming, write regs (CONFIG1..GPIO), verify chip and registers, stream; True if all held."""
        self.command(SDATAC)  # the chip powers up in RDATAC, where it ignores register commands
        if self.read_regs(ID, 1)[0] & ID_MASK != ID_ADS1292R:
            return False
        self.write_regs(CONFIG1, regs)
        if not readback_ok(regs, self.read_regs(CONFIG1, N_CONFIG)):
            return False
        self.command(RDATAC)
        self.command(START)
        self._cs(0)  # stays low while the PIO reads frames
        return True

    def stop(self):
        self._cs(1)
        self.command(STOP)
        self.command(SDATAC)
