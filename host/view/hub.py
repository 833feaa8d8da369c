"""One stream, many viewers: fan-out from the link thread to each page's socket.

The link thread publishes without ever waiting: a message is handed to the
server's event loop and put in each viewer's bounded queue. A viewer that
reads too slowly loses its oldest stream messages (counted, and told to the
page so it can say so); events are never dropped for a viewer while it is
connected. Nothing a browser does can hold up the link thread, so the
recording and the heartbeat go on whatever the pages do.
"""

import asyncio
import collections
import contextlib
import threading

QUEUE_MAX = 400  # about 10 s of stream frames (40 a second) waiting for a slow page
RECENT_FRAMES = 1200  # the last 30 s of stream, so a page opened late shows a trace at once
RECENT_EVENTS = 200


class Viewer:
    """One connected page: its queue of JSON texts and what it missed."""

    def __init__(self, hub, maxlen=QUEUE_MAX):
        self._hub = hub
        self._queue: collections.deque[tuple[str, bool]] = collections.deque()  # (text, droppable)
        self._maxlen = maxlen
        self._ready = asyncio.Event()
        self.dropped = 0  # stream messages discarded because the page was behind
        self.closed = False

    def _put(self, text, droppable):
        if droppable and len(self._queue) >= self._maxlen:
            # drop the oldest stream message; events stay in order
            for k, (_old, old_droppable) in enumerate(self._queue):
                if old_droppable:
                    del self._queue[k]
                    self.dropped += 1
                    break
        self._queue.append((text, droppable))
        self._ready.set()

    async def next(self):
        """The next JSON text for this page (waits for one)."""
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()[0]

    def close(self):
        self.closed = True
        self._hub.remove(self)


class Hub:
    """Thread-safe publish; viewers live on the event loop given at start."""

    def __init__(self):
        self._loop = None
        self._viewers = set()
        self._lock = threading.Lock()
        self.published = 0
        self._frames: collections.deque[str] = collections.deque(maxlen=RECENT_FRAMES)  # event loop only
        self._events: collections.deque[str] = collections.deque(maxlen=RECENT_EVENTS)

    def start(self, loop):
        self._loop = loop

    def add(self, maxlen=QUEUE_MAX):
        """A new Viewer; call on the event loop."""
        v = Viewer(self, maxlen)
        with self._lock:
            self._viewers.add(v)
        return v

    def remove(self, viewer):
        with self._lock:
            self._viewers.discard(viewer)

    @property
    def viewers(self):
        with self._lock:
            return len(self._viewers)

    def publish(self, text, droppable=False):
        """Hand a JSON text to every viewer; returns at once, from any thread."""
        self.published += 1
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # a RuntimeError: the loop is closing, the server is going away, the link thread carries on
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._deliver, text, droppable)

    def recent(self):
        """What a new viewer replays first: recent events, then the recent stream; call on the event loop."""
        return list(self._events) + list(self._frames)

    def _deliver(self, text, droppable):
        (self._frames if droppable else self._events).append(text)
        with self._lock:
            viewers = list(self._viewers)
        for v in viewers:
            v._put(text, droppable)
