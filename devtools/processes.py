"""Local processes, as `make run`, the benchmark and the tests start them: a free port,
waiting for a server to answer, and the environment of a `python -m service` process."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a service started here must not inherit from the caller's shell: its configuration
# is what the caller gives it, nothing more (a container is given nothing else either).
_NOT_INHERITED = (
    "STRIPE_",
    "DATABASE_",
    "DB_POOL_",
    "LOG_LEVEL",
    "WEB_CONCURRENCY",
    "METRICS_",
    "RATE_LIMIT_",
    "MAX_CONN",
)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_answer(
    url: str,
    seconds: float,
    process: subprocess.Popen[bytes] | None = None,
    *,
    status: int | None = None,
) -> bool:
    """True once `url` answers (with `status`, when given); False after `seconds`, or as soon
    as `process` (the server's) has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - a local URL
                answered = answer.status
        except urllib.error.HTTPError as error:
            answered = error.code
        except OSError:
            answered = None
        if answered is not None and status in (None, answered):
            return True
        time.sleep(0.1)
    return False


def service_settings(
    *,
    database_url: str,
    stripe_api_base: str,
    secret_key: str,
    webhook_secret: str,
    price_id: str,
    port: int,
    success_url: str,
    cancel_url: str,
) -> dict[str, str]:
    """The service's own variables for a run on this machine, against a Stripe stand-in."""
    return {
        "DATABASE_URL": database_url,
        "STRIPE_SECRET_KEY": secret_key,
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "STRIPE_PRODUCT_PRICE_ID": price_id,
        "STRIPE_SUCCESS_URL": success_url,
        "STRIPE_CANCEL_URL": cancel_url,
        "STRIPE_API_BASE": stripe_api_base,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        # One local caller, many calls a second: the per-caller limits (20 checkouts a
        # minute by default) would answer nearly all of them 429.
        "RATE_LIMIT_CHECKOUT": "off",
        "RATE_LIMIT_STATUS": "off",
    }


def service_environment(settings: dict[str, str], *, code: Path = ROOT) -> dict[str, str]:
    """The environment of a service process: this shell's, less the service's own variables,
    plus `settings`; `code` is the folder whose `service` package runs."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    return inherited | {"PYTHONPATH": str(code)} | settings
