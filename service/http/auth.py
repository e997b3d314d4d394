"""Who may call `/api/*` (SPEC "Who may call"): API_AUTH = jwt | keys | none.

One authenticator per process, chosen by the settings; handlers ask it for the caller's
`Identity` from the Authorization header and then whether that identity covers the project.
Nothing here ever logs or stores a token or a key: only the key id or the token's `sub`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import jwt
import orjson
import tornado.httpclient
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from service.errors import Forbidden, Unauthenticated

if TYPE_CHECKING:
    from service.config import Settings

log = logging.getLogger("service.auth")


class AuthMode(StrEnum):
    JWT = "jwt"
    KEYS = "keys"
    NONE = "none"


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
# How often the API keys file is looked at for a change (a stat, off the event loop).
KEYS_FILE_CHECK_SECONDS = 1.0

_KEY_LINE = re.compile(r"^(?P<id>[A-Za-z0-9._:@-]{1,64})\s+(?P<digest>[0-9a-fA-F]{64})$")


class IdentityKind(StrEnum):
    KEY = "key"
    TOKEN = "jwt"  # noqa: S105 - the kind's name, not a secret
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Identity:
    """The authenticated caller. `name` is the key id or the token's `sub`."""

    kind: IdentityKind
    name: str
    project_ids: frozenset[str] = frozenset()
    admin: bool = False

    @property
    def actor(self) -> str:
        """How the caller appears in logs and audit rows: `key:<id>`, `jwt:<sub>`, `anonymous`."""
        if self.kind is IdentityKind.ANONYMOUS:
            return "anonymous"
        return f"{self.kind}:{self.name}"

    def may_access(self, project_id: str) -> bool:
        return self.admin or project_id in self.project_ids


ANONYMOUS = Identity(kind=IdentityKind.ANONYMOUS, name="anonymous", admin=True)


def authorize(identity: Identity, project_id: str) -> None:
    """403 for a project the identity does not cover, whether or not the project exists."""
    if not identity.may_access(project_id):
        raise Forbidden("this credential does not cover that project")


class Authenticator(Protocol):
    async def authenticate(self, authorization: str | None) -> Identity: ...

    async def close(self) -> None: ...


class NoAuth:
    """API_AUTH=none: every caller may do anything (a gateway in front authenticates)."""

    async def authenticate(self, authorization: str | None) -> Identity:
        return ANONYMOUS

    async def close(self) -> None:
        return None


def bearer(authorization: str | None) -> str:
    """The credential of an `Authorization: Bearer <credential>` header, or 401."""
    if not authorization:
        raise Unauthenticated("an Authorization: Bearer credential is required")
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or " " in credential:
        raise Unauthenticated("the Authorization header must be 'Bearer <credential>'")
    return credential


# --- API_AUTH=keys ----------------------------------------------------------------------


def parse_keys_file(text: str) -> tuple[dict[str, bytes], list[int]]:
    """`<key id> <sha256 hex>` per line (blank lines and `#` comments allowed): the digests
    by key id, and the numbers of the lines that are neither."""
    digests: dict[str, bytes] = {}
    bad: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _KEY_LINE.fullmatch(line)
        if match is None:
            bad.append(number)
            continue
        digests[match["id"]] = bytes.fromhex(match["digest"])
    return digests, bad


class KeysFileAuth:
    """API_AUTH=keys: the SHA-256 of the presented key must be a line of API_KEYS_FILE.

    The file is re-read when it changes (checked at most once a second, off the event loop),
    so adding a key before handing it out and removing the old one rotates without a
    restart. A key may call for any project: keys belong to trusted servers.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._digests: dict[str, bytes] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    async def authenticate(self, authorization: str | None) -> Identity:
        credential = bearer(authorization)
        await self._refresh()
        presented = hashlib.sha256(credential.encode()).digest()
        found: str | None = None
        # Every line is compared, in constant time, whatever matched: the time taken says
        # nothing about which digest came close.
        for key_id, digest in self._digests.items():
            if hmac.compare_digest(presented, digest):
                found = key_id
        if found is None:
            raise Unauthenticated("the API key is not valid")
        return Identity(kind=IdentityKind.KEY, name=found, admin=True)

    async def _refresh(self) -> None:
        if time.monotonic() - self._checked_at < KEYS_FILE_CHECK_SECONDS:
            return
        async with self._lock:
            if time.monotonic() - self._checked_at < KEYS_FILE_CHECK_SECONDS:
                return
            try:
                result = await asyncio.to_thread(_read_if_changed, self._path, self._stamp)
            except OSError:
                # Keep the keys already loaded: a file being replaced must not lock callers
                # out; the next check reads it again.
                log.warning(
                    "API keys file unreadable; keeping the keys loaded before",
                    extra={"fields": {"event": "api_keys_unreadable"}},
                )
                self._checked_at = time.monotonic()
                return
            self._checked_at = time.monotonic()
            if result is None:
                return
            self._stamp, text = result
            digests, bad = parse_keys_file(text)
            if bad:
                log.warning(
                    "API keys file has lines that are not '<key id> <sha256 hex>'; skipped",
                    extra={"fields": {"event": "api_keys_bad_lines", "lines": bad}},
                )
            self._digests = digests
            log.info(
                "API keys loaded",
                extra={"fields": {"event": "api_keys_loaded", "key_ids": sorted(digests)}},
            )

    async def close(self) -> None:
        return None


def _read_if_changed(
    path: Path, stamp: tuple[int, int, int] | None
) -> tuple[tuple[int, int, int], str] | None:
    status = os.stat(path)
    current = (status.st_ino, status.st_mtime_ns, status.st_size)
    if current == stamp:
        return None
    return current, path.read_text(encoding="utf-8")


# --- API_AUTH=jwt -----------------------------------------------------------------------


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


def make_authenticator(settings: Settings) -> Authenticator:
    """The authenticator API_AUTH names; config.load_settings has checked its settings."""
    mode = AuthMode(settings.api_auth)
    if mode is AuthMode.KEYS:
        assert settings.api_keys_file is not None
        return KeysFileAuth(Path(settings.api_keys_file))
    if mode is AuthMode.JWT:
        rules = JwtRules(
            issuer=settings.auth_issuer or "",
            audience=settings.auth_audience or "",
            project_claim=settings.auth_project_claim,
        )
        if settings.auth_jwt_public_key_file:
            return JwtAuth(rules, key=load_public_key(Path(settings.auth_jwt_public_key_file)))
        return JwtAuth(rules, jwks_url=settings.auth_jwks_url)
    return NoAuth()
