"""The simulator's link on a TCP socket, for `socket://` clients such as the host.

One host at a time, like a serial port: a new connection replaces the old
one, and both directions start afresh (sim/board.py connect_host): stale
output is not delivered, and what the old host left half sent does not
reach the device ahead of the new host's first frame. While no host is
connected the device's output piles up to the link's bound and is then
dropped, as when nobody reads a port. The loop is single-threaded: it waits
on the sockets only until the next tick is due, so pacing and I/O share one
clock. Every buffer is bounded: the socket is read only into the room the
device's receive ring has (a firmware that does not read pushes back on the
host's writes, as a USB CDC does), and device output is fetched from the
simulator only when the previous batch has gone out. Unpaced (speed 0) the
board also waits for a connected host to take its output before it runs on,
so a session over TCP loses no frame however fast the simulator runs.

The link has no authentication: by default only loopback addresses are
accepted for listening.
"""

import ipaddress
import logging
import selectors
import socket

log = logging.getLogger("tonus.sim.server")

_RECV_BYTES = 4096
_SLICE_MS = 50  # unpaced with a host: simulated time between looks at the sockets, at most
_HOLD_S = 1.0  # longest wait for a host that holds an unpaced board, before looking at stop again


class ListenError(ValueError):
    pass


def parse_listen(text, allow_remote=False):
    """(host, port) from HOST:PORT or [V6]:PORT; refuse non-loopback unless allowed."""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host:
        raise ListenError(f"listen address {text!r} is not HOST:PORT")
    try:
        port = int(port_text)
    except ValueError:
        raise ListenError(f"listen port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ListenError(f"listen port {port} is out of range")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ListenError(f"cannot resolve {host!r}: {e}") from None
    if not allow_remote:
        for info in infos:
            addr = str(info[4][0]).split("%")[0]  # drop an IPv6 zone
            if not ipaddress.ip_address(addr).is_loopback:
                raise ListenError(
                    f"{host} is not a loopback address; the link has no authentication "
                    "(pass --allow-remote to serve it on a network anyway)"
                )
    return host, port


def open_listener(host, port):
    family, kind, proto, _name, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(1)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock):
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        host = f"[{host}]"
    return f"socket://{host}:{port}"


class LinkServer:
    def __init__(self, simulator, listener):
        self.sim = simulator
        self.listener = listener
        self.conn: socket.socket | None = None
        self._events = 0  # what the selector watches the connection for
        self._out = b""  # device output fetched but not yet accepted by the socket
        self._sel = selectors.DefaultSelector()
        self._sel.register(listener, selectors.EVENT_READ)
        simulator.rig.disconnect_host()  # nobody reads until a host connects

    def serve(self, stop):
        """Run until stop (a threading.Event) is set."""
        sim = self.sim
        try:
            while not stop.is_set():
                held = self._watch()
                # unpaced, a host that has not taken the last output holds the board: wait for it
                wait = None if held else sim.clock.wall_delay(sim.next_tick_us)
                for key, mask in self._sel.select(_HOLD_S if held else wait):
                    if key.fileobj is self.listener:
                        self._accept()
                    elif mask & selectors.EVENT_READ:
                        self._receive()
                if sim.clock.speed:
                    sim.catch_up()
                elif self.conn is None:
                    sim.run_for(sim.tick_ms)
                elif not self._held():
                    # unpaced: on to the device's next output (a bounded slice), then to the host
                    sim.advance_until_output(_SLICE_MS)
                self._send()
        finally:
            if self.conn is not None:
                self._drop("server stopping")
            self._sel.close()

    def _held(self):
        return self.conn is not None and not self.sim.clock.speed and bool(self._out)

    def _watch(self):
        """Watch the connection for what it can do now; True if the board waits for the host."""
        if self.conn is None:
            return False
        events = 0
        if self.sim.host_room() > 0:
            events |= selectors.EVENT_READ
        if self._out:
            events |= selectors.EVENT_WRITE
        if events != self._events:
            if self._events:
                self._sel.unregister(self.conn)
            if events:
                self._sel.register(self.conn, events)
            self._events = events
        return self._held()

    def _accept(self):
        try:
            conn, peer = self.listener.accept()
        except BlockingIOError:
            return
        if self.conn is not None:
            self._drop("replaced by a new connection")
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = conn
        self._out = b""
        self._events = 0
        self.sim.rig.reconnect_host()
        log.info("host connected from %s", peer[:2])

    def _receive(self):
        conn = self.conn
        room = self.sim.host_room()
        if conn is None or room <= 0:
            return
        try:
            data = conn.recv(min(room, _RECV_BYTES))
        except BlockingIOError:
            return
        except OSError as e:
            self._drop(f"receive failed: {e}")
            return
        if not data:
            self._drop("host closed the connection")
            return
        self.sim.host_write(data)

    def _send(self):
        if self.conn is None:
            return
        if not self._out:
            self._out = self.sim.host_read(-1)
            if not self._out:
                return
        try:
            n = self.conn.send(self._out)
        except BlockingIOError:
            return
        except OSError as e:
            self._drop(f"send failed: {e}")
            return
        self._out = self._out[n:]

    def _drop(self, why):
        conn, self.conn = self.conn, None
        if conn is None:
            return
        log.info("host disconnected: %s", why)
        if self._events:
            self._sel.unregister(conn)
        self._events = 0
        conn.close()
        self._out = b""
        self.sim.rig.disconnect_host()
