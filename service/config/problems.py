"""The one wording of every configuration error, and the error that carries them all.

"NAME: <what is wrong>; expected <what it takes>", and never the value itself: the values
include secrets.
"""

from __future__ import annotations

from collections.abc import Mapping

from environs import EnvValidationError

from service.eventloop import EVENT_LOOPS

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# What each variable takes.
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
    "LOG_LEVEL": "one of " + ", ".join(LOG_LEVELS),
    "STRIPE_API_VERSION": "a Stripe API version like 2026-10-28.endive",
    "DUPLICATE_PAYMENT_REFUNDS": "on or off",
    "RECONCILE_INTERVAL_MINUTES": "minutes, 0 (off) to 1440; fractions allowed",
    "LOG_BUFFER_LINES": "a whole number of lines, 10 to 1000000",
    "BODY_TIMEOUT_SECONDS": "seconds, 0.1 to 3600",
    "MAX_CONNECTIONS": "a whole number, 1 to 1000000",
    "RATE_LIMIT_CHECKOUT": "N/second, N/minute or N/hour, or off",
    "RATE_LIMIT_STATUS": "N/second, N/minute or N/hour, or off",
    "RATE_LIMIT_KEYS": "on or off",
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


class ConfigError(Exception):
    """The configuration is unusable; `problems` names every bad variable, never a value."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(sorted(problems.items()))
        lines = [f"  {name}: {why}" for name, why in self.problems.items()]
        super().__init__("invalid configuration:\n" + "\n".join(lines))


def problems_of(error: EnvValidationError) -> dict[str, str]:
    """environs' errors in the one wording: it words them its own way ("Environment variable
    not set.", "Not a valid integer.")."""
    messages_by_name = error.error_messages
    assert isinstance(messages_by_name, dict)
    problems = {}
    for name, messages in messages_by_name.items():
        texts = [str(m) for m in _flatten(messages)]
        missing = any("not set" in text for text in texts)
        problems[str(name)] = problem(str(name), NOT_SET if missing else NOT_VALID)
    return problems


def _flatten(messages: object) -> list[object]:
    if isinstance(messages, dict):
        return [m for value in messages.values() for m in _flatten(value)]
    if isinstance(messages, list | tuple):
        return [m for value in messages for m in _flatten(value)]
    return [messages]
