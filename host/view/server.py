"""The web side of `tonus view`: Starlette pages and one WebSocket, served by uvicorn.

Everything lives under /<token>/: a random token in the printed URL, so
another user or a web page in the same browser cannot reach the device
without it; bound to 127.0.0.1 unless told otherwise. The server runs on
its own thread and event loop, apart from the link thread (host/view/feed.py).
"""

import asyncio
import importlib.util
import json
import secrets
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect

from host.errors import TonusError

STATIC = Path(__file__).parent / "static"
COMMAND_MAX = 1000  # bytes in one command from a page
_STARTUP_S = 10.0


def uplot_dir():
    """uPlot's files, from the uplot-python wheel (found without importing its Python wrapper)."""
    spec = importlib.util.find_spec("uplot")
    places = spec.submodule_search_locations if spec else None  # None too for a module that is no package
    folder = Path(places[0]) / "static" if places else None
    if folder is None or not (folder / "uPlot.iife.js").is_file():
        raise TonusError("the uPlot chart library is missing: reinstall tonus (pip install -e .)")
    return folder


def _same_origin(ws):
    """A page of this server, not another site's script in the same browser."""
    origin = ws.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == ws.headers.get("host")


def create_app(feed, hub, token):
    async def clinician(request):
        return FileResponse(STATIC / "clinician.html")

    async def patient(request):
        return FileResponse(STATIC / "patient.html")

    async def stream(ws):
        if not _same_origin(ws):
            await ws.close(code=1008)
            return
        await ws.accept()
        viewer = hub.add()
        recent = hub.recent()
        try:
            await ws.send_text(feed.hello())
            for text in recent:
                await ws.send_text(text)
            await ws.send_text(feed.status_message())  # the replay's statuses are older
            await _serve_viewer(ws, viewer, feed)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the page went away; the link and the recording go on
        finally:
            viewer.close()

    routes = [
        Route("/", clinician),
        Route("/patient", patient),
        WebSocketRoute("/ws", stream),
        Mount("/static", StaticFiles(directory=STATIC)),
        Mount("/uplot", StaticFiles(directory=uplot_dir())),
    ]
    return Starlette(routes=[Mount("/" + token, routes=routes)])


async def _serve_viewer(ws, viewer, feed):
    async def send():
        told = 0
        while True:
            text = await viewer.next()
            if viewer.dropped != told:
                told = viewer.dropped
                await ws.send_text(json.dumps({"t": "d", "n": told}))
            await ws.send_text(text)

    async def receive():
        while True:
            text = await ws.receive_text()
            feed.submit(_command(text))

    tasks = [asyncio.ensure_future(send()), asyncio.ensure_future(receive())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            t.result()
    finally:
        for t in tasks:
            t.cancel()


def _command(text):
    """A command dict from a page's text; a malformed one becomes an unknown command the feed refuses."""
    if len(text) > COMMAND_MAX:
        return {"cmd": "(too long)"}
    try:
        cmd = json.loads(text)
    except ValueError:
        return {"cmd": "(not JSON)"}
    return cmd if isinstance(cmd, dict) else {"cmd": "(not an object)"}


class ViewServer:
    """uvicorn on a thread of its own; url once started."""

    def __init__(self, feed, hub, host="127.0.0.1", port=0, token=None):
        self.token = token or secrets.token_urlsafe(16)
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
            self._sock.listen(64)  # pages that come before the server runs wait in the backlog
        except OSError as e:
            self._sock.close()
            raise TonusError(f"cannot serve on {host}:{port:d}: {e.strerror}") from e
        bound = self._sock.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.url = f"http://{shown}:{bound[1]:d}/{self.token}/"
        self._hub = hub
        config = uvicorn.Config(
            create_app(feed, hub, self.token),
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
            timeout_graceful_shutdown=1,  # open pages do not hold up leaving
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="tonus-view-http", daemon=True)
        self._started = threading.Event()

    def _run(self):
        async def main():
            self._hub.start(asyncio.get_running_loop())
            self._started.set()
            await self._server.serve(sockets=[self._sock])

        asyncio.run(main())

    def start(self):
        self._thread.start()
        self._started.wait(_STARTUP_S)
        return self.url

    def stop(self):
        self._server.should_exit = True
        self._thread.join(_STARTUP_S)
        self._sock.close()
