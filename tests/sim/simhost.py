"""The host end of a Simulator's link, in lockstep with it and with no transport in between."""

from protocol import codec, framing
from protocol import messages as m


class LinkHost:
    """The host end of a Simulator's link, with no transport in between."""

    def __init__(self, sim):
        self.sim = sim
        self.decoder = framing.Decoder()
        self.seq = 0
        self.inbox = []  # (sim time ms when read, kind, seq, type, body)
        sim.host_write(b"\x00")

    def send(self, mtype, **fields):
        self.seq += 1
        frame = framing.encode(codec.dumps(m.build(m.REQUEST, self.seq, mtype, **fields)))
        # the device's receive ring is bounded: a test that writes faster than it reads must say so
        if self.sim.host_write(frame) != len(frame):
            raise AssertionError("the device's receive ring had no room for the request")
        return self.seq

    def pump(self):
        now = self.sim.now_ms
        for payload in self.decoder.feed(self.sim.host_read()):
            self.inbox.append((now, *m.parse(codec.loads(payload))))

    def request(self, mtype, timeout_ms=500, **fields):
        """Send a request and run the simulator until its reply arrives; the reply's (kind, body)."""
        seq = self.send(mtype, **fields)
        found = []

        def answered():
            self.pump()
            found[:] = [x for x in self.inbox if x[1] in (m.RESPONSE, m.ERROR) and x[2] == seq]
            return bool(found)

        assert self.sim.run_until(answered, timeout_ms), f"no reply to {m.type_name(mtype)}"
        self.inbox.remove(found[0])
        return found[0][1], found[0][4]

    def run(self, ms, step_ms=25):
        """Run the simulator, reading the link as a host would."""
        for _ in range(ms // step_ms):
            self.sim.run_for(step_ms)
            self.pump()

    def of_type(self, kind, mtype):
        self.pump()
        return [x for x in self.inbox if x[1] == kind and x[3] == mtype]
