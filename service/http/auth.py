"""Who may call `/api/*` (SPEC "Who may call"): API_AUTH = jwt | keys | none.

One authenticator per process, chosen by the settings (`make_authenticator`): `none`, API
keys from a file (here) or JWTs (jwt_auth.py). Handlers ask it for the caller's `Identity`
(identity.py) from the Authorization header and then whether that identity covers the
project. Nothing here ever logs or stores a token or a key: only the key id or the token's
`sub`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from service.errors import Unauthenticated
from service.http.identity import ANONYMOUS, Authenticator, AuthMode, Identity, IdentityKind, bearer
from service.http.jwt_auth import JwtAuth, JwtRules, load_public_key

if TYPE_CHECKING:
    from service.config import Settings

log = logging.getLogger("service.auth")

# How often the API keys file is looked at for a change (a stat, off the event loop).
KEYS_FILE_CHECK_SECONDS = 1.0

_KEY_LINE = re.compile(r"^(?P<id>[A-Za-z0-9._:@-]{1,64})\s+(?P<digest>[0-9a-fA-F]{64})$")


class NoAuth:
    """API_AUTH=none: every caller may do anything (a gateway in front authenticates)."""

    async def authenticate(self, authorization: str | None) -> Identity:
        return ANONYMOUS

    async def close(self) -> None:
        return None


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
