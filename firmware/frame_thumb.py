"""An EMG stream frame's samples, CRC-32 and COBS in place, in Thumb assembly (RP2040).

Does what firmware/frame_viper.py seal() does, byte for byte, for the
Cortex-M0+ only: ports without the inline Thumb assembler refuse to compile
it and streamframe.py keeps the viper one. A frame's 200-odd bytes go
through three byte loops (the samples' copy, CRC, COBS); viper's code for
them costs about 1 µs a byte on the RP2040, this about 0.15. tests/emulated
checks the frames it seals on the emulated RP2040 against the protocol's
own framing.
"""

import micropython

# the assembler's instructions and labels are names ruff cannot know
# ruff: noqa: F821


@micropython.asm_thumb
def seal(r0, r1, r2, r3):
    # r0: the frame buffer, r1: the encoder's head words (streamframe.py; heads() filled
    # words 9-11), r2: the samples, r3: the CRC-32 table (256 words). r6 keeps the buffer's
    # start, r7 the shortest frame's length (the prologue saves r4-r7)
    mov(r6, r0)
    ldr(r7, [r1, 44])  # word 11: the shortest frame
    ldr(r4, [r1, 36])  # word 9: where the samples go
    ldr(r5, [r1, 32])  # word 8: how many bytes they are
    ldr(r1, [r1, 40])  # word 10: where the payload ends
    add(r4, r4, r0)
    add(r5, r5, r2)
    label(COPY)
    cmp(r2, r5)
    beq(COPIED)
    ldrb(r0, [r2, 0])
    strb(r0, [r4, 0])
    add(r2, r2, 1)
    add(r4, r4, 1)
    b(COPY)
    label(COPIED)
    mov(r2, r3)
    mov(r0, r6)
    add(r1, r1, r0)
    add(r0, r0, 1)
    # CRC-32 (IEEE) of buf[1:end], stored little-endian at buf[end:end + 4]
    mov(r3, 0)
    mvn(r3, r3)
    mov(r5, 0xFF)
    label(CRC)
    cmp(r0, r1)
    beq(CRC_DONE)
    ldrb(r4, [r0, 0])
    eor(r4, r3)
    and_(r4, r5)
    lsl(r4, r4, 2)
    add(r4, r4, r2)
    ldr(r4, [r4, 0])
    lsr(r3, r3, 8)
    eor(r3, r4)
    add(r0, r0, 1)
    b(CRC)
    label(CRC_DONE)
    mvn(r3, r3)
    strb(r3, [r0, 0])
    lsr(r3, r3, 8)
    strb(r3, [r0, 1])
    lsr(r3, r3, 8)
    strb(r3, [r0, 2])
    lsr(r3, r3, 8)
    strb(r3, [r0, 3])
    # COBS in place over buf[1:end + 4]: each zero becomes the distance to the next, the
    # code byte buf[0] the distance to the first; the delimiter at buf[end + 4]
    add(r1, r0, 4)
    mov(r4, 0)
    strb(r4, [r1, 0])
    mov(r3, r6)
    add(r0, r6, 1)
    label(COBS)
    cmp(r0, r1)
    beq(COBS_DONE)
    ldrb(r4, [r0, 0])
    cmp(r4, 0)
    bne(NEXT)
    sub(r4, r0, r3)
    strb(r4, [r3, 0])
    mov(r3, r0)
    label(NEXT)
    add(r0, r0, 1)
    b(COBS)
    label(COBS_DONE)
    sub(r4, r1, r3)
    strb(r4, [r3, 0])
    # the frame's length (through the delimiter) less the shortest frame's
    sub(r0, r1, r6)
    add(r0, r0, 1)
    sub(r0, r0, r7)
