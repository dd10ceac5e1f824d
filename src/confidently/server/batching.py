"""Dynamic micro-batching on one worker thread that owns the model.

Requests are queued per key (the adapter). The worker takes the key whose oldest request has waited
longest, lets that request wait up to ``wait_s`` for others of the same key to join, then hands the
batch (at most ``max_batch`` items, never splitting a request) to the handler. While the model is busy
new requests pile up, so under load batches fill without any waiting; alone, a request waits at most
``wait_s``. Other work on the model (loading an adapter) is queued with :meth:`MicroBatcher.call`
and runs between batches, so nothing ever touches the model concurrently.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

#: Scores one batch: a key and the payloads queued under it → one result per payload, in order.
Handler = Callable[[Hashable, list[Any]], list[Any]]


class ShuttingDownError(RuntimeError):
    """The batcher was stopped and takes no more work."""


@dataclass
class _Job:
    key: Hashable
    payload: Any
    size: int
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Groups queued requests by key and runs them on a single thread.

    Parameters
    ----------
    handler : called on the worker thread with a key and a list of payloads.
    max_batch : most items (sum of the requests' sizes) per batch; a larger request runs alone.
    wait_s : how long the oldest queued request waits for a batch to fill.
    """

    def __init__(self, handler: Handler, *, max_batch: int, wait_s: float):
        self._handler = handler
        self.max_batch = max_batch
        self.wait_s = wait_s
        self._queues: dict[Hashable, deque[_Job]] = {}
        self._calls: deque[tuple[Callable[[], Any], Future]] = deque()
        self._queued = 0
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="confidently-model", daemon=True)

    @property
    def queued(self) -> int:
        """Items waiting (not counting the batch being scored)."""
        return self._queued

    def start(self) -> None:
        self._thread.start()

    def submit(self, key: Hashable, payload: Any, size: int) -> Future:
        """Queue ``payload`` (``size`` items) under ``key``; the future gets the handler's result for it."""
        job = _Job(key, payload, size)
        with self._cond:
            self._refuse_if_closing()
            self._queues.setdefault(key, deque()).append(job)
            self._queued += size
            self._cond.notify()
        return job.future

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run ``fn`` on the worker thread before the next batch; the future gets its result."""
        future: Future = Future()
        with self._cond:
            self._refuse_if_closing()
            self._calls.append((fn, future))
            self._cond.notify()
        return future

    def stop(self, timeout: float | None = None) -> None:
        """Refuse new work, finish everything queued, then end the worker thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- worker thread -------------------------------------------------------------------------
    def _refuse_if_closing(self) -> None:
        if self._closing:
            raise ShuttingDownError("the server is shutting down")

    def _run(self) -> None:
        while (work := self._next_work()) is not None:
            if isinstance(work, tuple):
                fn, future = work
                if future.set_running_or_notify_cancel():
                    _settle(future, fn)
            else:
                self._run_batch(work)

    def _next_work(self) -> tuple[Callable[[], Any], Future] | list[_Job] | None:
        with self._cond:
            while True:
                if self._calls:
                    return self._calls.popleft()
                if self._queues:
                    key = min(self._queues, key=lambda k: self._queues[k][0].arrived)
                    queue = self._queues[key]
                    wait = queue[0].arrived + self.wait_s - time.monotonic()
                    if wait <= 0 or self._closing or sum(job.size for job in queue) >= self.max_batch:
                        return self._take(key)
                    self._cond.wait(wait)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()

    def _take(self, key: Hashable) -> list[_Job]:
        queue = self._queues[key]
        batch = [queue.popleft()]
        total = batch[0].size
        while queue and total + queue[0].size <= self.max_batch:
            total += queue[0].size
            batch.append(queue.popleft())
        if not queue:
            del self._queues[key]
        self._queued -= total
        return batch

    def _run_batch(self, batch: list[_Job]) -> None:
        # A caller that gave up (client disconnected) cancelled its future: skip its texts.
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            results = self._handler(live[0].key, [job.payload for job in live])
        except Exception as error:  # handed to every caller; the worker keeps running
            for job in live:
                job.future.set_exception(error)
            return
        for job, result in zip(live, results, strict=True):
            job.future.set_result(result)


def _settle(future: Future, fn: Callable[[], Any]) -> None:
    try:
        future.set_result(fn())
    except Exception as error:  # handed to the caller; the worker keeps running
        future.set_exception(error)
