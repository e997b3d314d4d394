"""Which form parameters an endpoint takes, and their types, from Stripe's own declarations.

Stripe refuses any parameter it does not know, so a misspelled or outdated parameter in
the service fails here as it would against Stripe, instead of being silently ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from sandbox import errors, forms

DATA = Path(__file__).parent / "data"
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_CONTAINERS = ("object", "array<object>", "array<string>")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str
    enum: tuple[str, ...] = ()
    emptyable: bool = False

    @property
    def is_map(self) -> bool:
        return self.type.startswith("map<")


class ParamSpecs:
    def __init__(self, specs: list[ParamSpec]) -> None:
        self._specs = {spec.name: spec for spec in specs}

    @classmethod
    def load(cls, filename: str) -> ParamSpecs:
        raw = json.loads((DATA / filename).read_text())
        return cls(
            [
                ParamSpec(p["name"], p["type"], tuple(p.get("enum", ())), p.get("emptyable", False))
                for p in raw["params"]
            ]
        )

    def check(self, params: dict[str, str]) -> None:
        """Refuse unknown names and values of the wrong type, as Stripe does."""
        for name, value in params.items():
            _check_value(self.spec_for(name), name, value)

    def spec_for(self, name: str) -> ParamSpec:
        parts = forms.segments(name)
        if parts is None:
            raise errors.unknown_parameter(name)
        declared: list[str] = []
        for index, part in enumerate(parts):
            parent = self._specs.get(forms.join(declared)) if declared else None
            if parent is not None and parent.is_map:
                # Map keys are the caller's own (metadata); only their nesting depth is fixed.
                if parent.type == "map<string,string>" and index != len(parts) - 1:
                    raise errors.unknown_parameter(name)
                return ParamSpec(name, "string")
            if parent is not None and parent.type.startswith("array<") and part.isdigit():
                declared.append("0")
            else:
                declared.append(part)
        spec = self._specs.get(forms.join(declared))
        if spec is not None:
            return spec
        parent = self._specs.get(forms.join(declared[:-1])) if len(declared) > 1 else None
        if parent is not None and parent.type == "array<string>" and declared[-1] == "0":
            return ParamSpec(name, "string")
        raise errors.unknown_parameter(name)


def _check_value(spec: ParamSpec, name: str, value: str) -> None:
    if value == "" and spec.emptyable:
        return
    kind = spec.type
    if kind in _CONTAINERS or spec.is_map:
        noun = "array" if kind.startswith("array") else "object"
        raise errors.invalid(f"Invalid {noun}", param=name)
    if kind == "integer":
        errors.parse_int(value, name)
    elif kind in ("number", "decimal_string") and _NUMBER.fullmatch(value) is None:
        raise errors.invalid(f"Invalid decimal: {value}", param=name)
    elif kind == "boolean" and value not in ("true", "false"):
        raise errors.invalid(f"Invalid boolean: {value}", param=name)
    elif spec.enum and value not in spec.enum:
        *head, last = spec.enum
        choices = f"{', '.join(head)}, or {last}" if head else last
        raise errors.invalid(f"Invalid {name}: must be one of {choices}", param=name)
