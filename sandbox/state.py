"""The stand-in's memory: checkout sessions, the payments behind them, and their events.

The lifecycle actions play the customer's, the bank's and the card network's part; each
changes what Stripe would change and records the one event Stripe would send for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sandbox import objects
from sandbox.checkout_request import CheckoutRequest
from sandbox.faults import FaultPlan
from sandbox.idempotency import IdempotencyStore
from sandbox.ids import new_id
from sandbox.webhooks import Deliverer, WebhookTarget

DATA = objects.DATA
BANK_DELAYS = (2, 10, 60)  # seconds the checkout page offers for a bank debit to settle

log = logging.getLogger("sandbox.state")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    idempotency_key: str | None


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
    ) -> None:
        self.api_key = api_key
        self.price_id = price_id
        self.unit_amount = unit_amount
        self.currency = currency
        self.public_base_url = public_base_url
        self.faults = FaultPlan()
        self.idempotency = IdempotencyStore()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.create_calls = 0
        self.requests: list[RecordedRequest] = []
        self.payments: dict[str, objects.Payment] = {}
        # payment_intent_data[metadata] per session: Stripe copies it onto the intent and
        # charge, and it is how a refund or dispute is traced back to a project.
        self._intent_metadata: dict[str, dict[str, str]] = {}
        # Every event created is POSTed to the webhook endpoint, when there is one.
        self.deliverer = Deliverer(webhook) if webhook is not None else None
        # Bank debits settling later (scheduled from the checkout page).
        self._timers: set[asyncio.Task[None]] = set()

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
        return session

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

    def expire_session(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id, status="open")
        session.update(
            {"status": "expired", "url": None, "payment_intent": None, "customer_details": None}
        )
        return self._emit("checkout.session.expired", session)

    def refund(self, session_id: str, *, amount: int | None = None) -> dict[str, Any]:
        """Refund the session's charge: what is left of it, or `amount` of it."""
        payment = self._paid(session_id)
        left = payment.amount - payment.amount_refunded
        amount = left if amount is None else amount
        if not 0 < amount <= left:
            raise ValueError(f"can refund 1..{left} of {session_id}'s charge, not {amount}")
        payment.refunds.append(objects.refund(payment, amount, self._now()))
        # Refunds are made through the API, so the event names that request.
        return self._emit("charge.refunded", objects.charge(payment), by_api_request=True)

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
        """Cancel pending bank debits and deliveries (the server is stopping)."""
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

    def _paid(self, session_id: str) -> objects.Payment:
        session = self._session(session_id, status="complete")
        if session["payment_status"] != "paid":
            raise ValueError(f"checkout.session {session_id} is not paid")
        return self.payments[session_id]

    def _emit(
        self, event_type: str, obj: dict[str, Any], *, by_api_request: bool = False
    ) -> dict[str, Any]:
        # Never earlier than the last event: list order and `created` must agree.
        created = max([self._now(), *(int(e.get("created", 0)) for e in self.events[-1:])])
        return self.add_event(
            objects.event(event_type, obj, created=created, by_api_request=by_api_request)
        )
