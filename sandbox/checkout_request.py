"""POST /v1/checkout/sessions: the form, checked as strictly as Stripe checks it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from sandbox import errors, forms
from sandbox.param_specs import ParamSpecs

SPECS = ParamSpecs.load("checkout_session_create_params.json")
MIN_LIFETIME = 30 * 60
MAX_LIFETIME = 24 * 60 * 60
# A request built a moment before it arrives must not fail the 30-minute floor by a second.
_CLOCK_SLACK = 5
_MAX_LINE_ITEMS = 100
_MAX_REFERENCE = 200
_MAX_METADATA_KEYS, _MAX_KEY, _MAX_VALUE = 50, 40, 500
_METADATA_PARAMS = ("metadata", "payment_intent_data[metadata]")


@dataclass(frozen=True)
class LineItem:
    price: str
    quantity: int


@dataclass(frozen=True)
class CheckoutRequest:
    mode: str
    line_items: tuple[LineItem, ...]
    success_url: str | None
    cancel_url: str | None
    client_reference_id: str | None
    customer_email: str | None
    currency: str | None
    metadata: dict[str, str]
    payment_intent_metadata: dict[str, str]
    expires_at: int | None

    @property
    def quantity(self) -> int:
        return sum(item.quantity for item in self.line_items)


def parse(params: dict[str, str], *, price_id: str, now: int | None = None) -> CheckoutRequest:
    """The request, or the StripeError Stripe would answer. `price_id` is the only price."""
    SPECS.check(params)
    mode = params.get("mode")
    if mode is None:
        raise errors.missing_parameter("mode")
    line_items = _line_items(params, mode, price_id)
    _check_urls(params)
    _check_reference(params)
    for prefix in _METADATA_PARAMS:
        check_metadata(forms.sub_dict(params, prefix), prefix)
    expires_at = params.get("expires_at")
    return CheckoutRequest(
        mode=mode,
        line_items=line_items,
        success_url=params.get("success_url"),
        cancel_url=params.get("cancel_url"),
        client_reference_id=params.get("client_reference_id"),
        customer_email=params.get("customer_email"),
        currency=params.get("currency"),
        metadata=forms.sub_dict(params, "metadata"),
        payment_intent_metadata=forms.sub_dict(params, "payment_intent_data[metadata]"),
        expires_at=None if expires_at is None else _expiry(expires_at, now),
    )


def _line_items(params: dict[str, str], mode: str, price_id: str) -> tuple[LineItem, ...]:
    raw = forms.indexed(params, "line_items")
    if mode == "setup":
        if raw:
            raise errors.invalid(
                "You cannot pass `line_items` in `setup` mode.", param="line_items"
            )
        if "currency" not in params:
            raise errors.missing_parameter("currency")
        return ()
    if not raw:
        raise errors.invalid(
            f"`line_items` is required in `{mode}` mode.",
            param="line_items",
            code="parameter_missing",
        )
    if len(raw) > _MAX_LINE_ITEMS:
        raise errors.invalid(
            f"You may only specify up to {_MAX_LINE_ITEMS} line items.", param="line_items"
        )
    items = tuple(_line_item(index, fields, price_id) for index, fields in raw.items())
    if mode == "subscription":
        # The one price the sandbox sells is a one-time price, as the service's is.
        raise errors.invalid(
            "You must provide at least one recurring price in `subscription` mode when "
            "using prices.",
            param="line_items",
        )
    return items


def _line_item(index: int, fields: dict[str, str], price_id: str) -> LineItem:
    param = f"line_items[{index}]"
    if "price_data" in fields or any(name.startswith("price_data") for name in fields):
        raise errors.invalid(
            "The sandbox sells only its configured price; pass `price`, not `price_data`.",
            param=f"{param}[price_data]",
        )
    price = fields.get("price")
    if price is None:
        raise errors.missing_parameter(f"{param}[price]")
    if price != price_id:
        raise errors.no_such("price", price, param=f"{param}[price]")
    if "quantity" not in fields:
        raise errors.invalid(
            f"Quantity is required. Add `quantity` to `{param}`.",
            param=f"{param}[quantity]",
            code="parameter_missing",
        )
    quantity = errors.parse_int(fields["quantity"], f"{param}[quantity]")
    if quantity < 1:
        raise errors.invalid(
            "This value must be greater than or equal to 1.", param=f"{param}[quantity]"
        )
    return LineItem(price, quantity)


def _check_urls(params: dict[str, str]) -> None:
    for name in ("success_url", "cancel_url"):
        if name not in params:
            continue
        # Stripe fills in {CHECKOUT_SESSION_ID} itself; any other brace is not a URL.
        url = (
            params[name].replace("{CHECKOUT_SESSION_ID}", "cs")
            if name == "success_url"
            else params[name]
        )
        parts = urlsplit(url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or any(c in url for c in "{} ")
        ):
            raise errors.invalid("Not a valid URL", param=name, code="url_invalid")


def _check_reference(params: dict[str, str]) -> None:
    reference = params.get("client_reference_id")
    if reference is not None and not 1 <= len(reference) <= _MAX_REFERENCE:
        raise errors.invalid(
            f"Invalid string: {reference[:20]}...; must be at most {_MAX_REFERENCE} characters",
            param="client_reference_id",
        )


def check_metadata(metadata: dict[str, str], prefix: str) -> None:
    """Stripe's limits on a metadata map: 50 keys, keys up to 40 characters, values 500."""
    if len(metadata) > _MAX_METADATA_KEYS:
        raise errors.invalid(
            f"You can have up to {_MAX_METADATA_KEYS} metadata keys, but you passed "
            f"{len(metadata)}.",
            param=prefix,
        )
    for key, value in metadata.items():
        if len(key) > _MAX_KEY:
            raise errors.invalid(
                f"Metadata keys can have up to {_MAX_KEY} characters, but you passed in a key "
                f"that is {len(key)} characters.",
                param=f"{prefix}[{key}]",
            )
        if len(value) > _MAX_VALUE:
            raise errors.invalid(
                f"Metadata values can have up to {_MAX_VALUE} characters, but you passed in "
                f"a value that is {len(value)} characters.",
                param=f"{prefix}[{key}]",
            )


def _expiry(value: str, now: int | None) -> int:
    expires_at = errors.parse_int(value, "expires_at")
    lifetime = expires_at - (int(time.time()) if now is None else now)
    if lifetime < MIN_LIFETIME - _CLOCK_SLACK:
        raise errors.invalid(
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session "
            "creation.",
            param="expires_at",
        )
    if lifetime > MAX_LIFETIME:
        raise errors.invalid(
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            param="expires_at",
        )
    return expires_at
