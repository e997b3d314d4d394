"""`make run` on a machine with no PostgreSQL variables and no Stripe key: it starts the
embedded PostgreSQL and the Stripe sandbox itself, migrates, and serves a healthy service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from processes import free_port

ROOT = Path(__file__).resolve().parent.parent


def _post_json(url: str, body: dict[str, str]) -> dict[str, str]:
    request = urllib.request.Request(  # noqa: S310 - local
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - local
        answer: dict[str, str] = json.loads(response.read())
        return answer


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - local
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - local
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.parametrize("api_auth", [None, "none"], ids=["API_AUTH unset: jwt", "API_AUTH=none"])
def test_make_run_with_nothing_configured_serves_a_healthy_service(
    tmp_path: Path, api_auth: str | None
) -> None:
    port, sandbox_port = free_port(), free_port()
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRIPE_", "DATABASE_", "TEST_DATABASE_URL", "API_AUTH", "AUTH_"))
    }
    if api_auth is not None:
        environment["API_AUTH"] = api_auth
    environment |= {
        "PORT": str(port),
        "SANDBOX_PORT": str(sandbox_port),
        "PAYMENT_DATA_DIR": str(tmp_path / "data"),
    }
    started = time.monotonic()
    run = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        status = 0
        while time.monotonic() - started < 120 and status != 200:
            assert run.poll() is None, run.stdout.read().decode() if run.stdout else ""
            try:
                status, body = _get(f"http://127.0.0.1:{port}/health")
            except OSError:
                time.sleep(0.3)
        assert status == 200
        assert body == "OK"
        assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
        events, _ = _get(f"http://127.0.0.1:{sandbox_port}/v1/events")
        assert events == 401  # the sandbox answers, and wants its key like Stripe does
        status_url = f"http://127.0.0.1:{port}/api/projects/proj_make_run/payment"
        if api_auth == "none":  # for curl experiments: no token needed
            assert _get(status_url)[0] == 404
        else:  # API_AUTH=jwt by default, the sandbox issuing the tokens: none, no answer.
            assert _get(status_url)[0] == 401
            token = _post_json(
                f"http://127.0.0.1:{sandbox_port}/idp/token", {"project_id": "proj_make_run"}
            )["access_token"]
            assert _get(status_url, token)[0] == 404  # authorized; never checked out
            assert _get(status_url.replace("proj_make_run", "proj_other"), token)[0] == 403
    finally:
        os.killpg(run.pid, signal.SIGTERM)  # what Ctrl-C in a terminal does, to every process
        output, _ = run.communicate(timeout=60)
    text = output.decode()
    assert "no real money moves" in text
    assert '"event":"stopped"' in text  # the service drained and closed cleanly
    assert "database_role_too_powerful" not in text  # it serves as the app role
    assert ("API_AUTH=jwt: the sandbox issues" in text) == (api_auth is None)
    for url in (f"http://127.0.0.1:{port}/health", f"http://127.0.0.1:{sandbox_port}/v1/events"):
        try:
            _get(url)
        except OSError:
            continue
        raise AssertionError(f"{url} still answers after make run stopped")
