"""The FastAPI application: created here, model loaded in the lifespan, routes in ``routers/``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from confidently import __version__
from confidently.server import handlers
from confidently.server.metrics import Metrics
from confidently.server.middleware import RequestMetrics
from confidently.server.routers import adapters, classify, health
from confidently.server.service import Service
from confidently.server.settings import Settings

if TYPE_CHECKING:
    from confidently.backends.transformers_backend import TransformersBackend

DESCRIPTION = """Calibrated classification with one base language model and many LoRA adapters.

`POST /v1/classify` returns, per text, the answer (label and confidence, calibrated when a calibrator
is loaded), the raw class probabilities, and a decision (`automate` / `review`) from the adapter's
decision policy. For the base model (`adapter` null) the calibrator and policy come from the server's
`--calibration` bundle: without one the calibrated fields are null, `calibrated` is false and the
decision is null.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model and adapters before serving; on shutdown, finish queued work first."""
    settings: Settings = app.state.settings
    # Loading takes seconds to minutes: off the event loop, so the process stays responsive to signals.
    app.state.service = await asyncio.to_thread(Service.start, settings, app.state.metrics, app.state.backend)
    try:
        yield
    finally:
        await asyncio.to_thread(app.state.service.stop, settings.shutdown_timeout_s)


def create_app(settings: Settings, *, backend: TransformersBackend | None = None) -> FastAPI:
    """The API for ``settings``; ``backend`` serves an already loaded base model instead of ``settings.model``."""
    app = FastAPI(title="confidently", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  max_body_size=settings.max_body_bytes)
    app.state.settings = settings
    app.state.backend = backend
    app.state.metrics = Metrics()
    handlers.install(app)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    for module in (classify, adapters, health):
        app.include_router(module.router)
    return app
