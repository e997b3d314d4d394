"""Schema-driven fuzzing (schemathesis) of the real service against the openapi.yaml it
ships: for any input it generates, no 5xx, and every answer matches the documented status
codes, content types and bodies."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from conftest import PRICE_ID, SECRET_KEY
from hypothesis import HealthCheck, settings
from processes import ROOT, ServiceProcess, free_port, service_environment
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tokens import AUDIENCE, ISSUER, bearer, mint, new_key
from tornado.routing import PathMatches

from service.app import make_app
from service.handlers import AppContext

SCHEMA = schemathesis.openapi.from_path(Path(ROOT) / "openapi.yaml")


def _wait(url: str) -> None:
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - our own local server
        except urllib.error.HTTPError:
            return  # it answers, which is all this waits for
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise AssertionError(f"{url} never answered")


# The service runs with API_AUTH=jwt against this key; every generated call carries a valid
# admin token, so what is fuzzed is the API behind the check (tests/test_auth_jwt.py fuzzes
# nothing but covers the check itself).
IDP_KEY = new_key("schema-fuzz", "ES256")


@pytest.fixture(scope="module")
def live_service(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service and the Stripe stand-in as real processes (schemathesis calls are sync)."""
    sandbox_port, port = free_port(), free_port()
    public_key = tmp_path_factory.mktemp("idp") / "idp.pem"
    public_key.write_bytes(IDP_KEY.public_pem)
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(sandbox_port),
            "--api-key",
            SECRET_KEY,
            "--price-id",
            PRICE_ID,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stand_in = f"http://127.0.0.1:{sandbox_port}"
    service = ServiceProcess(
        service_environment(
            database_url,
            stand_in,
            port,
            API_AUTH="jwt",
            AUTH_JWT_PUBLIC_KEY_FILE=str(public_key),
            AUTH_ISSUER=ISSUER,
            AUTH_AUDIENCE=AUDIENCE,
        )
    )
    try:
        service.start()
        _wait(f"{stand_in}/v1/events")
        _wait(f"http://127.0.0.1:{port}/health")
        yield f"http://127.0.0.1:{port}"
    finally:
        service.stop()
        sandbox.terminate()
        sandbox.wait(10)


@SCHEMA.parametrize()
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_input_makes_the_service_fail_or_break_its_contract(
    case: Any, live_service: str
) -> None:
    token = mint(IDP_KEY, sub="schema-fuzz", scope="payments:admin", expires_in=3600)
    response = case.call(base_url=live_service, timeout=30, headers=bearer(token))
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


def test_openapi_describes_exactly_the_routes_the_service_serves(ctx: AppContext) -> None:
    app = make_app(ctx)
    served = set()
    for rule in app.wildcard_router.rules:
        matcher = rule.matcher
        assert isinstance(matcher, PathMatches)
        served.add(matcher.regex.pattern.rstrip("$").replace("([^/]+)", "{project_id}"))
    assert served == set(SCHEMA.raw_schema["paths"])
