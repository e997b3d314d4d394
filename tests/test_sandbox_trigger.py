"""`python -m sandbox trigger` drives the sandbox's own sessions, as `stripe trigger` drives a
test account: the sandbox changes its session and delivers Stripe's events, signed, to the
service, so the sandbox's dashboard and the service never disagree."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from flows import new_checkout, status_of
from helpers import WEBHOOK_SECRET, ServiceClient, StripeStandIn, new_id

from sandbox.webhooks import Deliverer, WebhookTarget

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def delivering(stripe_api: StripeStandIn, client: ServiceClient) -> StripeStandIn:
    """The stand-in delivering its events to the service under test, as make run wires it."""
    target = WebhookTarget(
        f"{client.base_url}/webhooks/stripe", WEBHOOK_SECRET, retry_base_seconds=0.1
    )
    stripe_api.state.deliverer = Deliverer(target)
    return stripe_api


async def trigger(sandbox: StripeStandIn, *args: str) -> tuple[int, str, str]:
    """The command line, run as a user runs it; the test's loop keeps serving meanwhile."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "sandbox", "trigger", *args, "--sandbox-url", sandbox.url),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    await asyncio.wait_for(sandbox.state.settled(), 10)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_complete_then_refund_moves_the_sandbox_and_the_service_together(
    client: ServiceClient, delivering: StripeStandIn
) -> None:
    project, session_id = await new_checkout(client)
    code, out, err = await trigger(delivering, "complete", "--project", project)
    assert (code, err) == (0, "")
    assert "checkout.session.completed" in out
    assert session_id in out
    session = delivering.state.sessions[session_id]
    assert (session["status"], session["payment_status"]) == ("complete", "paid")
    assert await status_of(client, project) == "paid"

    code, out, _ = await trigger(delivering, "refund", "--session", session_id)
    assert code == 0
    assert "charge.refunded" in out
    payment = delivering.state.payments[session_id]
    assert payment.amount_refunded == payment.amount
    assert await status_of(client, project) == "refunded"


@pytest.mark.parametrize(
    ("action", "sandbox_status", "service_status"),
    [("fail", "complete", "failed"), ("expire", "expired", "expired")],
)
async def test_fail_and_expire_end_the_same_in_both(
    client: ServiceClient,
    delivering: StripeStandIn,
    action: str,
    sandbox_status: str,
    service_status: str,
) -> None:
    project, session_id = await new_checkout(client)
    code, _, err = await trigger(delivering, action, "--project", project)
    assert (code, err) == (0, "")
    assert delivering.state.sessions[session_id]["status"] == sandbox_status
    assert await status_of(client, project) == service_status


async def test_dispute_lost_ends_refunded_in_both(
    client: ServiceClient, delivering: StripeStandIn
) -> None:
    project, session_id = await new_checkout(client)
    for action in ("complete", "dispute"):
        assert (await trigger(delivering, action, "--project", project))[0] == 0
    assert await status_of(client, project) == "disputed"
    assert (await trigger(delivering, "dispute-lost", "--project", project))[0] == 0
    assert delivering.state.payments[session_id].dispute["status"] == "lost"  # type: ignore[index]
    assert await status_of(client, project) == "refunded"


async def test_a_trigger_that_does_not_apply_says_why_in_one_line_and_exits_1(
    client: ServiceClient, delivering: StripeStandIn
) -> None:
    project, session_id = await new_checkout(client)
    code, out, err = await trigger(delivering, "refund", "--project", project)
    assert code == 1
    assert out == ""
    assert err == f"sandbox trigger: checkout.session {session_id} is open, not complete\n"
    code, _, err = await trigger(delivering, "complete", "--project", new_id())
    assert code == 1
    assert err.startswith("sandbox trigger: no checkout session for project ")
    assert err.count("\n") == 1
    assert delivering.state.events == []


async def test_no_sandbox_running_is_one_line(stripe_api: StripeStandIn) -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "sandbox", "trigger", "complete", "--project", "p"),
        *("--sandbox-url", "http://127.0.0.1:1"),
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 1
    assert err.decode().startswith("sandbox trigger: no sandbox at http://127.0.0.1:1")
    assert err.decode().count("\n") == 1


async def test_the_dashboard_s_events_link_answers_without_an_api_key(
    client: ServiceClient, delivering: StripeStandIn
) -> None:
    project, _ = await new_checkout(client)
    await trigger(delivering, "complete", "--project", project)
    page = await client.http.fetch(f"{delivering.url}/dashboard", raise_error=False)
    assert b'href="/dashboard/events.json"' in page.body
    listing = await client.http.fetch(f"{delivering.url}/dashboard/events.json", raise_error=False)
    assert listing.code == 200
    events = json.loads(listing.body)["data"]
    assert [e["type"] for e in events] == ["checkout.session.completed"]


async def test_the_trigger_endpoint_takes_json_only(
    client: ServiceClient, delivering: StripeStandIn
) -> None:
    """A form or a no-cors fetch from some web page (text/plain) cannot move a session."""
    project, session_id = await new_checkout(client)
    body = json.dumps({"action": "complete", "project": project})
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = await client.http.fetch(
            f"{delivering.url}/sandbox/trigger",
            method="POST",
            body=body,
            headers={"Content-Type": content_type},
            raise_error=False,
        )
        assert response.code == 415
    assert delivering.state.sessions[session_id]["status"] == "open"
