"""GET /v1/events through the real SDK: Stripe's filters, cursors and auto-pagination."""

from __future__ import annotations

from typing import Any, cast

import pytest
import stripe
from sandbox_helpers import KEY, MakeClient

from sandbox.server import ThreadedSandbox
from sandbox.state import SandboxState

BASE = 1_800_000_000

pytest_plugins = ["sandbox_fixtures"]


def add_events(state: SandboxState, count: int) -> list[str]:
    """`count` events, oldest first, a second apart, alternating between two types."""
    ids = []
    for n in range(count):
        event_type = "charge.refunded" if n % 2 else "checkout.session.completed"
        event = state.add_event(
            {
                "id": f"evt_test{n:05d}",
                "object": "event",
                "api_version": "2026-10-28.endive",
                "created": BASE + n,
                "data": {"object": {"id": f"obj_{n}", "object": "charge"}},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }
        )
        ids.append(event["id"])
    return ids


async def listed(client: stripe.StripeClient, **query: Any) -> list[str]:
    first = await client.v1.events.list_async(params=cast(Any, query))
    return [event.id async for event in first.auto_paging_iter()]


async def test_auto_paging_walks_every_page_newest_first(
    make_client: MakeClient, state: SandboxState
) -> None:
    ids = add_events(state, 250)
    client = make_client()
    everything = await listed(client, limit=100)
    assert everything == list(reversed(ids))
    pages = [r for r in state.requests if r.path == "/v1/events"]
    assert len(pages) == 3
    assert pages[1].params["starting_after"] == ids[150]


def test_the_sync_sdk_pages_the_same_way() -> None:
    state = SandboxState(api_key=KEY)
    ids = add_events(state, 25)
    with ThreadedSandbox(state) as url:
        http = stripe.HTTPXClient(timeout=5, allow_sync_methods=True)
        client = stripe.StripeClient(
            KEY, http_client=http, base_addresses=cast(Any, {"api": url}), max_network_retries=0
        )
        try:
            page = client.v1.events.list(params={"limit": 10, "type": "charge.*"})
            refunds = [event.id for event in page.auto_paging_iter()]
            everything = [event.id for event in client.v1.events.list().auto_paging_iter()]
        finally:
            http.close()  # type: ignore[no-untyped-call]
    assert refunds == [i for n, i in enumerate(ids) if n % 2][::-1]
    assert everything == ids[::-1]


async def test_default_page_is_ten_and_has_more(
    make_client: MakeClient, state: SandboxState
) -> None:
    ids = add_events(state, 12)
    page = await make_client().v1.events.list_async()
    assert [e.id for e in page.data] == list(reversed(ids))[:10]
    assert page.has_more is True
    assert page.url == "/v1/events"
    assert page.to_dict()["object"] == "list"


async def test_ending_before_walks_backwards(make_client: MakeClient, state: SandboxState) -> None:
    ids = add_events(state, 30)
    client = make_client()
    page = await client.v1.events.list_async(params={"limit": 5, "ending_before": ids[10]})
    assert [e.id for e in page.data] == list(reversed(ids[11:16]))
    assert page.has_more is True
    newer = await listed(client, limit=7, ending_before=ids[10])
    assert newer == ids[11:]


async def test_filters_by_type_types_wildcard_and_created(
    make_client: MakeClient, state: SandboxState
) -> None:
    ids = add_events(state, 40)
    client = make_client()
    refunds = [i for n, i in enumerate(ids) if n % 2]
    assert await listed(client, limit=3, type="charge.refunded") == list(reversed(refunds))
    assert await listed(client, limit=100, type="charge.*") == list(reversed(refunds))
    assert len(await listed(client, limit=100, type="*")) == 40
    assert await listed(
        client, limit=4, types=["charge.refunded", "checkout.session.completed"]
    ) == list(reversed(ids))
    assert await listed(client, limit=5, created={"gte": BASE + 30}) == list(reversed(ids[30:]))
    assert await listed(client, limit=5, created={"gt": BASE + 5, "lte": BASE + 8}) == list(
        reversed(ids[6:9])
    )
    assert await listed(client, created=BASE + 7) == [ids[7]]
    assert await listed(
        client, limit=2, type="checkout.session.completed", created={"lt": BASE + 6}
    ) == [ids[4], ids[2], ids[0]]
    assert await listed(client, delivery_success=False, expand=["data.request"], limit=50) == list(
        reversed(ids)
    )


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ({"limit": 0}, "limit", None),
        ({"limit": 101}, "limit", None),
        ({"limit": "ten"}, "limit", None),
        ({"bogus": 1}, "bogus", "parameter_unknown"),
        ({"created": {"after": 1}}, "created[after]", "parameter_unknown"),
        ({"type": "charge.refunded", "types": ["charge.refunded"]}, "types", None),
        ({"types": [f"t{n}" for n in range(21)]}, "types", None),
        ({"starting_after": "evt_unknown"}, "starting_after", "resource_missing"),
        ({"ending_before": "evt_unknown"}, "ending_before", "resource_missing"),
        ({"created": {"gte": "yesterday"}}, "created[gte]", None),
        ({"delivery_success": "maybe"}, "delivery_success", None),
    ],
)
async def test_refuses_bad_queries(
    make_client: MakeClient,
    state: SandboxState,
    query: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    add_events(state, 3)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await make_client().v1.events.list_async(params=cast(Any, query))
    assert (caught.value.http_status, caught.value.param, caught.value.code) == (400, param, code)
