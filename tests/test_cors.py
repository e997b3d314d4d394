"""CORS: preflights from listed origins are answered, and only listed origins get the headers."""

from __future__ import annotations

from helpers import Response, ServiceClient, new_id


async def preflight(client: ServiceClient, origin: str, **headers: str) -> Response:
    """The browser's OPTIONS before a cross-origin POST /api/checkout."""
    return await client.request(
        "OPTIONS",
        "/api/checkout",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"} | headers,
    )


async def test_preflight_from_an_allowed_origin_is_answered(client: ServiceClient) -> None:
    response = await preflight(
        client, "https://app.example", **{"Access-Control-Request-Headers": "content-type"}
    )
    assert response.code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Origin" in response.headers["Vary"]


async def test_preflight_from_another_origin_is_refused(client: ServiceClient) -> None:
    response = await preflight(client, "https://evil.example")
    assert response.code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_only_listed_origins_get_cors_headers(client: ServiceClient) -> None:
    allowed = await client.checkout(new_id(), headers={"Origin": "https://app.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    other = await client.checkout(new_id(), headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_cors_preflight_allows_the_authorization_header(client: ServiceClient) -> None:
    response = await preflight(client, "https://app.example")
    assert response.code == 204
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
