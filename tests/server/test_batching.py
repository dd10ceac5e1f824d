"""The micro-batcher on its own: grouping by key, batch limits, work between batches, draining on stop;
fair turns between requests split into parts, and abandoned requests dropped."""

from __future__ import annotations

import threading
import time

import pytest

from confidently.server.batching import MicroBatcher, Part, ShuttingDownError


class Recorder:
    """A handler that records each batch and can be held to let requests pile up."""

    def __init__(self):
        self.batches: list[tuple[str, list[str]]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # set once the handler has been called

    def __call__(self, key, payloads):
        self.entered.set()
        self.gate.wait(10)
        self.batches.append((key, list(payloads)))
        return [f"{key}:{p}" for p in payloads]


def submit(batcher, key, payload, size=1):
    """A one-part request; its future's result is the one part's result, unwrapped."""
    return Unwrapped(batcher.submit(key, [Part(payload, size=size, cost=size)]))


class Unwrapped:
    def __init__(self, future):
        self.future = future

    def result(self, timeout=None):
        return self.future.result(timeout)[0]

    def cancel(self):
        return self.future.cancel()


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
    first = submit(batcher, "a", "0", 1)  # taken at once; holds the worker while the rest queue up
    assert recorder.entered.wait(10)
    futures = {(k, p): submit(batcher, k, p) for k, p in [("a", "1"), ("b", "2"), ("a", "3"), ("b", "4"),
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
    assert submit(batcher, "a", "x", 1).result(10) == "a:x"
    assert 0.04 <= time.monotonic() - start < 1.0


def test_a_full_batch_does_not_wait(recorder):
    batcher = MicroBatcher(recorder, max_batch=2, wait_s=30)
    batcher.start()
    try:
        start = time.monotonic()
        futures = [submit(batcher, "a", str(i), 1) for i in range(2)]
        assert [f.result(10) for f in futures] == ["a:0", "a:1"]
        assert time.monotonic() - start < 5
        big = submit(batcher, "a", "big", 9)  # a part larger than max_batch runs alone, not split
        assert big.result(40) == "a:big"
    finally:
        batcher.stop(40)


def test_calls_run_between_batches_on_the_worker_thread(batcher):
    assert batcher.call(lambda: threading.current_thread().name).result(10) == "confidently-model"
    with pytest.raises(ZeroDivisionError):
        batcher.call(lambda: 1 / 0).result(10)
    assert submit(batcher, "a", "still alive", 1).result(10) == "a:still alive"


def test_handler_errors_reach_every_caller_of_the_batch():
    def broken(key, payloads):
        raise ValueError(f"bad batch of {len(payloads)}")

    batcher = MicroBatcher(broken, max_batch=8, wait_s=0.2)
    batcher.start()
    futures = [submit(batcher, "a", i, 1) for i in range(3)]
    for future in futures:
        with pytest.raises(ValueError, match="bad batch of 3"):
            future.result(10)
    batcher.stop(10)


def test_cancelled_requests_are_skipped(batcher, recorder):
    recorder.gate.clear()
    submit(batcher, "a", "hold", 1)
    assert recorder.entered.wait(10)
    gone, kept = submit(batcher, "a", "gone", 1), submit(batcher, "a", "kept", 1)
    assert gone.cancel()
    recorder.gate.set()
    assert kept.result(10) == "a:kept"
    assert ("a", ["kept"]) in recorder.batches and all("gone" not in b for _, b in recorder.batches)


def test_stop_finishes_queued_work_then_refuses_more(recorder):
    batcher = MicroBatcher(recorder, max_batch=4, wait_s=30)
    batcher.start()
    future = submit(batcher, "a", "queued", 1)
    batcher.stop(10)
    assert future.result(0) == "a:queued"  # the 30 s window was cut short by the stop
    with pytest.raises(ShuttingDownError):
        submit(batcher, "a", "late", 1)


def parts(name, n, size=4):
    return [Part(f"{name}{i}", size=size, cost=size) for i in range(n)]


def test_a_request_gets_its_parts_results_in_order(batcher):
    assert batcher.submit("a", parts("p", 3)).result(10) == ["a:p0", "a:p1", "a:p2"]


def test_small_requests_go_before_the_rest_of_a_big_one(batcher, recorder):
    recorder.gate.clear()
    big = batcher.submit("a", parts("big", 5))
    assert recorder.entered.wait(10)  # the big request's first part holds the worker
    small = [submit(batcher, "a", "s1"), submit(batcher, "b", "s2")]
    recorder.gate.set()
    assert [f.result(10) for f in small] == ["a:s1", "b:s2"]
    assert big.result(10) == [f"a:big{i}" for i in range(5)]
    # s1 could not join a batch with a big part (4 + 1 > max_batch): it ran alone, before big1.
    assert recorder.batches == [("a", ["big0"]), ("a", ["s1"]), ("b", ["s2"]),
                                *[("a", [f"big{i}"]) for i in range(1, 5)]]


def test_big_requests_take_turns(batcher, recorder):
    recorder.gate.clear()
    hold = submit(batcher, "h", "hold")
    assert recorder.entered.wait(10)
    first, second = batcher.submit("a", parts("A", 3)), batcher.submit("b", parts("B", 3))
    recorder.gate.set()
    first.result(10), second.result(10), hold.result(10)
    assert [payloads[0] for _, payloads in recorder.batches] == ["hold", "A0", "B0", "A1", "B1", "A2", "B2"]


def test_batches_hold_at_most_max_cost(recorder):
    batcher = MicroBatcher(recorder, max_batch=10, wait_s=0.05, max_cost=5)
    batcher.start()
    try:
        recorder.gate.clear()
        hold = submit(batcher, "h", "hold")
        assert recorder.entered.wait(10)
        futures = [batcher.submit("a", [Part(name, size=1, cost=2)]) for name in ("x", "y", "z")]
        recorder.gate.set()
        assert [f.result(10) for f in futures] == [["a:x"], ["a:y"], ["a:z"]] and hold.result(10) == "h:hold"
        assert recorder.batches[1:] == [("a", ["x", "y"]), ("a", ["z"])]
    finally:
        batcher.stop(10)


def test_an_abandoned_request_stops_at_the_next_part(batcher, recorder):
    recorder.gate.clear()
    big = batcher.submit("a", parts("big", 5))
    assert recorder.entered.wait(10)
    assert batcher.queued == 16  # four parts of four wait
    assert big.cancel()  # its part on the model is not interrupted, the rest is dropped at once
    assert batcher.queued == 0
    recorder.gate.set()
    assert batcher.submit("a", parts("next", 1)).result(10) == ["a:next0"]
    assert recorder.batches == [("a", ["big0"]), ("a", ["next0"])]


def test_a_failing_part_fails_its_request_and_drops_the_rest():
    calls = []

    def handler(key, payloads):
        calls.append(payloads)
        if "bad" in payloads:
            raise ValueError("bad part")
        return payloads

    batcher = MicroBatcher(handler, max_batch=1, wait_s=0)
    batcher.start()
    try:
        failing = batcher.submit("a", [Part("ok"), Part("bad"), Part("never")])
        with pytest.raises(ValueError, match="bad part"):
            failing.result(10)
        assert batcher.submit("a", [Part("after")]).result(10) == ["after"]
        assert ["never"] not in calls and batcher.queued == 0
    finally:
        batcher.stop(10)


def test_a_stream_of_small_requests_does_not_starve_a_big_one(recorder):
    batcher = MicroBatcher(recorder, max_batch=4, wait_s=0)
    batcher.start()
    try:
        recorder.gate.clear()
        hold = submit(batcher, "h", "hold")
        assert recorder.entered.wait(10)
        big = batcher.submit("big", parts("B", 3))
        finished = threading.Event()

        def client(key: str, left: int) -> None:  # a closed loop: the next request when one is answered
            if not left:
                finished.set()
                return
            batcher.submit(key, [Part(f"{key}{left}")]).add_done_callback(lambda _: client(key, left - 1))

        client("a", 20)
        client("b", 20)
        recorder.gate.set()
        assert big.result(10) == ["big:B0", "big:B1", "big:B2"] and hold.result(10) == "h:hold"
        assert finished.wait(10)
    finally:
        batcher.stop(10)
    order = [payloads[0] for _, payloads in recorder.batches]
    turns = [order.index(f"B{i}") for i in range(3)]
    # Each client's small requests go first, but the big request gets a part every few of them
    # (here every four of each: its parts cost four times as much) and finishes while they keep coming.
    assert [b - a for a, b in zip(turns, turns[1:])] == [9, 9]
    assert turns[-1] < len(order) - 10
