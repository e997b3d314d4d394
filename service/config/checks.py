"""The checks of single values (environs validators) and of API_AUTH with what it needs."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from marshmallow import ValidationError

from service.config.settings import setting_default
from service.http.auth import parse_keys_file
from service.http.identity import AuthMode
from service.http.jwt_auth import is_local_url, load_public_key
from service.http.limits import parse_rate, parse_trusted_proxies

PRICE_ID = re.compile(r"^price_[A-Za-z0-9]+$")
# Stripe's API versions: 2026-10-28.endive, 2024-06-20.
API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
# A PostgreSQL role name the migration can quote safely and an operator can type.
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def needed(is_needed: bool, validate: Callable[[str], bool]) -> dict[str, Any]:
    """environs arguments: required and validated when needed, else ignored."""
    return {"validate": validate} if is_needed else {"default": None}


def matches(pattern: re.Pattern[str], what: str) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        if not pattern.fullmatch(value):
            raise ValidationError(f"must be {what}")
        return True

    return check


def http_url(value: str) -> bool:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError("must be an absolute http(s) URL")
    return True


def origins(values: list[str]) -> bool:
    for origin in values:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise ValidationError("must be comma-separated origins like https://app.example")
    return True


def rate(value: str) -> bool:
    try:
        parse_rate(value)
    except ValueError as error:
        raise ValidationError(str(error)) from None
    return True


def proxies(value: str) -> bool:
    try:
        parse_trusted_proxies(value)
    except ValueError:
        raise ValidationError("must be comma-separated addresses or networks (CIDR)") from None
    return True


def check_auth(problems: dict[str, str], auth: dict[str, Any], *, live: bool) -> None:
    """API_AUTH and what it needs. `none` is the default only with a test key: a live key
    must say how callers are authenticated (`none` too, behind a gateway that does it)."""
    if auth["api_auth"] is None:
        if live:
            problems["API_AUTH"] = "must be set (jwt, keys or none) with a live Stripe key"
        auth["api_auth"] = setting_default("api_auth")
    elif auth["api_auth"] == AuthMode.JWT:
        _check_jwt(problems, auth)
    elif auth["api_auth"] == AuthMode.KEYS:
        _check_keys_file(problems, auth["api_keys_file"])


def _check_jwt(problems: dict[str, str], auth: dict[str, Any]) -> None:
    for name in ("AUTH_ISSUER", "AUTH_AUDIENCE"):
        if not auth[name.lower()]:
            problems[name] = "required with API_AUTH=jwt"
    jwks_url, public_key_file = auth["auth_jwks_url"], auth["auth_jwt_public_key_file"]
    if bool(jwks_url) == bool(public_key_file):
        problems["AUTH_JWKS_URL"] = (
            "set exactly one of AUTH_JWKS_URL and AUTH_JWT_PUBLIC_KEY_FILE with API_AUTH=jwt"
        )
    elif jwks_url and urlsplit(jwks_url).scheme != "https" and not is_local_url(jwks_url):
        problems["AUTH_JWKS_URL"] = "must be https (plain http only for a loopback address)"
    elif public_key_file:
        try:
            load_public_key(Path(public_key_file))
        except (OSError, ValueError, TypeError):
            problems["AUTH_JWT_PUBLIC_KEY_FILE"] = (
                "must name a readable PEM RSA, EC P-256 or Ed25519 public key"
            )


def _check_keys_file(problems: dict[str, str], keys_file: str | None) -> None:
    if not keys_file:
        problems["API_KEYS_FILE"] = "required with API_AUTH=keys"
        return
    try:
        _, bad = parse_keys_file(Path(keys_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        problems["API_KEYS_FILE"] = "cannot read the file it names"
        return
    if bad:
        lines = ", ".join(str(n) for n in bad)
        problems["API_KEYS_FILE"] = f"line(s) {lines} are not '<key id> <sha256 hex>'"
