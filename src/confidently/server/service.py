"""The running service: the model, its adapters and the micro-batcher, behind two coroutines.

Routers call :meth:`Service.classify` and :meth:`Service.run`; both wait for the model's worker thread
without blocking the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from confidently.server.batching import MicroBatcher
from confidently.server.metrics import Metrics
from confidently.server.registry import AdapterRegistry
from confidently.server.schemas import ClassifyRequest, ClassifyResponse, TextResult
from confidently.server.served import Served
from confidently.server.settings import Settings

if TYPE_CHECKING:
    from confidently.backends.transformers_backend import TransformersBackend

T = TypeVar("T")


@dataclass(frozen=True)
class _Job:
    texts: list[str]
    top_tokens: int


class Service:
    """The model, its adapters and the batcher that feeds it; see :meth:`start`."""

    def __init__(self, registry: AdapterRegistry, settings: Settings, metrics: Metrics):
        self.registry = registry
        self.metrics = metrics
        self.batcher = MicroBatcher(self._score, max_batch=settings.batch_size, wait_s=settings.batch_wait_ms / 1000)

    @classmethod
    def start(cls, settings: Settings, metrics: Metrics, backend: TransformersBackend | None = None) -> Service:
        """Load the model (unless ``backend`` is given) and every adapter, then start the worker thread."""
        if backend is None:
            from confidently.backends.transformers_backend import TransformersBackend

            backend = TransformersBackend(settings.model, device=settings.device, dtype=settings.dtype)
        base = Served.base(backend, task=settings.task, batch_size=settings.batch_size,
                           calibrator=settings.calibrator, policy=settings.policy)
        registry = AdapterRegistry(backend, base, adapters_dir=settings.adapters_dir, batch_size=settings.batch_size,
                                   canary=settings.canary)
        registry.load_all()
        service = cls(registry, settings, metrics)
        service.batcher.start()
        return service

    def stop(self, timeout: float | None = None) -> None:
        """Finish queued work, then stop the worker thread."""
        self.batcher.stop(timeout)

    async def classify(self, request: ClassifyRequest) -> ClassifyResponse:
        return (await self.score(request))[1]

    async def score(self, request: ClassifyRequest) -> tuple[Served, ClassifyResponse]:
        """The response, and the entry that scored the texts (a reload may have replaced it while they waited)."""
        self.registry.get(request.adapter)  # unknown adapters fail before queueing
        future = self.batcher.submit(request.adapter, _Job(request.texts, request.top_tokens), len(request.texts))
        served, results = await asyncio.wrap_future(future)
        policy = served.policy
        return served, ClassifyResponse(
            model=served.base_model, adapter=served.name, labels=list(served.classifier.labels),
            threshold=None if policy is None else policy.threshold, decided_on=served.decided_on,
            results=results, bundle_version=served.bundle_version,
        )

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the model's worker thread, between batches."""
        return await asyncio.wrap_future(self.batcher.call(fn))

    def _score(self, adapter: Hashable, jobs: list[_Job]) -> list[tuple[Served, list[TextResult]]]:
        """The batcher's handler: one forward-pass batch for several requests of one adapter."""
        served = self.registry.get(adapter)  # may have been unloaded while the jobs waited
        results = served.classify([text for job in jobs for text in job.texts])
        self.metrics.batch(served.name, [r.decision for r in results])
        out, start = [], 0
        for job in jobs:
            mine = results[start:start + len(job.texts)]
            start += len(job.texts)
            if job.top_tokens:
                for result, text in zip(mine, job.texts):
                    result.top_tokens = served.top_tokens(text, job.top_tokens)
            out.append((served, mine))
        return out
