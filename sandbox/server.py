"""Serving the stand-in: on a thread of its own, for callers without a running loop
(synchronous tests, scripts); `python -m sandbox` serves it in the foreground."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

import tornado.httpserver
import tornado.netutil

from sandbox.api import make_api_app
from sandbox.state import SandboxState


class ThreadedSandbox:
    """`with ThreadedSandbox(state) as url:` serves `state` on a free port until the block ends.

    The server runs on its own thread and asyncio loop, so the caller may block (sync SDK
    calls) without stalling it. `state.public_base_url` is set to the address it serves on.
    """

    def __init__(self, state: SandboxState, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self._host = host
        self._port = port
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="stripe-sandbox", daemon=True)
        self.url = ""

    def __enter__(self) -> str:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Stripe sandbox did not start")
        return self.url

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        [sock] = tornado.netutil.bind_sockets(self._port, self._host)
        port = sock.getsockname()[1]
        self.url = f"http://{self._host}:{port}"
        self.state.public_base_url = self.url
        server = tornado.httpserver.HTTPServer(make_api_app(self.state))
        server.add_sockets([sock])
        self._loop = asyncio.get_running_loop()
        # Events made on the caller's thread are delivered, and sessions expire, on this loop.
        self.state.attach(self._loop)
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        server.stop()
        await self.state.close()
        await server.close_all_connections()
