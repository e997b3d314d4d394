"""Configuration: every bad variable named at once, exit 2, no secret ever echoed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.config import ConfigError, load_settings
from service.http.limits import Rate

ROOT = Path(__file__).resolve().parent.parent

GOOD = {
    "STRIPE_SECRET_KEY": "sk_test_51HqLyjWDarjtT1zdp7dcSECRETVALUE",
    "STRIPE_WEBHOOK_SECRET": "whsec_abcdefSECRETVALUE",
    "STRIPE_PRODUCT_PRICE_ID": "price_1Abc",
    "STRIPE_SUCCESS_URL": "https://app.example/paid?session={CHECKOUT_SESSION_ID}",
    "STRIPE_CANCEL_URL": "https://app.example/cancelled",
    "DATABASE_URL": "postgresql://payments:dbSECRETpw@db.internal:5432/payments",
}
OPTIONAL = [
    "HOST",
    "PORT",
    "STRIPE_API_BASE",
    "CHECKOUT_SESSION_TTL_MINUTES",
    "WEBHOOK_TOLERANCE_SECONDS",
    "CORS_ALLOWED_ORIGINS",
    "DB_POOL_MIN_SIZE",
    "DB_POOL_MAX_SIZE",
    "LOG_LEVEL",
    "STRIPE_TIMEOUT_SECONDS",
    "STRIPE_MAX_NETWORK_RETRIES",
    "DB_CONNECT_TIMEOUT_SECONDS",
    "DB_STATEMENT_CACHE_SIZE",
    "EVENT_LOOP",
    "API_AUTH",
    "AUTH_JWKS_URL",
    "AUTH_JWT_PUBLIC_KEY_FILE",
    "AUTH_ISSUER",
    "AUTH_AUDIENCE",
    "AUTH_PROJECT_CLAIM",
    "API_KEYS_FILE",
    "METRICS_HOST",
    "METRICS_PORT",
    "DB_APP_ROLE",
    "DATABASE_MIGRATE_URL",
    "DATABASE_MIGRATE_URL_FILE",
    "LOG_BUFFER_LINES",
    "BODY_TIMEOUT_SECONDS",
    "MAX_CONNECTIONS",
    "RATE_LIMIT_CHECKOUT",
    "RATE_LIMIT_STATUS",
    "TRUSTED_PROXIES",
    "STRIPE_CONFIRM_MAX_PER_SECOND",
]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean environment holding only GOOD, run from a folder without a .env file."""
    for name in [*GOOD, *OPTIONAL, *(f"{n}_FILE" for n in GOOD)]:
        monkeypatch.delenv(name, raising=False)
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


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
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert set(caught.value.problems) == set(GOOD)


@pytest.mark.parametrize(
    ("name", "value"),
    [
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
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("MAX_CONNECTIONS", "0"),
        ("BODY_TIMEOUT_SECONDS", "never"),
        ("STRIPE_CONFIRM_MAX_PER_SECOND", "-1"),
        ("LOG_BUFFER_LINES", "1"),
    ],
)
def test_an_invalid_value_is_named_without_its_value(
    env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
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
    with pytest.raises(ConfigError) as caught:
        load_settings()
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
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert list(caught.value.problems) == ["STRIPE_API_BASE"]


def test_secrets_can_come_from_files(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "DATABASE_URL"):
        secret_file = tmp_path / name.lower()
        secret_file.write_text(GOOD[name] + "\n")
        secret_file.chmod(0o600)
        env.delenv(name)
        env.setenv(f"{name}_FILE", str(secret_file))
    settings = load_settings()
    assert settings.stripe_secret_key == GOOD["STRIPE_SECRET_KEY"]
    assert settings.database_url == GOOD["DATABASE_URL"]


def test_a_secret_file_that_cannot_be_read_is_named(env: pytest.MonkeyPatch) -> None:
    env.delenv("DATABASE_URL")
    env.setenv("DATABASE_URL_FILE", "/nonexistent/secret")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert list(caught.value.problems) == ["DATABASE_URL_FILE"]


def test_a_secret_given_twice_is_refused(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "key").write_text(GOOD["STRIPE_SECRET_KEY"])
    (tmp_path / "key").chmod(0o600)
    env.setenv("STRIPE_SECRET_KEY_FILE", str(tmp_path / "key"))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert list(caught.value.problems) == ["STRIPE_SECRET_KEY"]


def test_dot_env_file_in_the_working_folder_is_read(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.delenv("STRIPE_PRODUCT_PRICE_ID")
    (tmp_path / ".env").write_text("STRIPE_PRODUCT_PRICE_ID=price_FromDotEnv\n")
    assert load_settings().stripe_price_id == "price_FromDotEnv"
    env.delenv("STRIPE_PRODUCT_PRICE_ID", raising=False)


def run_service(environment: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m service` as an operator starts it, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "service"],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_server_with_bad_configuration_exits_2_naming_everything(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in GOOD and k not in OPTIONAL}
    environment |= {
        "STRIPE_SECRET_KEY": "sk_nope_SECRETVALUE",
        "STRIPE_WEBHOOK_SECRET": "whsec_fine",
        "PORT": "not-a-port",
        "PYTHONPATH": str(ROOT),
    }
    result = run_service(environment, tmp_path)
    assert result.returncode == 2
    for name in [
        "STRIPE_SECRET_KEY",
        "STRIPE_PRODUCT_PRICE_ID",
        "STRIPE_SUCCESS_URL",
        "STRIPE_CANCEL_URL",
        "DATABASE_URL",
        "PORT",
    ]:
        assert name in result.stderr
    assert "SECRETVALUE" not in result.stderr + result.stdout
    assert "STRIPE_WEBHOOK_SECRET" not in result.stderr


def test_server_with_a_malformed_database_url_exits_2_without_a_traceback(
    tmp_path: Path,
) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in GOOD and k not in OPTIONAL}
    environment |= GOOD | {
        "DATABASE_URL": "postgresql://payments:dbSECRETpw@db.internal:port/payments",
        "PYTHONPATH": str(ROOT),
    }
    result = run_service(environment, tmp_path)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert "dbSECRETpw" not in result.stderr + result.stdout


def test_migrate_needs_only_the_database(env: pytest.MonkeyPatch) -> None:
    for name in GOOD:
        if name != "DATABASE_URL":
            env.delenv(name)
    assert load_settings(purpose="migrate").database_url == GOOD["DATABASE_URL"]
    with pytest.raises(ConfigError) as caught:
        load_settings(purpose="reconcile")
    assert list(caught.value.problems) == ["STRIPE_SECRET_KEY"]
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert len(caught.value.problems) == len(GOOD) - 1


ONE_WORDING = re.compile(r"^(not set|not valid|[a-z][^;]*); expected \S.*$")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STRIPE_SECRET_KEY", "pk_test_x"),
        ("PORT", "seventy"),
        ("PORT", "0"),
        ("STRIPE_TIMEOUT_SECONDS", "soon"),
        ("EVENT_LOOP", "trio"),
        ("CORS_ALLOWED_ORIGINS", "*"),
        ("STRIPE_SUCCESS_URL", "/relative"),
        ("DB_POOL_MAX_SIZE", "0"),
    ],
)
def test_an_invalid_value_says_what_is_wrong_and_what_is_expected(
    env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
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
    with pytest.raises(ConfigError) as caught:
        load_settings()
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
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert ONE_WORDING.match(caught.value.problems["METRICS_PORT"])
    env.delenv("METRICS_PORT")
    env.setenv("DB_POOL_MIN_SIZE", "20")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert ONE_WORDING.match(caught.value.problems["DB_POOL_MIN_SIZE"])


def test_secrets_in_the_dot_env_file_are_read_and_the_environment_wins(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """environs keeps .env's values to itself; the secrets, read apart, must see them too."""
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "DATABASE_URL"):
        env.delenv(name)
    (tmp_path / ".env").write_text(
        "STRIPE_SECRET_KEY=sk_test_FromDotEnv\n"
        "STRIPE_WEBHOOK_SECRET=whsec_FromDotEnv\n"
        "DATABASE_URL=postgresql://from-dot-env/payments\n"
    )
    env.setenv("DATABASE_URL", "postgresql://from-environment/payments")
    settings = load_settings()
    assert settings.stripe_secret_key == "sk_test_FromDotEnv"
    assert settings.stripe_webhook_secrets == ("whsec_FromDotEnv",)
    assert settings.database_url == "postgresql://from-environment/payments"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_secret_file_readable_by_group_or_others_is_refused_naming_its_mode(
    env: pytest.MonkeyPatch, tmp_path: Path, mode: int
) -> None:
    secret_file = tmp_path / "database-url"
    secret_file.write_text(GOOD["DATABASE_URL"])
    secret_file.chmod(mode)
    env.delenv("DATABASE_URL")
    env.setenv("DATABASE_URL_FILE", str(secret_file))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert list(caught.value.problems) == ["DATABASE_URL_FILE"]
    assert f"mode {mode:04o}" in caught.value.problems["DATABASE_URL_FILE"]
    assert "dbSECRETpw" not in str(caught.value)


def test_a_loose_secret_file_stops_the_server_with_exit_2(tmp_path: Path) -> None:
    secret_file = tmp_path / "stripe-secret-key"
    secret_file.write_text(GOOD["STRIPE_SECRET_KEY"])
    secret_file.chmod(0o644)
    environment = {k: v for k, v in os.environ.items() if k not in GOOD and k not in OPTIONAL}
    environment |= {k: v for k, v in GOOD.items() if k != "STRIPE_SECRET_KEY"}
    environment |= {"STRIPE_SECRET_KEY_FILE": str(secret_file), "PYTHONPATH": str(ROOT)}
    result = run_service(environment, tmp_path)
    assert result.returncode == 2
    assert "STRIPE_SECRET_KEY_FILE: mode 0644" in result.stderr
    assert "SECRETVALUE" not in result.stderr + result.stdout


def test_api_auth_defaults_to_none_with_a_test_key(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.api_auth == "none"
    assert settings.metrics_host == "127.0.0.1"
    assert settings.db_app_role == "payment_app"


def test_a_live_key_without_an_explicit_api_auth_refuses_to_start(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("STRIPE_SECRET_KEY", "sk_live_51HqLyjWDarjtT1zdp7dc")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert list(caught.value.problems) == ["API_AUTH"]
    env.setenv("API_AUTH", "none")  # explicitly: a gateway in front authenticates
    assert load_settings().api_auth == "none"


def test_api_auth_jwt_names_everything_it_lacks(env: pytest.MonkeyPatch) -> None:
    env.setenv("API_AUTH", "jwt")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert list(caught.value.problems) == ["AUTH_AUDIENCE", "AUTH_ISSUER", "AUTH_JWKS_URL"]
    env.setenv("AUTH_ISSUER", "https://id.example")
    env.setenv("AUTH_AUDIENCE", "payment-service")
    env.setenv("AUTH_JWKS_URL", "http://id.example/jwks.json")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "https" in caught.value.problems["AUTH_JWKS_URL"]
    env.setenv("AUTH_JWKS_URL", "https://id.example/jwks.json")
    assert load_settings().auth_jwks_url == "https://id.example/jwks.json"


def test_api_auth_values_other_than_jwt_keys_none_are_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("API_AUTH", "basic")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert list(caught.value.problems) == ["API_AUTH"]


def test_api_auth_keys_needs_a_well_formed_keys_file(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.setenv("API_AUTH", "keys")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert list(caught.value.problems) == ["API_KEYS_FILE"]
    keys = tmp_path / "api-keys"
    keys.write_text("# id sha256\nbilling " + "ab" * 32 + "\nbroken line\n")
    env.setenv("API_KEYS_FILE", str(keys))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "line(s) 3" in caught.value.problems["API_KEYS_FILE"]
    keys.write_text("billing " + "ab" * 32 + "\n")
    assert load_settings().api_keys_file == str(keys)


def test_migrate_uses_the_owner_url_and_serve_the_app_url(env: pytest.MonkeyPatch) -> None:
    owner = "postgresql://payments_owner:ownerSECRETpw@db.internal:5432/payments"
    env.setenv("DATABASE_MIGRATE_URL", owner)
    env.delenv("DATABASE_URL")
    assert load_settings(purpose="migrate").migrate_url == owner
    env.setenv("DATABASE_URL", GOOD["DATABASE_URL"])
    settings = load_settings()
    assert settings.database_url == GOOD["DATABASE_URL"]
    assert "ownerSECRETpw" not in repr(settings)
