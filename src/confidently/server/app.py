"""The FastAPI application: created here, model loaded in the lifespan, routes in ``routers/``."""

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
from confidently.server.middleware import RequestMetrics
from confidently.server.routers import adapters, classify, drift, health, review
from confidently.server.service import Service
from confidently.server.versions import poll_versions
from confidently.server.settings import Settings

if TYPE_CHECKING:
    from confidently.backends.transformers_backend import TransformersBackend

DESCRIPTION = """Calibrated classification with one base language model and many LoRA adapters.

`POST /v1/classify` returns, per text, raw and calibrated class probabilities and a decision
(`automate` / `review`) from the adapter's decision policy. For the base model (`adapter` null) the
calibrator and policy are the server's `--calibrator` / `--policy` files: without a calibrator the
calibrated fields are null and the policy's threshold applies to the raw confidence; without a policy
the decision is null.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model and adapters before serving; on shutdown, finish queued work first."""
    settings: Settings = app.state.settings
    # Loading takes seconds to minutes: off the event loop, so the process stays responsive to signals.
    app.state.service = await asyncio.to_thread(Service.start, settings, app.state.metrics, app.state.backend)
    await asyncio.to_thread(app.state.loop.open)
    poller = asyncio.create_task(poll_versions(app.state.service, settings.version_poll_s))
    try:
        yield
    finally:
        poller.cancel()
        await asyncio.to_thread(app.state.service.stop, settings.shutdown_timeout_s)
        app.state.loop.close()


def create_app(settings: Settings, *, backend: TransformersBackend | None = None) -> FastAPI:
    """The API for ``settings``; ``backend`` serves an already loaded base model instead of ``settings.model``."""
    app = FastAPI(title="confidently", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  max_body_size=settings.max_body_bytes)
    app.state.settings = settings
    app.state.backend = backend
    app.state.metrics = Metrics()
    app.state.loop = FeedbackLoop(settings)
    handlers.install(app)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    for module in (classify, adapters, health, drift, review):
        app.include_router(module.router)
    return app
