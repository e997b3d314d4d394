"""The event loop every command runs on.

uvloop (libuv, the loop asyncpg is built and tuned for) does the socket work of a request in
C where asyncio's default loop does it in Python: the service's hot paths are mostly socket
reads and writes to clients, PostgreSQL and Stripe. `EVENT_LOOP=asyncio` selects the standard
loop (a debugging aid; behaviour is the same).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")

EVENT_LOOPS = ("uvloop", "asyncio")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], event_loop: str = "uvloop") -> T:
    """asyncio.run on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        return runner.run(main)
