"""Turning a webhook delivery into a trusted event: signature first, then shape.

The signature is checked with the SDK against every configured secret (so secrets can be
rolled), and the body is then parsed once with orjson into plain data: the SDK's
StripeObject wrapping costs more than everything else the webhook does, and orjson parses a
typical 3-4 KB event in a third of the standard json module's time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import stripe

from service.errors import InvalidWebhook, UnstorableWebhook

PROJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# PostgreSQL's bigint, which holds every number the service stores.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Stripe's ids are far shorter; an id is indexed, and an index row must stay small.
MAX_ID_LENGTH = 255


@dataclass(frozen=True)
class StripeEvent:
    event_id: str
    event_type: str
    created: datetime
    livemode: bool
    obj: Mapping[str, Any]
    # Set for an event of a Stripe Connect account: another business's, never counted.
    account: str | None = None
    # The API version Stripe rendered it in (the webhook endpoint's).
    api_version: str | None = None


def verify_signature(
    payload: bytes, header: str | None, secrets: Sequence[str], tolerance_seconds: int
) -> None:
    """Raise InvalidWebhook unless one of the secrets signed this payload recently."""
    if not header:
        raise InvalidWebhook("missing Stripe-Signature header")
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance_seconds)
        except stripe.SignatureVerificationError as error:
            if "tolerance" in str(error):
                raise InvalidWebhook("signature timestamp is outside the tolerance") from None
            continue
        except UnicodeDecodeError:
            raise InvalidWebhook("body is not UTF-8 text") from None
        # The SDK accepts any timestamp in the future; a signed delivery from the future is
        # a replay tool or a broken clock, and either way not something to act on.
        if _signed_at(header) > time.time() + tolerance_seconds:
            raise InvalidWebhook("signature timestamp is outside the tolerance")
        return
    raise InvalidWebhook("signature does not match")


def _signed_at(header: str) -> int:
    """The header's timestamp. The SDK reads `t=<T>=junk` as T and verifies it; Stripe never
    sends such a header, so a signed one is refused rather than half-understood."""
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            if not value.isascii() or not value.isdigit():
                raise UnstorableWebhook("malformed Stripe-Signature header")
            return int(value)
    return 0


def parse_event(payload: bytes) -> StripeEvent:
    """The verified body as an event, or InvalidWebhook if it is not one."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:  # also for nesting deeper than 1024 and non-UTF-8 bytes
        raise InvalidWebhook("body is not JSON") from None
    return event_from_data(data, payload)


def event_from_data(data: object, payload: bytes | None = None) -> StripeEvent:
    """An event already parsed from JSON (a webhook body, or a page of GET /v1/events).

    Raises UnstorableWebhook for an event the database could not hold (a NUL in a string,
    a number beyond bigint, an id too long to index): answered 400 rather than failing on
    write, which Stripe would retry for days. With the JSON text (`payload`), the walk over
    every value is skipped when the text cannot hold such a value."""
    if not isinstance(data, dict) or data.get("object") != "event":
        raise InvalidWebhook("body is not a Stripe event")
    walk = payload is None or may_hold_unstorable(payload)
    problem = unstorable_value(data) if walk else None
    if problem is not None:
        raise UnstorableWebhook(f"the event cannot be stored: {problem}")
    event_id, event_type, created = data.get("id"), data.get("type"), data.get("created")
    body = data.get("data")
    obj = body.get("object") if isinstance(body, dict) else None
    if not (
        isinstance(event_id, str)
        and event_id.startswith("evt_")
        and len(event_id) <= 255
        and isinstance(event_type, str)
        and 0 < len(event_type) <= 255
        and isinstance(created, int)
        and not isinstance(created, bool)
        and 0 <= created < 2**32
        and isinstance(obj, dict)
    ):
        raise InvalidWebhook("body is not a Stripe event")
    for key in ("id", "payment_intent", "charge"):
        value = _id_of(obj.get(key))
        if value is not None and len(value) > MAX_ID_LENGTH:
            raise UnstorableWebhook(f"the event cannot be stored: its {key} is too long")
    return StripeEvent(
        event_id=event_id,
        event_type=event_type,
        created=datetime.fromtimestamp(created, UTC),
        livemode=data.get("livemode") is True,
        obj=obj,
        account=account if isinstance(account := data.get("account"), str) and account else None,
        api_version=version if isinstance(version := data.get("api_version"), str) else None,
    )


# Digits to "0", e/E to "e", "+" kept, all else a space: the shapes of numbers, found with
# bytes.find (C speed) where a regular expression took four times the walk's time.
_NUMBER_SHAPES = bytes(
    ord("0") if 48 <= b <= 57 else ord("e") if b in b"eE" else b if b == ord("+") else 32
    for b in range(256)
)


def may_hold_unstorable(payload: bytes) -> bool:
    """False when the JSON text cannot hold what unstorable_value looks for (and the walk,
    a sizeable share of a webhook's CPU, can be skipped).

    JSON escapes every NUL in a string or key as \u0000 (a raw control character is not
    JSON). An integer beyond bigint has 19 digits or more (2^63 has 19); a float as large is
    written with 19 digits before its point or with an exponent, a digit then e[+]digit. Ids
    sometimes contain "4e1": then the walk decides."""
    if b"\\u0000" in payload:
        return True
    shapes = payload.translate(_NUMBER_SHAPES)
    return b"0" * 19 in shapes or b"0e0" in shapes or b"0e+0" in shapes


def unstorable_value(data: object) -> str | None:
    """What in `data` PostgreSQL could not store, without quoting it; None when all is well.

    Walks every value, iteratively (nesting is bounded only by orjson's 1024 levels), with
    exact type tests: about as long as orjson took to parse the body (~20 us an event)."""
    stack: list[Any] = [data]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str:
            if "\x00" in item:
                return "a string holds a NUL character"
        elif kind is dict:
            for key in item:
                if "\x00" in key:
                    return "a key holds a NUL character"
            extend(item.values())
        elif kind is list:
            extend(item)
        elif (kind is int or kind is float) and not _INT64_MIN <= item <= _INT64_MAX:
            # orjson reads an integer beyond 64 bits as a float: out of range either way.
            return "a number is outside the 64-bit range"
    return None


def _id_of(value: object) -> str | None:
    """An expandable field is an id, or the expanded object carrying it."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None
