"""API_AUTH=jwt: a bearer JWT from the identity provider, its keys from a PEM file or a JWKS.

Nothing here ever logs or stores a token: only its `sub`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import orjson
import tornado.httpclient
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from service.errors import Unauthenticated
from service.http.identity import Identity, IdentityKind, bearer

log = logging.getLogger("service.auth")

# Asymmetric only: an HMAC algorithm would let anyone holding the public key mint tokens.
ALLOWED_ALGORITHMS = ("RS256", "ES256", "EdDSA")
LEEWAY_SECONDS = 60
ADMIN_SCOPE = "payments:admin"
# A token naming a kid the cache lacks triggers a JWKS fetch, at most this often, so that a
# stream of made-up kids cannot turn into a stream of requests to the identity provider.
JWKS_MIN_REFRESH_SECONDS = 10.0
# Keys the provider removed stop verifying within this long, even without an unknown kid.
JWKS_MAX_AGE_SECONDS = 600.0
JWKS_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class JwtRules:
    issuer: str
    audience: str
    project_claim: str = "project_ids"


def algorithm_for(key: Any) -> str:
    """The one algorithm a public key verifies, so a token cannot choose another."""
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "EdDSA"
    raise ValueError("must be an RSA, EC P-256 or Ed25519/Ed448 public key")


def load_public_key(path: Path) -> jwt.PyJWK:
    """AUTH_JWT_PUBLIC_KEY_FILE: one PEM public key (read at start-up), bound to its algorithm."""
    key = load_pem_public_key(path.read_bytes())
    algorithm = algorithm_for(key)
    return jwt.PyJWK.from_dict(orjson.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(key)))


class JwtAuth:
    """API_AUTH=jwt: a bearer JWT from the identity provider, verified with PyJWT.

    Keys come from a PEM file, or from AUTH_JWKS_URL: fetched with Tornado's async client
    (never blocking the loop), cached by kid, fetched again for an unknown kid (at most every
    JWKS_MIN_REFRESH_SECONDS) and once the cache is JWKS_MAX_AGE_SECONDS old. Concurrent
    requests share one fetch.
    """

    def __init__(
        self, rules: JwtRules, *, jwks_url: str | None = None, key: jwt.PyJWK | None = None
    ) -> None:
        if (jwks_url is None) == (key is None):
            raise ValueError("exactly one of jwks_url and key")
        self._rules = rules
        self._jwks_url = jwks_url
        self._key = key
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._fetching: asyncio.Future[None] | None = None
        self._http: tornado.httpclient.AsyncHTTPClient | None = None

    async def authenticate(self, authorization: str | None) -> Identity:
        token = bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the token is not a JWT") from None
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise Unauthenticated("the token's algorithm is not allowed")
        key = await self._key_for(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=self._rules.audience,
                issuer=self._rules.issuer,
                leeway=LEEWAY_SECONDS,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.PyJWTError:
            raise Unauthenticated("the token is not valid here") from None
        return self._identity(claims)

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise Unauthenticated("the token has no subject")
        projects = claims.get(self._rules.project_claim, [])
        if isinstance(projects, str):
            projects = projects.split()
        if not isinstance(projects, list) or not all(isinstance(p, str) for p in projects):
            raise Unauthenticated(f"the token's {self._rules.project_claim} is not a list")
        scope = claims.get("scope", "")
        scopes = scope.split() if isinstance(scope, str) else []
        return Identity(
            kind=IdentityKind.TOKEN,
            name=sub,
            project_ids=frozenset(projects),
            admin=ADMIN_SCOPE in scopes,
        )

    async def _key_for(self, kid: object) -> jwt.PyJWK:
        if self._key is not None:
            return self._key
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the token names no key (kid)")
        age = time.monotonic() - self._fetched_at
        if age > JWKS_MAX_AGE_SECONDS or (kid not in self._keys and age > JWKS_MIN_REFRESH_SECONDS):
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated("the token's key is not one of the identity provider's")
        return key

    async def _refresh(self) -> None:
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._fetch())
        fetching = self._fetching
        try:
            await asyncio.shield(fetching)
        finally:
            if self._fetching is fetching and fetching.done():
                self._fetching = None

    async def _fetch(self) -> None:
        assert self._jwks_url is not None
        if self._http is None:
            self._http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
        try:
            response = await self._http.fetch(
                self._jwks_url, request_timeout=JWKS_TIMEOUT_SECONDS, follow_redirects=False
            )
            keys = jwks_keys(response.body)
        except (OSError, tornado.httpclient.HTTPError, ValueError, TypeError) as error:
            # Keep the keys we had; verifying with them beats locking every caller out.
            log.warning(
                "JWKS fetch failed; keeping the cached keys",
                extra={"fields": {"event": "jwks_fetch_failed", "error": type(error).__name__}},
            )
            self._fetched_at = time.monotonic()
            return
        self._keys = keys
        self._fetched_at = time.monotonic()
        log.info("JWKS loaded", extra={"fields": {"event": "jwks_loaded", "kids": sorted(keys)}})

    async def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


def jwks_keys(body: bytes) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWKS document by kid; keys of other algorithms are left out."""
    document = orjson.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise TypeError("not a JWKS document")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK.from_dict(entry)
        except jwt.PyJWTError:
            continue
        if key.algorithm_name in ALLOWED_ALGORITHMS:
            keys[entry["kid"]] = key
    return keys


def is_local_url(url: str) -> bool:
    """A loopback URL may be plain http (the sandbox in development); anything else https."""
    host = urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "::1", "localhost")
