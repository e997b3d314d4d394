"""A port already taken stops `python -m service` (and the sandbox) with one line naming the
port and the variable that chose it, a non-zero exit and no traceback, before the service
touches the database."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from processes import free_port, run_to_end, service_environment


@pytest.fixture
def taken() -> Iterator[int]:
    """A port some other process listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def run(args: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_to_end([sys.executable, *args], environment)


def assert_one_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_taken_port_is_one_line(taken: int, workers: str) -> None:
    # No database behind this URL: the port is checked first, so it is never reached.
    environment = service_environment(
        "postgresql://nobody@127.0.0.1:1/none", "http://127.0.0.1:1", taken, WEB_CONCURRENCY=workers
    )
    result = run(["-m", "service"], environment)
    assert_one_line(result, f"payment-service: cannot listen on 127.0.0.1:{taken} (PORT)")


def test_a_taken_metrics_port_is_one_line(taken: int) -> None:
    environment = service_environment(
        "postgresql://nobody@127.0.0.1:1/none",
        "http://127.0.0.1:1",
        free_port(),
        METRICS_PORT=str(taken),
    )
    result = run(["-m", "service"], environment)
    assert_one_line(result, f"cannot listen on 127.0.0.1:{taken} (METRICS_PORT)")


def test_the_sandbox_on_a_taken_port_is_one_line(taken: int) -> None:
    result = run(["-m", "sandbox", "--port", str(taken)], service_environment("", "", 1))
    assert_one_line(result, f"sandbox: cannot listen on 127.0.0.1:{taken}")
