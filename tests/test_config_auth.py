"""API_AUTH: none by default with a test key, explicit with a live one; jwt and keys name
everything they lack."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import refused_settings

from service.config import load_settings


def test_api_auth_defaults_to_none_with_a_test_key(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.api_auth == "none"
    assert settings.metrics_host == "127.0.0.1"
    assert settings.db_app_role == "payment_app"


def test_a_live_key_without_an_explicit_api_auth_refuses_to_start(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("STRIPE_SECRET_KEY", "sk_live_51HqLyjWDarjtT1zdp7dc")
    caught = refused_settings()
    assert list(caught.value.problems) == ["API_AUTH"]
    env.setenv("API_AUTH", "none")  # explicitly: a gateway in front authenticates
    assert load_settings().api_auth == "none"


def test_api_auth_jwt_names_everything_it_lacks(env: pytest.MonkeyPatch) -> None:
    env.setenv("API_AUTH", "jwt")
    caught = refused_settings()
    assert list(caught.value.problems) == ["AUTH_AUDIENCE", "AUTH_ISSUER", "AUTH_JWKS_URL"]
    env.setenv("AUTH_ISSUER", "https://id.example")
    env.setenv("AUTH_AUDIENCE", "payment-service")
    env.setenv("AUTH_JWKS_URL", "http://id.example/jwks.json")
    caught = refused_settings()
    assert "https" in caught.value.problems["AUTH_JWKS_URL"]
    env.setenv("AUTH_JWKS_URL", "https://id.example/jwks.json")
    assert load_settings().auth_jwks_url == "https://id.example/jwks.json"


def test_api_auth_values_other_than_jwt_keys_none_are_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("API_AUTH", "basic")
    caught = refused_settings()
    assert list(caught.value.problems) == ["API_AUTH"]


def test_api_auth_keys_needs_a_well_formed_keys_file(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.setenv("API_AUTH", "keys")
    caught = refused_settings()
    assert list(caught.value.problems) == ["API_KEYS_FILE"]
    keys = tmp_path / "api-keys"
    keys.write_text("# id sha256\nbilling " + "ab" * 32 + "\nbroken line\n")
    env.setenv("API_KEYS_FILE", str(keys))
    caught = refused_settings()
    assert "line(s) 3" in caught.value.problems["API_KEYS_FILE"]
    keys.write_text("billing " + "ab" * 32 + "\n")
    assert load_settings().api_keys_file == str(keys)
