"""``GET /healthz`` (liveness, model and limits) and ``GET /metrics`` (Prometheus text)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from confidently.server.deps import LoopDep, MetricsDep, ServiceDep, SettingsDep
from confidently.server.metrics import CONTENT_TYPE
from confidently.server.schemas import Health, Limits

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
async def healthz(request: Request, settings: SettingsDep, service: ServiceDep) -> Health:
    """The server is up and its model loaded; the work waiting, and the request limits."""
    registry = service.registry
    return Health(
        status="ok", model=registry.backend.model_name, weights_id=registry.backend.weights_id,
        adapters=len(registry), queued_texts=service.batcher.queued,
        in_flight=request.app.state.counts.in_flight - 1,
        limits=Limits(max_texts=settings.max_texts, max_text_chars=settings.text_char_cap,
                      max_body_bytes=settings.max_body_bytes, max_request_cost=settings.max_request_cost,
                      max_concurrency=settings.max_concurrency, read_timeout_s=settings.read_timeout_s,
                      batch_size=settings.batch_size),
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(metrics: MetricsDep, service: ServiceDep, loop: LoopDep) -> PlainTextResponse:
    """Requests, latency, batch sizes, texts and decisions per adapter; drift and live accuracy
    (Prometheus text format)."""
    production = await asyncio.to_thread(loop.render, service)
    return PlainTextResponse(metrics.render(service.batcher.queued) + production, media_type=CONTENT_TYPE)
