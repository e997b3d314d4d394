"""GET /api/projects/{id}/payment and GET /health."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import ServiceClient, event_for, new_id

from service.config import Settings
from service.http.app import make_app
from service.http.context import AppContext


async def test_status_of_a_checked_out_project(client: ServiceClient) -> None:
    project = new_id()
    assert (await client.checkout(project)).code == 200
    response = await client.status(project)
    assert response.code == 200
    body = response.json()
    assert body["project_id"] == project
    assert body["status"] == "pending"
    updated = datetime.fromisoformat(body["updated_at"])
    assert updated.tzinfo is not None
    assert abs(updated - datetime.now(UTC)) < timedelta(minutes=1)


async def test_status_of_an_unknown_project_is_404(client: ServiceClient) -> None:
    response = await client.status(new_id())
    assert response.code == 404
    assert "error" in response.json()


@pytest.mark.parametrize(
    "path",
    [
        "/api/projects/bad%20id/payment",
        "/api/projects/%2e%2e/payment",
        "/api/projects/" + "p" * 65 + "/payment",
        "/api/projects/a%2Fb/payment",
    ],
)
async def test_status_of_a_malformed_id_is_400(client: ServiceClient, path: str) -> None:
    response = await client.request("GET", path)
    assert response.code == 400
    assert "project_id" in response.json()["error"]


@pytest.mark.parametrize("path", ["/api/projects//payment", "/api/projects/a/b/payment", "/nope"])
async def test_unknown_paths_are_json_404s(client: ServiceClient, path: str) -> None:
    response = await client.request("GET", path)
    assert response.code == 404
    assert response.json() == {"error": "not found"}


async def test_health_is_ok_when_the_database_answers(client: ServiceClient) -> None:
    response = await client.request("GET", "/health")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.body == b"OK"


async def test_every_response_carries_a_request_id(client: ServiceClient) -> None:
    mine = await client.request("GET", "/health", headers={"X-Request-ID": "req-from-frontend-1"})
    assert mine.headers["X-Request-ID"] == "req-from-frontend-1"
    made = await client.request("GET", "/health", headers={"X-Request-ID": "not a <token>"})
    assert made.headers["X-Request-ID"] != "not a <token>"
    assert len(made.headers["X-Request-ID"]) == 32


# --- the database unreachable -----------------------------------------------------------


@pytest.fixture
def down(make_ctx: Any, settings: Settings) -> AppContext:
    """A service whose database is not there: nothing listens on port 1."""
    ctx: AppContext = make_ctx(
        replace(
            settings,
            database_url="postgresql://payments:hunter2@127.0.0.1:1/payments",
            db_pool_min_size=0,
            db_connect_timeout_seconds=1.0,
        )
    )
    return ctx


@pytest.fixture
def app(down: AppContext, request: pytest.FixtureRequest) -> Any:
    if "database_down" in request.keywords:
        return make_app(down)
    return make_app(request.getfixturevalue("ctx"))


@pytest.mark.database_down
async def test_health_is_500_without_naming_host_or_user(client: ServiceClient) -> None:
    response = await client.request("GET", "/health")
    assert response.code == 500
    text = response.body.decode()
    assert text.startswith("database unavailable")
    for secret in ("127.0.0.1", "payments", "hunter2", ":1"):
        assert secret not in text


@pytest.mark.database_down
async def test_checkout_and_status_answer_503_when_the_database_is_down(
    client: ServiceClient,
) -> None:
    for response in (await client.checkout(new_id()), await client.status(new_id())):
        assert response.code == 503
        assert "database" in response.json()["error"]
        assert "hunter2" not in response.body.decode()


@pytest.mark.database_down
async def test_webhook_answers_500_when_the_database_is_down(client: ServiceClient) -> None:
    response = await client.webhook(event_for("checkout.session.completed.paid", new_id()))
    assert response.code == 500
    assert "database" in response.json()["error"]
