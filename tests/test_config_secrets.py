"""Secrets from files (owner-only) and from a .env file, never given twice, never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import GOOD, refused_settings

from service.config import load_settings


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
    caught = refused_settings()
    assert list(caught.value.problems) == ["DATABASE_URL_FILE"]


def test_a_secret_given_twice_is_refused(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "key").write_text(GOOD["STRIPE_SECRET_KEY"])
    (tmp_path / "key").chmod(0o600)
    env.setenv("STRIPE_SECRET_KEY_FILE", str(tmp_path / "key"))
    caught = refused_settings()
    assert list(caught.value.problems) == ["STRIPE_SECRET_KEY"]


def test_dot_env_file_in_the_working_folder_is_read(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.delenv("STRIPE_PRODUCT_PRICE_ID")
    (tmp_path / ".env").write_text("STRIPE_PRODUCT_PRICE_ID=price_FromDotEnv\n")
    assert load_settings().stripe_price_id == "price_FromDotEnv"
    env.delenv("STRIPE_PRODUCT_PRICE_ID", raising=False)


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
    caught = refused_settings()
    assert list(caught.value.problems) == ["DATABASE_URL_FILE"]
    assert f"mode {mode:04o}" in caught.value.problems["DATABASE_URL_FILE"]
    assert "dbSECRETpw" not in str(caught.value)
