"""Every answer, errors and non-API routes included, forbids framing and loading anything;
no error body echoes what the caller sent."""

from __future__ import annotations

import pytest
from helpers import ServiceClient, new_id


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/health", None, 200),
        ("POST", "/api/checkout", b"[]", 400),
        ("GET", "/no-such-route-PROBE1234", None, 404),
        ("GET", "/api/projects/%FF%FEPROBE1234/payment", None, 400),
        ("GET", "/api/projects/bad%20PROBE1234/payment", None, 400),
        ("POST", "/webhooks/stripe", b"{}", 400),
        ("DELETE", "/api/checkout", None, 405),
    ],
)
async def test_every_answer_forbids_framing_and_content_and_never_echoes_the_request(
    client: ServiceClient, method: str, path: str, body: bytes | None, status: int
) -> None:
    response = await client.request(method, path, body)
    assert response.code == status
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert b"PROBE1234" not in response.body
    assert b"\\x" not in response.body


async def test_a_successful_api_answer_carries_the_headers_too(client: ServiceClient) -> None:
    response = await client.checkout(new_id())
    assert response.code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
