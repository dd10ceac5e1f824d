"""The FastAPI application: created here, model loaded by :func:`load_service` (or else in the
lifespan), routes in ``routers/``.

There is no browsable ``/docs`` page: FastAPI's would load its scripts from a CDN, which a server
meant to run offline must not need. The schema is at ``/openapi.json``, for any OpenAPI viewer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from confidently import __version__
from confidently.server import handlers
from confidently.server.loop import FeedbackLoop
from confidently.server.metrics import Metrics
from confidently.server.middleware import InFlightRequests, RequestCounts, RequestMetrics
from confidently.server.routers import adapters, classify, drift, health, review
from confidently.server.service import Service
from confidently.server.settings import Settings
from confidently.server.versions import poll_versions

if TYPE_CHECKING:
    from confidently.backends.base import Backend

DESCRIPTION = """Calibrated classification with one base language model and many LoRA adapters.

`POST /v1/classify` returns, per text, the answer (label and confidence, calibrated when a calibrator
is loaded), the raw class probabilities, and a decision (`automate` / `review`) from the adapter's
decision policy. For the base model (`adapter` null) the calibrator and policy come from the server's
`--calibration` bundle: without one the calibrated fields are null, `calibrated` is false and the
decision is null.
"""


def load_service(app: FastAPI) -> None:
    """Open the feedback store, then load the model and every adapter for ``app`` now (``confidently serve``
    does, before listening)."""
    app.state.loop.open()
    app.state.service = Service.start(app.state.settings, app.state.metrics, app.state.backend)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model and adapters before serving unless already loaded; on shutdown, finish queued work."""
    settings: Settings = app.state.settings
    if app.state.service is None:
        # Loading takes seconds to minutes: off the event loop, so the process stays responsive to signals.
        await asyncio.to_thread(load_service, app)
    poller = asyncio.create_task(poll_versions(app.state.service, settings.version_poll_s))
    try:
        yield
    finally:
        poller.cancel()
        await asyncio.to_thread(app.state.service.stop, settings.drain_timeout_s)
        app.state.loop.close()


def create_app(settings: Settings, *, backend: Backend | None = None) -> FastAPI:
    """The API for ``settings``; ``backend`` serves an already loaded base model instead of ``settings.model``."""
    app = FastAPI(title="confidently", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  max_body_size=settings.max_body_bytes, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.backend = backend
    app.state.service = None
    app.state.metrics = Metrics()
    app.state.loop = FeedbackLoop(settings)
    app.state.counts = RequestCounts()
    handlers.install(app)
    # The last added is the outermost: metrics see the limit's 503s.
    app.add_middleware(InFlightRequests, counts=app.state.counts, max_concurrency=settings.max_concurrency,
                       drain_timeout_s=settings.drain_timeout_s)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    for module in (classify, adapters, health, drift, review):
        app.include_router(module.router)
    return app
