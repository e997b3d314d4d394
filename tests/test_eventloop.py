"""The event loop each command runs on: uvloop by default, asyncio's own on request."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from service import eventloop


async def _running_loop_type() -> type[asyncio.AbstractEventLoop]:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_commands_run_on_uvloop_by_default() -> None:
    assert issubclass(eventloop.run(_running_loop_type()), uvloop.Loop)


def test_the_standard_loop_can_be_chosen() -> None:
    loop_type = eventloop.run(_running_loop_type(), "asyncio")
    assert not issubclass(loop_type, uvloop.Loop)
    assert issubclass(loop_type, asyncio.BaseEventLoop)


def test_an_exception_in_the_command_reaches_the_caller() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        eventloop.run(fail())
