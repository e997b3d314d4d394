"""Settings, read once from the environment (or a `.env` file) and then frozen.

Every problem is collected and reported together, so an operator fixes a deployment in one
round; no message ever repeats a variable's value, because the values include secrets.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import stripe
from dotenv import dotenv_values
from environs import Env, EnvValidationError
from marshmallow import ValidationError
from marshmallow.validate import OneOf, Range

from service.auth import AuthMode, is_local_url, load_public_key, parse_keys_file
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
# Stripe's API versions: 2026-10-28.endive, 2024-06-20.
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
# A PostgreSQL role name the migration can quote safely and an operator can type.
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


# What each variable takes, for the one wording of every configuration error:
# "NAME: <what is wrong>; expected <what it takes>".
EXPECTED = {
    "STRIPE_SECRET_KEY": "sk_test_…, sk_live_… or rk_…",
    "STRIPE_WEBHOOK_SECRET": "one or more comma-separated whsec_… secrets",
    "STRIPE_PRODUCT_PRICE_ID": "a price_… id",
    "STRIPE_SUCCESS_URL": "an absolute http(s) URL",
    "STRIPE_CANCEL_URL": "an absolute http(s) URL",
    "DATABASE_URL": "a well-formed postgres:// or postgresql:// URL (sslmode one of disable, "
    "allow, prefer, require, verify-ca, verify-full)",
    "PORT": "a port, 1 to 65535",
    "METRICS_PORT": "a port, 1 to 65535, other than PORT",
    "STRIPE_API_BASE": "an absolute http(s) URL (Stripe's own for a live key)",
    "STRIPE_TIMEOUT_SECONDS": "seconds, 0.1 to 120",
    "STRIPE_MAX_NETWORK_RETRIES": "a whole number, 0 to 5",
    "CHECKOUT_SESSION_TTL_MINUTES": "minutes, 30 to 1440 (as Stripe allows)",
    "WEBHOOK_TOLERANCE_SECONDS": "seconds, 1 to 86400",
    "CORS_ALLOWED_ORIGINS": "comma-separated origins like https://app.example",
    "DB_POOL_MIN_SIZE": "a whole number, 0 to 100, at most DB_POOL_MAX_SIZE",
    "DB_POOL_MAX_SIZE": "a whole number, 1 to 100",
    "DB_CONNECT_TIMEOUT_SECONDS": "seconds, 0.1 to 60",
    "DB_STATEMENT_CACHE_SIZE": "a whole number, 0 to 10000",
    "STRIPE_CONFIRM_INTERVAL_SECONDS": "seconds, 0 to 3600",
    "WEB_CONCURRENCY": "a whole number of processes, 1 to 64",
    "EVENT_LOOP": "one of " + ", ".join(EVENT_LOOPS),
    "LOG_LEVEL": "one of " + ", ".join(_LOG_LEVELS),
    "STRIPE_API_VERSION": "a Stripe API version like 2026-10-28.endive",
    "DUPLICATE_PAYMENT_REFUNDS": "on or off",
    "RECONCILE_INTERVAL_MINUTES": "minutes, 0 (off) to 1440; fractions allowed",
    "LOG_BUFFER_LINES": "a whole number of lines, 10 to 1000000",
    "BODY_TIMEOUT_SECONDS": "seconds, 0.1 to 3600",
    "MAX_CONNECTIONS": "a whole number, 1 to 1000000",
    "RATE_LIMIT_CHECKOUT": "N/second, N/minute or N/hour, or off",
    "RATE_LIMIT_STATUS": "N/second, N/minute or N/hour, or off",
    "TRUSTED_PROXIES": "comma-separated addresses or networks like 10.0.0.0/8",
    "STRIPE_CONFIRM_MAX_PER_SECOND": "reads a second, 0 to 1000",
}
NOT_SET = "not set"
NOT_VALID = "not valid"


def problem(name: str, wrong: str) -> str:
    """The one wording: what is wrong, then what is expected (never the value itself)."""
    base = name.removesuffix("_FILE")
    expected = EXPECTED.get(name) or EXPECTED.get(base)
    if name != base and expected:
        expected = f"a readable file holding {expected}"
    return f"{wrong}; expected {expected}" if expected else wrong


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
    # Metrics have no authentication: loopback unless the operator opens them on purpose
    # (deploy/ sets 0.0.0.0 and lets only the monitoring namespace in, by NetworkPolicy).
    metrics_host: str = "127.0.0.1"
    event_loop: str = "uvloop"
    api_auth: str = AuthMode.NONE
    auth_jwks_url: str | None = None
    auth_jwt_public_key_file: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_project_claim: str = "project_ids"
    api_keys_file: str | None = None
    # `migrate` connects with this (the tables' owner); serve and reconcile never do.
    database_migrate_url: str | None = field(default=None, repr=False)
    db_app_role: str = "payment_app"
    # The Stripe API version every call pins (the SDK's own unless STRIPE_API_VERSION says).
    stripe_api_version: str = stripe.api_version
    # Refund every duplicate payment (off: record and alert only).
    duplicate_payment_refunds: bool = True
    # serve's own reconcile sweep, one replica at a time; 0 turns it off.
    reconcile_interval_minutes: float = 10.0
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
    def migrate_url(self) -> str:
        return self.database_migrate_url or self.database_url

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
    "audit": frozenset({"database"}),
}


def load_settings(env_file: Path | None = None, purpose: str = "serve") -> Settings:
    """Read and validate every variable `purpose` needs; raise ConfigError naming all the bad
    ones at once."""
    needs = NEEDS[purpose]
    env = Env(eager=False)
    from_file = _read_dotenv(env, env_file if env_file is not None else Path.cwd() / ".env")

    problems: dict[str, str] = {}
    secret_key = _secret(
        from_file,
        "STRIPE_SECRET_KEY",
        problems,
        _check_secret_key,
        required="stripe_api" in needs,
    )
    webhook_secrets = _secret(
        from_file,
        "STRIPE_WEBHOOK_SECRET",
        problems,
        _check_webhook_secrets,
        required="webhooks" in needs,
    )
    database_url, migrate_url = _database_urls(from_file, problems, purpose)

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
    metrics_host = env.str("METRICS_HOST", "127.0.0.1")
    app_role = env.str("DB_APP_ROLE", "payment_app", validate=_matches(_ROLE_NAME, "a role name"))
    auth, healing, limits = _read_auth(env), _read_healing(env), _read_limits(env)
    confirm_interval = env.float(
        "STRIPE_CONFIRM_INTERVAL_SECONDS", 5.0, validate=Range(min=0, max=3600)
    )
    web_concurrency = env.int("WEB_CONCURRENCY", 1, validate=Range(min=1, max=64))
    event_loop = env.str("EVENT_LOOP", "uvloop", validate=OneOf(EVENT_LOOPS))
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
            # environs words it its own way ("Environment variable not set.", "Not a valid
            # integer."); one wording for all of them.
            texts = [str(m) for m in _flatten(messages)]
            missing = any("not set" in text for text in texts)
            problems[str(name)] = problem(str(name), NOT_SET if missing else NOT_VALID)

    if not problems and metrics_port is not None and metrics_port == port:
        problems["METRICS_PORT"] = problem("METRICS_PORT", "the same as PORT")
    if not problems and pool_min > pool_max:
        problems["DB_POOL_MIN_SIZE"] = problem("DB_POOL_MIN_SIZE", "above DB_POOL_MAX_SIZE")
    if not problems and "_live_" in secret_key and api_base.rstrip("/") != STRIPE_API_BASE_DEFAULT:
        problems["STRIPE_API_BASE"] = problem(
            "STRIPE_API_BASE", "not Stripe's own API with a live key"
        )
    if purpose == "serve":
        _check_auth(problems, auth, live="_live_" in secret_key)
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
        metrics_host=metrics_host,
        event_loop=event_loop,
        **auth,
        **healing,
        database_migrate_url=migrate_url or None,
        db_app_role=app_role,
        log_buffer_lines=limits["log_buffer_lines"],
        body_timeout_seconds=limits["body_timeout"],
        max_connections=limits["max_connections"],
        rate_limit_checkout=parse_rate(limits["rate_checkout"]),
        rate_limit_status=parse_rate(limits["rate_status"]),
        trusted_proxies=parse_trusted_proxies(limits["trusted_proxies"]),
        stripe_confirm_max_per_second=limits["confirm_max"],
    )


def _read_dotenv(env: Env, dotenv: Path) -> dict[str, str]:
    """Load ./.env into `env`; returns its values for the secrets too. environs keeps .env's
    values to itself (never in os.environ), so the secrets, read without environs, take
    theirs from here; the environment wins."""
    if not dotenv.is_file():
        return {}
    env.read_env(str(dotenv), recurse=False, override=False)
    return {k: v for k, v in dotenv_values(dotenv).items() if v is not None}


def _database_urls(
    from_file: Mapping[str, str], problems: dict[str, str], purpose: str
) -> tuple[str, str]:
    """DATABASE_URL (the app role) and DATABASE_MIGRATE_URL (the owner, optional): migrate
    needs either, every other command DATABASE_URL."""
    migrate_url = _secret(
        from_file, "DATABASE_MIGRATE_URL", problems, _check_database_url, required=False
    )
    database_url = _secret(
        from_file,
        "DATABASE_URL",
        problems,
        _check_database_url,
        required=purpose != "migrate" or not migrate_url,
    )
    return database_url, migrate_url


def _read_healing(env: Env) -> dict[str, Any]:
    """The API version, duplicate refunds and the sweep, as Settings fields."""
    return {
        "stripe_api_version": env.str(
            "STRIPE_API_VERSION", stripe.api_version, validate=_matches(_API_VERSION, "a version")
        ),
        "duplicate_payment_refunds": env.str(
            "DUPLICATE_PAYMENT_REFUNDS", "on", validate=OneOf(("on", "off"))
        )
        == "on",
        "reconcile_interval_minutes": env.float(
            "RECONCILE_INTERVAL_MINUTES", 10.0, validate=Range(min=0, max=1440)
        ),
    }


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


def _read_auth(env: Env) -> dict[str, Any]:
    """API_AUTH and its settings, as Settings fields (validated once the env is sealed)."""
    return {
        "api_auth": env.str("API_AUTH", None, validate=OneOf(tuple(AuthMode))),
        "auth_jwks_url": env.str("AUTH_JWKS_URL", None, validate=_http_url),
        "auth_jwt_public_key_file": env.str("AUTH_JWT_PUBLIC_KEY_FILE", None),
        "auth_issuer": env.str("AUTH_ISSUER", None),
        "auth_audience": env.str("AUTH_AUDIENCE", None),
        "auth_project_claim": env.str("AUTH_PROJECT_CLAIM", "project_ids"),
        "api_keys_file": env.str("API_KEYS_FILE", None),
    }


def _check_auth(problems: dict[str, str], auth: dict[str, Any], *, live: bool) -> None:
    """API_AUTH and what it needs. `none` is the default only with a test key: a live key
    must say how callers are authenticated (`none` too, behind a gateway that does it)."""
    if auth["api_auth"] is None:
        if live:
            problems["API_AUTH"] = "must be set (jwt, keys or none) with a live Stripe key"
        auth["api_auth"] = AuthMode.NONE
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


def _needed(needed: bool, validate: Callable[[str], bool]) -> dict[str, Any]:
    """environs arguments: required and validated when needed, else ignored."""
    return {"validate": validate} if needed else {"default": None}


def _secret(
    from_file: Mapping[str, str],
    name: str,
    problems: dict[str, str],
    check: Callable[[str], bool],
    *,
    required: bool = True,
) -> str:
    """A secret comes from NAME or from the file named by NAME_FILE (mounted secrets).

    Read here rather than through environs so that no parser error can ever echo its value.
    """
    direct = os.environ.get(name, from_file.get(name))
    file_name = os.environ.get(f"{name}_FILE", from_file.get(f"{name}_FILE"))
    if direct and file_name:
        problems[name] = f"set twice; expected either {name} or {name}_FILE, not both"
        return ""
    if file_name:
        try:
            value = Path(file_name).read_text(encoding="utf-8").strip()
            why = _too_open(Path(file_name))
        except (OSError, UnicodeDecodeError):
            problems[f"{name}_FILE"] = problem(f"{name}_FILE", "the file it names cannot be read")
            return ""
        if why:
            problems[f"{name}_FILE"] = why
            return ""
        where = f"{name}_FILE"
    else:
        value = (direct or "").strip()
        where = name
    if not value:
        if required or where != name:
            problems[where] = problem(where, NOT_SET if where == name else "the file is empty")
        return ""
    if not check(value):
        problems[where] = problem(where, NOT_VALID)
        return ""
    return value


def _too_open(path: Path) -> str | None:
    """Why a secret file is readable by more than its owner, or None.

    Others may never read it. The group may only in the shape Kubernetes mounts secrets with
    an fsGroup (owned by root, group = this process's group, 0440): the same exception libpq
    makes for root-owned key files. Anything else names the mode so it can be fixed.
    """
    status = path.stat()
    mode = stat.S_IMODE(status.st_mode)
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        return f"mode {mode:04o} lets others read or write it; chmod 0400 (or 0600)"
    group_may = mode & (stat.S_IRGRP | stat.S_IWGRP)
    projected = status.st_uid == 0 and status.st_gid == os.getgid() and os.getuid() != 0
    if group_may and not (projected and not mode & stat.S_IWGRP):
        return f"mode {mode:04o} lets its group read it; chmod 0400 (or 0600)"
    return None


def _check_secret_key(value: str) -> bool:
    return _SECRET_KEY.fullmatch(value) is not None


def _check_webhook_secrets(value: str) -> bool:
    secrets = [s.strip() for s in value.split(",")]
    return all(secrets) and all(_WEBHOOK_SECRET.fullmatch(s) for s in secrets)


def _check_database_url(value: str) -> bool:
    """What asyncpg would otherwise fail on at start-up, with a traceback (a bad port, an
    unclosed IPv6 bracket) or, worse, forever as "database unavailable" (a bad sslmode)."""
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError for a port that is not a number in 0-65535
    except ValueError:
        return False
    sslmode = parse_qs(parts.query).get("sslmode", [])
    return (
        parts.scheme in ("postgres", "postgresql")
        and port != 0
        and all(mode in _SSL_MODES for mode in sslmode)
    )


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
