"""300 projects, each checkout -> paid -> duplicate delivery, 32 at a time on 2 replicas:
every project ends paid with exactly two audit rows."""

from __future__ import annotations

import asyncio

import tornado.httpclient
from flows import history
from helpers import StripeStandIn, new_id
from processes import ServiceProcess, free_port, service_environment

from service.http.context import AppContext

PROJECTS = 300
CONCURRENCY = 32


async def test_three_hundred_projects_on_two_replicas(
    database_url: str, stripe_api: StripeStandIn, ctx: AppContext
) -> None:
    replicas = [
        ServiceProcess(service_environment(database_url, stripe_api, free_port())).start()
        for _ in range(2)
    ]
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=CONCURRENCY * 2)
    projects = [new_id("load") for _ in range(PROJECTS)]
    slots = asyncio.Semaphore(CONCURRENCY)
    failures: list[str] = []

    async def one(n: int, project: str) -> None:
        async with slots:
            first, second = (replicas[n % 2].client(http), replicas[(n + 1) % 2].client(http))
            checkout = await first.checkout(project)
            if checkout.code != 200:
                failures.append(f"{project} checkout {checkout.code}")
                return
            event = stripe_api.state.complete_session(checkout.json()["session_id"])
            applied, duplicate = await first.webhook(event), await second.webhook(event)
            if (applied.json(), duplicate.json()) != (
                {"received": True},
                {"received": True, "duplicate": True},
            ):
                failures.append(f"{project} {applied.body!r} {duplicate.body!r}")

    try:
        for replica in replicas:
            await replica.wait_healthy(http)
        await asyncio.gather(*(one(n, p) for n, p in enumerate(projects)))
    finally:
        http.close()
        for replica in replicas:
            replica.stop()
    assert failures == []
    assert stripe_api.state.create_calls == PROJECTS
    for project in projects:
        rows = await history(ctx, project)
        assert [(r["from_status"], r["to_status"]) for r in rows] == [
            (None, "pending"),
            ("pending", "paid"),
        ], project
