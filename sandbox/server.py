"""Serving the stand-in, the one way every caller does: `listen` on the running loop (tests'
fixtures, `python -m sandbox`, the benchmark's stand-in), `ThreadedSandbox` on a thread of
its own (synchronous tests, scripts), `command` for a process of its own (make run, tests
that need real processes)."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from dataclasses import dataclass
from types import TracebackType

import tornado.httpserver
import tornado.netutil

from sandbox.api import make_api_app
from sandbox.state import SandboxState


@dataclass
class Listening:
    """The stand-in's API, served for `state` at `url` until `close`."""

    state: SandboxState
    url: str
    server: tornado.httpserver.HTTPServer

    async def close(self) -> None:
        """Stop accepting, cancel the state's timers and deliveries, then end every
        connection (also requests a hang_next fault is still holding)."""
        self.server.stop()
        await self.state.close()
        await self.server.close_all_connections()


def listen(
    state: SandboxState,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    service_url: str | None = None,
) -> Listening:
    """Serve `state` on host:port (0: a free port) on the current loop; sets
    `state.public_base_url` to the address served. OSError when the port is taken."""
    sockets = tornado.netutil.bind_sockets(port, host)
    url = f"http://{host}:{sockets[0].getsockname()[1]}"
    state.public_base_url = url
    server = tornado.httpserver.HTTPServer(make_api_app(state, service_url=service_url))
    server.add_sockets(sockets)
    return Listening(state, url, server)


async def serve_until_signalled(listening: Listening) -> None:
    """Keep serving until SIGTERM or SIGINT, then close."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await listening.close()


def command(
    *,
    port: int,
    api_key: str,
    price_id: str,
    host: str = "127.0.0.1",
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    service_url: str | None = None,
) -> list[str]:
    """The command line of `python -m sandbox` serving on host:port (run it from the root)."""
    args = [sys.executable, "-m", "sandbox", "--host", host, "--port", str(port)]
    args += ["--api-key", api_key, "--price-id", price_id]
    if webhook_url is not None and webhook_secret is not None:
        args += ["--webhook-url", webhook_url, "--webhook-secret", webhook_secret]
    if service_url is not None:
        args += ["--service-url", service_url]
    return args


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
        listening = listen(self.state, host=self._host, port=self._port)
        self.url = listening.url
        self._loop = asyncio.get_running_loop()
        # Events made on the caller's thread are delivered, and sessions expire, on this loop.
        self.state.attach(self._loop)
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await listening.close()
