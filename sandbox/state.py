"""The stand-in's memory: checkout sessions, the payments behind them, and their events.

The lifecycle actions play the customer's, the bank's and the card network's part; each
changes what Stripe would change and records the one event Stripe would send for it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from dataclasses import dataclass
from typing import Any

from sandbox import objects
from sandbox.checkout_request import CheckoutRequest
from sandbox.errors import Refusal, invalid
from sandbox.expiry import ExpirySchedule
from sandbox.faults import FaultPlan
from sandbox.idempotency import IdempotencyStore
from sandbox.ids import new_id
from sandbox.objects import RequestRef
from sandbox.refunds import RefundOrigin, RefundRecord, check_refundable, refund_amount
from sandbox.webhooks import Deliverer, WebhookTarget

BANK_DELAYS = (2, 10, 60)  # seconds the checkout page offers for a bank debit to settle

log = logging.getLogger("sandbox.state")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    idempotency_key: str | None
    stripe_version: str | None = None  # the Stripe-Version the request asked for


class SandboxState:
    def __init__(
        self,
        *,
        api_key: str,
        price_id: str = "price_sandbox",
        unit_amount: int = 250000,
        currency: str = "usd",
        public_base_url: str = "http://127.0.0.1:12111",
        webhook: WebhookTarget | None = None,
        api_version: str = objects.API_VERSION,
    ) -> None:
        self.api_key = api_key
        self.price_id = price_id
        self.unit_amount = unit_amount
        self.currency = currency
        self.public_base_url = public_base_url
        # The account's default API version: answers to requests that name none, and every
        # event (Stripe renders events in the account's version, whoever caused them).
        self.api_version = api_version
        self.faults = FaultPlan()
        self.idempotency = IdempotencyStore()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.create_calls = 0
        self.expire_calls = 0  # sessions expired through the API
        self.refund_calls = 0  # refunds made through the API
        self.refund_log: list[RefundRecord] = []  # every refund, oldest first
        self.requests: list[RecordedRequest] = []
        self.payments: dict[str, objects.Payment] = {}
        # payment_intent_data[metadata] per session: Stripe copies it onto the intent and
        # charge, and it is how a refund or dispute is traced back to a project.
        self._intent_metadata: dict[str, dict[str, str]] = {}
        # Every event created is POSTed to the webhook endpoint, when there is one.
        self.deliverer = Deliverer(webhook) if webhook is not None else None
        # Bank debits settling later (scheduled from the checkout page).
        self._timers: set[asyncio.Task[None]] = set()
        self._expiry = ExpirySchedule(self._open_until, self.expire_due)

    # --- the API's side -----------------------------------------------------------------

    def create_session(self, request: CheckoutRequest) -> dict[str, Any]:
        self.create_calls += 1
        session = objects.new_session(
            request,
            unit_amount=self.unit_amount,
            currency=self.currency,
            base_url=self.public_base_url,
            now=self._now(),
        )
        self.sessions[session["id"]] = session
        self._intent_metadata[session["id"]] = dict(request.payment_intent_metadata)
        self._expiry.add(session["id"], int(session["expires_at"]))
        return session

    def session_of_payment_intent(self, payment_intent: str) -> str:
        """The session whose payment is `payment_intent`; KeyError when there is none."""
        for session_id, payment in self.payments.items():
            if payment.payment_intent == payment_intent:
                return session_id
        raise KeyError(f"no such payment_intent: {payment_intent}")

    # --- lifecycle: each returns the one event it created -------------------------------

    def complete_session(self, session_id: str, *, payment_status: str = "paid") -> dict[str, Any]:
        """The customer paid by card (`paid`) or started a bank debit that settles later
        (`unpaid`, followed by async_payment_succeeded or async_payment_failed)."""
        if payment_status not in ("paid", "unpaid"):
            raise ValueError(f"payment_status must be 'paid' or 'unpaid', not {payment_status!r}")
        session = self._session(session_id, status="open")
        if session["amount_total"] is None:
            raise ValueError(f"checkout.session {session_id} takes no payment")
        customer = f"checkout.session.completed.{payment_status}"
        payment = objects.Payment(
            payment_intent=new_id("pi_3"),
            charge=new_id("ch_3"),
            amount=int(session["amount_total"]),
            currency=str(session["currency"]),
            metadata=dict(self._intent_metadata[session_id]),
            customer_example=customer,
            created=self._now(),
        )
        self.payments[session_id] = payment
        session.update(
            {
                "status": "complete",
                "payment_status": payment_status,
                "payment_intent": payment.payment_intent,
                "customer_details": objects.customer_details(customer),
                "payment_method_types": objects.payment_method_types(customer),
                "url": None,
            }
        )
        return self._emit("checkout.session.completed", session)

    def async_payment_succeeded(self, session_id: str) -> dict[str, Any]:
        session = self._awaiting_bank(session_id)
        session["payment_status"] = "paid"
        return self._emit("checkout.session.async_payment_succeeded", session)

    def async_payment_failed(self, session_id: str) -> dict[str, Any]:
        session = self._awaiting_bank(session_id)
        self.payments[session_id].failed = True
        return self._emit("checkout.session.async_payment_failed", session)

    def expire_session(
        self, session_id: str, *, request: RequestRef | None = None
    ) -> dict[str, Any]:
        """The session expires unpaid: its time ran out (`request` None), or the API was
        asked to expire it (`request` is that call). Only an open session can expire."""
        session = self._session(session_id)
        if session["status"] != "open":
            # Stripe's answer, word for word (it sends no error code with it).
            raise Refusal(
                invalid(
                    'Only Checkout Sessions with a status in ["open"] can be expired. This '
                    f"Checkout Session has a status of `{session['status']}`."
                )
            )
        session.update(
            {"status": "expired", "url": None, "payment_intent": None, "customer_details": None}
        )
        if request is not None:
            self.expire_calls += 1
        return self._emit("checkout.session.expired", session, request=request)

    def expire_due(self, now: float | None = None) -> list[dict[str, Any]]:
        """Expire every open session whose `expires_at` is at or before `now` (default: the
        time now); returns their events. The timer calls it at each `expires_at`, and so does
        every API request and page before it answers. A test may pass a `now` ahead of the
        clock to let time pass."""
        return [self.expire_session(session_id) for session_id in self._expiry.due(now)]

    def set_expires_at(self, session_id: str, expires_at: float) -> None:
        """For tests: move an open session's `expires_at` (the API refuses one less than 30
        minutes ahead, as Stripe does). It then expires by itself at that time, sending
        `checkout.session.expired`, on the timer of the loop that serves the sandbox."""
        session = self._session(session_id, status="open")
        session["expires_at"] = int(expires_at)
        self._expiry.add(session_id, int(expires_at))

    def refund(
        self,
        session_id: str,
        *,
        amount: int | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A person refunds the session's charge (dashboard, trigger): what is left of it,
        or `amount` of it. Returns the `charge.refunded` event."""
        _, event = self.create_refund(
            session_id,
            amount=amount,
            reason=reason,
            metadata=metadata,
            origin=RefundOrigin.DASHBOARD,
            request=RequestRef.dashboard(),
        )
        return event

    def create_refund(
        self,
        session_id: str,
        *,
        amount: int | None,
        reason: str | None,
        metadata: dict[str, str] | None,
        origin: RefundOrigin,
        request: RequestRef,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Refund `amount` of the session's charge (None: all that is left), whoever asks;
        returns the Refund and the `charge.refunded` event, which carries the charge's
        cumulative `amount_refunded`. Raises Refusal with Stripe's error when Stripe would
        refuse it."""
        payment = self._refundable(session_id)
        amount = refund_amount(payment, amount)
        refund = objects.refund(payment, amount, self._now(), reason=reason, metadata=metadata)
        payment.refunds.append(refund)
        self.refund_log.append(RefundRecord(copy.deepcopy(refund), session_id, origin, request))
        if origin is RefundOrigin.API:
            self.refund_calls += 1
        event = self._emit("charge.refunded", objects.charge(payment), request=request)
        return refund, event

    def open_dispute(self, session_id: str) -> dict[str, Any]:
        payment = self._paid(session_id)
        if payment.dispute is not None:
            raise ValueError(f"the charge of {session_id} is already disputed")
        payment.dispute = objects.dispute(payment, self._now())
        return self._emit("charge.dispute.created", payment.dispute)

    def close_dispute(self, session_id: str, *, won: bool) -> dict[str, Any]:
        payment = self._paid(session_id)
        if payment.dispute is None or payment.dispute["status"] in ("won", "lost"):
            raise ValueError(f"the charge of {session_id} has no open dispute")
        payment.dispute = objects.closed_dispute(payment.dispute, won=won)
        return self._emit("charge.dispute.closed", payment.dispute)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run expiry timers and webhook deliveries on `loop` (a server's, on its own thread),
        whatever thread calls the lifecycle methods."""
        self._expiry.attach(loop)
        if self.deliverer is not None:
            self.deliverer.attach(loop)

    def add_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Store an event built elsewhere (by hand, in a test) so that GET /v1/events lists it.

        With a webhook endpoint configured, the event is also delivered to it (in the
        background, on the running loop)."""
        self.events.append(event)
        if self.deliverer is not None:
            self.deliverer.deliver(event)
        return event

    # --- webhooks and what happens later -------------------------------------------------

    def event(self, event_id: str) -> dict[str, Any]:
        for event in self.events:
            if event["id"] == event_id:
                return event
        raise KeyError(f"no such event: {event_id}")

    def resend(self, event_id: str) -> dict[str, Any]:
        """Deliver an event again, same id and payload (as the Dashboard's "Resend" does)."""
        event = self.event(event_id)
        if self.deliverer is None:
            raise ValueError("no webhook endpoint is configured")
        self.deliverer.deliver(event, resend=True)
        return event

    def settle_bank_debit_later(self, session_id: str, *, succeed: bool, delay: float) -> None:
        """After `delay` seconds, the bank debit of `session_id` succeeds or fails (needs a
        running loop: the checkout page schedules it)."""
        self._awaiting_bank(session_id)

        async def settle() -> None:
            await asyncio.sleep(delay)
            try:
                if succeed:
                    self.async_payment_succeeded(session_id)
                else:
                    self.async_payment_failed(session_id)
            except (KeyError, ValueError) as error:
                log.warning("bank debit of %s not settled: %s", session_id, error)

        task = asyncio.get_running_loop().create_task(settle())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def settled(self) -> None:
        """Wait until scheduled bank debits have settled and every webhook delivery has
        succeeded or given up (bound it with `asyncio.timeout`)."""
        while self._timers or (self.deliverer is not None and self.deliverer.pending):
            await asyncio.gather(*list(self._timers), return_exceptions=True)
            if self.deliverer is not None:
                await self.deliverer.settled()

    async def close(self) -> None:
        """Cancel pending bank debits, expiry timers and deliveries (the server is stopping)."""
        self._expiry.close()
        timers = list(self._timers)
        for task in timers:
            task.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        if self.deliverer is not None:
            await self.deliverer.close()

    # --- helpers ------------------------------------------------------------------------

    def _now(self) -> int:
        return int(time.time())

    def _session(self, session_id: str, *, status: str | None = None) -> dict[str, Any]:
        session = self.sessions.get(session_id)
        if session is None:
            raise KeyError(f"no such checkout.session: {session_id}")
        if status is not None and session["status"] != status:
            raise ValueError(f"checkout.session {session_id} is {session['status']}, not {status}")
        return session

    def _awaiting_bank(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id, status="complete")
        payment = self.payments[session_id]
        if session["payment_status"] != "unpaid" or payment.failed:
            raise ValueError(f"checkout.session {session_id} has no bank debit pending")
        return session

    def _open_until(self, session_id: str) -> int | None:
        session = self.sessions.get(session_id)
        if session is None or session["status"] != "open":
            return None
        return int(session["expires_at"])

    def _refundable(self, session_id: str) -> objects.Payment:
        session = self._session(session_id, status="complete")
        payment = self.payments[session_id]
        check_refundable(payment, paid=session["payment_status"] == "paid")
        return payment

    def _paid(self, session_id: str) -> objects.Payment:
        session = self._session(session_id, status="complete")
        if session["payment_status"] != "paid":
            raise ValueError(f"checkout.session {session_id} is not paid")
        return self.payments[session_id]

    def _emit(
        self, event_type: str, obj: dict[str, Any], *, request: RequestRef | None = None
    ) -> dict[str, Any]:
        # Never earlier than the last event: list order and `created` must agree.
        created = max([self._now(), *(int(e.get("created", 0)) for e in self.events[-1:])])
        return self.add_event(
            objects.event(
                event_type, obj, created=created, api_version=self.api_version, request=request
            )
        )
