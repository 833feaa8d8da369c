"""A scripted stand-in for a board, for the client's unit tests only.

It is a test double of the *link*, built from protocol/ alone, so a test can
make the other end misbehave at will: drop or delay a reply, answer with the
wrong sequence number, send garbage or an invalid message. It is not a model
of the device: device behaviour is tested against the real firmware in
hil_tests/ and tests/dual/.

It looks like an open pyserial port (read/write/in_waiting/timeout) without a
file descriptor, so host.transport.Port reads it with pyserial timeouts.
"""

import struct
import time

from protocol import codec, framing
from protocol import messages as m
from protocol.errors import HELLO_REQUIRED


class FakeSerial:
    def __init__(self):
        self.timeout = 0
        self.is_open = True
        self.port = "fake://"
        self.to_host = bytearray()
        self.decoder = framing.Decoder()
        self.requests = []  # decoded envelopes the host sent, in order
        self.raw_in = bytearray()  # every byte the host wrote
        self.greeted = False
        self.uptime_ms = 1000
        self.mute = set()  # request types not to answer
        self.drop_next = 0  # answers to swallow before answering again
        self.before_answer = []  # envelopes or raw bytes sent ahead of the next answer
        self._seq = {m.EVENT: 0, m.STREAM: 0}

    # -- pyserial surface used by host.transport.Port ----------------------

    def read(self, size=1):
        if not self.to_host and self.timeout:
            time.sleep(self.timeout)  # as a port does when nothing arrives
        out = bytes(self.to_host[:size])
        del self.to_host[:size]
        return out

    @property
    def in_waiting(self):
        return len(self.to_host)

    def write(self, data):
        self.raw_in += data
        for payload in self.decoder.feed(data):
            msg = codec.loads(payload)
            self.requests.append(msg)
            self._answer(msg)
        return len(data)

    def close(self):
        self.is_open = False

    # -- the device side -----------------------------------------------------

    def types(self):
        return [r[2] for r in self.requests]

    def send(self, msg):
        self.to_host += framing.encode(codec.dumps(msg))

    def send_payload(self, payload):
        self.to_host += framing.encode(payload)

    def push(self, kind, mtype, **fields):
        seq = self._seq[kind]
        self._seq[kind] = (seq + 1) % m.SEQ_MODULO
        self.send(m.build(kind, seq, mtype, **fields))

    def emg(self, first_index, samples, state=m.RUNNING, envelope_dv=60, flags=0):
        data = struct.pack(f"<{len(samples)}i", *samples)
        self.push(
            m.STREAM,
            m.EMG,
            first_index=first_index,
            samples=data,
            envelope_dv=envelope_dv,
            state=state,
            flags=flags,
        )

    def reboot(self):
        self.greeted = False

    def _answer(self, msg):
        _kind, seq, mtype, body = msg
        for item in self.before_answer:
            if isinstance(item, bytes):
                self.to_host += item
            else:
                self.send(item)
        self.before_answer = []
        if mtype in self.mute:
            return
        if self.drop_next:
            self.drop_next -= 1
            return
        if mtype != m.HELLO and not self.greeted:
            self.send(m.error(seq, mtype, HELLO_REQUIRED, "send HELLO first"))
            return
        self.send(self.response(seq, mtype, body))

    def response(self, seq, mtype, body):
        if mtype == m.HELLO:
            self.greeted = True
            return m.build(
                m.RESPONSE,
                seq,
                m.HELLO,
                version=m.negotiate(body[0], body[1]),
                firmware_version="9.9.9",
                board="fake",
                serial="F00D",
                max_payload=framing.MAX_PAYLOAD,
            )
        if mtype == m.INFO:
            return m.build(
                m.RESPONSE,
                seq,
                m.INFO,
                firmware_version="9.9.9",
                board="fake",
                serial="F00D",
                state=m.FAULT_STATE,
                fault={m.FAULT_CODE: 2, m.FAULT_LATCHED: True, m.FAULT_TIME_MS: 1500, m.FAULT_COUNT: 1},
                protocol=None,
                limits={
                    m.LIMIT_HW_MAX_UA: 100000,
                    m.LIMIT_POLICY_MAX_UA: 0,
                    m.LIMIT_MAX_SESSION_S: 3600,
                    m.LIMIT_EMG_RATE_HZ: 2000,
                },
                uptime_ms=self.uptime_ms,
                estop_open=False,
                session={
                    m.SESSION_ELAPSED_MS: 4000,
                    m.SESSION_DURATION_MS: 60000,
                    m.SESSION_PHASE: 0,
                    m.SESSION_CUE: m.CUE_REST,
                    m.SESSION_HOST_DRIVEN: True,
                    m.SESSION_PAUSED_MS: 0,
                },
                link={
                    m.LINK_RX_FRAMES: 3,
                    m.LINK_RX_DROPPED: 1,
                    m.LINK_RX_REFUSED: 0,
                    m.LINK_TX_FRAMES: 5,
                    m.LINK_TX_DROPPED: 0,
                },
            )
        if mtype == m.PING:
            return m.build(m.RESPONSE, seq, m.PING, uptime_ms=self.uptime_ms)
        if mtype == m.STREAM_CONTROL:
            return m.build(m.RESPONSE, seq, m.STREAM_CONTROL)
        state = {
            m.SESSION_START: m.ARMED,
            m.SESSION_PAUSE: m.PAUSED,
            m.SESSION_RESUME: m.RUNNING,
            m.SESSION_STOP: m.DONE,
            m.ESTOP: m.FAULT_STATE,
            m.FAULT_CLEAR: m.IDLE,
        }[mtype]
        return m.build(m.RESPONSE, seq, mtype, state=state)
