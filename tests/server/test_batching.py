"""The micro-batcher on its own: grouping by key, batch limits, work between batches, draining on stop."""

from __future__ import annotations

import threading
import time

import pytest

from confidently.server.batching import MicroBatcher, ShuttingDownError


class Recorder:
    """A handler that records each batch and can be held to let requests pile up."""

    def __init__(self):
        self.batches: list[tuple[str, list[str]]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, key, payloads):
        self.gate.wait(10)
        self.batches.append((key, list(payloads)))
        return [f"{key}:{p}" for p in payloads]


@pytest.fixture()
def recorder():
    return Recorder()


@pytest.fixture()
def batcher(recorder):
    batcher = MicroBatcher(recorder, max_batch=4, wait_s=0.05)
    batcher.start()
    yield batcher
    batcher.stop(10)


def test_requests_queued_together_are_grouped_by_key(batcher, recorder):
    recorder.gate.clear()
    first = batcher.submit("a", "0", 1)  # taken at once; holds the worker while the rest queue up
    time.sleep(0.1)
    futures = {(k, p): batcher.submit(k, p, 1) for k, p in [("a", "1"), ("b", "2"), ("a", "3"), ("b", "4"),
                                                             ("a", "5"), ("a", "6"), ("a", "7")]}
    assert batcher.queued == 7
    recorder.gate.set()
    assert first.result(10) == "a:0"
    for (key, payload), future in futures.items():
        assert future.result(10) == f"{key}:{payload}"
    # The oldest key goes first, at most max_batch items per batch, arrival order kept.
    assert recorder.batches == [("a", ["0"]), ("a", ["1", "3", "5", "6"]), ("b", ["2", "4"]), ("a", ["7"])]
    assert batcher.queued == 0


def test_a_lone_request_waits_at_most_the_window(batcher):
    start = time.monotonic()
    assert batcher.submit("a", "x", 1).result(10) == "a:x"
    assert 0.04 <= time.monotonic() - start < 1.0


def test_a_full_batch_does_not_wait(recorder):
    batcher = MicroBatcher(recorder, max_batch=2, wait_s=30)
    batcher.start()
    try:
        start = time.monotonic()
        futures = [batcher.submit("a", str(i), 1) for i in range(2)]
        assert [f.result(10) for f in futures] == ["a:0", "a:1"]
        assert time.monotonic() - start < 5
        big = batcher.submit("a", "big", 9)  # larger than max_batch: runs alone, not split
        assert big.result(40) == "a:big"
    finally:
        batcher.stop(40)


def test_calls_run_between_batches_on_the_worker_thread(batcher):
    assert batcher.call(lambda: threading.current_thread().name).result(10) == "confidently-model"
    with pytest.raises(ZeroDivisionError):
        batcher.call(lambda: 1 / 0).result(10)
    assert batcher.submit("a", "still alive", 1).result(10) == "a:still alive"


def test_handler_errors_reach_every_caller_of_the_batch():
    def broken(key, payloads):
        raise ValueError(f"bad batch of {len(payloads)}")

    batcher = MicroBatcher(broken, max_batch=8, wait_s=0.2)
    batcher.start()
    futures = [batcher.submit("a", i, 1) for i in range(3)]
    for future in futures:
        with pytest.raises(ValueError, match="bad batch of 3"):
            future.result(10)
    batcher.stop(10)


def test_cancelled_requests_are_skipped(batcher, recorder):
    recorder.gate.clear()
    batcher.submit("a", "hold", 1)
    time.sleep(0.1)
    gone, kept = batcher.submit("a", "gone", 1), batcher.submit("a", "kept", 1)
    assert gone.cancel()
    recorder.gate.set()
    assert kept.result(10) == "a:kept"
    assert ("a", ["kept"]) in recorder.batches and all("gone" not in b for _, b in recorder.batches)


def test_stop_finishes_queued_work_then_refuses_more(recorder):
    batcher = MicroBatcher(recorder, max_batch=4, wait_s=30)
    batcher.start()
    future = batcher.submit("a", "queued", 1)
    batcher.stop(10)
    assert future.result(0) == "a:queued"  # the 30 s window was cut short by the stop
    with pytest.raises(ShuttingDownError):
        batcher.submit("a", "late", 1)
