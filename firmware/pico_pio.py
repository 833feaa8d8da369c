"""The Pico board's PIO programs and the timing words they take.

afe_capture (PIO0) reads the ADS1292R: it waits for DRDY to fall, clocks
the 72-bit frame in SPI mode 1 and pushes one word per sample,
LOFF_STAT[4:0] << 24 | channel-1 code (firmware/ads1292.py frame_word);
DMA moves the words into a RAM ring, so no CPU time is spent per sample.

pulse_train (PIO1) makes symmetric biphasic pulses on the two H-bridge legs
(side-set) from two words per pulse that DMA feeds from a fixed descriptor:
both phases run the same instructions on the same counts (kept in Y), so
they are equal by construction. It also drives three track-and-hold gates
(set pins): first-phase current held at mid-phase, electrode voltage held
as the first phase ends, second-phase current held at its mid-phase. Every
loop tests the e-stop (jmp pin) and parks with both legs low when it opens;
with no descriptor it stalls with both legs low; with STOP_IRQ set it parks
at the start of the next pulse. Cycle accounting is in pulse_words().
"""

import rp2
from rp2 import PIO, asm_pio

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rp2.asm_pio import *  # the assembler's names, for the type checker only

AFE_FREQ = 4000000  # SCLK 1.33 MHz at 3 cycles per kept bit: a frame takes ~45 µs of a 500 µs period
PULSE_FREQ = 2000000  # two cycles per loop pass: all counts are in µs
STOP_IRQ = 4  # PIO1 flag that parks the pulse engine between pulses (set by stim_stop)
LEGS_LOW = rp2.asm_pio_encode("set(pins, 0) .side(0)", 2)  # for sm.exec() when stopping
DROP_WORD = rp2.asm_pio_encode("pull(noblock) .side(0)", 2)  # empties the TX FIFO a word at a time

FREQ_MIN_HZ = 1
FREQ_MAX_HZ = 100
PHASE_MIN_US = 50
PHASE_MAX_US = 450
GAP_MAX_US = 100
DEAD_US = 3  # the shortest interphase interval: H-bridge dead time (a gap below it becomes it)
# what each stretch lasts with all its counts 0, in µs at PULSE_FREQ
_PHASE_FIXED_US = 4
_GAP_FIXED_US = 3  # = DEAD_US
_REST_FIXED_US = 5
_FIELD = 10  # bits per count in the first word


@asm_pio(sideset_init=PIO.OUT_LOW, in_shiftdir=PIO.SHIFT_LEFT)
def afe_capture():
    # in_base = DOUT, in_base + 1 = DRDY; side-set = SCLK. The chip shifts a
    # bit out on SCLK rising, the PIO samples as it falls.
    wrap_target()
    wait(1, pin, 1).side(0)
    wait(0, pin, 1).side(0)  # DRDY fell: a frame is ready
    set(x, 3).side(0)  # status 1100: clock past
    label("sync")
    nop().side(1)
    jmp(x_dec, "sync").side(0)
    set(x, 4).side(0)  # LOFF_STAT[4:0]: keep
    label("loff")
    nop().side(1)
    in_(pins, 1).side(0)
    jmp(x_dec, "loff").side(0)
    set(x, 14).side(0)  # GPIO and the zero bits: clock past
    label("gpio")
    nop().side(1)
    jmp(x_dec, "gpio").side(0)
    set(x, 23).side(0)  # channel 1: keep
    label("ch1")
    nop().side(1)
    in_(pins, 1).side(0)
    jmp(x_dec, "ch1").side(0)
    push(noblock).side(0)  # a stopped DMA drops samples, it does not stall the reads
    set(x, 23).side(0)  # channel 2 (powered down): clock past
    label("ch2")
    nop().side(1)
    jmp(x_dec, "ch2").side(0)
    wrap()


@asm_pio(
    sideset_init=[PIO.OUT_LOW, PIO.OUT_LOW],
    set_init=[PIO.OUT_LOW, PIO.OUT_LOW, PIO.OUT_LOW],
    out_shiftdir=PIO.SHIFT_RIGHT,
)
def pulse_train():
    # side-set: bit 0 leg A, bit 1 leg B. set pins: bit 0 track I1, bit 1
    # track I2, bit 2 track V (a track-and-hold tracks while high).
    # Word 0: h1 | h2 << 10 | gap << 20 (loop counts); word 1: rest count.
    wrap_target()
    # 4 is STOP_IRQ: module names are out of reach while asm_pio runs the body
    wait(0, irq, 4).side(0)  # type: ignore[arg-type]  # irq as the wait source
    pull(block).side(0)
    mov(y, osr).side(0)  # the phase counts again for the second phase
    out(x, 10).side(0)
    set(pins, 5).side(1)  # phase 1: leg A, track I1 and V
    label("p1a")
    jmp(pin, "abort").side(1)
    jmp(x_dec, "p1a").side(1)
    out(x, 10).side(1)
    set(pins, 4).side(1).delay(1)  # hold I1 at mid-phase
    label("p1b")
    jmp(pin, "abort").side(1)
    jmp(x_dec, "p1b").side(1)
    set(pins, 0).side(0)  # phase 1 ends; hold V
    out(x, 10).side(0)
    label("gap")
    jmp(pin, "abort").side(0)
    jmp(x_dec, "gap").side(0)
    mov(osr, y).side(0)
    out(x, 10).side(0)
    set(pins, 2).side(2)  # phase 2: leg B, track I2
    label("p2a")
    jmp(pin, "abort").side(2)
    jmp(x_dec, "p2a").side(2)
    out(x, 10).side(2)
    set(pins, 0).side(2).delay(1)  # hold I2 at mid-phase
    label("p2b")
    jmp(pin, "abort").side(2)
    jmp(x_dec, "p2b").side(2)
    pull(block).side(0)  # phase 2 ends; word 1
    push(noblock).side(0)  # one word per completed pulse, counted by DMA
    mov(x, osr).side(0).delay(1)
    label("rest")
    jmp(pin, "abort").side(0)
    jmp(x_dec, "rest").side(0)
    wrap()
    label("abort")  # e-stop open: legs low until the board restarts the program
    set(pins, 0).side(0)
    label("halt")
    jmp("halt").side(0)


def pulse_words(frequency_hz, phase_us, gap_us):
    """The two descriptor words of pulse_train for one pulse timing; ValueError outside the limits.

    At PULSE_FREQ a loop pass is 1 µs and a count n runs n + 1 passes, so
    with every count 0 a phase lasts 4 µs, the gap 3 µs (DEAD_US) and the
    rest 5 µs; each count adds 1 µs. A period lasts round(1e6 / f) µs.
    """
    for v in (frequency_hz, phase_us, gap_us):
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError("pulse timing must be integers")
    if not FREQ_MIN_HZ <= frequency_hz <= FREQ_MAX_HZ:
        raise ValueError("frequency out of range")
    if not PHASE_MIN_US <= phase_us <= PHASE_MAX_US:
        raise ValueError("phase out of range")
    if not 0 <= gap_us <= GAP_MAX_US:
        raise ValueError("gap out of range")
    halves = phase_us - _PHASE_FIXED_US
    h1 = halves // 2
    h2 = halves - h1
    gap = max(gap_us, DEAD_US)
    period = (1000000 + frequency_hz // 2) // frequency_hz
    rest = period - 2 * phase_us - gap - _REST_FIXED_US
    return h1 | h2 << _FIELD | (gap - _GAP_FIXED_US) << (2 * _FIELD), rest
