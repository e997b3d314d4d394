"""The HTTP server's front door: slow clients, too many clients, no descriptors left.

- Headers must arrive within HEADER_TIMEOUT_SECONDS and a body within BODY_TIMEOUT_SECONDS,
  or Tornado closes the connection (its `idle_connection_timeout` is also the header timeout).
- At most MAX_CONNECTIONS open connections: one more is accepted and at once answered 503
  and closed, never left waiting in the listen queue.
- Out of file descriptors (EMFILE), accepting pauses briefly instead of failing on every
  readiness event of the listening socket (which wrote 84,244 log lines in 25 s), and says
  so at most once a minute.

Tornado's own accept loop (`netutil.add_accept_handler`) lets EMFILE escape to the IOLoop,
which logs it on every iteration; `GuardedServer` accepts with a loop of its own and hands
each connection to the public `handle_stream`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import resource
import socket
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import tornado.httpserver
import tornado.ioloop
import tornado.iostream
import tornado.web

from service.metrics import Metrics

log = logging.getLogger("service.server")


class Refusal(StrEnum):
    """Why a connection was refused at once (the metrics' reason label)."""

    MAX_CONNECTIONS = "max_connections"
    OUT_OF_DESCRIPTORS = "out_of_descriptors"


HEADER_TIMEOUT_SECONDS = 10.0
# Descriptors kept for what is not a client connection: the pool, Stripe, metrics, files.
RESERVED_DESCRIPTORS = 256
# How long accepting pauses when the process has no descriptor left.
ACCEPT_PAUSE_SECONDS = 0.1
# Connections accepted per readiness event of a listening socket (Tornado's own figure).
_ACCEPTS_PER_EVENT = 128
_NO_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_BUSY_BODY = b'{"error": "too many connections; try again later"}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=UTF-8\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: "
    + str(len(_BUSY_BODY)).encode()
    + b"\r\n\r\n"
    + _BUSY_BODY
)


class OncePer:
    """True at most once per `seconds`: a log line that must not become a flood."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._last: float | None = None
        self.suppressed = 0

    def __call__(self) -> bool:
        now = self._clock()
        if self._last is not None and now - self._last < self.seconds:
            self.suppressed += 1
            return False
        self._last = now
        return True


class GuardedServer(tornado.httpserver.HTTPServer):
    """An HTTPServer that caps its connections and survives running out of descriptors.

    Made by `make_server`; `max_connections` and `metrics` are set there (Tornado builds
    HTTPServer through Configurable.initialize, which takes only its own arguments).
    """

    max_connections: int
    metrics: Metrics | None
    open_connections: int
    _stop_accepting: list[Callable[[], None]]
    _refusal_log: OncePer
    _descriptor_log: OncePer

    def add_sockets(self, sockets: Any) -> None:
        for sock in sockets:
            self._stop_accepting.append(self._accept_from(sock))

    def stop(self) -> None:
        for stop in self._stop_accepting:
            stop()
        self._stop_accepting.clear()
        super().stop()

    def handle_stream(self, stream: tornado.iostream.IOStream, address: tuple[Any, ...]) -> None:
        self.open_connections += 1
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        self.open_connections -= 1
        super().on_close(server_conn)

    def _accept_from(self, sock: socket.socket) -> Callable[[], None]:
        """Accept from `sock` on the current IOLoop; returns what stops it (and closes it)."""
        io_loop = tornado.ioloop.IOLoop.current()
        state = {"paused": False, "stopped": False}

        def resume() -> None:
            if not state["stopped"]:
                state["paused"] = False
                io_loop.add_handler(sock, ready, tornado.ioloop.IOLoop.READ)

        def ready(_fd: object, _events: int) -> None:
            for _ in range(_ACCEPTS_PER_EVENT):
                if state["stopped"]:
                    return
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as error:
                    if error.errno not in _NO_DESCRIPTORS:
                        raise
                    self._out_of_descriptors()
                    state["paused"] = True
                    io_loop.remove_handler(sock)
                    io_loop.call_later(ACCEPT_PAUSE_SECONDS, resume)
                    return
                if self.open_connections >= self.max_connections:
                    self._refuse(connection)
                    continue
                stream = tornado.iostream.IOStream(
                    connection,
                    max_buffer_size=self.max_buffer_size,
                    read_chunk_size=self.read_chunk_size,
                )
                self.handle_stream(stream, address)

        def stop() -> None:
            state["stopped"] = True
            if not state["paused"]:
                io_loop.remove_handler(sock)
            sock.close()

        io_loop.add_handler(sock, ready, tornado.ioloop.IOLoop.READ)
        return stop

    def _refuse(self, connection: socket.socket) -> None:
        connection.setblocking(False)
        with contextlib.suppress(OSError):  # fits any socket buffer; if not, never mind
            connection.send(_BUSY)
        connection.close()
        if self.metrics is not None:
            self.metrics.connections_refused.labels(Refusal.MAX_CONNECTIONS).inc()
        if self._refusal_log():
            log.warning(
                "connection refused: MAX_CONNECTIONS open (logged at most once a minute)",
                extra={"fields": {"event": "connections_refused", "limit": self.max_connections}},
            )

    def _out_of_descriptors(self) -> None:
        if self.metrics is not None:
            self.metrics.connections_refused.labels(Refusal.OUT_OF_DESCRIPTORS).inc()
        if self._descriptor_log():
            log.error(
                "out of file descriptors: accepting paused (logged at most once a minute)",
                extra={
                    "fields": {
                        "event": "out_of_descriptors",
                        "open_connections": self.open_connections,
                        "descriptor_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                    }
                },
            )


def make_server(
    app: tornado.web.Application,
    *,
    max_body_size: int,
    body_timeout_seconds: float,
    max_connections: int,
    metrics: Metrics | None = None,
) -> GuardedServer:
    server = GuardedServer(
        app,
        xheaders=False,
        max_body_size=max_body_size,
        # Tornado waits this long for a request's headers, the first one's or the next
        # one's on a kept-alive connection: the header timeout and the idle timeout in one.
        idle_connection_timeout=HEADER_TIMEOUT_SECONDS,
        body_timeout=body_timeout_seconds,
    )
    server.max_connections = max_connections
    server.metrics = metrics
    server.open_connections = 0
    server._stop_accepting = []
    server._refusal_log = OncePer(60.0)
    server._descriptor_log = OncePer(60.0)
    return server


def raise_descriptor_limit(max_connections: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE (up to the hard one) so that MAX_CONNECTIONS
    connections fit with descriptors to spare; warn when even the hard limit is too low."""
    wanted = max_connections + RESERVED_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "the open-file limit is below MAX_CONNECTIONS plus what the service needs: "
            "beyond it, new connections wait until descriptors free up",
            extra={
                "fields": {
                    "event": "descriptor_limit",
                    "descriptor_limit": soft,
                    "max_connections": max_connections,
                }
            },
        )
