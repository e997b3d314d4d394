"""Settings, read once from the environment (or a `.env` file) and then frozen.

Every problem is collected and reported together, so an operator fixes a deployment in one
round; no message ever repeats a variable's value, because the values include secrets. A
variable left unset takes its Settings field's default (`setting_default`), written once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from environs import Env, EnvValidationError
from marshmallow.validate import OneOf, Range

from service.config import checks
from service.config.checks import API_VERSION, PRICE_ID, ROLE_NAME, matches, needed
from service.config.problems import LOG_LEVELS, ConfigError, problem, problems_of
from service.config.secret_files import (
    check_secret_key,
    check_webhook_secrets,
    database_urls,
    read_secret,
)
from service.config.settings import STRIPE_API_BASE_DEFAULT, Settings, setting_default
from service.eventloop import EVENT_LOOPS
from service.http.identity import AuthMode
from service.http.limits import parse_rate, parse_trusted_proxies

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
    secret_key = read_secret(
        from_file,
        "STRIPE_SECRET_KEY",
        problems,
        check_secret_key,
        required="stripe_api" in needs,
    )
    webhook_secrets = read_secret(
        from_file,
        "STRIPE_WEBHOOK_SECRET",
        problems,
        check_webhook_secrets,
        required="webhooks" in needs,
    )
    database_url, migrate_url = database_urls(from_file, problems, purpose)

    checkout = "checkout" in needs
    price_id = env.str(
        "STRIPE_PRODUCT_PRICE_ID", **needed(checkout, matches(PRICE_ID, "a price_… id"))
    )
    success_url = env.str("STRIPE_SUCCESS_URL", **needed(checkout, checks.http_url))
    cancel_url = env.str("STRIPE_CANCEL_URL", **needed(checkout, checks.http_url))
    raw = _read_fields(env)

    try:
        env.seal()
    except EnvValidationError as error:
        problems.update(problems_of(error))

    if not problems and raw["metrics_port"] is not None and raw["metrics_port"] == raw["port"]:
        problems["METRICS_PORT"] = problem("METRICS_PORT", "the same as PORT")
    if not problems and raw["db_pool_min_size"] > raw["db_pool_max_size"]:
        problems["DB_POOL_MIN_SIZE"] = problem("DB_POOL_MIN_SIZE", "above DB_POOL_MAX_SIZE")
    live = "_live_" in secret_key
    if not problems and live and raw["stripe_api_base"].rstrip("/") != STRIPE_API_BASE_DEFAULT:
        problems["STRIPE_API_BASE"] = problem(
            "STRIPE_API_BASE", "not Stripe's own API with a live key"
        )
    if purpose == "serve":
        checks.check_auth(problems, raw, live=live)
    if problems:
        raise ConfigError(problems)

    return Settings(
        stripe_secret_key=secret_key,
        stripe_webhook_secrets=tuple(s.strip() for s in webhook_secrets.split(",") if s.strip()),
        stripe_price_id=price_id or "",
        stripe_success_url=success_url or "",
        stripe_cancel_url=cancel_url or "",
        database_url=database_url,
        database_migrate_url=migrate_url or None,
        **_converted(raw),
    )


def _converted(raw: dict[str, Any]) -> dict[str, Any]:
    """The values read, in the Settings fields' types (once all are known to be valid)."""
    rates = {
        name: setting_default(name) if raw[name] is None else parse_rate(raw[name])
        for name in ("rate_limit_checkout", "rate_limit_status")
    }
    proxies = raw["trusted_proxies"]
    return (
        raw
        | rates
        | {
            "cors_allowed_origins": tuple(o.rstrip("/") for o in raw["cors_allowed_origins"]),
            "log_level": raw["log_level"].upper(),
            "stripe_api_base": raw["stripe_api_base"].rstrip("/"),
            "trusted_proxies": (
                setting_default("trusted_proxies")
                if proxies is None
                else parse_trusted_proxies(proxies)
            ),
        }
    )


def _read_dotenv(env: Env, dotenv: Path) -> dict[str, str]:
    """Load ./.env into `env`; returns its values for the secrets too. environs keeps .env's
    values to itself (never in os.environ), so the secrets, read without environs, take
    theirs from here; the environment wins."""
    if not dotenv.is_file():
        return {}
    env.read_env(str(dotenv), recurse=False, override=False)
    return {k: v for k, v in dotenv_values(dotenv).items() if v is not None}


# Every other variable sets the Settings field of its name in lower case, and unset leaves
# that field's default. Numbers: (variable, type, least, most).
_NUMBERS: tuple[tuple[str, type[int] | type[float], float, float], ...] = (
    ("PORT", int, 1, 65535),
    ("METRICS_PORT", int, 1, 65535),
    ("WEB_CONCURRENCY", int, 1, 64),
    ("STRIPE_TIMEOUT_SECONDS", float, 0.1, 120),
    ("STRIPE_MAX_NETWORK_RETRIES", int, 0, 5),
    ("CHECKOUT_SESSION_TTL_MINUTES", int, 30, 1440),
    ("WEBHOOK_TOLERANCE_SECONDS", int, 1, 86400),
    ("STRIPE_CONFIRM_INTERVAL_SECONDS", float, 0, 3600),
    ("DB_POOL_MIN_SIZE", int, 0, 100),
    ("DB_POOL_MAX_SIZE", int, 1, 100),
    ("DB_CONNECT_TIMEOUT_SECONDS", float, 0.1, 60),
    ("DB_STATEMENT_CACHE_SIZE", int, 0, 10000),
    ("RECONCILE_INTERVAL_MINUTES", float, 0, 1440),
    ("LOG_BUFFER_LINES", int, 10, 1_000_000),
    ("BODY_TIMEOUT_SECONDS", float, 0.1, 3600),
    ("MAX_CONNECTIONS", int, 1, 1_000_000),
    ("STRIPE_CONFIRM_MAX_PER_SECOND", float, 0, 1000),
)
# Text: (variable, its check; None: any text).
_TEXTS: tuple[tuple[str, Callable[[str], bool] | None], ...] = (
    ("HOST", None),
    ("METRICS_HOST", None),
    ("EVENT_LOOP", OneOf(EVENT_LOOPS)),
    ("LOG_LEVEL", OneOf(LOG_LEVELS + tuple(level.lower() for level in LOG_LEVELS))),
    ("STRIPE_API_BASE", checks.http_url),
    ("STRIPE_API_VERSION", matches(API_VERSION, "a version")),
    ("DB_APP_ROLE", matches(ROLE_NAME, "a role name")),
    ("AUTH_PROJECT_CLAIM", None),
)
# Text whose absence means something of its own (None), rather than the field's default:
# API_AUTH unset is `none` only with a test key (checks.check_auth); a rate or the proxies
# unset take the Settings default, which is a Rate or a tuple, not text (_converted).
_TEXTS_OR_NONE: tuple[tuple[str, Callable[[str], bool] | None], ...] = (
    ("API_AUTH", OneOf(tuple(AuthMode))),
    ("AUTH_JWKS_URL", checks.http_url),
    ("AUTH_JWT_PUBLIC_KEY_FILE", None),
    ("AUTH_ISSUER", None),
    ("AUTH_AUDIENCE", None),
    ("API_KEYS_FILE", None),
    ("RATE_LIMIT_CHECKOUT", checks.rate),
    ("RATE_LIMIT_STATUS", checks.rate),
    ("TRUSTED_PROXIES", checks.proxies),
)

# On/off switches: (variable); the Settings field (its name in lower case) is a bool.
_SWITCHES = ("DUPLICATE_PAYMENT_REFUNDS", "RATE_LIMIT_KEYS")


def _read_fields(env: Env) -> dict[str, Any]:
    """Every variable but the secrets and the checkout's, by Settings field, as read (valid
    once `env` is sealed)."""
    raw: dict[str, Any] = {}
    for name, kind, least, most in _NUMBERS:
        read = env.int if kind is int else env.float
        raw[name.lower()] = read(
            name, setting_default(name.lower()), validate=Range(min=least, max=most)
        )
    for name, validate in _TEXTS:
        raw[name.lower()] = env.str(name, setting_default(name.lower()), validate=validate)
    for name, validate in _TEXTS_OR_NONE:
        raw[name.lower()] = env.str(name, None, validate=validate)
    raw["cors_allowed_origins"] = env.list(
        "CORS_ALLOWED_ORIGINS",
        list(setting_default("cors_allowed_origins")),
        validate=checks.origins,
    )
    for name in _SWITCHES:
        default = "on" if setting_default(name.lower()) else "off"
        raw[name.lower()] = env.str(name, default, validate=OneOf(("on", "off"))) == "on"
    return raw
