"""Settings, read once from the environment (or a `.env` file) and then frozen.

Every problem is collected and reported together, so an operator fixes a deployment in one
round; no message ever repeats a variable's value, because the values include secrets. A
variable left unset takes its Settings field's default (`setting_default`), written once.
"""

from __future__ import annotations

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
from service.http.auth import AuthMode
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
    server, stripe_calls, pool = _read_server(env), _read_stripe_calls(env), _read_pool(env)
    auth, healing, limits = _read_auth(env), _read_healing(env), _read_limits(env)

    try:
        env.seal()
    except EnvValidationError as error:
        problems.update(problems_of(error))

    raw = server | stripe_calls | pool | healing | limits
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
        checks.check_auth(problems, auth, live=live)
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
        **auth,
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
            "duplicate_payment_refunds": raw["duplicate_payment_refunds"] == "on",
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


def _read_server(env: Env) -> dict[str, Any]:
    """The processes, their ports and logs, as Settings fields (valid once `env` is sealed)."""
    d = setting_default
    return {
        "host": env.str("HOST", d("host")),
        "port": env.int("PORT", d("port"), validate=Range(min=1, max=65535)),
        "metrics_port": env.int(
            "METRICS_PORT", d("metrics_port"), validate=Range(min=1, max=65535)
        ),
        "metrics_host": env.str("METRICS_HOST", d("metrics_host")),
        "cors_allowed_origins": env.list(
            "CORS_ALLOWED_ORIGINS", list(d("cors_allowed_origins")), validate=checks.origins
        ),
        "web_concurrency": env.int(
            "WEB_CONCURRENCY", d("web_concurrency"), validate=Range(min=1, max=64)
        ),
        "event_loop": env.str("EVENT_LOOP", d("event_loop"), validate=OneOf(EVENT_LOOPS)),
        "log_level": env.str(
            "LOG_LEVEL",
            d("log_level"),
            validate=OneOf(LOG_LEVELS + tuple(level.lower() for level in LOG_LEVELS)),
        ),
    }


def _read_stripe_calls(env: Env) -> dict[str, Any]:
    """How the service calls Stripe and checks its webhooks, as Settings fields."""
    d = setting_default
    return {
        "stripe_api_base": env.str(
            "STRIPE_API_BASE", d("stripe_api_base"), validate=checks.http_url
        ),
        "stripe_timeout_seconds": env.float(
            "STRIPE_TIMEOUT_SECONDS", d("stripe_timeout_seconds"), validate=Range(min=0.1, max=120)
        ),
        "stripe_max_network_retries": env.int(
            "STRIPE_MAX_NETWORK_RETRIES",
            d("stripe_max_network_retries"),
            validate=Range(min=0, max=5),
        ),
        "checkout_session_ttl_minutes": env.int(
            "CHECKOUT_SESSION_TTL_MINUTES",
            d("checkout_session_ttl_minutes"),
            validate=Range(min=30, max=1440),
        ),
        "webhook_tolerance_seconds": env.int(
            "WEBHOOK_TOLERANCE_SECONDS",
            d("webhook_tolerance_seconds"),
            validate=Range(min=1, max=86400),
        ),
        "stripe_confirm_interval_seconds": env.float(
            "STRIPE_CONFIRM_INTERVAL_SECONDS",
            d("stripe_confirm_interval_seconds"),
            validate=Range(min=0, max=3600),
        ),
    }


def _read_pool(env: Env) -> dict[str, Any]:
    """The database pool and the role migrate grants to, as Settings fields."""
    d = setting_default
    return {
        "db_pool_min_size": env.int(
            "DB_POOL_MIN_SIZE", d("db_pool_min_size"), validate=Range(min=0, max=100)
        ),
        "db_pool_max_size": env.int(
            "DB_POOL_MAX_SIZE", d("db_pool_max_size"), validate=Range(min=1, max=100)
        ),
        "db_connect_timeout_seconds": env.float(
            "DB_CONNECT_TIMEOUT_SECONDS",
            d("db_connect_timeout_seconds"),
            validate=Range(min=0.1, max=60),
        ),
        "db_statement_cache_size": env.int(
            "DB_STATEMENT_CACHE_SIZE",
            d("db_statement_cache_size"),
            validate=Range(min=0, max=10000),
        ),
        "db_app_role": env.str(
            "DB_APP_ROLE", d("db_app_role"), validate=matches(ROLE_NAME, "a role name")
        ),
    }


def _read_healing(env: Env) -> dict[str, Any]:
    """The API version, duplicate refunds and the sweep, as Settings fields."""
    d = setting_default
    return {
        "stripe_api_version": env.str(
            "STRIPE_API_VERSION",
            d("stripe_api_version"),
            validate=matches(API_VERSION, "a version"),
        ),
        "duplicate_payment_refunds": env.str(
            "DUPLICATE_PAYMENT_REFUNDS",
            "on" if d("duplicate_payment_refunds") else "off",
            validate=OneOf(("on", "off")),
        ),
        "reconcile_interval_minutes": env.float(
            "RECONCILE_INTERVAL_MINUTES",
            d("reconcile_interval_minutes"),
            validate=Range(min=0, max=1440),
        ),
    }


def _read_limits(env: Env) -> dict[str, Any]:
    """The variables of SPEC "Limits" (and the log queue), as Settings fields."""
    d = setting_default
    return {
        "log_buffer_lines": env.int(
            "LOG_BUFFER_LINES", d("log_buffer_lines"), validate=Range(min=10, max=1_000_000)
        ),
        "body_timeout_seconds": env.float(
            "BODY_TIMEOUT_SECONDS", d("body_timeout_seconds"), validate=Range(min=0.1, max=3600)
        ),
        "max_connections": env.int(
            "MAX_CONNECTIONS", d("max_connections"), validate=Range(min=1, max=1_000_000)
        ),
        # Their defaults are Rate and tuple values: None here stands for "unset".
        "rate_limit_checkout": env.str("RATE_LIMIT_CHECKOUT", None, validate=checks.rate),
        "rate_limit_status": env.str("RATE_LIMIT_STATUS", None, validate=checks.rate),
        "trusted_proxies": env.str("TRUSTED_PROXIES", None, validate=checks.proxies),
        "stripe_confirm_max_per_second": env.float(
            "STRIPE_CONFIRM_MAX_PER_SECOND",
            d("stripe_confirm_max_per_second"),
            validate=Range(min=0, max=1000),
        ),
    }


def _read_auth(env: Env) -> dict[str, Any]:
    """API_AUTH and its settings, as Settings fields (checked by checks.check_auth). API_AUTH
    has no default here: unset, it is `none` only with a test key."""
    d = setting_default
    return {
        "api_auth": env.str("API_AUTH", None, validate=OneOf(tuple(AuthMode))),
        "auth_jwks_url": env.str("AUTH_JWKS_URL", None, validate=checks.http_url),
        "auth_jwt_public_key_file": env.str("AUTH_JWT_PUBLIC_KEY_FILE", None),
        "auth_issuer": env.str("AUTH_ISSUER", None),
        "auth_audience": env.str("AUTH_AUDIENCE", None),
        "auth_project_claim": env.str("AUTH_PROJECT_CLAIM", d("auth_project_claim")),
        "api_keys_file": env.str("API_KEYS_FILE", None),
    }
