"""Link dispatch on the device: frames in, one answer per request out.

Every request gets a RESPONSE or an ERROR carrying its seq; whatever cannot
be parsed at all is answered with an ERROR of type 0 so the host sees it in
its log. Nothing a host sends can raise out of poll(): bad input is refused
and counted. Writes never block (hal.link_write returns False instead), so a
host that stops reading costs dropped frames, not a stalled device.
"""

from firmware.streamframe import EmgFrames
from protocol import codec, framing
from protocol import messages as m
from protocol.errors import BAD_ENVELOPE, HELLO_REQUIRED, ProtocolError

_RX_CHUNK = 128
_RX_CHUNKS_PER_PASS = 4  # a largest request frame (framing.MAX_ENCODED) per pass
# One request answered per pass: a host that sends many at once (a flood of
# PINGs) must not stretch a pass past the output's hold (hal.OUT_HOLD_MIN_MS),
# nor allocate more in one pass than the heap holds between two collections.
# What it sent beyond that waits here, then in the USB ring.


_NO_FIELDS = {}  # type: dict[int, object]
_PONG_HEAD = bytes([0x84, m.RESPONSE])
_PONG_BODY = bytes([m.PING, 0xA1, 0])  # the type, a map of one, key 0: uptime_ms follows


def _ping_seq_len(p):
    """How many bytes the seq takes in p if p is a PING request [0, seq, PING, {}] as codec.dumps()
    writes it (canonical: what the general path would accept), else 0."""
    n = len(p)
    if n < 5 or n > 7 or p[0] != 0x84 or p[1] != m.REQUEST or p[n - 2] != m.PING or p[n - 1] != 0xA0:
        return 0
    if n == 5:
        return 1 if p[2] < 24 else 0
    if n == 6:
        return 2 if p[2] == 0x18 and p[3] >= 24 else 0
    return 3 if p[2] == 0x19 and p[3] else 0


class Link:
    def __init__(self, hal, handlers, log, emg_samples_len=200):
        self._hal = hal
        self._handlers = handlers  # type -> handler(body, now_ms) -> dict of named fields
        self._log = log
        self._rx = bytearray(_RX_CHUNK)
        self._decoder = framing.Decoder()
        self._emg = EmgFrames(emg_samples_len)  # stream frames go out of one reused buffer
        self.emg_head = self._emg.head  # the caller sets a frame's fields here (streamframe.py)
        self._seq = [0] * (m.STREAM + 1)  # per-kind counters (the stream's is its encoder's)
        self.greeted = False  # a HELLO has been answered since boot
        self.version = 0
        self.last_rx_ms = 0
        self.rx_frames = 0  # requests received; hal.collect() is told, as each allocates
        self.rx_refused = 0
        self.tx_frames = 0
        self.tx_dropped = 0
        self._started = False
        self._pending = []  # requests received and not yet answered, oldest first

    @property
    def rx_dropped(self):
        return self._decoder.dropped

    def poll(self, now_ms):
        """Read what the host sent; answer one request. True if one was answered."""
        if not self._started:
            # a delimiter first, so whatever the host saw before (a REPL
            # banner) ends as one dropped frame on its side
            self._started = self._hal.link_write(b"\x00")
        # bounded work per pass: read only when every request read before is answered
        pending = self._pending
        if not pending:
            self._read()
        if not pending:
            return False
        self.answer(pending.pop(0), now_ms)
        return True

    def answer(self, payload, now_ms):
        """Answer one request's payload."""
        if self.greeted and _ping_seq_len(payload):
            self._pong(payload, now_ms)
        else:
            self._request(payload, now_ms)

    # poll(), _read() and _feed() are apart because a call whose state exceeds 11 words (arguments,
    # locals and stack) puts its frame on MicroPython's heap: a search of the heap every pass
    def _read(self):
        for _ in range(_RX_CHUNKS_PER_PASS):
            n = self._hal.link_read(self._rx)
            if n <= 0 or self._feed(n):
                return

    def _feed(self, n):
        """Decode the n bytes read; True once a request is pending."""
        pending = self._pending
        pending.extend(self._decoder.feed(self._rx if n == len(self._rx) else self._rx[:n]))
        self.rx_frames += len(pending)
        return len(pending) > 0

    def _request(self, payload, now_ms):
        seq = 0
        mtype = 0
        try:
            msg = codec.loads(payload, framing.MAX_PAYLOAD)
            if isinstance(msg, list) and len(msg) == 4:
                # echo what we can of a broken request so the host can match it
                if codec.is_int(msg[1]) and 0 <= msg[1] < m.SEQ_MODULO:
                    seq = msg[1]
                if codec.is_int(msg[2]) and 0 <= msg[2] <= 0xFFFF:
                    mtype = msg[2]
            kind, seq, mtype, body = m.parse(msg)
            if kind != m.REQUEST:
                raise ProtocolError(BAD_ENVELOPE, "the device accepts requests only")
            # only a well-formed request shows the host is alive (heartbeat)
            self.last_rx_ms = now_ms
            # an emergency stop is never refused, whoever asks and whenever
            if mtype != m.HELLO and mtype != m.ESTOP and not self.greeted:
                raise ProtocolError(HELLO_REQUIRED, "send HELLO first")
            fields = self._handlers[mtype](body, now_ms)
            self._send(m.build(m.RESPONSE, seq, mtype, **fields))
        except ProtocolError as e:
            self.rx_refused += 1
            self._log.add(now_ms, self._log.LINK_ERROR, e.code, mtype)
            self._send(m.error(seq, mtype, e.code, e.detail))

    def _pong(self, payload, now_ms):
        # the heartbeat, a host's most frequent request, without the general path's decode, message
        # and encode (~4 of its ~6 ms on an RP2040): [1, seq, PING, {0: uptime_ms}], the seq's bytes
        # as the request had them (canonical), the rest as codec.dumps() writes it
        self.last_rx_ms = now_ms
        up = self._handlers[m.PING](_NO_FIELDS, now_ms)["uptime_ms"]
        self._write(_PONG_HEAD + payload[2 : len(payload) - 2] + _PONG_BODY + codec.dumps(up))

    def _send(self, msg):
        return self._write(codec.dumps(msg))

    def _write(self, payload):
        if self._hal.link_write(framing.encode(payload)):
            self.tx_frames += 1
            return True
        self.tx_dropped += 1
        return False

    def push(self, kind, mtype, **fields):
        """Send an event or stream frame, numbered per kind; only to a greeted host."""
        if not self.greeted:
            return False
        seq = self._seq[kind]
        self._seq[kind] = (seq + 1) % m.SEQ_MODULO
        return self._send(m.build(kind, seq, mtype, **fields))

    def push_emg(self, first_index, samples):
        """An EMG stream frame, its other fields already in emg_head (firmware/streamframe.py;
        the encoder numbers the frames); allocation-free, and only to a greeted host."""
        if not self.greeted:
            return False
        if self._hal.link_write(self._emg.encode(first_index, samples)):
            self.tx_frames += 1
            return True
        self.tx_dropped += 1
        return False

    def counters(self):
        return {
            m.LINK_RX_FRAMES: self.rx_frames,
            m.LINK_RX_DROPPED: self.rx_dropped,
            m.LINK_RX_REFUSED: self.rx_refused,
            m.LINK_TX_FRAMES: self.tx_frames,
            m.LINK_TX_DROPPED: self.tx_dropped,
        }
