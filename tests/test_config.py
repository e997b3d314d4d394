"""Configuration: every bad variable named at once, no secret ever echoed, every problem worded
one way (what is wrong, then what is expected)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import GOOD, refused_settings

from service.config import load_settings
from service.http.limits import Rate


def test_good_configuration_loads_with_defaults(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.port == 5003
    assert settings.host == "0.0.0.0"
    assert settings.stripe_api_base == "https://api.stripe.com"
    assert settings.checkout_session_ttl_minutes == 60
    assert settings.webhook_tolerance_seconds == 300
    assert settings.cors_allowed_origins == ()
    assert settings.stripe_webhook_secrets == ("whsec_abcdefSECRETVALUE",)
    assert settings.event_loop == "uvloop"


def test_repr_of_settings_shows_no_secret(env: pytest.MonkeyPatch) -> None:
    text = repr(load_settings())
    assert "SECRETVALUE" not in text
    assert "dbSECRETpw" not in text


def test_several_webhook_secrets_can_be_rolled(env: pytest.MonkeyPatch) -> None:
    env.setenv("STRIPE_WEBHOOK_SECRET", "whsec_old1, whsec_new2")
    assert load_settings().stripe_webhook_secrets == ("whsec_old1", "whsec_new2")


def test_every_missing_variable_is_named_at_once(env: pytest.MonkeyPatch) -> None:
    for name in GOOD:
        env.delenv(name)
    caught = refused_settings()
    assert set(caught.value.problems) == set(GOOD)


# Each bad in its own way; every test of invalid values takes them all.
INVALID_VALUES = [
    ("STRIPE_SECRET_KEY", "pk_test_notasecretkey"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_good,notasecret"),
    ("STRIPE_PRODUCT_PRICE_ID", "prod_123"),
    ("STRIPE_SUCCESS_URL", "/relative/path"),
    ("STRIPE_CANCEL_URL", "ftp://app.example/x"),
    ("DATABASE_URL", "mysql://u:p@h/db"),
    ("PORT", "seventy"),
    ("PORT", "70000"),
    ("CHECKOUT_SESSION_TTL_MINUTES", "29"),
    ("CHECKOUT_SESSION_TTL_MINUTES", "1441"),
    ("WEBHOOK_TOLERANCE_SECONDS", "0"),
    ("CORS_ALLOWED_ORIGINS", "*"),
    ("LOG_LEVEL", "LOUD"),
    ("DB_POOL_MAX_SIZE", "0"),
    ("EVENT_LOOP", "trio"),
    ("RATE_LIMIT_CHECKOUT", "lots"),
    ("RATE_LIMIT_STATUS", "0/hour"),
    ("RATE_LIMIT_KEYS", "yes"),
    ("DUPLICATE_PAYMENT_REFUNDS", "maybe"),
    ("TRUSTED_PROXIES", "10.0.0.0/33"),
    ("MAX_CONNECTIONS", "0"),
    ("BODY_TIMEOUT_SECONDS", "never"),
    ("STRIPE_CONFIRM_MAX_PER_SECOND", "-1"),
    ("LOG_BUFFER_LINES", "1"),
    ("STRIPE_SECRET_KEY", "pk_test_x"),
    ("PORT", "0"),
    ("STRIPE_TIMEOUT_SECONDS", "soon"),
    ("STRIPE_SUCCESS_URL", "/relative"),
]


@pytest.mark.parametrize(("name", "value"), INVALID_VALUES)
def test_an_invalid_value_is_named_without_its_value(
    env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    env.setenv(name, value)
    caught = refused_settings()
    assert list(caught.value.problems) == [name]
    if not value.isdigit():  # a digit may well appear in the range the message states
        assert value not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://payments:dbSECRETpw@db.internal:port/payments",
        "postgresql://payments:dbSECRETpw@[::1/payments",
        "postgresql://payments:dbSECRETpw@db.internal:99999/payments",
        "postgresql://payments:dbSECRETpw@db.internal:-1/payments",
        "postgresql://payments:dbSECRETpw@db.internal/payments?sslmode=bogus",
    ],
)
def test_a_malformed_database_url_is_a_configuration_error_without_its_value(
    env: pytest.MonkeyPatch, url: str
) -> None:
    env.setenv("DATABASE_URL", url)
    caught = refused_settings()
    assert list(caught.value.problems) == ["DATABASE_URL"]
    assert "dbSECRETpw" not in str(caught.value)


def test_the_limits_have_the_documented_defaults_and_off_turns_one_off(
    env: pytest.MonkeyPatch,
) -> None:
    settings = load_settings()
    assert settings.rate_limit_checkout == Rate(20, 60.0)
    assert settings.rate_limit_status == Rate(300, 60.0)
    assert (settings.body_timeout_seconds, settings.max_connections) == (10.0, 1000)
    assert settings.stripe_confirm_max_per_second == 5.0
    assert settings.trusted_proxies == ()
    env.setenv("RATE_LIMIT_STATUS", "off")
    env.setenv("TRUSTED_PROXIES", "10.0.0.0/8,192.168.1.1")
    settings = load_settings()
    assert settings.rate_limit_status is None
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "192.168.1.1/32"]


def test_live_key_is_refused_with_a_non_stripe_api_base(env: pytest.MonkeyPatch) -> None:
    env.setenv("STRIPE_SECRET_KEY", "sk_live_51HqLyjWDarjtT1zdp7dc")
    env.setenv("STRIPE_API_BASE", "http://127.0.0.1:12111")
    env.setenv("API_AUTH", "none")
    caught = refused_settings()
    assert list(caught.value.problems) == ["STRIPE_API_BASE"]


def test_migrate_needs_only_the_database(env: pytest.MonkeyPatch) -> None:
    for name in GOOD:
        if name != "DATABASE_URL":
            env.delenv(name)
    assert load_settings(purpose="migrate").database_url == GOOD["DATABASE_URL"]
    caught = refused_settings(purpose="reconcile")
    assert list(caught.value.problems) == ["STRIPE_SECRET_KEY"]
    caught = refused_settings()
    assert len(caught.value.problems) == len(GOOD) - 1


def test_migrate_uses_the_owner_url_and_serve_the_app_url(env: pytest.MonkeyPatch) -> None:
    owner = "postgresql://payments_owner:ownerSECRETpw@db.internal:5432/payments"
    env.setenv("DATABASE_MIGRATE_URL", owner)
    env.delenv("DATABASE_URL")
    assert load_settings(purpose="migrate").migrate_url == owner
    env.setenv("DATABASE_URL", GOOD["DATABASE_URL"])
    settings = load_settings()
    assert settings.database_url == GOOD["DATABASE_URL"]
    assert "ownerSECRETpw" not in repr(settings)


ONE_WORDING = re.compile(r"^(not set|not valid|[a-z][^;]*); expected \S.*$")


@pytest.mark.parametrize(("name", "value"), INVALID_VALUES)
def test_an_invalid_value_says_what_is_wrong_and_what_is_expected(
    env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    env.setenv(name, value)
    caught = refused_settings()
    assert caught.value.problems[name].startswith("not valid; expected ")


def test_every_problem_is_worded_one_way_missing_or_invalid(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """environs' own words ("Environment variable not set.", "Not a valid integer.") never
    reach the operator: every line says what is wrong, then what is expected."""
    for name in GOOD:
        env.delenv(name)
    env.setenv("PORT", "x")
    env.setenv("LOG_LEVEL", "LOUD")
    env.setenv("STRIPE_WEBHOOK_SECRET_FILE", str(tmp_path / "missing"))
    caught = refused_settings()
    problems = caught.value.problems
    assert problems["DATABASE_URL"].startswith(
        "not set; expected a well-formed postgres:// or postgresql:// URL"
    )
    assert problems["STRIPE_PRODUCT_PRICE_ID"] == "not set; expected a price_… id"
    assert problems["PORT"] == "not valid; expected a port, 1 to 65535"
    assert problems["STRIPE_WEBHOOK_SECRET_FILE"].startswith(
        "the file it names cannot be read; expected a readable file holding "
    )
    for name, text in problems.items():
        assert ONE_WORDING.match(text), (name, text)
        assert "Environment variable" not in text
        assert "Not a valid" not in text


def test_cross_checks_use_the_same_wording(env: pytest.MonkeyPatch) -> None:
    env.setenv("METRICS_PORT", "5003")
    caught = refused_settings()
    assert ONE_WORDING.match(caught.value.problems["METRICS_PORT"])
    env.delenv("METRICS_PORT")
    env.setenv("DB_POOL_MIN_SIZE", "20")
    caught = refused_settings()
    assert ONE_WORDING.match(caught.value.problems["DB_POOL_MIN_SIZE"])
