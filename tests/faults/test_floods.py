"""Floods from one caller: checkouts and status reads beyond the caller's rate limit get
429 with Retry-After and change nothing, while another caller goes through; status reads
of many pending projects ask Stripe at most STRIPE_CONFIRM_MAX_PER_SECOND times a second."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from flows import checkout_flood
from helpers import ServiceClient, StripeStandIn, new_id

from service.config import Settings
from service.http.context import AppContext
from service.http.limits import Rate, parse_trusted_proxies


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The tests' clients all connect from 127.0.0.1, a trusted proxy here, so that
    # X-Forwarded-For tells the callers apart.
    return replace(
        settings,
        rate_limit_checkout=Rate(20, 60.0),
        rate_limit_status=Rate(30, 60.0),
        trusted_proxies=parse_trusted_proxies("127.0.0.1"),
    )


def caller(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def rate_limited(ctx: AppContext, route: str) -> float:
    value = ctx.metrics.registry.get_sample_value("payment_rate_limited_total", {"route": route})
    return value or 0.0


async def test_a_checkout_flood_is_cut_at_its_limit_while_another_caller_checks_out(
    client: ServiceClient, stripe_api: StripeStandIn, ctx: AppContext
) -> None:
    # 20 a minute: a token every 3 s.
    await checkout_flood(
        client, stripe_api, count=30, headers=caller("203.0.113.7"), allowed=20, seconds_per_token=3
    )
    assert rate_limited(ctx, "checkout") == 10

    other = await client.checkout(new_id(), headers=caller("198.51.100.2"))
    assert other.code == 200
    assert stripe_api.state.create_calls == 21


async def test_a_status_flood_is_cut_at_its_limit_while_another_caller_reads(
    client: ServiceClient, ctx: AppContext
) -> None:
    project = new_id()
    assert (await client.checkout(project, headers=caller("198.51.100.9"))).code == 200
    codes = []
    for _ in range(35):
        response = await client.request(
            "GET", f"/api/projects/{project}/payment", headers=caller("203.0.113.8")
        )
        codes.append(response.code)
    assert codes == [200] * 30 + [429] * 5
    other = await client.request(
        "GET", f"/api/projects/{project}/payment", headers=caller("198.51.100.3")
    )
    assert other.code == 200
    assert rate_limited(ctx, "payment_status") == 5


async def test_status_reads_of_many_pending_projects_are_capped_in_stripe_reads(
    client: ServiceClient, stripe_api: StripeStandIn, ctx: AppContext
) -> None:
    projects = [new_id() for _ in range(40)]
    for index, project in enumerate(projects):  # each from its own caller: under the limit
        response = await client.checkout(project, headers=caller(f"198.51.100.{index + 10}"))
        assert response.code == 200
    started = time.monotonic()
    responses = await asyncio.gather(
        *(
            client.request("GET", f"/api/projects/{p}/payment", headers=caller(f"192.0.2.{i}"))
            for i, p in enumerate(projects)
        )
    )
    elapsed = time.monotonic() - started
    # The page simply sees the stored status.
    assert [r.json()["status"] for r in responses] == ["pending"] * 40
    reads = sum(
        1
        for r in stripe_api.state.requests
        if r.method == "GET" and r.path.startswith("/v1/checkout/sessions/")
    )
    # STRIPE_CONFIRM_MAX_PER_SECOND=5: a burst of 5, then 5 a second.
    assert 1 <= reads <= 5 + 5 * elapsed + 1, (reads, elapsed)
    capped = ctx.metrics.registry.get_sample_value("payment_stripe_confirmations_capped_total")
    assert capped == 40 - reads
