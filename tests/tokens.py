"""The tests' own identity provider: signing keys, a JWKS served over real HTTP, and tokens
minted with PyJWT the way a provider would (or the way an attacker would)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import tornado.httpserver
import tornado.ioloop
import tornado.testing
import tornado.web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ISSUER = "https://id.test.example"
AUDIENCE = "payment-service"


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    @property
    def public_pem(self) -> bytes:
        pem: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem

    def jwk(self) -> dict[str, Any]:
        entry: dict[str, Any] = json.loads(
            jwt.get_algorithm_by_name(self.algorithm).to_jwk(self.private.public_key())
        )
        return entry | {"kid": self.kid, "use": "sig", "alg": self.algorithm}


def new_key(kid: str, algorithm: str = "RS256") -> SigningKey:
    private: Any
    if algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return SigningKey(kid, algorithm, private)


def mint(
    key: SigningKey,
    *,
    sub: str = "user-1",
    projects: list[str] | None = None,
    scope: str | None = None,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    expires_in: int = 300,
    without: tuple[str, ...] = (),
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "iat": now,
        "exp": now + expires_in,
        "project_ids": projects or [],
    }
    if scope is not None:
        claims["scope"] = scope
    for name in without:
        claims.pop(name)
    return jwt.encode(claims, key.private, algorithm=key.algorithm, headers={"kid": key.kid})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class IdentityProvider:
    """A JWKS endpoint on the test's loop; `keys` may change while the service runs."""

    url: str
    keys: list[SigningKey] = field(default_factory=list)
    fetches: int = 0


class _JwksHandler(tornado.web.RequestHandler):
    def initialize(self, provider: IdentityProvider) -> None:
        self.provider = provider

    def get(self) -> None:
        self.provider.fetches += 1
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"keys": [key.jwk() for key in self.provider.keys]}))


@pytest.fixture
def identity_provider(io_loop: tornado.ioloop.IOLoop) -> Iterator[IdentityProvider]:
    sock, port = tornado.testing.bind_unused_port()
    provider = IdentityProvider(f"http://127.0.0.1:{port}/.well-known/jwks.json")
    app = tornado.web.Application(
        [(r"/.well-known/jwks.json", _JwksHandler, {"provider": provider})]
    )
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    yield provider
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=5)
