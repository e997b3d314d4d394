"""`make run`: the service on this machine with zero setup.

Uses DATABASE_URL and the STRIPE_* variables when they are set. Otherwise starts what is
missing: an embedded PostgreSQL whose data lives in ./.data/postgres (kept across runs;
`make clean-data` removes it) and the local Stripe sandbox (no real money, no network).
Then migrates and serves until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any

from devtools.postgres import allow_login, create_database, start_embedded, with_database, with_user
from sandbox.identity import AUDIENCE as SANDBOX_AUDIENCE
from sandbox.identity import JWKS_PATH as SANDBOX_JWKS_PATH

ROOT = Path(__file__).resolve().parent.parent
# Where the embedded PostgreSQL keeps its data; tests point it at a throwaway folder.
DATA = Path(os.environ.get("PAYMENT_DATA_DIR", str(ROOT / ".data")))
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "12111"))
SANDBOX_KEY = "sk_test_sandbox0000000000000000"
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox0000000000000000"  # noqa: S105 - a local sandbox value
SANDBOX_PRICE = "price_sandbox"
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


def _wait_for(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - a local URL we built
                return True
        except urllib.error.HTTPError:
            return True  # it answers, which is all we wait for
        except OSError:
            time.sleep(0.2)
    return False


def main() -> int:
    env = dict(os.environ)
    children: list[subprocess.Popen[bytes]] = []
    keep: list[Any] = []
    port = env.setdefault("PORT", "5003")

    embedded = not env.get("DATABASE_URL") and not env.get("DATABASE_URL_FILE")
    if embedded:
        _say("DATABASE_URL is unset: starting the embedded PostgreSQL in ./.data/postgres")
        # Two roles, as in production: migrate as the owner, serve as the app role that
        # migration 0003 creates (given a login here, on this trusting local server).
        env["DATABASE_MIGRATE_URL"], server = _embedded_database()
        env["DATABASE_URL"] = with_user(env["DATABASE_MIGRATE_URL"], APP_ROLE)
        keep.append(server)

    sandbox = not env.get("STRIPE_SECRET_KEY") and not env.get("STRIPE_SECRET_KEY_FILE")
    if sandbox:
        sandbox_url = f"http://127.0.0.1:{SANDBOX_PORT}"
        _say(f"STRIPE_SECRET_KEY is unset: starting the Stripe sandbox on {sandbox_url}")
        _say("it is a local stand-in for Stripe: no real money moves, no Stripe account is used")
        env |= {
            "STRIPE_SECRET_KEY": SANDBOX_KEY,
            "STRIPE_API_BASE": sandbox_url,
            "STRIPE_PRODUCT_PRICE_ID": env.get("STRIPE_PRODUCT_PRICE_ID", SANDBOX_PRICE),
        }
        env.setdefault(
            "STRIPE_SUCCESS_URL", f"{sandbox_url}/demo/success?session_id={{CHECKOUT_SESSION_ID}}"
        )
        env.setdefault("STRIPE_CANCEL_URL", f"{sandbox_url}/demo/cancelled")
        # The demo page (the sandbox's origin) calls the service from the browser.
        origins = [o for o in env.get("CORS_ALLOWED_ORIGINS", "").split(",") if o.strip()]
        origins += [sandbox_url, f"http://localhost:{SANDBOX_PORT}"]
        env["CORS_ALLOWED_ORIGINS"] = ",".join(dict.fromkeys(o.strip() for o in origins))
        _sandbox_identity(env, sandbox_url)
        if env.get("STRIPE_WEBHOOK_SECRET_FILE") and not env.get("STRIPE_WEBHOOK_SECRET"):
            secrets = Path(env["STRIPE_WEBHOOK_SECRET_FILE"]).read_text()
        else:
            secrets = env.setdefault("STRIPE_WEBHOOK_SECRET", SANDBOX_WEBHOOK_SECRET)
        # The sandbox signs with the first secret, as Stripe signs with the newest.
        webhook_secret = secrets.split(",")[0].strip()
        children.append(
            subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
                [
                    sys.executable,
                    "-m",
                    "sandbox",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(SANDBOX_PORT),
                    "--api-key",
                    SANDBOX_KEY,
                    "--price-id",
                    env["STRIPE_PRODUCT_PRICE_ID"],
                    "--webhook-url",
                    f"http://127.0.0.1:{port}/webhooks/stripe",
                    "--webhook-secret",
                    webhook_secret,
                    "--service-url",
                    f"http://127.0.0.1:{port}",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        if not _wait_for(f"{sandbox_url}/", 20):
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
    if _wait_for(f"http://127.0.0.1:{port}/health", 30):
        _banner(port, sandbox)

    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        service.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = service.wait()
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


def _banner(port: str, sandbox: bool) -> None:
    lines = [
        "",
        "=" * 72,
        f"  payment-service is up:   http://127.0.0.1:{port}/health",
    ]
    if sandbox:
        sandbox_url = f"http://127.0.0.1:{SANDBOX_PORT}"
        lines += [
            f"  Try the payment flow:    {sandbox_url}/demo",
            f"  Sandbox dashboard:       {sandbox_url}/dashboard",
            f"  Stripe sandbox API:      {sandbox_url}/v1/",
            "  Webhooks:                the sandbox POSTs every event, signed, to "
            f"/webhooks/stripe on :{port}",
            "  This is the local Stripe SANDBOX: no real money moves, nothing leaves",
            "  this machine, no Stripe account is used.",
        ]
    lines += ["  Stop with Ctrl-C.", "=" * 72, ""]
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
