"""The container image, run the way a user runs it (`make image-test`; `make image` builds it).

Against a real PostgreSQL (TEST_DATABASE_URL's server, or an embedded one this test starts,
reached over TCP) and the project's Stripe sandbox (`python -m sandbox`, on the host): the
image migrates, serves as its own non-root user, answers its own HEALTHCHECK, takes a checkout
paid on the sandbox's checkout page and learns it from the sandbox's signed webhook, records a
redelivery once, and stops on SIGTERM within the grace period. Its files carry only what
serve, migrate and reconcile need. Marked `image`: `make test` deselects it (it needs the
built image and buildah), `make image-test` runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
from containers import Container, command_process, process_command, process_uids
from helpers import PRICE_ID, SECRET_KEY, WEBHOOK_SECRET, ServiceClient, new_id
from processes import free_port, logs_dir, service_settings

from devtools.image import (
    DEFAULT_TAG,
    STAND_IN_LABEL,
    base_image,
    image_bytes,
    image_config,
    image_exists,
)
from devtools.postgres import (
    create_database,
    drop_database,
    listen_on_tcp,
    start_embedded,
)
from service.http.app import SHUTDOWN_GRACE_SECONDS

pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("IMAGE", DEFAULT_TAG)
APP_UID = 10001
MB = 1_000_000
# How much the final stage may add to its base: our venv and source, nothing else.
MAX_ADDED_BYTES = 80 * MB


def report(text: str) -> None:
    """A line of `make image-test`'s output (pytest runs it with -s)."""
    print(f"[image-test] {text}", flush=True)


@pytest.fixture(scope="module")
def image() -> str:
    assert image_exists(IMAGE), f"{IMAGE} is not built: `make image` builds it"
    return IMAGE


@pytest.fixture(scope="module")
def config(image: str) -> dict[str, Any]:
    return image_config(image)


@pytest.fixture(scope="module")
def tcp_database_url() -> Iterator[str]:
    """A fresh, empty database on a PostgreSQL the container reaches over TCP."""
    admin_url = os.environ.get("TEST_DATABASE_URL")
    server = None
    if not admin_url:
        pgdata = Path(tempfile.mkdtemp(prefix="payment-image-pg-")) / "data"
        _, server = start_embedded(pgdata, delete_on_exit=True)
        admin_url = listen_on_tcp(server, "127.0.0.1", free_port())
    name = f"payments_image_{uuid.uuid4().hex[:12]}"
    url = asyncio.run(create_database(admin_url, name))
    try:
        yield url
    finally:
        asyncio.run(drop_database(admin_url, name))
        del server


@pytest.fixture
def container(image: str) -> Iterator[Container]:
    created = Container.create(image)
    yield created
    created.remove()


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    """The secrets as a deployment mounts them: files only the image's user may read."""
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o500)
    for name, value in (("stripe_secret_key", SECRET_KEY), ("webhook_secret", WEBHOOK_SECRET)):
        path = folder / name
        path.write_text(value)
        path.chmod(0o400)
        os.chown(path, APP_UID, APP_UID)
    os.chown(folder, APP_UID, APP_UID)
    return folder


def test_the_final_stage_carries_only_what_serve_migrate_and_reconcile_need(
    image: str, config: dict[str, Any], container: Container
) -> None:
    root = container.mount()
    assert config["User"].split(":")[0] == str(APP_UID)
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert config["Entrypoint"] == ["python", "-m", "service"]

    assert sorted(p.name for p in (root / "app").iterdir()) == ["migrations", "queries", "service"]
    site = next((root / "opt" / "venv" / "lib").glob("python3*/site-packages"))
    packages = {p.name for p in site.iterdir()}
    for absent in ("sandbox", "devtools", "tests", "pip", "setuptools"):
        assert absent not in packages, absent
    assert not any(p.startswith("payment_service") for p in packages)

    tools = ("gcc", "cc", "c++", "g++", "clang", "make", "ld", "as", "strip")
    for folder in ("usr/bin", "usr/local/bin", "bin", "opt/venv/bin"):
        for tool in tools:
            assert not (root / folder / tool).exists(), f"/{folder}/{tool} is in the image"
        assert not list((root / folder).glob("x86_64-linux-gnu-gcc*")), folder

    caches = [p for p in root.rglob(".cache") if p.is_dir()]
    assert not [p for p in caches if (p / "pip").exists()], caches
    assert not (root / "tmp" / "requirements.txt").exists()  # the build stage's, not here

    # No secret: no pip.conf or host CA bundle from the build's mounts, no .env, nothing that
    # looks like a Stripe key in our files or the image's environment and history.
    assert not (root / "etc" / "pip.conf").exists()
    host_bundle = os.environ.get("PIP_CERT")
    if host_bundle and (root / host_bundle.lstrip("/")).exists():
        assert (root / host_bundle.lstrip("/")).read_bytes() != Path(host_bundle).read_bytes()
    assert not list((root / "app").rglob(".env"))
    key_like = re.compile(rb"(sk|rk)_(test|live)_[0-9A-Za-z]{8,}|whsec_[0-9A-Za-z]{8,}")
    for path in (root / "app").rglob("*"):
        if path.is_file():
            assert not key_like.search(path.read_bytes()), path
    for variable in config["Env"]:
        name = variable.split("=", 1)[0]
        assert not re.search(r"SECRET|KEY|PASSWORD|TOKEN|DATABASE_URL", name), variable
    history = subprocess.run(
        ["buildah", "inspect", "--type", "image", image], capture_output=True, check=True
    ).stdout
    assert not key_like.search(history)

    total, base_size = image_bytes(image), image_bytes(base_image())
    kind = "stand-in" if STAND_IN_LABEL in (config.get("Labels") or {}) else "registry"
    report(
        f"size: {total / MB:.1f} MB = base {base_size / MB:.1f} MB ({kind}) "
        f"+ {(total - base_size) / MB:.1f} MB of ours (at most {MAX_ADDED_BYTES / MB:.0f})"
    )
    report("files: /app holds migrations, queries, service; no sandbox, devtools, tests,")
    report("       pip, compiler, pip cache, pip.conf, host CA bundle or key-like string")
    assert total - base_size <= MAX_ADDED_BYTES


async def test_the_image_migrates_serves_a_paid_checkout_as_its_own_user_and_stops_on_sigterm(
    config: dict[str, Any],
    container: Container,
    tcp_database_url: str,
    secrets_dir: Path,
    tmp_path: Path,
) -> None:
    port, sandbox_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    sandbox = _start_sandbox(sandbox_port, service_port=port, log=tmp_path / "sandbox.log")
    settings = service_settings(tcp_database_url, sandbox_url, port)
    for secret in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        del settings[secret]
    environment = settings | {
        "STRIPE_SECRET_KEY_FILE": "/run/secrets/stripe_secret_key",
        "STRIPE_WEBHOOK_SECRET_FILE": "/run/secrets/webhook_secret",
        # No reading sessions from Stripe on the status page: only the webhook can say paid.
        "STRIPE_CONFIRM_INTERVAL_SECONDS": "0",
    }
    volumes = {secrets_dir: "/run/secrets"}
    logs_dir().mkdir(parents=True, exist_ok=True)
    log_path = logs_dir() / f"image-{container.name}.log"  # the suite's leak check reads it
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    server: subprocess.Popen[bytes] | None = None
    try:
        await _wait_until_answers(http, f"{sandbox_url}/", sandbox)
        with log_path.open("ab") as log:
            migrate = container.start(
                [*config["Entrypoint"], "migrate"],
                environment=environment,
                volumes=volumes,
                output=log,
            )
            assert await asyncio.to_thread(migrate.wait, 120) == 0, log_path.read_text()
            report("migrate: `python -m service migrate` applied the migrations (exit 0)")

            started = time.monotonic()
            server = container.start(
                [*config["Entrypoint"], *config["Cmd"]],
                environment=environment,
                volumes=volumes,
                output=log,
            )
        client = ServiceClient(http, f"http://127.0.0.1:{port}")
        await _wait_until_answers(http, f"{client.base_url}/health", server)
        pid = command_process(server.pid)
        assert process_command(pid)[-3:] == ["-m", "service", "serve"]
        assert process_uids(pid) == {APP_UID}
        report(
            f"serve: healthy in {time.monotonic() - started:.1f} s, "
            f"pid {pid} running as uid {APP_UID} (the image's USER)"
        )

        health = config["Healthcheck"]
        probe = container.start(health["Test"][1:], environment={"PORT": str(port)})
        assert await asyncio.to_thread(probe.wait, health["Timeout"] / 1e9 + 10) == 0
        report("health: the image's own HEALTHCHECK command exits 0")

        project = new_id()
        checkout = await client.checkout(project)
        assert checkout.code == 200, checkout.body
        session = checkout.json()
        assert session["checkout_url"].startswith(f"{sandbox_url}/c/pay/"), session
        paid = await http.fetch(
            session["checkout_url"],
            method="POST",
            body="action=card",
            follow_redirects=False,
            raise_error=False,
        )
        assert paid.code == 303, paid.body  # to the success URL, as Stripe redirects
        status = await _wait_for_status(client, project, "paid")
        report(
            f"payment: checkout {session['session_id']} paid on the sandbox's page; its signed "
            f"webhook made {project} {status}"
        )

        [event] = [
            e
            for e in await _sandbox_events(http, sandbox_url)
            if e["type"] == "checkout.session.completed"
            and e["data"]["object"]["id"] == session["session_id"]
        ]
        again = await client.webhook(event)
        assert again.code == 200, again.body
        assert again.json() == {"received": True, "duplicate": True}
        report(f"webhook: {event['id']} signed and delivered again: recorded once (duplicate)")

        stopping = time.monotonic()
        os.kill(pid, signal.SIGTERM)  # what `docker stop` sends the container's process
        code = await asyncio.to_thread(server.wait, SHUTDOWN_GRACE_SECONDS + 5)
        took = time.monotonic() - stopping
        assert code == 0
        assert took < SHUTDOWN_GRACE_SECONDS
        assert '"event":"stopped"' in log_path.read_text()
        report(f"SIGTERM: stopped cleanly in {took:.1f} s (grace {SHUTDOWN_GRACE_SECONDS:.0f} s)")
    finally:
        http.close()
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
        sandbox.terminate()
        sandbox.wait(timeout=30)


def _start_sandbox(port: int, *, service_port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox",
                "--port",
                str(port),
                "--api-key",
                SECRET_KEY,
                "--price-id",
                PRICE_ID,
                "--webhook-url",
                f"http://127.0.0.1:{service_port}/webhooks/stripe",
                "--webhook-secret",
                WEBHOOK_SECRET,
            ],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def _wait_until_answers(
    http: tornado.httpclient.AsyncHTTPClient,
    url: str,
    process: subprocess.Popen[bytes],
    seconds: float = 60,
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the process for {url} exited"
        try:
            response = await http.fetch(url, raise_error=False, request_timeout=2)
            if response.code == 200:
                return
        except OSError:
            pass  # not listening yet
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never answered 200")


async def _wait_for_status(client: ServiceClient, project: str, wanted: str) -> str:
    status = None
    for _ in range(100):
        response = await client.status(project)
        assert response.code == 200, response.body
        status = response.json()["status"]
        if status == wanted:
            return str(status)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{project} is {status}, never {wanted}")


async def _sandbox_events(
    http: tornado.httpclient.AsyncHTTPClient, sandbox_url: str
) -> list[dict[str, Any]]:
    response = await http.fetch(
        f"{sandbox_url}/v1/events", headers={"Authorization": f"Bearer {SECRET_KEY}"}
    )
    events: list[dict[str, Any]] = json.loads(response.body)["data"]
    return events
