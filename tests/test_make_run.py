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
from processes import free_port, run_to_end

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


def _make(target: str, environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_to_end(["make", "--no-print-directory", target, *args], environment, timeout=120)


def _post(url: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - local
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - local
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.parametrize("api_auth", [None, "none"], ids=["API_AUTH unset: jwt", "API_AUTH=none"])
def test_make_run_with_nothing_configured_serves_a_healthy_service(
    tmp_path: Path, api_auth: str | None
) -> None:
    port, sandbox_port, metrics_port = free_port(), free_port(), free_port()
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("STRIPE_", "DATABASE_", "TEST_DATABASE_URL", "API_AUTH", "AUTH_", "METRICS_", "PORT")
        )
    }
    if api_auth is not None:
        environment["API_AUTH"] = api_auth
    environment |= {
        "PORT": str(port),
        "SANDBOX_PORT": str(sandbox_port),
        "METRICS_PORT": str(metrics_port),
        "PAYMENT_DATA_DIR": str(tmp_path / "data"),
    }
    run_env = tmp_path / "data" / "run.env"
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
            check_the_commands_act_on_what_make_run_chose(environment, run_env, metrics_port)
        else:  # API_AUTH=jwt by default, the sandbox issuing the tokens: none, no answer.
            assert _get(status_url)[0] == 401
            token = _post_json(
                f"http://127.0.0.1:{sandbox_port}/idp/token", {"project_id": "proj_make_run"}
            )["access_token"]
            assert _get(status_url, token)[0] == 404  # authorized; never checked out
            assert _get(status_url.replace("proj_make_run", "proj_other"), token)[0] == 403
            check_a_second_make_run_refuses_in_one_line(environment)
    finally:
        os.killpg(run.pid, signal.SIGTERM)  # what Ctrl-C in a terminal does, to every process
        output, _ = run.communicate(timeout=60)
    text = output.decode()
    assert "no real money moves" in text
    assert f"Metrics (Prometheus):    http://127.0.0.1:{metrics_port}/metrics" in text
    assert f"STRIPE_API_BASE=http://127.0.0.1:{sandbox_port}" in text
    assert not run_env.exists()  # what it named is gone
    assert '"event":"stopped"' in text  # the service drained and closed cleanly
    assert "database_role_too_powerful" not in text  # it serves as the app role
    assert ("API_AUTH=jwt: the sandbox issues" in text) == (api_auth is None)
    for url in (f"http://127.0.0.1:{port}/health", f"http://127.0.0.1:{sandbox_port}/v1/events"):
        try:
            _get(url)
        except OSError:
            continue
        raise AssertionError(f"{url} still answers after make run stopped")


def check_the_commands_act_on_what_make_run_chose(
    environment: dict[str, str], run_env: Path, metrics_port: int
) -> None:
    """.data/run.env names the database, the sandbox and the webhook secret make run chose;
    make migrate, trigger, send-event and reconcile use them with nothing else set."""
    deadline = time.monotonic() + 10  # written with the banner, just after /health answers
    while not run_env.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    chosen = dict(
        line.split("=", 1) for line in run_env.read_text().splitlines() if not line.startswith("#")
    )
    assert chosen["DATABASE_URL"].startswith("postgresql://")
    assert chosen["STRIPE_API_BASE"] == f"http://127.0.0.1:{environment['SANDBOX_PORT']}"
    assert chosen["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
    assert oct(run_env.stat().st_mode & 0o777) == "0o600"
    status, metrics = _get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert status == 200
    assert "payment_http_requests_total" in metrics

    # The commands run as a newcomer types them: no variable but the test's ports/folder.
    plain = {k: v for k, v in environment.items() if k not in ("PORT", "METRICS_PORT")}
    plain.pop("SANDBOX_PORT")
    migrate = _make("migrate", plain)
    assert migrate.returncode == 0, migrate.stderr
    assert "migrations applied: none pending" in migrate.stdout

    service = f"http://127.0.0.1:{environment['PORT']}"
    code, _ = _post(f"{service}/api/checkout", b'{"project_id": "proj_make_run_1"}')
    assert code == 200
    trigger = _make("trigger", plain, "ACTION=complete", "PROJECT=proj_make_run_1")
    assert trigger.returncode == 0, trigger.stderr
    assert "checkout.session.completed" in trigger.stdout
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline
        and '"paid"' not in _get(f"{service}/api/projects/proj_make_run_1/payment")[1]
    ):
        time.sleep(0.2)
    assert '"paid"' in _get(f"{service}/api/projects/proj_make_run_1/payment")[1]

    sent = _make("send-event", plain, "EVENT=checkout.session.expired", "PROJECT=proj_make_run_2")
    assert sent.returncode == 0, sent.stderr
    assert '200 {"received":true}' in sent.stdout

    reconcile = _make("reconcile", plain, "SINCE=1h", "DRY_RUN=1")
    assert reconcile.returncode == 0, reconcile.stderr
    assert "dry run: seen 1, would apply 0, already recorded 1" in reconcile.stdout


def check_a_second_make_run_refuses_in_one_line(environment: dict[str, str]) -> None:
    second = _make("run", environment)
    assert second.returncode != 0
    ours = [line for line in second.stdout.splitlines() if line.startswith("[make run]")]
    assert len(ours) == 1, second.stdout
    assert "already in use" in ours[0]
    for port in ("PORT", "SANDBOX_PORT", "METRICS_PORT"):
        assert f"{environment[port]} ({port})" in ours[0]
    assert "Traceback" not in second.stdout + second.stderr
    assert "is up" not in second.stdout
