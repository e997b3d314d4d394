"""Webhook delivery the way Stripe does it: every event POSTed to the endpoint, signed over
the exact bytes sent, retried with exponential back-off until a 2xx or the last attempt.

Delivery runs on the asyncio loop (tornado's async HTTP client) and never blocks it. The
lifecycle methods keep returning their event at once; `await deliverer.settled()` waits
until every delivery scheduled so far has succeeded or given up.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import tornado.httpclient

log = logging.getLogger("sandbox.webhooks")

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
CONTENT_TYPE = "application/json; charset=utf-8"


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """`Stripe-Signature`: `t=<unix>,v1=<HMAC-SHA256(secret, "<t>.<payload>")>`."""
    signed = f"{timestamp}.".encode() + payload
    v1 = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={v1}"


def encode_event(event: dict[str, Any]) -> bytes:
    """The body Stripe sends: the event as pretty-printed JSON."""
    return json.dumps(event, indent=2).encode("utf-8")


@dataclass(frozen=True)
class WebhookTarget:
    """Where and how to deliver: Stripe's endpoint settings plus the retry schedule.

    Attempt n (1-based) that fails is retried after `retry_base_seconds * 2**(n-1)`
    (capped at `retry_max_seconds`); after `max_attempts` attempts the delivery gives up.

    `shuffle_max_delay_seconds` > 0 delivers like Stripe after an outage: each event's first
    attempt waits a random 0..max seconds, so later events overtake earlier ones.
    """

    url: str
    secret: str
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 3600.0
    max_attempts: int = 8
    timeout_seconds: float = 10.0
    shuffle_max_delay_seconds: float = 0.0

    def retry_delay(self, attempt: int) -> float:
        return float(min(self.retry_base_seconds * 2 ** (attempt - 1), self.retry_max_seconds))


@dataclass(frozen=True)
class Attempt:
    at: float  # unix time the request was sent
    status: int | None  # the HTTP status, or None when there was none (error says why)
    error: str | None
    duration: float  # seconds

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def result(self) -> str:
        return str(self.status) if self.status is not None else f"error: {self.error}"


@dataclass
class Delivery:
    """One delivery of one event (the original, or a resend), with all its attempts."""

    event_id: str
    resend: bool
    attempts: list[Attempt] = field(default_factory=list)
    outcome: Literal["pending", "delivered", "failed"] = "pending"


class Deliverer:
    """Delivers events to one `WebhookTarget`; keeps a delivery log per event id."""

    def __init__(self, target: WebhookTarget, *, seed: int | None = None) -> None:
        self.target = target
        self.deliveries: dict[str, list[Delivery]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._random = random.Random(seed)  # the shuffle's delays: a toy, not a secret

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on `loop` (a server's, on its own thread) whatever thread creates the
        event. Unattached, deliveries run on the loop running where the event is made."""
        self._loop = loop

    def deliver(self, event: dict[str, Any], *, resend: bool = False) -> Delivery:
        """Start delivering `event` in the background; returns its (pending) log entry."""
        delivery = Delivery(event_id=str(event["id"]), resend=resend)
        self.deliveries.setdefault(delivery.event_id, []).append(delivery)
        body = encode_event(event)
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        attached = self._loop if self._loop is not None and not self._loop.is_closed() else None
        if attached is not None and attached is not running:
            attached.call_soon_threadsafe(self._start, delivery, body)
        elif running is not None:
            self._start(delivery, body)
        else:
            raise RuntimeError("webhook delivery needs a running asyncio loop (see attach())")
        return delivery

    def _start(self, delivery: Delivery, body: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._run(delivery, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settled(self) -> None:
        """Wait until every delivery started so far has succeeded or given up (bound it
        with `asyncio.timeout`). Await it on the loop the deliveries run on."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Stop delivering: cancels deliveries still waiting to retry."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, delivery: Delivery, body: bytes) -> None:
        target = self.target
        http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
        try:
            if target.shuffle_max_delay_seconds > 0 and not delivery.resend:
                await asyncio.sleep(self._random.uniform(0, target.shuffle_max_delay_seconds))
            for number in range(1, target.max_attempts + 1):
                attempt = await self._attempt(http, body)
                delivery.attempts.append(attempt)
                log.info(
                    "webhook %s attempt %d: %s (%.3f s)",
                    delivery.event_id,
                    number,
                    attempt.result,
                    attempt.duration,
                )
                if attempt.ok:
                    delivery.outcome = "delivered"
                    return
                if number < target.max_attempts:
                    await asyncio.sleep(target.retry_delay(number))
            delivery.outcome = "failed"
        finally:
            http.close()

    async def _attempt(self, http: tornado.httpclient.AsyncHTTPClient, body: bytes) -> Attempt:
        target = self.target
        at = time.time()
        started = time.monotonic()
        headers = {
            "Content-Type": CONTENT_TYPE,
            "User-Agent": USER_AGENT,
            "Accept": "*/*; q=0.5, application/xml",
            "Cache-Control": "no-cache",
            # Signed again on every attempt, with the time it is sent, as Stripe does.
            "Stripe-Signature": signature_header(body, target.secret, int(at)),
        }
        try:
            response = await http.fetch(
                target.url,
                method="POST",
                body=body,
                headers=headers,
                raise_error=False,
                request_timeout=target.timeout_seconds,
                connect_timeout=target.timeout_seconds,
                follow_redirects=False,
            )
        except Exception as error:  # any failure to get an answer is a failed attempt
            return Attempt(at, None, _describe(error), time.monotonic() - started)
        duration = time.monotonic() - started
        if response.code == 599:
            return Attempt(at, None, _describe(response.error), duration)
        return Attempt(at, response.code, None, duration)


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "no response"
    text = str(error) or type(error).__name__
    return text[:200]
