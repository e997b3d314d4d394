"""`make run`: the service on this machine with zero setup.

Uses DATABASE_URL and the STRIPE_* variables when they are set. Otherwise starts what is
missing: an embedded PostgreSQL whose data lives in ./.data/postgres (kept across runs;
`make clean-data` removes it) and the local Stripe sandbox (no real money, no network).
Then migrates and serves until Ctrl-C, with metrics on METRICS_PORT (9464).

What it chose (the database URL, the sandbox's API base, key and webhook secret, the ports)
is printed in the banner and written to ./.data/run.env, which `make migrate`, `make
reconcile`, `make send-event` and `make trigger` read (devtools/run_env.py), so they act on
this very database and sandbox. It refuses to start, in one line, when a port it needs is
taken (another `make run`?).
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from devtools.postgres import allow_login, create_database, start_embedded, with_database, with_user
from devtools.processes import wait_for_answer
from devtools.run_env import RUN_ENV_NAME
from sandbox.identity import AUDIENCE as SANDBOX_AUDIENCE
from sandbox.identity import JWKS_PATH as SANDBOX_JWKS_PATH
from sandbox.server import command as sandbox_command

ROOT = Path(__file__).resolve().parent.parent
# Where the embedded PostgreSQL keeps its data; tests point it at a throwaway folder.
DATA = Path(os.environ.get("PAYMENT_DATA_DIR", str(ROOT / ".data")))
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "12111"))
SANDBOX_KEY = "sk_test_sandbox0000000000000000"
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox0000000000000000"  # noqa: S105 - a local sandbox value
SANDBOX_PRICE = "price_sandbox"
METRICS_PORT = "9464"
APP_ROLE = os.environ.get("DB_APP_ROLE", "payment_app")


def _say(text: str) -> None:
    print(f"[make run] {text}", flush=True)


def _embedded_database() -> tuple[str, Any]:
    # pgserver asks platformdirs for a runtime folder, which warns where none is set.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    admin_url, server = start_embedded(DATA / "postgres", delete_on_exit=False)
    url = with_database(admin_url, "payments")
    try:
        asyncio.run(create_database(admin_url, "payments"))
    except Exception as error:
        if "already exists" not in str(error):
            raise
    return url, server


def _ports_in_use(ports: dict[str, tuple[str, int]]) -> list[str]:
    """The ports (by the variable that chose them) another process already listens on."""
    taken = []
    for variable, (host, port) in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            try:
                probe.bind((host, port))
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
                taken.append(f"{port} ({variable})")
    return taken


def _start_sandbox(
    env: dict[str, str], port: str, chosen: dict[str, str]
) -> subprocess.Popen[bytes]:
    """Point `env` at the Stripe sandbox and start it (what it chose goes into `chosen`)."""
    sandbox_url = f"http://127.0.0.1:{SANDBOX_PORT}"
    _say(f"STRIPE_SECRET_KEY is unset: starting the Stripe sandbox on {sandbox_url}")
    _say("it is a local stand-in for Stripe: no real money moves, no Stripe account is used")
    env |= {
        "STRIPE_SECRET_KEY": SANDBOX_KEY,
        "STRIPE_API_BASE": sandbox_url,
    }
    chosen |= {
        "STRIPE_SECRET_KEY": SANDBOX_KEY,
        "STRIPE_API_BASE": sandbox_url,
        "SANDBOX_URL": sandbox_url,
        "SANDBOX_PORT": str(SANDBOX_PORT),
    }
    defaults = {
        "STRIPE_PRODUCT_PRICE_ID": SANDBOX_PRICE,
        "STRIPE_SUCCESS_URL": f"{sandbox_url}/demo/success?session_id={{CHECKOUT_SESSION_ID}}",
        "STRIPE_CANCEL_URL": f"{sandbox_url}/demo/cancelled",
    }
    for name, value in defaults.items():
        if name not in env:
            env[name] = chosen[name] = value
    # The demo page (the sandbox's origin) calls the service from the browser.
    origins = [o for o in env.get("CORS_ALLOWED_ORIGINS", "").split(",") if o.strip()]
    origins += [sandbox_url, f"http://localhost:{SANDBOX_PORT}"]
    env["CORS_ALLOWED_ORIGINS"] = ",".join(dict.fromkeys(o.strip() for o in origins))
    _sandbox_identity(env, sandbox_url)
    if env.get("STRIPE_WEBHOOK_SECRET_FILE") and not env.get("STRIPE_WEBHOOK_SECRET"):
        secrets = Path(env["STRIPE_WEBHOOK_SECRET_FILE"]).read_text()
    else:
        if not env.get("STRIPE_WEBHOOK_SECRET"):
            chosen["STRIPE_WEBHOOK_SECRET"] = SANDBOX_WEBHOOK_SECRET
        secrets = env.setdefault("STRIPE_WEBHOOK_SECRET", SANDBOX_WEBHOOK_SECRET)
    # The sandbox signs with the first secret, as Stripe signs with the newest.
    webhook_secret = secrets.split(",")[0].strip()
    command = sandbox_command(
        port=SANDBOX_PORT,
        api_key=SANDBOX_KEY,
        price_id=env["STRIPE_PRODUCT_PRICE_ID"],
        webhook_url=f"http://127.0.0.1:{port}/webhooks/stripe",
        webhook_secret=webhook_secret,
        service_url=f"http://127.0.0.1:{port}",
    )
    return subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603 - our own module


def main() -> int:
    # The environment wins over ./.env, as in the service itself (service/config/).
    dotenv = {k: v for k, v in dotenv_values(Path.cwd() / ".env").items() if v is not None}
    env = dotenv | dict(os.environ)
    children: list[subprocess.Popen[bytes]] = []
    keep: list[Any] = []
    port = env.setdefault("PORT", "5003")
    metrics_port = env.setdefault("METRICS_PORT", METRICS_PORT)
    # What this run chose for the developer's other commands (.data/run.env, the banner).
    chosen: dict[str, str] = {"PORT": port, "METRICS_PORT": metrics_port}
    sandbox = not env.get("STRIPE_SECRET_KEY") and not env.get("STRIPE_SECRET_KEY_FILE")

    host = env.get("HOST", "0.0.0.0")  # noqa: S104 - the service's own default
    ports = {"PORT": (host, int(port)), "METRICS_PORT": (host, int(metrics_port))}
    if sandbox:
        ports["SANDBOX_PORT"] = ("127.0.0.1", SANDBOX_PORT)
    taken = _ports_in_use(ports)
    if taken:
        _say(
            f"not starting: port {', '.join(taken)} already in use (another make run?); stop "
            "it or choose free ports, e.g. PORT=5013 SANDBOX_PORT=12121 METRICS_PORT=9474 make run"
        )
        return 1

    embedded = not env.get("DATABASE_URL") and not env.get("DATABASE_URL_FILE")
    if embedded:
        _say(f"DATABASE_URL is unset: starting the embedded PostgreSQL in {DATA / 'postgres'}")
        # Two roles, as in production: migrate as the owner, serve as the app role that the
        # migrations create (given a login here, on this trusting local server).
        env["DATABASE_MIGRATE_URL"], server = _embedded_database()
        env["DATABASE_URL"] = with_user(env["DATABASE_MIGRATE_URL"], APP_ROLE)
        chosen["DATABASE_URL"] = env["DATABASE_URL"]
        chosen["DATABASE_MIGRATE_URL"] = env["DATABASE_MIGRATE_URL"]
        keep.append(server)

    if sandbox:
        children.append(_start_sandbox(env, port, chosen))
        if not wait_for_answer(f"{env['STRIPE_API_BASE']}/", 20, children[-1]):
            _say("the Stripe sandbox did not start")
            return _stop(children, 1)

    migrate = subprocess.run(
        [sys.executable, "-m", "service", "migrate"], cwd=ROOT, env=env, check=False
    )
    if migrate.returncode != 0:
        return _stop(children, migrate.returncode)
    if embedded:
        asyncio.run(allow_login(env["DATABASE_MIGRATE_URL"], APP_ROLE))

    service = subprocess.Popen([sys.executable, "-m", "service", "serve"], cwd=ROOT, env=env)
    children.insert(0, service)
    # The health check must be answered by this service, not by one already on the port.
    if wait_for_answer(f"http://127.0.0.1:{port}/health", 30, service) and service.poll() is None:
        run_env = _write_run_env(chosen)
        _banner(port, metrics_port, sandbox, chosen, run_env)
    elif service.poll() is not None:
        _say("the service did not start (its message is above)")
        return _stop(children, service.returncode or 1)

    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        service.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = service.wait()
    (DATA / RUN_ENV_NAME).unlink(missing_ok=True)  # what it names is going away
    return _stop(children, 0 if stopping else code)


def _sandbox_identity(env: dict[str, str], sandbox_url: str) -> None:
    """The sandbox is the identity provider too: its demo pages get a token per project and
    the service verifies it (`API_AUTH=none make run` turns that off)."""
    if env.setdefault("API_AUTH", "jwt") != "jwt":
        return
    env.setdefault("AUTH_ISSUER", sandbox_url)
    env.setdefault("AUTH_AUDIENCE", SANDBOX_AUDIENCE)
    if not env.get("AUTH_JWT_PUBLIC_KEY_FILE"):
        env.setdefault("AUTH_JWKS_URL", f"{sandbox_url}{SANDBOX_JWKS_PATH}")
    _say(f"API_AUTH=jwt: the sandbox issues the demo's tokens ({sandbox_url}/idp/token)")


def _write_run_env(chosen: dict[str, str]) -> Path:
    """./.data/run.env: what this run chose, as NAME=value lines (only this machine's values:
    the embedded database, the sandbox; never a secret the developer supplied)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / RUN_ENV_NAME
    lines = [
        "# Written by `make run` while it runs (removed when it stops): what it chose.",
        "# make migrate / reconcile / send-event / trigger read it; or, in your shell:",
        "#   set -a; . .data/run.env; set +a",
        *(f"{name}={value}" for name, value in chosen.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _banner(
    port: str, metrics_port: str, sandbox: bool, chosen: dict[str, str], run_env: Path
) -> None:
    lines = [
        "",
        "=" * 72,
        f"  payment-service is up:   http://127.0.0.1:{port}/health",
        f"  Metrics (Prometheus):    http://127.0.0.1:{metrics_port}/metrics",
    ]
    if sandbox:
        sandbox_url = f"http://127.0.0.1:{SANDBOX_PORT}"
        lines += [
            f"  Try the payment flow:    {sandbox_url}/demo",
            f"  Sandbox dashboard:       {sandbox_url}/dashboard",
            f"  Stripe sandbox API:      {sandbox_url}/v1/",
            "  Webhooks:                the sandbox POSTs every event, signed, to "
            f"/webhooks/stripe on :{port}",
            "  Move a session:          make trigger ACTION=complete PROJECT=proj_demo_1",
            "                           (or fail, expire, refund, dispute, dispute-lost …)",
            "  This is the local Stripe SANDBOX: no real money moves, nothing leaves",
            "  this machine, no Stripe account is used.",
        ]
    shown = run_env.relative_to(ROOT) if run_env.is_relative_to(ROOT) else run_env
    lines += [
        f"  Chosen for you (also in {shown}, read by make migrate, make reconcile,",
        "  make send-event and make trigger):",
        *(f"    {name}={value}" for name, value in chosen.items()),
        "  Stop with Ctrl-C.",
        "=" * 72,
        "",
    ]
    print("\n".join(lines), flush=True)


def _stop(children: list[subprocess.Popen[bytes]], code: int) -> int:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=35)
        except subprocess.TimeoutExpired:
            child.kill()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
