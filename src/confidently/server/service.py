"""The running service: the model, its adapters and the fair micro-batcher, behind two coroutines.

Routers call :meth:`Service.score` and :meth:`Service.run`; both wait for the model's worker thread
without blocking the event loop. Cancelling either (the client went away, or the drain window ran
out) abandons the work not yet started.

The model is any backend that holds adapters: the local one (``--backend transformers``) or a
serving engine (``--backend openai``: vLLM, llama.cpp's server), where each adapter is the engine's
model of that name. Everything after the scores (calibration, policy, prediction sets, review queue,
drift) is the same; an engine's failure fails only the work items it was scoring, with 502 (504 for
a timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, TypeVar

from confidently.server.batching import MicroBatcher
from confidently.server.metrics import Metrics
from confidently.server.registry import AdapterRegistry, AdapterReloadedError, UnknownAdapterError
from confidently.server.schemas import ClassifyRequest, ClassifyResponse, TextResult
from confidently.errors import BackendError
from confidently.server.served import Served, classify_together, engine_error, set_guarantee
from confidently.server.settings import Settings
from confidently.server.work import Job, split

if TYPE_CHECKING:
    from confidently.backends.base import Backend

#: Extra tries the server gives an engine request after a timeout, a connection error or a 5xx: one,
#: so a client waits at most about twice ``--engine-timeout`` before its 504.
ENGINE_RETRIES = 1

T = TypeVar("T")


class Service:
    """The model, its adapters and the batcher that feeds it; see :meth:`start`."""

    def __init__(self, registry: AdapterRegistry, settings: Settings, metrics: Metrics):
        self.registry = registry
        self.metrics = metrics
        self.batch_size = settings.batch_size
        # One work item costs at most about one longest text, so no request holds the model for longer.
        self.item_cost = settings.text_char_cap
        self.batcher = MicroBatcher(self._score, max_batch=settings.batch_size, wait_s=settings.batch_wait_ms / 1000,
                                    max_cost=self.item_cost)

    @classmethod
    def start(cls, settings: Settings, metrics: Metrics, backend: Backend | None = None) -> Service:
        """Load the model (unless ``backend`` is given) and every adapter, then start the worker thread."""
        if backend is None:
            backend = load_backend(settings)
        base = Served.base(backend, task=settings.task, scoring=settings.scoring,
                           calibration=settings.calibration)
        registry = AdapterRegistry(backend, base, adapters_dir=settings.adapters_dir, scoring=settings.scoring,
                                   canary=settings.canary)
        registry.check_base()  # a --calibration bundle whose canary fails is refused like an adapter's
        registry.load_all()
        service = cls(registry, settings, metrics)
        service.batcher.start()
        return service

    def stop(self, timeout: float | None = None) -> None:
        """Finish queued work, then stop the worker thread."""
        self.batcher.stop(timeout)

    async def score(self, request: ClassifyRequest) -> tuple[Served, ClassifyResponse]:
        """The response, and the entry that scored the texts (a reload may have replaced it while they waited)."""
        self.registry.get(request.adapter)  # unknown adapters fail before queueing
        parts = split(request.texts, request.top_tokens, max_texts=self.batch_size, max_cost=self.item_cost,
                      text_cap=self.item_cost,
                      adapter=request.adapter)
        # Every adapter is on the one base model, so one batching key: a batch mixes adapters.
        scored = await asyncio.wrap_future(self.batcher.submit(self.registry.backend.weights_id, parts))
        failed = next((part for part in scored if isinstance(part, Exception)), None)
        if failed is not None:
            raise failed
        # The entry that scored the texts, which a reload may have replaced while they waited.
        served = scored[0][0]
        if any(entry is not served for entry, _ in scored):
            raise AdapterReloadedError(f"adapter {served.name!r} was reloaded while this request was being "
                                       "scored, so its texts saw different weights: send it again")
        results = [result for _, part in scored for result in part]
        rule = served.calibrated.rule
        return served, ClassifyResponse(
            model=served.base_model, adapter=served.name, labels=list(served.classifier.labels),
            threshold=rule.threshold, decided_on=served.decided_on, guarantee=rule.guarantee,
            decision_rule=rule.decided_by, set_guarantee=set_guarantee(served), results=results,
            bundle_version=served.bundle_version,
        )

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the model's worker thread, between batches."""
        return await asyncio.wrap_future(self.batcher.call(fn))

    def _score(self, _model: Hashable, jobs: list[Job]) -> list[tuple[Served, list[TextResult]] | Exception]:
        """The batcher's handler: one forward pass over work items (of one or more requests) for any adapters.

        A work item whose adapter was unloaded while it waited gets the error, the others their results.
        """
        entries: dict[str | None, Served | Exception] = {}
        for job in jobs:
            if job.adapter not in entries:
                try:
                    entries[job.adapter] = self.registry.get(job.adapter)
                except UnknownAdapterError as error:
                    entries[job.adapter] = error
        texts: dict[str | None, list[str]] = {}
        for job in jobs:
            if not isinstance(entries[job.adapter], Exception):
                texts.setdefault(job.adapter, []).extend(job.texts)
        batch = [(entries[adapter], adapter_texts) for adapter, adapter_texts in texts.items()]
        results = dict(zip(texts, classify_together(batch))) if batch else {}
        scored = [(served.name, results[served.name]) for served, _ in batch
                  if not isinstance(results[served.name], Exception)]
        self.metrics.mixed_batch([(name, [r.decision for r in done]) for name, done in scored])
        for name, done in scored:
            self.metrics.review_reasons(name, [r.review_reason for r in done])
        out: list[tuple[Served, list[TextResult]] | Exception] = []
        taken = dict.fromkeys(texts, 0)
        for job in jobs:
            served = entries[job.adapter]
            if isinstance(served, Exception):
                out.append(served)
                continue
            if isinstance(results[job.adapter], Exception):  # the engine failed this entry's texts
                out.append(results[job.adapter])
                continue
            start = taken[job.adapter]
            mine = results[job.adapter][start:start + len(job.texts)]
            taken[job.adapter] += len(job.texts)
            try:
                if job.top_tokens:
                    for result, text in zip(mine, job.texts):
                        result.top_tokens = served.top_tokens(text, job.top_tokens)
            except BackendError as error:
                out.append(engine_error(served, error))
                continue
            out.append((served, mine))
        return out


def load_backend(settings: Settings) -> Backend:
    """The backend ``settings`` name: the local model, or the engine at ``settings.base_url``."""
    if settings.backend == "openai":
        from confidently.backends.openai_backend import OpenAIBackend

        # One request per text, all of a batch in flight together: the engine batches them itself.
        return OpenAIBackend(settings.model, base_url=settings.base_url, api_key_env=settings.api_key_env,
                             tokenizer=settings.tokenizer or "auto", engine_models=settings.engine_models,
                             timeout=settings.engine_timeout_s, max_retries=ENGINE_RETRIES,
                             max_concurrency=settings.batch_size)
    from confidently.backends.transformers_backend import TransformersBackend

    return TransformersBackend(settings.model, device=settings.device, dtype=settings.dtype)
