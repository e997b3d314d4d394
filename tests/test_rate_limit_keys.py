"""RATE_LIMIT_KEYS: API keys belong to trusted servers and are not rate limited, unless
RATE_LIMIT_KEYS=on; then each key is a caller of its own (its key id), cut at the route's
limit with 429 and Retry-After, changing nothing, while another key goes on."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from pathlib import Path

import pytest
from flows import checkout_flood
from helpers import ServiceClient, StripeStandIn, key_line, new_id
from tokens import bearer

from service.config import Settings
from service.http.limits import Rate

BILLING_KEY = secrets.token_urlsafe(32)
REPORTS_KEY = secrets.token_urlsafe(32)


@pytest.fixture
def rate_limit_keys() -> bool:
    return False  # the default; a test that wants keys limited parametrizes it to True


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, rate_limit_keys: bool) -> Settings:
    keys = tmp_path / "api-keys"
    keys.write_text(key_line("billing", BILLING_KEY) + key_line("reports", REPORTS_KEY))
    return replace(
        settings,
        api_auth="keys",
        api_keys_file=str(keys),
        rate_limit_checkout=Rate(3, 60.0),
        rate_limit_keys=rate_limit_keys,
    )


async def test_by_default_a_key_is_not_rate_limited(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    responses = await asyncio.gather(
        *(client.checkout(new_id(), headers=bearer(BILLING_KEY)) for _ in range(6))
    )
    assert [r.code for r in responses] == [200] * 6
    assert stripe_api.state.create_calls == 6


@pytest.mark.parametrize("rate_limit_keys", [True])
async def test_with_rate_limit_keys_on_each_key_is_cut_at_the_limit_and_changes_nothing(
    client: ServiceClient, stripe_api: StripeStandIn, settings: Settings, rate_limit_keys: bool
) -> None:
    assert settings.rate_limit_keys is rate_limit_keys is True
    # 3 a minute: a token every 20 s. Nothing stored is asked with the other key, whose
    # status reads this test's checkout limit does not touch.
    await checkout_flood(
        client,
        stripe_api,
        count=5,
        headers=bearer(BILLING_KEY),
        allowed=3,
        seconds_per_token=20,
        status_headers=bearer(REPORTS_KEY),
    )
    # Another key is another caller, with a bucket of its own.
    other = await client.checkout(new_id(), headers=bearer(REPORTS_KEY))
    assert other.code == 200
    assert stripe_api.state.create_calls == 4
