"""API_AUTH=jwt: only a token from the identity provider, for the project asked about, opens
/api/*; 401 (with WWW-Authenticate: Bearer) for anything unverifiable, 403 for a valid token
that does not cover the project, whether or not the project exists."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import jwt
import pytest
from helpers import ServiceClient, new_id, with_settings
from tokens import AUDIENCE, ISSUER, IdentityProvider, bearer, identity_provider, mint, new_key

from service.config import Settings
from service.errors import Unauthenticated
from service.http.context import AppContext
from service.http.jwt_auth import JWKS_MIN_REFRESH_SECONDS, JwtAuth, JwtRules, load_public_key

__all__ = ["identity_provider"]  # the fixture, imported for this module's tests

RSA = new_key("rsa-1", "RS256")
EC = new_key("ec-1", "ES256")
ED = new_key("ed-1", "EdDSA")


@pytest.fixture
def settings(settings: Settings, identity_provider: IdentityProvider) -> Settings:
    identity_provider.keys = [RSA, EC, ED]
    return with_settings(
        settings,
        api_auth="jwt",
        auth_jwks_url=identity_provider.url,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
    )


def assert_401(response: object) -> None:
    assert getattr(response, "code", None) == 401, response
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()) == {"error"}  # type: ignore[attr-defined]


async def test_a_token_for_the_project_may_check_out_and_read_its_status(
    client: ServiceClient, ctx: AppContext
) -> None:
    project = new_id()
    for key in (RSA, EC, ED):
        token = mint(key, sub=f"buyer-{key.kid}", projects=[project])
        assert (await client.checkout(project, headers=bearer(token))).code == 200
        assert (await client.status(project, headers=bearer(token))).code == 200
    async with ctx.pool.acquire() as conn:
        rows = [r async for r in ctx.queries.list_project_history(conn, project_id=project)]
    assert [r["actor"] for r in rows] == ["jwt:buyer-rsa-1"]


async def test_no_or_a_malformed_authorization_header_is_401_with_www_authenticate(
    client: ServiceClient,
) -> None:
    project = new_id()
    token = mint(RSA, projects=[project])
    for headers in [
        {},
        {"Authorization": ""},
        {"Authorization": f"Basic {token}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": f"Bearer {token} extra"},
    ]:
        assert_401(await client.checkout(project, headers=headers))
        assert_401(await client.status(project, headers=headers))


@pytest.mark.parametrize(
    "claims",
    [
        {"issuer": "https://someone-else.example"},
        {"audience": "another-service"},
        {"expires_in": -120},  # past the 60 s leeway
        {"without": ("exp",)},
        {"without": ("sub",)},
    ],
    ids=["wrong issuer", "wrong audience", "expired", "no exp", "no sub"],
)
async def test_a_token_with_wrong_claims_is_401(
    client: ServiceClient, claims: dict[str, object]
) -> None:
    project = new_id()
    token = mint(RSA, projects=[project], **claims)  # type: ignore[arg-type]
    assert_401(await client.checkout(project, headers=bearer(token)))


async def test_a_token_expired_within_the_60_second_leeway_still_counts(
    client: ServiceClient,
) -> None:
    project = new_id()
    token = mint(RSA, projects=[project], expires_in=-30)
    assert (await client.checkout(project, headers=bearer(token))).code == 200


def _unsigned(claims: Mapping[str, object], header: Mapping[str, object]) -> str:
    def part(value: Mapping[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


async def test_alg_none_and_hs256_signed_with_the_public_key_are_401(
    client: ServiceClient,
) -> None:
    project = new_id()
    claims = jwt.decode(mint(RSA, projects=[project]), options={"verify_signature": False})
    unsigned = _unsigned(claims, {"alg": "none", "typ": "JWT", "kid": RSA.kid})
    assert_401(await client.checkout(project, headers=bearer(unsigned)))
    # The classic confusion: HMAC keyed with the (public) PEM. PyJWT refuses to do it
    # itself, so the attacker's token is built by hand.
    header = {"alg": "HS256", "typ": "JWT", "kid": RSA.kid}
    signing_input = _unsigned(claims, header)[:-1].encode()
    mac = hmac.new(RSA.public_pem, signing_input, hashlib.sha256).digest()
    forged = signing_input.decode() + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert_401(await client.checkout(project, headers=bearer(forged)))


async def test_a_token_signed_by_a_key_the_provider_does_not_publish_is_401(
    client: ServiceClient,
) -> None:
    project = new_id()
    impostor = new_key(RSA.kid, "RS256")  # same kid, another key
    assert_401(await client.checkout(project, headers=bearer(mint(impostor, projects=[project]))))


async def test_a_token_for_another_project_is_403_whether_or_not_the_project_exists(
    client: ServiceClient,
) -> None:
    mine, theirs, nobody = new_id(), new_id(), new_id()
    assert (await client.checkout(theirs, headers=bearer(mint(RSA, projects=[theirs])))).code == 200
    token = bearer(mint(RSA, projects=[mine]))
    for project in (theirs, nobody):
        checkout = await client.checkout(project, headers=token)
        status = await client.status(project, headers=token)
        assert (checkout.code, status.code) == (403, 403)
        assert status.json() == {"error": "this credential does not cover that project"}


async def test_the_admin_scope_covers_every_project(client: ServiceClient) -> None:
    project = new_id()
    admin = bearer(mint(RSA, sub="ops", scope="openid payments:admin"))
    assert (await client.checkout(project, headers=admin)).code == 200
    assert (await client.status(new_id(), headers=admin)).code == 404


async def test_a_key_the_provider_adds_later_verifies_without_a_restart(
    client: ServiceClient, identity_provider: IdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unknown kids refetch at most every JWKS_MIN_REFRESH_SECONDS (10): shortened so the
    # test need not wait for it.
    monkeypatch.setattr("service.http.jwt_auth.JWKS_MIN_REFRESH_SECONDS", 0.2)
    project = new_id()
    assert (
        await client.checkout(project, headers=bearer(mint(RSA, projects=[project])))
    ).code == 200
    await asyncio.sleep(0.3)
    rotated = new_key("rsa-2", "RS256")
    identity_provider.keys = [rotated, RSA]
    token = bearer(mint(rotated, projects=[project]))
    assert (await client.status(project, headers=token)).code == 200
    assert identity_provider.fetches == 2


async def test_tokens_with_made_up_kids_cost_at_most_one_jwks_fetch(
    client: ServiceClient, identity_provider: IdentityProvider
) -> None:
    project = new_id()
    assert (
        await client.checkout(project, headers=bearer(mint(RSA, projects=[project])))
    ).code == 200
    before = identity_provider.fetches
    answers = await asyncio.gather(
        *(
            client.status(
                project, headers=bearer(mint(new_key(f"made-up-{n}"), projects=[project]))
            )
            for n in range(5)
        )
    )
    assert [a.code for a in answers] == [401] * 5
    assert identity_provider.fetches - before <= 1
    assert JWKS_MIN_REFRESH_SECONDS >= 10


async def test_the_request_log_names_the_caller_and_never_the_token(
    client: ServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    project = new_id()
    token = mint(RSA, sub="buyer-logged", projects=[project])
    with caplog.at_level(logging.INFO, logger="service.http"):
        assert (await client.checkout(project, headers=bearer(token))).code == 200
    lines = [r for r in caplog.records if r.getMessage() == "request"]
    assert [r.fields["actor"] for r in lines] == ["jwt:buyer-logged"]  # type: ignore[attr-defined]
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text


async def test_a_public_key_file_verifies_tokens_of_its_own_algorithm_only(
    tmp_path: Path,
) -> None:
    pem = tmp_path / "idp.pem"
    pem.write_bytes(EC.public_pem)
    auth = JwtAuth(JwtRules(ISSUER, AUDIENCE), key=load_public_key(pem))
    identity = await auth.authenticate(f"Bearer {mint(EC, sub='svc', projects=['p1'])}")
    assert (identity.actor, identity.may_access("p1"), identity.may_access("p2")) == (
        "jwt:svc",
        True,
        False,
    )
    with pytest.raises(Unauthenticated):
        await auth.authenticate(f"Bearer {mint(RSA, projects=['p1'])}")
