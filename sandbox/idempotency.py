"""Stripe's idempotency keys: a key remembers the first successful answer it was used for.

Only answers of requests that ran are saved. Requests refused before running (bad
parameters, injected faults, a conflict with a request still in flight) leave the key free,
as Stripe documents, so that a client can fix its request and retry with the same key.
Keys are scoped per API key, as on Stripe where they are scoped per account and mode.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sandbox.errors import StripeError, invalid

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class SavedResponse:
    fingerprint: str
    status: int
    body: bytes
    request_id: str


def fingerprint(method: str, path: str, params: dict[str, str]) -> str:
    canonical = json.dumps([method, path, sorted(params.items())])
    return hashlib.sha256(canonical.encode()).hexdigest()


class Reservation:
    """A key held by one request in flight; it must end in `save` or `release`."""

    def __init__(self, store: IdempotencyStore, scoped_key: str, print_: str) -> None:
        self._store = store
        self._scoped_key = scoped_key
        self._fingerprint = print_
        self._open = True

    def save(self, status: int, body: bytes, request_id: str) -> None:
        if self._open:
            saved = SavedResponse(self._fingerprint, status, body, request_id)
            self._store.remember(self._scoped_key, saved)
            self.release()

    def release(self) -> None:
        if self._open:
            self._open = False
            self._store.finished(self._scoped_key)


class IdempotencyStore:
    def __init__(self) -> None:
        self._saved: dict[str, SavedResponse] = {}
        self._in_flight: set[str] = set()

    def begin(self, api_key: str, key: str, print_: str) -> SavedResponse | Reservation:
        """The answer to replay, or the key reserved for this request.

        Raises the error Stripe answers when the key is busy, reused with other parameters
        or malformed.
        """
        if not key or len(key) > MAX_KEY_LENGTH:
            raise invalid(
                f"Idempotency-Key must be between 1 and {MAX_KEY_LENGTH} characters long.",
                param="Idempotency-Key",
            )
        scoped = f"{api_key}\0{key}"
        if scoped in self._in_flight:
            raise StripeError(
                409,
                "idempotency_error",
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                f"going through): {key}. Please try again later.",
                code="idempotency_key_in_use",
            )
        saved = self._saved.get(scoped)
        if saved is not None:
            if saved.fingerprint != print_:
                raise StripeError(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                )
            return saved
        self._in_flight.add(scoped)
        return Reservation(self, scoped, print_)

    def remember(self, scoped_key: str, saved: SavedResponse) -> None:
        self._saved[scoped_key] = saved

    def finished(self, scoped_key: str) -> None:
        self._in_flight.discard(scoped_key)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)
