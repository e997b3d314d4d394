"""The Settings every command runs with: frozen, secrets kept out of repr.

The defaults written here are the only copy: `reading.py` takes them from these fields
(`setting_default`) for every variable the environment leaves unset.
"""

from __future__ import annotations

import ipaddress
from dataclasses import MISSING, dataclass, field
from typing import Any

import stripe

from service.http.identity import AuthMode
from service.http.limits import CHECKOUT_RATE_DEFAULT, STATUS_RATE_DEFAULT, Rate
from service.logs import LOG_BUFFER_LINES_DEFAULT

STRIPE_API_BASE_DEFAULT = "https://api.stripe.com"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    # 0 turns asyncpg's prepared-statement cache off, as PgBouncer in transaction mode requires.
    db_statement_cache_size: int = 100
    log_level: str = "INFO"
    web_concurrency: int = 1
    stripe_confirm_interval_seconds: float = 5.0
    metrics_port: int | None = None
    # Metrics have no authentication: loopback unless the operator opens them on purpose
    # (deploy/ sets 0.0.0.0 and lets only the monitoring namespace in, by NetworkPolicy).
    metrics_host: str = "127.0.0.1"
    event_loop: str = "uvloop"
    # With a test key only: a live key must say how callers are authenticated (reading.py).
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
    # API keys belong to trusted servers: limited only when this is on (RATE_LIMIT_KEYS).
    rate_limit_keys: bool = False
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


def setting_default(name: str) -> Any:
    """The default of the Settings field `name`, for the variable that sets it."""
    default = Settings.__dataclass_fields__[name].default
    assert default is not MISSING, f"Settings.{name} has no default"
    return default
