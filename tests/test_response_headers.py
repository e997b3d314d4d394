"""Every answer of every route, error or not, carries X-Request-ID (the caller's own when it
sent a sane one), and the browser routes carry CORS headers for a listed origin on every
status too: a browser hides an answer without them, so a frontend would see "Failed to
fetch" instead of the service's message."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import pytest
from flows import bring_to
from helpers import ServiceClient, StripeStandIn, event_for, new_id

from service.http.api import CHECKOUT_MAX_BODY
from service.http.app import make_app
from service.http.context import AppContext

ORIGIN = "https://app.example"  # listed in the tests' CORS_ALLOWED_ORIGINS
OTHER_ORIGIN = "https://evil.example"


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    cors: bool  # a route a browser calls (/api/*, and the 404 of an unknown path)
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


def cases(paid_project: str) -> list[Case]:
    oversize = b'{"project_id": "' + b"a" * CHECKOUT_MAX_BODY + b'"}'
    unsigned = event_for("checkout.session.completed.paid", new_id())
    return [
        Case(
            "checkout 200",
            "POST",
            "/api/checkout",
            200,
            True,
            b'{"project_id": "%s"}' % new_id().encode(),
        ),
        Case("checkout 400", "POST", "/api/checkout", 400, True, b"[1, 2]"),
        Case(
            "checkout 409",
            "POST",
            "/api/checkout",
            409,
            True,
            b'{"project_id": "%s"}' % paid_project.encode(),
        ),
        Case("checkout 413", "POST", "/api/checkout", 413, True, oversize),
        Case("checkout 405", "GET", "/api/checkout", 405, True),
        Case("status 200", "GET", f"/api/projects/{paid_project}/payment", 200, True),
        Case("status 400", "GET", "/api/projects/bad%20id!/payment", 400, True),
        Case("status 404", "GET", f"/api/projects/{new_id()}/payment", 404, True),
        Case("status 405", "DELETE", f"/api/projects/{paid_project}/payment", 405, True),
        Case("unknown path 404", "GET", "/api/nothing-here", 404, True),
        Case("unknown method 405", "PROPFIND", "/api/checkout", 405, True),
        Case(
            "preflight 204",
            "OPTIONS",
            "/api/checkout",
            204,
            True,
            headers=(
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "authorization, content-type"),
            ),
        ),
        Case(
            "preflight 405",
            "OPTIONS",
            "/api/checkout",
            405,
            True,
            headers=(("Access-Control-Request-Method", "DELETE"),),
        ),
        Case(
            "webhook 400",
            "POST",
            "/webhooks/stripe",
            400,
            False,
            str(unsigned).encode(),
            (("Stripe-Signature", "t=1,v1=00"),),
        ),
        Case("webhook 405", "GET", "/webhooks/stripe", 405, False),
        Case(
            "webhook 413",
            "POST",
            "/webhooks/stripe",
            413,
            False,
            b"x" * (1024 * 1024 + 1),
            (("Stripe-Signature", "t=1,v1=00"),),
        ),
        Case("webhook preflight 403", "OPTIONS", "/webhooks/stripe", 403, False),
        Case("health 200", "GET", "/health", 200, False),
        Case("health 405", "POST", "/health", 405, False, b""),
    ]


async def send(client: ServiceClient, case: Case, origin: str, request_id: str) -> Any:
    headers = {"Origin": origin, "X-Request-ID": request_id, **dict(case.headers)}
    return await client.request(case.method, case.path, case.body, headers=headers)


async def test_every_route_and_status_carries_the_request_id_and_cors_headers(
    client: ServiceClient,
) -> None:
    paid = new_id()
    await bring_to(client, paid, "paid")
    seen = set()
    for case in cases(paid):
        request_id = f"req-{case.name.replace(' ', '-')}"
        response = await send(client, case, ORIGIN, request_id)
        assert response.code == case.status, (case.name, response.body)
        seen.add((case.path.split("/")[1], response.code))
        assert response.headers.get("X-Request-ID") == request_id, case.name
        assert "Origin" in response.headers.get("Vary", ""), case.name
        if case.cors:
            assert response.headers.get("Access-Control-Allow-Origin") == ORIGIN, case.name
            exposed = response.headers.get("Access-Control-Expose-Headers", "")
            assert "X-Request-ID" in exposed.split(", "), case.name
        else:
            assert "Access-Control-Allow-Origin" not in response.headers, case.name
        if response.code >= 400 and not case.path.startswith("/health"):
            assert response.json()["error"], case.name

        other = await send(client, case, OTHER_ORIGIN, request_id)
        assert other.headers.get("X-Request-ID") == request_id, case.name
        assert "Access-Control-Allow-Origin" not in other.headers, case.name
    assert {409, 413, 405, 404, 400} <= {status for _, status in seen}


async def test_a_preflight_allows_the_authorization_header(client: ServiceClient) -> None:
    """The browser frontend sends its bearer token (API_AUTH=jwt) in Authorization."""
    for path in ("/api/checkout", f"/api/projects/{new_id()}/payment"):
        method = "POST" if path == "/api/checkout" else "GET"
        response = await client.request(
            "OPTIONS",
            path,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization, content-type, x-request-id",
            },
        )
        assert response.code == 204
        allowed = {
            h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
        }
        assert {"authorization", "content-type", "x-request-id"} <= allowed
        assert method in response.headers["Access-Control-Allow-Methods"]
        assert response.headers["X-Request-ID"]


async def test_a_generated_request_id_is_on_error_answers_too(client: ServiceClient) -> None:
    response = await client.request("POST", "/api/checkout", b"not json")
    assert response.code == 400
    assert len(response.headers["X-Request-ID"]) == 32


async def test_a_stripe_failure_502_carries_cors_and_the_request_id(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    stripe_api.state.faults.fail_next(1, status=400, error_type="invalid_request_error")
    response = await client.checkout(
        new_id(), headers={"Origin": ORIGIN, "X-Request-ID": "req-stripe-502"}
    )
    assert response.code == 502
    assert response.headers["X-Request-ID"] == "req-stripe-502"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


@pytest.fixture
def app(request: pytest.FixtureRequest, make_ctx: Any, settings: Any) -> Any:
    if "database_down" not in request.keywords:
        return make_app(request.getfixturevalue("ctx"))
    down: AppContext = make_ctx(
        replace(
            settings,
            database_url="postgresql://payments:hunter2@127.0.0.1:1/payments",
            db_pool_min_size=0,
            db_connect_timeout_seconds=1.0,
        )
    )
    return make_app(down)


@pytest.mark.database_down
async def test_database_down_5xx_answers_carry_cors_and_the_request_id(
    client: ServiceClient,
) -> None:
    answers = [
        (await client.checkout(new_id(), headers={"Origin": ORIGIN, "X-Request-ID": "r1"}), 503),
        (
            await client.request(
                "GET",
                f"/api/projects/{new_id()}/payment",
                headers={"Origin": ORIGIN, "X-Request-ID": "r2"},
            ),
            503,
        ),
        (await client.request("GET", "/health", headers={"X-Request-ID": "r3"}), 500),
    ]
    for (response, status), request_id in zip(answers, ("r1", "r2", "r3"), strict=True):
        assert response.code == status
        assert response.headers["X-Request-ID"] == request_id
    for response, _ in answers[:2]:
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_a_rejected_webhook_s_log_line_gives_the_reason_without_secret_or_payload(
    client: ServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    event = event_for("checkout.session.completed.paid", new_id())
    with caplog.at_level(logging.INFO, logger="service.http"):
        wrong = await client.webhook(event, secret="whsec_not_the_configured_one")
        unsigned = await client.request("POST", "/webhooks/stripe", b"{}")
        stale = await client.webhook(event, timestamp=1_000_000)
    assert [wrong.code, unsigned.code, stale.code] == [400, 400, 400]
    lines = [
        record.fields  # type: ignore[attr-defined]
        for record in caplog.records
        if record.getMessage() == "request" and record.fields["path"] == "/webhooks/stripe"  # type: ignore[attr-defined]
    ]
    assert [line["reason"] for line in lines] == [
        "signature does not match",
        "missing Stripe-Signature header",
        "signature timestamp is outside the tolerance",
    ]
    text = caplog.text + str(lines)
    assert "whsec_" not in text
    assert event["id"] not in text  # nothing of the payload
