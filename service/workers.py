"""Multi-process mode: one listening socket, N worker processes, one supervisor.

Each worker is a full single-threaded service (its own event loop, pool and Stripe client)
accepting from the shared socket, so all cores serve. The supervisor forwards SIGTERM and
SIGINT to every worker and restarts a worker that dies on its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time

from service import eventloop
from service.config import Settings
from service.http.app import bind_port, serve, start_metrics
from service.logs import configure_logging, count_dropped_lines_with
from service.metrics import log_lines_dropped_counter, worker_exited

log = logging.getLogger("service.workers")

# A worker that keeps dying right after start-up is not restarted forever.
MAX_RESTARTS_PER_MINUTE = 10


def _start_worker(settings: Settings, sockets: list[socket.socket]) -> int:
    pid = os.fork()
    if pid == 0:  # the worker: never returns into the supervisor's code
        # The supervisor's SIGTERM/SIGINT handler came across the fork: in a worker it would
        # signal the worker's siblings and leave the worker running. Until serve() installs its
        # own (graceful) handlers, a signal simply ends a worker that serves nothing yet.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        code = 0
        # Its own log writer: the supervisor's writer thread did not survive the fork.
        configure_logging(settings.log_level, settings.log_buffer_lines)
        try:
            eventloop.run(serve(settings, sockets), settings.event_loop)
        except BaseException:
            log.exception("worker failed")
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)
    return pid


def run_workers(settings: Settings, count: int) -> int:
    """Serve with `count` worker processes until SIGTERM/SIGINT; returns the exit status."""
    sockets = bind_port("PORT", settings.host, settings.port)
    start_metrics(settings, None)  # the sum over the workers
    stopping = False
    workers: dict[int, int] = {}

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(count):
        workers[_start_worker(settings, sockets)] = index
    # The supervisor's own dropped log lines (its workers count theirs): registered nowhere,
    # it reaches /metrics through the multiprocess files like the workers' metrics.
    count_dropped_lines_with(log_lines_dropped_counter(None).inc)
    log.info("workers started", extra={"fields": {"event": "workers", "count": count}})
    restarts: list[float] = []
    status = 0
    while workers:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid not in workers:
            continue
        index = workers.pop(pid)
        worker_exited(pid)
        code = os.waitstatus_to_exitcode(wait_status)
        if stopping:
            status = status or (0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else 1)
            continue
        restarts = [t for t in restarts if t > time.monotonic() - 60] + [time.monotonic()]
        log.error(
            "worker exited; restarting", extra={"fields": {"event": "worker_exit", "code": code}}
        )
        if len(restarts) > MAX_RESTARTS_PER_MINUTE:
            stop(signal.SIGTERM, None)
            status = 1
            continue
        workers[_start_worker(settings, sockets)] = index
    for sock in sockets:
        sock.close()
    return status
