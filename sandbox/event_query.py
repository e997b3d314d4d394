"""GET /v1/events: the query Stripe accepts, and the page of events it selects."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox import errors

DEFAULT_LIMIT, MAX_LIMIT, MAX_TYPES = 10, 100, 20
_BOUNDS = ("gt", "gte", "lt", "lte")
_KNOWN = re.compile(
    r"limit|starting_after|ending_before|created|created\[(gt|gte|lt|lte)\]|type|"
    r"types\[\d+\]|delivery_success|expand\[\d+\]"
)


@dataclass(frozen=True)
class EventQuery:
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None
    ending_before: str | None = None
    types: tuple[str, ...] = ()
    created: dict[str, int] = field(default_factory=dict)

    def matches(self, event: dict[str, Any]) -> bool:
        return _type_matches(str(event.get("type", "")), self.types) and _created_matches(
            int(event.get("created", 0)), self.created
        )


def parse(params: dict[str, str]) -> EventQuery:
    for name in params:
        if _KNOWN.fullmatch(name) is None:
            raise errors.unknown_parameter(name)
    limit = errors.parse_int(params.get("limit", str(DEFAULT_LIMIT)), "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.invalid(
            f"This value must be between 1 and {MAX_LIMIT} (inclusive).", param="limit"
        )
    if "starting_after" in params and "ending_before" in params:
        raise errors.invalid(
            "You may only specify one of these parameters: ending_before, starting_after.",
            param="ending_before",
        )
    types = tuple(
        value
        for name, value in sorted(params.items(), key=lambda item: _index(item[0]))
        if name.startswith("types[")
    )
    if types and "type" in params:
        raise errors.invalid(
            "You may only specify one of these parameters: type, types.", param="types"
        )
    if len(types) > MAX_TYPES:
        raise errors.invalid(
            f"You may only specify up to {MAX_TYPES} types.", param="types", code=None
        )
    if "delivery_success" in params and params["delivery_success"] not in ("true", "false"):
        raise errors.invalid(
            f"Invalid boolean: {params['delivery_success']}", param="delivery_success"
        )
    created = {
        bound: errors.parse_int(params[f"created[{bound}]"], f"created[{bound}]")
        for bound in _BOUNDS
        if f"created[{bound}]" in params
    }
    if "created" in params:
        created["eq"] = errors.parse_int(params["created"], "created")
    return EventQuery(
        limit=limit,
        starting_after=params.get("starting_after"),
        ending_before=params.get("ending_before"),
        types=types or ((params["type"],) if "type" in params else ()),
        created=created,
    )


def page(events: Sequence[dict[str, Any]], query: EventQuery) -> tuple[list[dict[str, Any]], bool]:
    """The selected page, newest first, and whether more lie beyond it in that direction.

    `events` is oldest first. The cursors are looked up among all events, as on Stripe,
    so a cursor that does not match the filters still marks a place in the list.
    """
    newest_first = list(reversed(events))
    if query.starting_after is not None:
        start = _position(newest_first, query.starting_after, "starting_after") + 1
        rest = [e for e in newest_first[start:] if query.matches(e)]
        return rest[: query.limit], len(rest) > query.limit
    if query.ending_before is not None:
        end = _position(newest_first, query.ending_before, "ending_before")
        before = [e for e in newest_first[:end] if query.matches(e)]
        return before[-query.limit :], len(before) > query.limit
    selected = [e for e in newest_first if query.matches(e)]
    return selected[: query.limit], len(selected) > query.limit


def _position(events: list[dict[str, Any]], event_id: str, param: str) -> int:
    for index, event in enumerate(events):
        if event.get("id") == event_id:
            return index
    raise errors.no_such("event", event_id, param=param)


def _index(name: str) -> int:
    digits = "".join(c for c in name if c.isdigit())
    return int(digits) if digits else 0


def _type_matches(event_type: str, patterns: tuple[str, ...]) -> bool:
    if not patterns:
        return True
    return any(
        event_type == p or (p.endswith("*") and event_type.startswith(p[:-1])) for p in patterns
    )


def _created_matches(created: int, bounds: dict[str, int]) -> bool:
    checks = {
        "gt": lambda limit: created > limit,
        "gte": lambda limit: created >= limit,
        "lt": lambda limit: created < limit,
        "lte": lambda limit: created <= limit,
        "eq": lambda limit: created == limit,
    }
    return all(checks[op](limit) for op, limit in bounds.items())
