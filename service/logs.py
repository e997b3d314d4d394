"""JSON-line logs on stdout, each carrying the request id, with secrets and PII scrubbed,
written by a thread of their own so that a stalled stdout never stalls the event loop.

Callers log structured fields (`extra={"fields": {...}}`); the formatter is the last line of
defence, masking anything shaped like a Stripe key, webhook secret, database URL or e-mail
address that slipped into a message or an exception text.

A line is formatted on the thread that logs it (the request id lives in a context variable
there) and put on a bounded queue; the writer thread drains the queue to the file
descriptor in batches, every 20 ms. When the queue is full (stdout stalled: a stuck log
shipper, Docker's blocking log mode) the line is dropped and counted, never waited for:
see `LogWriter`.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# Who caused what is being done: `key:<id>`, `jwt:<sub>`, `anonymous` (API_AUTH=none),
# `stripe` (a signed webhook), `reconcile`; `system` for the service's own work. Written to
# every log line and audit row; never a token or a key.
actor_var: contextvars.ContextVar[str] = contextvars.ContextVar("actor", default="system")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_REDACTIONS = (
    (re.compile(r"\b(sk|rk|pk)_(test|live)_[A-Za-z0-9]+"), r"\1_\2_[redacted]"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), "whsec_[redacted]"),
    (re.compile(r"\b(postgres(?:ql)?(?:\+\w+)?://)[^\s'\"]+"), r"\1[redacted]"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email redacted]"),
)


# Substrings without which no pattern above can match: most lines skip the regexes.
_TELLTALES = ("_test_", "_live_", "whsec_", "postgres", "@")


def redact(text: str) -> str:
    if not any(telltale in text for telltale in _TELLTALES):
        return text
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def request_id_from(header: str | None) -> str:
    """Honour a caller's X-Request-ID when it is a sane token; otherwise make one."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return os.urandom(16).hex()  # 32 hex digits, like uuid4().hex, at a quarter of its cost


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": request_id_var.get(),
            "actor": actor_var.get(),
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        # Masked value by value, before encoding: masking the encoded line could cut through
        # a JSON escape and break the line.
        masked = {
            key: redact(value) if isinstance(value, str) else value for key, value in entry.items()
        }
        try:  # orjson: a third of json's time per line
            encoded = orjson.dumps(masked, default=_masked_text, option=orjson.OPT_NON_STR_KEYS)
            return encoded.decode()
        except TypeError:  # what orjson cannot encode (an int over 64 bits): the slow path
            return json.dumps(masked, default=_masked_text, separators=(",", ":"))


def _masked_text(value: object) -> str:
    return redact(str(value))


# Lines written per system call at most.
_BATCH_LINES = 512
# How often the writer thread wakes to write what has queued up. Waking it for every line
# (a queue.Queue's get) cost more than the write itself: a thread switch and a GIL handoff
# per line, ~0.1 ms each at INFO under load. A line reaches stdout within this time.
WRITE_INTERVAL_SECONDS = 0.02


class LogWriter(logging.Handler):
    """Queues formatted lines without ever blocking, and writes them from its own thread.

    `emit` runs on the logging thread (the event loop): it formats the line and appends it
    to a queue of at most `capacity` lines, or, when the queue is full, drops it and counts
    it (`dropped`, and the callback `count_drops_with` installs: a metric). Every
    WRITE_INTERVAL_SECONDS the writer thread takes what is queued and writes it to `fd`
    with `os.write`, in batches, so a stalled reader blocks only that thread. It writes the
    descriptor directly rather than through sys.stdout, whose buffer lock a fork could
    inherit held. (A deque's append and popleft are atomic: the two threads need no lock.)
    """

    def __init__(
        self, fd: int, capacity: int, interval_seconds: float = WRITE_INTERVAL_SECONDS
    ) -> None:
        super().__init__()
        self.fd = fd
        self.capacity = capacity
        self.dropped = 0
        self._on_drop: Callable[[int], None] | None = None
        self._lines: collections.deque[bytes] = collections.deque()
        self._interval = interval_seconds
        self._stopping = threading.Event()
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._write_forever, name="log-writer", daemon=True)
        self._thread.start()

    def handle(self, record: logging.LogRecord) -> bool:
        # Handler.handle takes the handler's lock around emit; nothing here needs it, and an
        # uncontended lock per line is still a cost per line.
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "replace")
        except Exception:
            self.handleError(record)
            return
        if len(self._lines) >= self.capacity:
            self._drop(1)
            return
        self._lines.append(line)

    def count_drops_with(self, callback: Callable[[int], None]) -> None:
        """Report drops to `callback` from now on, starting with those already counted."""
        self._on_drop = callback
        if self.dropped:
            callback(self.dropped)

    def _drop(self, count: int) -> None:
        self.dropped += count
        if self._on_drop is not None:
            self._on_drop(count)

    def _write_forever(self) -> None:
        while True:
            stopping = self._stopping.wait(self._interval)
            self._write_queued()
            if stopping:
                return

    def _write_queued(self) -> None:
        while self._lines:
            batch: list[bytes] = []
            with contextlib.suppress(IndexError):
                while len(batch) < _BATCH_LINES:
                    batch.append(self._lines.popleft())
            self._write(b"".join(batch), len(batch))

    def _write(self, data: bytes, lines: int) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd, view)
            except BlockingIOError:  # a descriptor someone made non-blocking: wait a little
                time.sleep(0.01)
                continue
            except InterruptedError:
                continue
            except OSError:  # the reader is gone (EPIPE) or the descriptor closed
                self._drop(lines)
                return
            view = view[written:]

    def close(self) -> None:
        """Let the writer finish what is queued, waiting at most a second (stdout may be
        stalled: a stopping process must still stop)."""
        if self._pid == os.getpid() and self._thread.is_alive():
            self._stopping.set()
            self._thread.join(timeout=1.0)
        super().close()


# Lines a stalled stdout may hold back before new ones are dropped (about 300 bytes each).
LOG_BUFFER_LINES_DEFAULT = 10_000


def configure_logging(level: str, buffer_lines: int = LOG_BUFFER_LINES_DEFAULT) -> LogWriter:
    """JSON lines on stdout through a LogWriter. Called again in a forked worker, which
    needs a writer thread of its own (threads do not survive fork)."""
    # The lines carry none of the caller's file, line, thread or process, so the records need
    # not compute them (the logging HOWTO's "Optimization"): a quarter of each call's cost.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = LogWriter(1, buffer_lines)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The request log is written by the application's log_function, one line per request.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    # The Stripe SDK logs every request and response at INFO (long lines with every query
    # parameter); the service logs and counts its Stripe calls itself. DEBUG shows them.
    stripe_level = logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    logging.getLogger("stripe").setLevel(stripe_level)
    return handler


def count_dropped_lines_with(callback: Callable[[int], None]) -> None:
    """Count lines the installed LogWriter drops with `callback` (a metric's inc)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LogWriter):
            handler.count_drops_with(callback)
