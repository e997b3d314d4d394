"""Who is calling: the caller's Identity, what it covers, and the Authenticator each API_AUTH
mode (http/auth.py) provides to find it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from service.errors import Forbidden, Unauthenticated


class AuthMode(StrEnum):
    JWT = "jwt"
    KEYS = "keys"
    NONE = "none"


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


def bearer(authorization: str | None) -> str:
    """The credential of an `Authorization: Bearer <credential>` header, or 401."""
    if not authorization:
        raise Unauthenticated("an Authorization: Bearer credential is required")
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or " " in credential:
        raise Unauthenticated("the Authorization header must be 'Bearer <credential>'")
    return credential
