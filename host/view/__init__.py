"""`tonus view`: the device's live stream in the browser, for the clinician and the patient.

feed.py owns the link (a thread), hub.py fans its messages out to pages,
server.py serves the pages (static/) and their WebSocket, state.py keeps
what the pages show.
"""

import contextlib


@contextlib.contextmanager
def serving(client, recorder, plan=None, heartbeat_ms=1000, demo_s=None, host="127.0.0.1", port=0):
    """(feed, server): the link thread and the web server running; both stopped after."""
    from host.view.feed import Feed
    from host.view.hub import Hub
    from host.view.server import ViewServer

    hub = Hub()
    feed = Feed(client, hub, recorder, plan, heartbeat_ms, demo_s)
    server = ViewServer(feed, hub, host, port)
    server.start()
    feed.start()
    try:
        yield feed, server
    finally:
        feed.stop()
        server.stop()
