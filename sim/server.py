"""The simulator's link on a TCP socket, for `socket://` clients such as the host.

One host at a time, like a serial port: a new connection replaces the old
one, and stale output from before it is not delivered. While no host is
connected the device's output piles up to the link's bound and is then
dropped, as when nobody reads a port. The loop is single-threaded: it waits
on the sockets only until the next tick is due, so pacing and I/O share one
clock. Device output is fetched from the simulator only when the previous
batch has gone out, so a host that stops reading pushes back to the device.

The link has no authentication: by default only loopback addresses are
accepted for listening.
"""

import ipaddress
import logging
import selectors
import socket

log = logging.getLogger("tonus.sim.server")

_RECV_BYTES = 4096


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
            addr = info[4][0].split("%")[0]  # drop an IPv6 zone
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
        self.conn = None
        self._out = b""  # device output fetched but not yet accepted by the socket
        self._sel = selectors.DefaultSelector()
        self._sel.register(listener, selectors.EVENT_READ)
        simulator.rig.disconnect_host()  # nobody reads until a host connects

    def serve(self, stop):
        """Run until stop (a threading.Event) is set."""
        sim = self.sim
        try:
            while not stop.is_set():
                for key, _mask in self._sel.select(sim.clock.wall_delay(sim.next_tick_us)):
                    if key.fileobj is self.listener:
                        self._accept()
                    else:
                        self._receive()
                if sim.clock.speed:
                    sim.catch_up()
                else:
                    sim.run_for(sim.tick_ms)
                self._send()
        finally:
            if self.conn is not None:
                self._drop("server stopping")
            self._sel.close()

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
        self._sel.register(conn, selectors.EVENT_READ)
        self.sim.rig.reconnect_host()
        log.info("host connected from %s", peer[:2])

    def _receive(self):
        try:
            data = self.conn.recv(_RECV_BYTES)
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
        log.info("host disconnected: %s", why)
        self._sel.unregister(self.conn)
        self.conn.close()
        self.conn = None
        self._out = b""
        self.sim.rig.disconnect_host()
