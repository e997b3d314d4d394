"""Schema-driven fuzzing (schemathesis) of the real service against the openapi.yaml it
ships: for any input it generates, no 5xx, and every answer matches the documented status
codes, content types and bodies. And since schemathesis cannot sign a webhook: hypothesis
generates Stripe events (Stripe's examples with any JSON put in their fields), signs them as
Stripe does, and posts them: never a 5xx."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from helpers import PRICE_ID, SECRET_KEY, event_for, new_id, sign
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from processes import ROOT, ServiceProcess, free_port, service_environment
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tokens import AUDIENCE, ISSUER, bearer, mint, new_key
from tornado.routing import PathMatches

from devtools.processes import wait_for_answer
from sandbox import examples
from sandbox.server import command as sandbox_command
from service.http.app import make_app
from service.http.context import AppContext
from service.payments.facts import FACT_TYPES

SCHEMA = schemathesis.openapi.from_path(Path(ROOT) / "openapi.yaml")


def _wait(url: str) -> None:
    # Any answer will do: the stand-in's /v1/events wants a key.
    assert wait_for_answer(url, 20), f"{url} never answered"


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
        sandbox_command(port=sandbox_port, api_key=SECRET_KEY, price_id=PRICE_ID),
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


EXAMPLES = list(examples.NAMES)
# Any JSON value: NULs and other control characters in strings, numbers far beyond 64 bits,
# floats, deep and wide nesting.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["\x00", "cs_\x00", "x" * 3000, "evt_1", "pi_1", "paid", "complete"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


# The fields the service reads and stores, where a bad value could reach the database.
STORED_FIELDS = [
    "id",
    "type",
    "created",
    "livemode",
    "payment_intent",
    "amount_total",
    "currency",
    "client_reference_id",
    "project_id",
    "charge",
    "status",
    "payment_status",
    "amount",
    "amount_refunded",
]
# Values a database refuses: NULs, numbers beyond bigint (either sign), ids too long to index.
POISON = st.sampled_from(
    ["\x00", "evt_\x00", "cs_test_\x00", "pi_\x00", "a" * 3000, 2**63, -(2**64), 10**30]
) | st.text(min_size=1, max_size=20).map(lambda t: t + "\x00")


@st.composite
def signed_events(draw: st.DrawFn) -> bytes:
    """One of Stripe's example events with up to four of its fields replaced by any JSON."""
    event = event_for(draw(st.sampled_from(EXAMPLES)), new_id())
    obj = event["data"]["object"]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        target = draw(st.sampled_from(["event", "object", "object", "object", "metadata"]))
        where: dict[str, Any] = {"event": event, "object": obj}.get(target) or obj.setdefault(
            "metadata", {}
        )
        if not isinstance(where, dict):
            continue
        key = draw(st.sampled_from(STORED_FIELDS) | st.sampled_from(sorted(where)) | st.text())
        where[key] = draw(POISON | JSON_VALUES | st.sampled_from(sorted(FACT_TYPES)))
    return json.dumps(event).encode()  # escapes every NUL and non-ASCII character


@given(payload=signed_events())
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_signed_event_makes_the_webhook_fail(payload: bytes, live_service: str) -> None:
    response = httpx.post(
        f"{live_service}/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code in (200, 400), (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
