"""What the service owes Stripe, sent after the commit that made it owed and retried until
Stripe confirms it (SPEC "Duplicate payments", "At most one open session per project").

Each action carries an Idempotency-Key derived from its object (`refund-duplicate-<pi>`,
`expire-<cs>`), so no retry, replica or delivery order can make Stripe act twice; an action
Stripe does not confirm (a crash, Stripe down) stays in stripe_actions for the sweep.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import asyncpg

from service.config import Settings
from service.db import Queries
from service.errors import DatabaseUnavailable, StripeFailed
from service.metrics import Metrics
from service.payments.common import connection, log
from service.stripe_gateway import StripeGateway


class ActionKind(StrEnum):
    REFUND_DUPLICATE = "refund_duplicate"
    EXPIRE_SESSION = "expire_session"


class Sent(StrEnum):
    """What one attempt at an owed action came to (the metrics' result label)."""

    CONFIRMED = "confirmed"
    FAILED = "failed"
    DISABLED = "disabled"  # DUPLICATE_PAYMENT_REFUNDS=off: recorded and alerted only


@dataclass
class OutboxRun:
    confirmed: int = 0
    failed: int = 0
    disabled: int = 0


@dataclass(eq=False)
class Outbox:
    """Sends the owed actions; `schedule` does so in the background after a commit."""

    pool: asyncpg.Pool
    queries: Queries
    gateway: StripeGateway
    settings: Settings
    metrics: Metrics
    _tasks: set[asyncio.Task[OutboxRun]] = field(default_factory=set, init=False)

    def schedule(self, project_id: str) -> None:
        """Send the project's owed actions without making the caller (a webhook) wait."""
        task = asyncio.get_running_loop().create_task(self.send_owed(project_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the scheduled sends (a stopping process; tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def send_owed(self, project_id: str | None = None) -> OutboxRun:
        """Send what is owed: one project's, or (None) every project's."""
        run = OutboxRun()
        try:
            async with connection(self.pool) as conn:
                owed = [
                    dict(row)
                    async for row in self.queries.list_owed_actions(conn, project_id=project_id)
                ]
        except DatabaseUnavailable:
            log.warning("owed Stripe actions not sent: the database is unavailable")
            return run
        for action in owed:
            result = await self._send(action)
            setattr(run, str(result), getattr(run, str(result)) + 1)
        return run

    async def _send(self, action: dict[str, Any]) -> Sent:
        kind = ActionKind(action["kind"])
        fields = {
            "event": "stripe_action",
            "kind": str(kind),
            "object_id": action["object_id"],
            "project_id": action["project_id"],
        }
        if kind is ActionKind.REFUND_DUPLICATE and not self.settings.duplicate_payment_refunds:
            if action["attempts"] == 0:
                log.warning(
                    "duplicate payment NOT refunded: DUPLICATE_PAYMENT_REFUNDS=off",
                    extra={"fields": fields},
                )
                self._count(kind, Sent.DISABLED)
                await self._note(action, "refunds are turned off (DUPLICATE_PAYMENT_REFUNDS=off)")
            return Sent.DISABLED
        try:
            result = await self._call(kind, action)
        except StripeFailed as failure:
            if kind is ActionKind.REFUND_DUPLICATE and failure.code == "charge_already_refunded":
                result = "already refunded"
            else:
                log.warning(
                    "owed Stripe action failed; the sweep retries it",
                    extra={"fields": fields | {"reason": failure.message}},
                )
                self._count(kind, Sent.FAILED)
                await self._note(action, failure.message)
                return Sent.FAILED
        await self._confirm(action, result)
        self._count(kind, Sent.CONFIRMED)
        message = (
            "duplicate payment refunded"
            if kind is ActionKind.REFUND_DUPLICATE
            else ("superseded checkout session expired")
        )
        log.warning(message, extra={"fields": fields | {"stripe_result": result}})
        return Sent.CONFIRMED

    async def _call(self, kind: ActionKind, action: dict[str, Any]) -> str:
        if kind is ActionKind.REFUND_DUPLICATE:
            return await self.gateway.refund_duplicate(
                action["object_id"], action["project_id"], action["idempotency_key"]
            )
        expired = await self.gateway.expire_checkout_session(action["object_id"])
        return "expired" if expired is not None else "not open"

    def _count(self, kind: ActionKind, sent: Sent) -> None:
        if kind is ActionKind.REFUND_DUPLICATE:
            self.metrics.duplicate_refunds.labels(str(sent)).inc()
        else:
            self.metrics.session_expiries.labels(str(sent)).inc()

    async def _confirm(self, action: dict[str, Any], result: str) -> None:
        async with connection(self.pool) as conn:
            await self.queries.confirm_action(
                conn, action_id=action["action_id"], stripe_result=result
            )

    async def _note(self, action: dict[str, Any], error: str) -> None:
        try:
            async with connection(self.pool) as conn:
                await self.queries.note_action_failure(
                    conn, action_id=action["action_id"], last_error=error
                )
        except DatabaseUnavailable:
            pass  # still owed either way
