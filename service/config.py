"""Settings, read once from the environment (or a `.env` file) and then frozen.

Every problem is collected and reported together, so an operator fixes a deployment in one
round; no message ever repeats a variable's value, because the values include secrets.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from environs import Env, EnvValidationError
from marshmallow import ValidationError
from marshmallow.validate import OneOf, Range

from service.eventloop import EVENT_LOOPS
from service.limits import (
    CHECKOUT_RATE_DEFAULT,
    STATUS_RATE_DEFAULT,
    Rate,
    parse_rate,
    parse_trusted_proxies,
)
from service.logs import LOG_BUFFER_LINES_DEFAULT

STRIPE_API_BASE_DEFAULT = "https://api.stripe.com"

_SECRET_KEY = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9]+$")
_WEBHOOK_SECRET = re.compile(r"^whsec_[A-Za-z0-9+/=_-]+$")
_PRICE_ID = re.compile(r"^price_[A-Za-z0-9]+$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """The configuration is unusable; `problems` names every bad variable, never a value."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(sorted(problems.items()))
        lines = [f"  {name}: {why}" for name, why in self.problems.items()]
        super().__init__("invalid configuration:\n" + "\n".join(lines))


@dataclass(frozen=True)
class Settings:
    stripe_secret_key: str = field(repr=False)
    stripe_webhook_secrets: tuple[str, ...] = field(repr=False)
    stripe_price_id: str
    stripe_success_url: str
    stripe_cancel_url: str
    database_url: str = field(repr=False)
    host: str = "0.0.0.0"  # noqa: S104 - a service in a container listens on every interface
    port: int = 5003
    stripe_api_base: str = STRIPE_API_BASE_DEFAULT
    stripe_timeout_seconds: float = 10.0
    stripe_max_network_retries: int = 2
    checkout_session_ttl_minutes: int = 60
    webhook_tolerance_seconds: int = 300
    cors_allowed_origins: tuple[str, ...] = ()
    db_pool_min_size: int = 2
    db_pool_max_size: int = 10
    db_connect_timeout_seconds: float = 5.0
    db_statement_cache_size: int = 100
    log_level: str = "INFO"
    web_concurrency: int = 1
    stripe_confirm_interval_seconds: float = 5.0
    metrics_port: int | None = None
    event_loop: str = "uvloop"
    log_buffer_lines: int = LOG_BUFFER_LINES_DEFAULT
    # Slow clients and floods (SPEC "Limits").
    body_timeout_seconds: float = 10.0
    max_connections: int = 1000
    rate_limit_checkout: Rate | None = CHECKOUT_RATE_DEFAULT
    rate_limit_status: Rate | None = STATUS_RATE_DEFAULT
    trusted_proxies: tuple[IPNetwork, ...] = ()
    stripe_confirm_max_per_second: float = 5.0

    @property
    def stripe_livemode(self) -> bool:
        return "_live_" in self.stripe_secret_key

    @property
    def stripe_call_budget_seconds(self) -> float:
        """The longest one Stripe call can take with the SDK's retries and their back-off."""
        attempts = self.stripe_max_network_retries + 1
        return attempts * self.stripe_timeout_seconds + 2.0 * self.stripe_max_network_retries


# What each command needs: `migrate` only the database, `reconcile` the database and the
# Stripe API, `serve` everything. A variable a command does not need is not required by it.
NEEDS = {
    "serve": frozenset({"database", "stripe_api", "webhooks", "checkout"}),
    "reconcile": frozenset({"database", "stripe_api"}),
    "migrate": frozenset({"database"}),
}


def load_settings(env_file: Path | None = None, purpose: str = "serve") -> Settings:
    """Read and validate every variable `purpose` needs; raise ConfigError naming all the bad
    ones at once."""
    needs = NEEDS[purpose]
    env = Env(eager=False)
    dotenv = env_file if env_file is not None else Path.cwd() / ".env"
    if dotenv.is_file():
        env.read_env(str(dotenv), override=False)

    problems: dict[str, str] = {}
    secret_key = _secret(
        "STRIPE_SECRET_KEY", problems, _check_secret_key, required="stripe_api" in needs
    )
    webhook_secrets = _secret(
        "STRIPE_WEBHOOK_SECRET", problems, _check_webhook_secrets, required="webhooks" in needs
    )
    database_url = _secret("DATABASE_URL", problems, _check_database_url)

    checkout = "checkout" in needs
    price_id = env.str(
        "STRIPE_PRODUCT_PRICE_ID", **_needed(checkout, _matches(_PRICE_ID, "a price_… id"))
    )
    success_url = env.str("STRIPE_SUCCESS_URL", **_needed(checkout, _http_url))
    cancel_url = env.str("STRIPE_CANCEL_URL", **_needed(checkout, _http_url))
    host = env.str("HOST", "0.0.0.0")  # noqa: S104
    port = env.int("PORT", 5003, validate=Range(min=1, max=65535))
    api_base = env.str("STRIPE_API_BASE", STRIPE_API_BASE_DEFAULT, validate=_http_url)
    stripe_timeout = env.float("STRIPE_TIMEOUT_SECONDS", 10.0, validate=Range(min=0.1, max=120))
    stripe_retries = env.int("STRIPE_MAX_NETWORK_RETRIES", 2, validate=Range(min=0, max=5))
    ttl = env.int("CHECKOUT_SESSION_TTL_MINUTES", 60, validate=Range(min=30, max=1440))
    tolerance = env.int("WEBHOOK_TOLERANCE_SECONDS", 300, validate=Range(min=1, max=86400))
    origins: list[str] = env.list("CORS_ALLOWED_ORIGINS", [], validate=_origins)
    pool_min = env.int("DB_POOL_MIN_SIZE", 2, validate=Range(min=0, max=100))
    pool_max = env.int("DB_POOL_MAX_SIZE", 10, validate=Range(min=1, max=100))
    connect_timeout = env.float("DB_CONNECT_TIMEOUT_SECONDS", 5.0, validate=Range(min=0.1, max=60))
    # 0 turns asyncpg's prepared-statement cache off, as PgBouncer in transaction mode requires.
    statement_cache = env.int("DB_STATEMENT_CACHE_SIZE", 100, validate=Range(min=0, max=10000))
    metrics_port = env.int("METRICS_PORT", None, validate=Range(min=1, max=65535))
    confirm_interval = env.float(
        "STRIPE_CONFIRM_INTERVAL_SECONDS", 5.0, validate=Range(min=0, max=3600)
    )
    web_concurrency = env.int("WEB_CONCURRENCY", 1, validate=Range(min=1, max=64))
    event_loop = env.str("EVENT_LOOP", "uvloop", validate=OneOf(EVENT_LOOPS))
    limits = _read_limits(env)
    log_level = env.str(
        "LOG_LEVEL",
        "INFO",
        validate=OneOf(_LOG_LEVELS + tuple(level.lower() for level in _LOG_LEVELS)),
    )

    try:
        env.seal()
    except EnvValidationError as error:
        messages_by_name = error.error_messages
        assert isinstance(messages_by_name, dict)
        for name, messages in messages_by_name.items():
            problems[str(name)] = "; ".join(str(m) for m in _flatten(messages))

    if not problems and metrics_port is not None and metrics_port == port:
        problems["METRICS_PORT"] = "must differ from PORT"
    if not problems and pool_min > pool_max:
        problems["DB_POOL_MIN_SIZE"] = "must not exceed DB_POOL_MAX_SIZE"
    if not problems and "_live_" in secret_key and api_base.rstrip("/") != STRIPE_API_BASE_DEFAULT:
        problems["STRIPE_API_BASE"] = "a live key is only ever sent to Stripe's own API"
    if problems:
        raise ConfigError(problems)

    return Settings(
        stripe_secret_key=secret_key,
        stripe_webhook_secrets=tuple(s.strip() for s in webhook_secrets.split(",") if s.strip()),
        stripe_price_id=price_id or "",
        stripe_success_url=success_url or "",
        stripe_cancel_url=cancel_url or "",
        database_url=database_url,
        host=host,
        port=port,
        stripe_api_base=api_base.rstrip("/"),
        stripe_timeout_seconds=stripe_timeout,
        stripe_max_network_retries=stripe_retries,
        checkout_session_ttl_minutes=ttl,
        webhook_tolerance_seconds=tolerance,
        cors_allowed_origins=tuple(o.rstrip("/") for o in origins),
        db_pool_min_size=pool_min,
        db_pool_max_size=pool_max,
        db_connect_timeout_seconds=connect_timeout,
        db_statement_cache_size=statement_cache,
        log_level=log_level.upper(),
        web_concurrency=web_concurrency,
        stripe_confirm_interval_seconds=confirm_interval,
        metrics_port=metrics_port,
        event_loop=event_loop,
        log_buffer_lines=limits["log_buffer_lines"],
        body_timeout_seconds=limits["body_timeout"],
        max_connections=limits["max_connections"],
        rate_limit_checkout=parse_rate(limits["rate_checkout"]),
        rate_limit_status=parse_rate(limits["rate_status"]),
        trusted_proxies=parse_trusted_proxies(limits["trusted_proxies"]),
        stripe_confirm_max_per_second=limits["confirm_max"],
    )


def _read_limits(env: Env) -> dict[str, Any]:
    """The variables of SPEC "Limits" (and the log queue), read into `env` unsealed."""
    return {
        "log_buffer_lines": env.int(
            "LOG_BUFFER_LINES", LOG_BUFFER_LINES_DEFAULT, validate=Range(min=10, max=1_000_000)
        ),
        "body_timeout": env.float("BODY_TIMEOUT_SECONDS", 10.0, validate=Range(min=0.1, max=3600)),
        "max_connections": env.int("MAX_CONNECTIONS", 1000, validate=Range(min=1, max=1_000_000)),
        "rate_checkout": env.str("RATE_LIMIT_CHECKOUT", "20/minute", validate=_rate),
        "rate_status": env.str("RATE_LIMIT_STATUS", "300/minute", validate=_rate),
        "trusted_proxies": env.str("TRUSTED_PROXIES", "", validate=_proxies),
        "confirm_max": env.float(
            "STRIPE_CONFIRM_MAX_PER_SECOND", 5.0, validate=Range(min=0, max=1000)
        ),
    }


def _needed(needed: bool, validate: Callable[[str], bool]) -> dict[str, Any]:
    """environs arguments: required and validated when needed, else ignored."""
    return {"validate": validate} if needed else {"default": None}


def _secret(
    name: str,
    problems: dict[str, str],
    check: Callable[[str], str | None],
    *,
    required: bool = True,
) -> str:
    """A secret comes from NAME or from the file named by NAME_FILE (mounted secrets).

    Read here rather than through environs so that no parser error can ever echo its value.
    """
    direct = os.environ.get(name)
    file_name = os.environ.get(f"{name}_FILE")
    if direct and file_name:
        problems[name] = f"set either {name} or {name}_FILE, not both"
        return ""
    if file_name:
        try:
            value = Path(file_name).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            problems[f"{name}_FILE"] = "cannot read the file it names"
            return ""
        where = f"{name}_FILE"
    else:
        value = (direct or "").strip()
        where = name
    if not value:
        if required or where != name:
            problems[where] = "missing" if where == name else "the file it names is empty"
        return ""
    why = check(value)
    if why:
        problems[where] = why
        return ""
    return value


def _check_secret_key(value: str) -> str | None:
    return None if _SECRET_KEY.fullmatch(value) else "must look like sk_test_…, sk_live_… or rk_…"


def _check_webhook_secrets(value: str) -> str | None:
    secrets = [s.strip() for s in value.split(",")]
    if not all(secrets) or not all(_WEBHOOK_SECRET.fullmatch(s) for s in secrets):
        return "must be one or more comma-separated whsec_… secrets"
    return None


def _check_database_url(value: str) -> str | None:
    """What asyncpg would otherwise fail on at start-up, with a traceback (a bad port, an
    unclosed IPv6 bracket) or, worse, forever as "database unavailable" (a bad sslmode)."""
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError for a port that is not a number in 0-65535
    except ValueError:
        return "must be a well-formed postgres:// or postgresql:// URL"
    if parts.scheme not in ("postgres", "postgresql"):
        return "must be a postgres:// or postgresql:// URL"
    if port == 0:
        return "must be a well-formed postgres:// or postgresql:// URL"
    sslmode = parse_qs(parts.query).get("sslmode", [])
    if any(mode not in _SSL_MODES for mode in sslmode):
        return f"sslmode must be one of {', '.join(_SSL_MODES)}"
    return None


def _matches(pattern: re.Pattern[str], what: str) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        if not pattern.fullmatch(value):
            raise ValidationError(f"must be {what}")
        return True

    return check


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError("must be an absolute http(s) URL")
    return True


def _origins(values: list[str]) -> bool:
    for origin in values:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise ValidationError("must be comma-separated origins like https://app.example")
    return True


def _rate(value: str) -> bool:
    try:
        parse_rate(value)
    except ValueError as error:
        raise ValidationError(str(error)) from None
    return True


def _proxies(value: str) -> bool:
    try:
        parse_trusted_proxies(value)
    except ValueError:
        raise ValidationError("must be comma-separated addresses or networks (CIDR)") from None
    return True


def _flatten(messages: object) -> list[object]:
    if isinstance(messages, dict):
        return [m for value in messages.values() for m in _flatten(value)]
    if isinstance(messages, list | tuple):
        return [m for value in messages for m in _flatten(value)]
    return [messages]
