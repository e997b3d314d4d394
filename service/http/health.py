"""GET /health: the database answers, in plain text for probes."""

from __future__ import annotations

from http.client import responses
from typing import Any

from service import payments
from service.errors import DatabaseUnavailable
from service.http.base import BaseHandler

HEALTH_TIMEOUT_SECONDS = 2.0


class HealthHandler(BaseHandler):
    route = "health"

    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        try:
            await payments.check_database(self.ctx.pool, self.ctx.queries, HEALTH_TIMEOUT_SECONDS)
        except DatabaseUnavailable as error:
            self.set_status(500)
            self.finish(error.message)
            return
        self.finish("OK")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(responses.get(status_code, "error"))
