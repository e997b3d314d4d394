"""POST /api/checkout with bad input: a clear 400 or 413, and nothing changed."""

from __future__ import annotations

import json

import pytest
from flows import status_of
from helpers import ServiceClient, StripeStandIn, new_id


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "JSON object"),
        (b"", "JSON object"),
        (b"[1, 2]", "JSON object"),
        (b'"proj_1"', "JSON object"),
        (b"{}", "required"),
        (b'{"project": "proj_1"}', "required"),
        (b'{"project_id": 42}', "string"),
        (b'{"project_id": null}', "string"),
        (b'{"project_id": ["proj_1"]}', "string"),
        (b'{"project_id": ""}', "1-64"),
        (json.dumps({"project_id": "p" * 65}).encode(), "1-64"),
        (b'{"project_id": "proj 1"}', "1-64"),
        (b'{"project_id": "proj/../1"}', "1-64"),
        (b'{"project_id": "proj\\u00e91"}', "1-64"),
        (b'{"project_id": "proj_1\\n"}', "1-64"),
        (b"\xff\xfe\x00", "JSON object"),
        (b'{"project_id": ' * 1000, "JSON object"),
        (b"[" * 5000 + b"]" * 5000, "JSON object"),
    ],
)
async def test_malformed_checkout_request_is_refused_with_400(
    client: ServiceClient, stripe_api: StripeStandIn, body: bytes, fragment: str
) -> None:
    response = await client.request("POST", "/api/checkout", body)
    assert response.code == 400
    assert fragment in response.json()["error"]
    assert stripe_api.state.create_calls == 0


async def test_a_64_character_id_is_accepted(client: ServiceClient) -> None:
    project = ("p" * 48 + new_id("")[:16])[:64]
    assert len(project) == 64
    assert (await client.checkout(project)).code == 200


async def test_body_over_16_kib_is_refused_with_413(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    project = new_id()
    body = json.dumps({"project_id": project, "padding": "x" * (17 * 1024)})
    response = await client.request("POST", "/api/checkout", body)
    assert response.code == 413
    assert "error" in response.json()
    assert stripe_api.state.create_calls == 0
    assert await status_of(client, project) is None
