"""The sandbox as the product's identity provider, for development only.

It publishes a JWKS (`/.well-known/jwks.json`) and hands the demo pages a short-lived token
for the project they buy (`POST /idp/token`), signed with an Ed25519 key made when the
sandbox starts, so `make run` serves with API_AUTH=jwt end to end. Anyone who can reach the
sandbox gets a token for any project: it stands in for a login, it is not one.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import tornado.web
from cryptography.hazmat.primitives.asymmetric import ed25519

AUDIENCE = "payment-service"
TOKEN_SECONDS = 300
JWKS_PATH = "/.well-known/jwks.json"
_PROJECT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class DevIdentityProvider:
    issuer: str
    audience: str = AUDIENCE
    kid: str = field(default_factory=lambda: f"sandbox-{secrets.token_hex(4)}")
    key: ed25519.Ed25519PrivateKey = field(default_factory=ed25519.Ed25519PrivateKey.generate)

    def jwks(self) -> dict[str, Any]:
        public: dict[str, Any] = json.loads(
            jwt.get_algorithm_by_name("EdDSA").to_jwk(self.key.public_key())
        )
        return {"keys": [public | {"kid": self.kid, "use": "sig", "alg": "EdDSA"}]}

    def token_for(self, project_id: str) -> str:
        """A token for one project, as a login to the product would yield for its buyer."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "sandbox-demo-buyer",
            "iat": now,
            "exp": now + TOKEN_SECONDS,
            "project_ids": [project_id],
        }
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})


class _IdentityHandler(tornado.web.RequestHandler):
    """Answers in JSON, cached for `cache_control`, on behalf of the identity provider."""

    cache_control = "no-store"

    def initialize(self, idp: DevIdentityProvider) -> None:
        self.idp = idp

    def prepare(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", self.cache_control)


class JwksHandler(_IdentityHandler):
    cache_control = "max-age=60"

    def get(self) -> None:
        self.finish(json.dumps(self.idp.jwks()))


class TokenHandler(_IdentityHandler):
    """POST {"project_id": "…"} -> {"access_token": …, "token_type": "Bearer", "expires_in"}."""

    def post(self) -> None:
        try:
            project_id = json.loads(self.request.body or b"{}").get("project_id")
        except (ValueError, AttributeError):
            project_id = None
        if not isinstance(project_id, str) or not _PROJECT_ID.fullmatch(project_id):
            self.set_status(400)
            self.finish({"error": "project_id must be 1-64 characters of A-Z a-z 0-9 _ -"})
            return
        self.finish(
            {
                "access_token": self.idp.token_for(project_id),
                "token_type": "Bearer",
                "expires_in": TOKEN_SECONDS,
            }
        )


def identity_routes(idp: DevIdentityProvider) -> list[Any]:
    args = {"idp": idp}
    return [(JWKS_PATH, JwksHandler, args), (r"/idp/token", TokenHandler, args)]
