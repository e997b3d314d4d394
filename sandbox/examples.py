"""Stripe's example events (sandbox/data/events, copied from Stripe's reference payloads):
the one copy the stand-in builds its objects from, and that the tests, `make send-event` and
the benchmark re-target at a project of their own.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
import uuid
from functools import cache
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "data" / "events"
NAMES = tuple(sorted(path.stem for path in EVENTS.glob("*.json")))


@cache
def _parsed(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def example_event(name: str) -> dict[str, Any]:
    """The example event `name` (e.g. "checkout.session.completed.paid"), as a fresh dict."""
    return copy.deepcopy(_parsed(name))


def fresh_id(prefix: str) -> str:
    """An id nothing else uses, e.g. "evt_3f9c0d7a1b3e4f5a"."""
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def event_for(
    name: str,
    project_id: str | None,
    *,
    event_id: str | None = None,
    payment_intent: str | None = None,
    session_id: str | None = None,
    created: int | None = None,
    **object_fields: Any,
) -> dict[str, Any]:
    """The example event `name` re-targeted at `project_id`, with a fresh event id (or
    `event_id`), created now (or at `created`), and `object_fields` set on its object.

    A payment intent not given is made up: the session's own (the same for every event of one
    session), or a fresh one; never the example's, which every caller would otherwise share."""
    event = example_event(name)
    event["id"] = event_id if event_id is not None else fresh_id("evt")
    if payment_intent is None:
        payment_intent = (
            "pi_" + hashlib.sha256(session_id.encode()).hexdigest()[:24]
            if session_id is not None
            else fresh_id("pi")
        )
    event["created"] = created if created is not None else int(time.time())
    obj = event["data"]["object"]
    if event["type"].startswith("checkout.session."):
        obj["client_reference_id"] = project_id
        obj["metadata"] = {"project_id": project_id} if project_id else {}
        if session_id is not None:
            obj["id"] = session_id
        if obj.get("payment_intent") is not None:
            obj["payment_intent"] = payment_intent
    else:
        if "metadata" in obj and project_id is not None:
            obj["metadata"] = {"project_id": project_id}
        elif "metadata" in obj:
            obj["metadata"] = {}
        obj["payment_intent"] = payment_intent
    obj.update(object_fields)
    return event
