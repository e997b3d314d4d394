"""Stripe's form encoding: nested objects as `a[b][c]`, arrays as `a[0]`, maps as `a[key]`."""

from __future__ import annotations

import re

_NAME = re.compile(r"([^\[\]]+)((?:\[[^\[\]]+\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]+)\]")


def segments(name: str) -> list[str] | None:
    """`a[b][0]` -> ["a", "b", "0"]; None when the name is not in bracket notation."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    return [match.group(1), *_SEGMENT.findall(match.group(2))]


def join(parts: list[str]) -> str:
    return parts[0] + "".join(f"[{part}]" for part in parts[1:])


def sub_dict(params: dict[str, str], prefix: str) -> dict[str, str]:
    """The entries of the map sent as `prefix[key]=value`."""
    start = prefix + "["
    return {
        name[len(start) : -1]: value
        for name, value in params.items()
        if name.startswith(start) and name.endswith("]") and "[" not in name[len(start) : -1]
    }


def indexed(params: dict[str, str], prefix: str) -> dict[int, dict[str, str]]:
    """The objects of the array sent as `prefix[i][field]=value`, by index."""
    items: dict[int, dict[str, str]] = {}
    pattern = re.compile(re.escape(prefix) + r"\[(\d+)\]\[([^\[\]]+)\]")
    for name, value in params.items():
        match = pattern.fullmatch(name)
        if match is not None:
            items.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return dict(sorted(items.items()))
