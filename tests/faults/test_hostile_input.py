"""Hostile input: oversized bodies refused before they are read, wrong content types,
replays, path tricks. Each gets a clear 4xx and changes nothing."""

from __future__ import annotations

import json
import time

import pytest
from flows import status_of
from helpers import ServiceClient, StripeStandIn, event_for, new_id, raw_exchange


@pytest.mark.parametrize(
    ("path", "size"),
    [
        ("/api/checkout", 16 * 1024 + 1),
        ("/webhooks/stripe", 1024 * 1024 + 1),
        ("/api/checkout", 10 * 1024 * 1024 * 1024),
    ],
)
async def test_a_declared_oversize_is_refused_before_the_body_is_sent(
    client: ServiceClient, path: str, size: int
) -> None:
    port = int(client.base_url.rsplit(":", 1)[1])
    answer = await raw_exchange(
        port,
        (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n"
        ).encode(),
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert "error" in json.loads(body)


async def test_a_form_encoded_checkout_is_a_400(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    project = new_id()
    response = await client.request(
        "POST",
        "/api/checkout",
        f"project_id={project}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.code == 400
    assert stripe_api.state.create_calls == 0
    assert await status_of(client, project) is None


async def test_a_replayed_webhook_is_refused_and_a_fresh_one_applies_once(
    client: ServiceClient,
) -> None:
    project = new_id()
    event = event_for("checkout.session.completed.paid", project)
    replay = await client.webhook(event, timestamp=int(time.time()) - 3600)
    assert replay.code == 400
    assert await status_of(client, project) is None
    assert (await client.webhook(event)).code == 200
    assert (await client.webhook(event)).json()["duplicate"] is True


@pytest.mark.parametrize(
    "path",
    [
        "/api/projects/..%2F..%2Fetc%2Fpasswd/payment",
        "/api/projects/%00/payment",
        "/api/projects/x%27%20OR%201=1--/payment",
        "/api/projects/%F0%9F%92%B3/payment",
    ],
)
async def test_path_tricks_in_the_status_url_are_refused(client: ServiceClient, path: str) -> None:
    response = await client.request("GET", path)
    assert response.code == 400
    assert response.json() == {
        "error": "project_id must be 1-64 characters of A-Z, a-z, 0-9, underscore or hyphen"
    }


async def test_a_huge_flat_json_body_is_refused_with_413(client: ServiceClient) -> None:
    body = json.dumps({"project_id": new_id(), "x": list(range(20000))})
    assert (await client.request("POST", "/api/checkout", body)).code == 413
