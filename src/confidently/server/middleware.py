"""Pure ASGI middlewares (they see every reply, errors and 404s included): metrics, and the
requests in flight (a concurrency limit, and a 503 rather than a 500 when shutdown cuts one short)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from confidently.server.handlers import BUSY_RETRY_AFTER_S, SHUTDOWN_RETRY_AFTER_S, error_reply
from confidently.server.metrics import Metrics


class RequestMetrics:
    """Counts requests by route template (not raw path, which would explode the label set) and times them."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.request(route, scope["method"], status, time.perf_counter() - start)


@dataclass
class RequestCounts:
    """HTTP requests by state, updated on the event loop only.

    Attributes
    ----------
    in_flight : requests being handled now.
    limited : of those, the ``/v1/`` ones (the concurrency limit counts these).
    answered : requests that got a reply from the application, since start.
    cut_short : requests the server cancelled (its drain window ran out) and answered 503, since start.
    """

    in_flight: int = 0
    limited: int = 0
    answered: int = 0
    cut_short: int = 0


class InFlightRequests:
    """Counts requests in flight, refuses ``/v1/`` requests beyond ``max_concurrency`` (503, JSON,
    ``Retry-After``), and answers 503 instead of uvicorn's bare 500 for a request the server cancels
    because its shutdown drain window ran out.

    Health and metrics stay outside the limit, so a busy server still reports itself.
    """

    def __init__(self, app: ASGIApp, counts: RequestCounts, max_concurrency: int, drain_timeout_s: float):
        self.app = app
        self.counts = counts
        self.max_concurrency = max_concurrency
        self.drain_timeout_s = drain_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counts = self.counts
        limited = scope["path"].startswith("/v1/")
        if limited and counts.limited >= self.max_concurrency:
            busy = error_reply(503, f"the server is at its limit of {self.max_concurrency} requests in flight: "
                                    "retry later", headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})
            await busy(scope, receive, send)
            return
        started = False

        async def send_and_watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        counts.in_flight += 1
        counts.limited += limited
        try:
            await self.app(scope, receive, send_and_watch)
            counts.answered += 1
        except asyncio.CancelledError:
            # uvicorn cancels what still runs when the drain window is over; its answer would be a 500.
            if started:
                raise
            counts.cut_short += 1
            refusal = error_reply(503, f"the server is shutting down and its drain window of "
                                       f"{self.drain_timeout_s:g} s ran out before this request was answered: "
                                       "send it again", headers={"Retry-After": str(SHUTDOWN_RETRY_AFTER_S)})
            await refusal(scope, receive, send)
        finally:
            counts.in_flight -= 1
            counts.limited -= limited

