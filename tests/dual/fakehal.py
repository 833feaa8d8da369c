"""A small deterministic HAL for firmware tests on both runtimes.

The simulator in sim/ is the faithful board model (it needs numpy, so it runs
on CPython only); this double exists so the controller and state machine
tests also run on a real MicroPython. The test drives time explicitly.
"""

from dualtest import Lcg
from firmware import hal as H


class FakeHal(H.Hal):
    board = "fake"
    serial = "0123456789ABCDEF"
    emg_rate_hz = 2000
    hw_max_ua = 100000
    compliance_mv = 60000
    dummy_load_ohm = 500

    def __init__(self, files=None, reset_cause=H.RESET_POWER_ON, seed=1):
        self.t_ms = 0
        self.rnd = Lcg(seed)
        self.emg_next = 0  # index of the next sample the firmware will read
        self.emg_produced = 0  # samples the "front end" has produced
        self.emg_flags = 0
        self.emg_on = True
        self.amplitude_dv = 60
        self.enabled = False
        self.enable_log = []  # (t_ms, on)
        self.estop = False
        self.irq = None
        self.pressed = 0
        self.led_mode = -1
        self.tone = 0
        self.wdt_timeout = 0
        self.wdt_fed = 0
        self.cause = reset_cause
        self.files = files if files is not None else {}
        self.fs_writes = 0
        self.cut_at = -1  # power fails instead of flash write number cut_at
        self.after_flash = None  # an interrupt that lands during the next flash operation (run at its end)
        self.rx = b""
        # pulse engine: pulses come at the configured rate while started and enabled
        self.stim_hz = 0
        self.stim_running = False
        self.stim_started_ms = 0
        self.stim_cmd = 0
        self.stim_log = []  # (t_ms, commanded µA) at every change
        self.keepalives = 0
        self.collections = 0  # collect() calls: the loop's chosen point, once per pass
        self.load_ohm = 1000
        self.sense_gain_percent = 100  # the current the stage really delivers, % of the command
        self.phase2_percent = 100  # the second phase's current, % of the first
        self.stim_stalled = False
        self.dummy_on = False
        self.dummy_log = []  # (t_ms, on, output enabled at the switch)
        self._electrode_ohm = self.load_ohm
        self._wdt_seen = 0  # wdt_fed when wdt_left_ms() last looked
        self._wdt_seen_ms = 0
        self.resets = []  # t_ms of each reset the firmware asked for
        self.tx = []
        self.host_reading = True

    def now_ms(self):
        return self.t_ms

    def advance(self, ms):
        self.t_ms += ms
        if self.emg_on:
            self.emg_produced = self.t_ms * self.emg_rate_hz // 1000

    def emg_index(self):
        return self.emg_next

    def emg_read(self, buf):
        n = min(len(buf), self.emg_produced - self.emg_next)
        a = self.amplitude_dv
        for i in range(n):
            buf[i] = self.rnd.below(2 * a + 1) - a
        self.emg_next += n
        return n

    def emg_status(self):
        f = self.emg_flags
        return f

    def out_enable(self, on):
        if on != self.enabled:
            self.enable_log.append((self.t_ms, on))
        self.enabled = on

    def out_enabled(self):
        return self.enabled

    def out_keepalive(self):
        self.keepalives += 1

    def stim_configure(self, frequency_hz, phase_us, gap_us):
        self.stim_hz = frequency_hz
        self.stim_running = False

    def stim_start(self):
        self.stim_running = True
        self.stim_started_ms = self.t_ms

    def stim_stop(self):
        self.stim_running = False

    def stim_amplitude(self, ua):
        # as the board (board_pico.py) and the simulator's output stage refuse it
        if not isinstance(ua, int) or not 0 <= ua <= self.hw_max_ua or ua % 100:
            raise ValueError("amplitude out of range or not in 100 uA steps")
        self.stim_cmd = ua
        self.stim_log.append((self.t_ms, ua))

    def stim_pulses(self):
        if not (self.stim_running and self.enabled) or self.stim_stalled:
            return 0
        return (self.t_ms - self.stim_started_ms) * self.stim_hz // 1000

    def stim_sense(self, out):
        i = self.stim_cmd * self.sense_gain_percent // 100
        v = i * self.load_ohm // 1000  # µA x Ω = µV; /1000 for mV
        if v > self.compliance_mv:
            v = self.compliance_mv
            i = v * 1000 // self.load_ohm
        out[0] = self.stim_pulses() if not self.stim_stalled else out[0]
        out[1] = i
        out[2] = i * self.phase2_percent // 100
        out[3] = v
        if len(out) > 4 and out[0]:
            # pulse k starts at started + k / hz: its EMG sample index
            k = out[0] - 1
            out[4] = (self.stim_started_ms * 1000 + k * 1000000 // self.stim_hz) * self.emg_rate_hz // 1000000

    def dummy_load(self, on):
        # the relay puts the dummy resistor in the electrodes' place
        if on and not self.dummy_on:
            self._electrode_ohm = self.load_ohm
            self.load_ohm = self.dummy_load_ohm
        elif not on and self.dummy_on:
            self.load_ohm = self._electrode_ohm
        self.dummy_on = on
        self.dummy_log.append((self.t_ms, on, self.enabled))

    def dummy_load_on(self):
        return self.dummy_on

    def collect(self, requests):
        self.collections += 1

    def estop_open(self):
        return self.estop

    def estop_irq(self, handler):
        self.irq = handler

    def press_estop(self):
        self.estop = True
        if self.irq:
            self.irq(None)

    def buttons(self):
        p = self.pressed
        self.pressed = 0
        return p

    def led(self, mode):
        self.led_mode = mode

    def buzzer(self, hz):
        self.tone = hz

    def wdt_start(self, timeout_ms):
        self.wdt_timeout = timeout_ms

    def wdt_feed(self):
        self.wdt_fed += 1

    def wdt_left_ms(self):
        if not self.wdt_timeout:
            return -1
        if self.wdt_fed != self._wdt_seen:  # fed since the last look: count from now
            self._wdt_seen = self.wdt_fed
            self._wdt_seen_ms = self.t_ms
        return max(self.wdt_timeout - (self.t_ms - self._wdt_seen_ms), 0)

    def reset(self):
        self.resets.append(self.t_ms)

    def reset_cause(self):
        return self.cause

    def fs_read(self, name):
        return self.files.get(name)

    def fs_write(self, name, data):
        if self.fs_writes == self.cut_at:
            self.dead = True
            raise OSError(5)  # the write never happens; nothing after it runs
        self.fs_writes += 1
        self.files[name] = bytes(data)
        self._flash_done()

    def fs_remove(self, name):
        if name in self.files:
            del self.files[name]
        self._flash_done()

    def _flash_done(self):
        # interrupts held off by a flash operation run when it completes
        pending = self.after_flash
        self.after_flash = None
        if pending is not None:
            pending()

    def link_read(self, buf):
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        self.rx = self.rx[n:]
        return n

    def link_write(self, data):
        if not self.host_reading:
            return False
        self.tx.append(bytes(data))
        return True


class Host:
    """The host end of the fake link: framed requests in, parsed messages out."""

    def __init__(self, hal):
        from protocol import framing

        self.hal = hal
        self.decoder = framing.Decoder()
        self.seq = 0
        self.inbox = []

    def send_raw(self, data):
        self.hal.rx = self.hal.rx + data

    def send(self, mtype, **fields):
        from protocol import codec, framing
        from protocol import messages as m

        self.seq = (self.seq + 1) % m.SEQ_MODULO
        self.send_raw(framing.encode(codec.dumps(m.build(m.REQUEST, self.seq, mtype, **fields))))
        return self.seq

    def receive(self):
        from protocol import codec
        from protocol import messages as m

        for chunk in self.hal.tx:
            for payload in self.decoder.feed(chunk):
                self.inbox.append(m.parse(codec.loads(payload)))
        self.hal.tx = []
        return self.inbox

    def reply(self, seq):
        """The response or error answering seq, removed from the inbox."""
        from protocol import messages as m

        for msg in self.receive():
            if msg[0] in (m.RESPONSE, m.ERROR) and msg[1] == seq:
                self.inbox.remove(msg)
                return msg
        return None

    def of_type(self, kind, mtype):
        return [x for x in self.receive() if x[0] == kind and x[2] == mtype]


def booted(**kw):
    from firmware.controller import Controller

    hal = FakeHal(**kw)
    hal.dead = False
    ctrl = Controller(hal)
    ctrl.boot()
    return hal, ctrl


def run(hal, ctrl, ms, tick=5):
    for _ in range(ms // tick):
        hal.advance(tick)
        ctrl.step()


def request(hal, ctrl, host, mtype, **fields):
    """Send a request and run the loop until it is answered (one request a pass), at most 10 passes."""
    seq = host.send(mtype, **fields)
    for _ in range(10):
        run(hal, ctrl, 5)
        r = host.reply(seq)
        if r is not None:
            return r
    return None


def greeted(**kw):
    from protocol import messages as m

    hal, ctrl = booted(**kw)
    host = Host(hal)
    request(hal, ctrl, host, m.HELLO, min_version=1, max_version=1)
    return hal, ctrl, host
