"""Fair, dynamic micro-batching on one worker thread that owns the model.

A request arrives already split into parts (work items of bounded cost). Parts are scheduled by
self-clocked fair queuing: each request has a start tag, the virtual time at which it arrived plus
the cost of its parts served so far; the worker serves the request whose next part would finish
first in virtual time (start tag + that part's cost), and the virtual time moves to that finish tag.
So a small request that arrives while a big one is being scored goes next, a client that keeps
sending small requests gets about the same share of the model as one sending big ones, and no
request holds the model for longer than one part at a time.

The part chosen is batched with the next parts of other requests for the same key (the server uses
the base model, so one batch mixes its adapters' requests), in the same order, up to ``max_batch`` items and ``max_cost`` cost. A request's first part waits up to
``wait_s`` for others to join it; under load batches fill without waiting. Other work on the model
(loading an adapter) is queued with :meth:`MicroBatcher.call` and runs between batches, so nothing
ever touches the model concurrently.

A request is abandoned by cancelling its future (the server does so when the client disconnects):
its queued parts are dropped at once and a part already running is its last.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

#: Runs one batch: a key and the payloads of the parts batched under it → one result per payload, in order.
Handler = Callable[[Hashable, list[Any]], list[Any]]


class ShuttingDownError(RuntimeError):
    """The batcher was stopped and takes no more work."""


@dataclass(frozen=True)
class Part:
    """One work item of a request.

    Attributes
    ----------
    payload : handed to the handler.
    size : items it adds to a batch (texts), counted against ``max_batch``.
    cost : how long it holds the model, in any unit shared by all parts (e.g. characters × passes).
    """

    payload: Any
    size: int = 1
    cost: float = 1.0


@dataclass(eq=False)
class _Request:
    key: Hashable
    parts: deque[tuple[int, Part]]
    tag: float
    order: int
    future: Future = field(default_factory=Future)
    results: list[Any] = field(default_factory=list)
    unfinished: int = 0
    started: bool = False
    arrived: float = field(default_factory=time.monotonic)

    @property
    def waiting(self) -> int:
        return sum(part.size for _, part in self.parts)

    def turn(self) -> tuple[float, int]:
        """When this request's next part would finish in virtual time; earliest goes first, then oldest."""
        return self.tag + self.parts[0][1].cost, self.order


class MicroBatcher:
    """Schedules requests' parts fairly and runs them, batched by key, on a single thread.

    Parameters
    ----------
    handler : called on the worker thread with a key and a list of payloads.
    max_batch : most items (sum of the parts' sizes) per batch; a larger part runs alone.
    wait_s : how long a request's first part waits for a batch to fill.
    max_cost : most cost per batch (None: no cap); a costlier part runs alone.
    """

    def __init__(self, handler: Handler, *, max_batch: int, wait_s: float, max_cost: float | None = None):
        self._handler = handler
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.max_cost = max_cost
        self._requests: list[_Request] = []
        self._calls: deque[tuple[Callable[[], Any], Future]] = deque()
        self._virtual_time = 0.0
        self._arrivals = itertools.count()
        self._queued = 0
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="confidently-model", daemon=True)

    @property
    def queued(self) -> int:
        """Items waiting (not counting the batch being run)."""
        return self._queued

    def start(self) -> None:
        self._thread.start()

    def submit(self, key: Hashable, parts: Sequence[Part]) -> Future:
        """Queue a request's ``parts`` under ``key``; the future gets the handler's results, one per part.

        Cancelling the future abandons the request: parts not yet run are dropped.
        """
        if not parts:
            raise ValueError("a request needs at least one part")
        with self._cond:
            self._refuse_if_closing()
            request = _Request(key, deque(enumerate(parts)), tag=self._virtual_time, order=next(self._arrivals))
            request.results = [None] * len(parts)
            request.unfinished = len(parts)
            self._requests.append(request)
            self._queued += request.waiting
            self._cond.notify()
        request.future.add_done_callback(lambda future: self._forget(request) if future.cancelled() else None)
        return request.future

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

    # -- called from any thread ------------------------------------------------------------------
    def _refuse_if_closing(self) -> None:
        if self._closing:
            raise ShuttingDownError("the server is shutting down")

    def _forget(self, request: _Request) -> None:
        with self._cond:
            if request in self._requests:
                self._requests.remove(request)
                self._queued -= request.waiting
                request.parts.clear()

    # -- worker thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while (work := self._next_work()) is not None:
            if isinstance(work, tuple):
                fn, future = work
                if future.set_running_or_notify_cancel():
                    _settle(future, fn)
            else:
                self._run_batch(work)

    def _next_work(self) -> tuple[Callable[[], Any], Future] | list[tuple[_Request, int, Part]] | None:
        with self._cond:
            while True:
                if self._calls:
                    return self._calls.popleft()
                if self._requests:
                    head = min(self._requests, key=_Request.turn)
                    batch = self._fill(head)
                    wait = head.arrived + self.wait_s - time.monotonic()
                    if head.started or wait <= 0 or self._closing or self._full(batch):
                        return self._take(batch)
                    self._cond.wait(wait)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()

    def _fill(self, head: _Request) -> list[_Request]:
        """``head`` and the other requests of its key, in turn order, whose next parts fit beside it."""
        batch, size, cost = [head], head.parts[0][1].size, head.parts[0][1].cost
        others = sorted((r for r in self._requests if r is not head and r.key == head.key), key=_Request.turn)
        for request in others:
            part = request.parts[0][1]
            if size + part.size > self.max_batch or (self.max_cost is not None and cost + part.cost > self.max_cost):
                continue
            batch.append(request)
            size, cost = size + part.size, cost + part.cost
        return batch

    def _full(self, batch: list[_Request]) -> bool:
        size = sum(request.parts[0][1].size for request in batch)
        cost = sum(request.parts[0][1].cost for request in batch)
        return size >= self.max_batch or (self.max_cost is not None and cost >= self.max_cost)

    def _take(self, batch: list[_Request]) -> list[tuple[_Request, int, Part]]:
        self._virtual_time = max(self._virtual_time, batch[0].turn()[0])
        taken = []
        for request in batch:
            index, part = request.parts.popleft()
            request.tag += part.cost
            request.started = True
            self._queued -= part.size
            if not request.parts:
                self._requests.remove(request)
            taken.append((request, index, part))
        return taken

    def _run_batch(self, batch: list[tuple[_Request, int, Part]]) -> None:
        # A request abandoned while its part waited for the worker is skipped.
        live = [(request, index, part) for request, index, part in batch if not request.future.cancelled()]
        if not live:
            return
        try:
            results = self._handler(live[0][0].key, [part.payload for _, _, part in live])
        except Exception as error:  # handed to every caller of the batch; the worker keeps running
            for request, _, _ in live:
                self._forget(request)
                _set(request.future, error=error)
            return
        for (request, index, _), result in zip(live, results, strict=True):
            request.results[index] = result
            request.unfinished -= 1
            if request.unfinished == 0:
                _set(request.future, result=request.results)


def _set(future: Future, *, result: Any = None, error: BaseException | None = None) -> None:
    """Settle ``future`` unless its caller cancelled it meanwhile (a race with another thread)."""
    try:
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
    except InvalidStateError:
        pass


def _settle(future: Future, fn: Callable[[], Any]) -> None:
    try:
        future.set_result(fn())
    except Exception as error:  # handed to the caller; the worker keeps running
        future.set_exception(error)
