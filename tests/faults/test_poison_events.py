"""Poison deliveries: validly signed, yet impossible to store. Each is answered 400 (a 500
makes Stripe retry it for days), logged once without the value, and leaves nothing behind.
Malformed Content-Length headers are 400s too, never 413s."""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg
import orjson
import pytest
from flows import status_of
from helpers import ServiceClient, event_for, new_id, raw_exchange, sign
from hypothesis import given
from hypothesis import strategies as st

from service.http.context import AppContext
from service.http.error_status import status_for
from service.webhook_events import may_hold_unstorable, unstorable_value

BIG = 2**63  # one past PostgreSQL's bigint


def unstorable_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if getattr(r, "fields", {}).get("event") == "webhook_unstorable"
    ]


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)


async def stored_event(ctx: AppContext, event_id: str) -> Any:
    async with ctx.pool.acquire() as conn:
        return await ctx.queries.get_event(conn, event_id=event_id)


def _nul_in_session_id(event: dict[str, Any]) -> None:
    event["data"]["object"]["id"] = "cs_test_\x00a"


def _nul_in_a_name(event: dict[str, Any]) -> None:
    event["data"]["object"]["customer_details"]["name"] = "Jenny\x00Rosen"


def _nul_in_a_key(event: dict[str, Any]) -> None:
    event["data"]["object"]["metadata"]["\x00"] = "x"


def _amount_beyond_bigint(event: dict[str, Any]) -> None:
    event["data"]["object"]["amount_total"] = BIG


def _negative_beyond_bigint(event: dict[str, Any]) -> None:
    event["data"]["object"]["amount_subtotal"] = -2 * BIG  # orjson: a float, out of range too


def _a_nested_number_beyond_bigint(event: dict[str, Any]) -> None:
    event["data"]["object"]["total_details"] = {"breakdown": [{"amount": BIG * 4}]}


def _a_session_id_too_long_to_index(event: dict[str, Any]) -> None:
    event["data"]["object"]["id"] = "cs_test_" + "a" * 5000


@pytest.mark.parametrize(
    "poison",
    [
        _nul_in_session_id,
        _nul_in_a_name,
        _nul_in_a_key,
        _amount_beyond_bigint,
        _negative_beyond_bigint,
        _a_nested_number_beyond_bigint,
        _a_session_id_too_long_to_index,
    ],
)
async def test_a_signed_event_the_database_cannot_store_is_a_400_logged_once(
    client: ServiceClient, ctx: AppContext, caplog: pytest.LogCaptureFixture, poison: Any
) -> None:
    project = new_id()
    event = event_for("checkout.session.completed.paid", project)
    poison(event)
    caplog.set_level(logging.INFO)
    response = await client.webhook(event)
    assert response.code == 400
    assert "cannot be stored" in response.json()["error"]
    assert await stored_event(ctx, event["id"]) is None
    assert await status_of(client, project) is None
    assert len(unstorable_logs(caplog)) == 1
    logged = everything_logged(caplog)
    for value in (str(BIG), "Jenny", "aaaaaaaaaa"):
        assert value not in logged


async def test_a_nul_in_the_event_id_is_a_400(
    client: ServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    project = new_id()
    event = event_for("checkout.session.completed.paid", project)
    event["id"] = "evt_\x00" + new_id()
    caplog.set_level(logging.INFO)
    assert (await client.webhook(event)).code == 400
    assert await status_of(client, project) is None
    assert len(unstorable_logs(caplog)) == 1


async def test_a_signed_header_with_a_malformed_timestamp_is_a_400(
    client: ServiceClient, ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK reads `t=<T>=junk` as T and accepts the signature; Stripe never sends it."""
    project = new_id()
    event = event_for("checkout.session.completed.paid", project)
    payload = json.dumps(event).encode()
    timestamp, signatures = sign(payload).split(",", 1)
    header = f"{timestamp}=junk,{signatures}"
    caplog.set_level(logging.INFO)
    response = await client.request(
        "POST", "/webhooks/stripe", payload, headers={"Stripe-Signature": header}
    )
    assert response.code == 400
    assert response.json() == {"error": "malformed Stripe-Signature header"}
    assert await stored_event(ctx, event["id"]) is None
    assert await status_of(client, project) is None
    assert len(unstorable_logs(caplog)) == 1


def test_a_value_the_database_refuses_is_a_400_on_the_webhook_path_only() -> None:
    """The last resort, for a value every check above missed: asyncpg's DataError (its
    message quotes the value) is a 400 for a signed webhook, and stays a 500 elsewhere."""
    refused = asyncpg.exceptions.DataError(f"invalid input for query argument $5: {BIG}")
    assert status_for(refused, unstorable_status=400) == (
        400,
        "the event holds a value that cannot be stored",
    )
    assert status_for(refused) == (500, "internal error")
    too_long = asyncpg.exceptions.ProgramLimitExceededError("index row size exceeds maximum")
    assert status_for(too_long, unstorable_status=400)[0] == 400


@pytest.mark.parametrize("path", ["/api/checkout", "/webhooks/stripe"])
@pytest.mark.parametrize(
    "length_headers",
    [
        b"Content-Length: 23, 23\r\n",
        b"Content-Length: -1\r\n",
        b"Content-Length: +23\r\n",
        b"Content-Length: 0x17\r\n",
        b"Content-Length: \xb2\r\n",  # a superscript two in Latin-1: str.isdigit says yes
        b"Content-Length: 23\r\nContent-Length: 23\r\n",
    ],
)
async def test_a_content_length_that_is_not_a_plain_number_is_a_400(
    client: ServiceClient, path: str, length_headers: bytes
) -> None:
    port = int(client.base_url.rsplit(":", 1)[1])
    body = b'{"project_id": "p_1234"}'[:23]
    answer = await raw_exchange(
        port,
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
        + length_headers
        + b"\r\n"
        + body,
    )
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert json.loads(payload) == {"error": "Content-Length must be a plain number"}


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=20,
)


@given(value=JSON, encoder=st.sampled_from(["json", "json-unicode", "orjson"]))
def test_the_quick_check_on_the_text_never_hides_an_unstorable_value(
    value: Any, encoder: str
) -> None:
    """The walk over an event is skipped when its text cannot hold a NUL or an out-of-range
    number: for any JSON, however encoded, the text check says "maybe" whenever the walk
    would find one."""
    if encoder == "orjson":
        try:
            text = orjson.dumps(value)
        except TypeError:  # orjson does not encode integers beyond 64 bits
            return
    else:
        text = json.dumps(value, ensure_ascii=encoder == "json").encode()
    parsed = orjson.loads(text)  # what the webhook walks: the parsed text
    if unstorable_value(parsed) is not None:
        assert may_hold_unstorable(text)
