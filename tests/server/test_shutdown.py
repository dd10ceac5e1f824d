"""Graceful shutdown in-process (the SIGTERM path is in test_cli_and_client): requests in flight
finish within the drain window, or get 503 with Retry-After when it runs out, never a 500; the log
says how many finished and how many were refused. The model is held busy so that the outcome does
not depend on the machine's speed."""

from __future__ import annotations

import logging
import threading

import httpx
import pytest

from .conftest import HeldModel, wait_until


def post_all(url: str, n: int) -> tuple[list[threading.Thread], list[httpx.Response]]:
    replies: list[httpx.Response] = []

    def post(i: int) -> None:
        replies.append(httpx.post(url + "/v1/classify", json={"texts": [f"request {i}"]}, timeout=120))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    return threads, replies


def summary(caplog) -> str:
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("shutdown: ")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(autouse=True)
def server_log(caplog):
    caplog.set_level(logging.INFO, logger="confidently.server")


def test_requests_still_running_when_the_drain_window_ends_get_503(serve, caplog):
    with serve(drain_timeout_s=0.5) as live, HeldModel(live):
        threads, replies = post_all(live.url, 3)
        wait_until(lambda: live.app.state.counts.in_flight == 3, what="three requests in flight")
        live.server.should_exit = True
        for thread in threads:
            thread.join(120)
    assert [r.status_code for r in replies] == [503] * 3
    for reply in replies:
        assert reply.headers["retry-after"] == "5"
        assert reply.json()["detail"] == ("the server is shutting down and its drain window of 0.5 s ran out "
                                          "before this request was answered: send it again")
    assert summary(caplog) == "shutdown: of 3 requests in flight, 0 finished and 3 were refused with 503 " \
                              "(drain window 0.5 s)"


def test_requests_in_flight_finish_within_the_drain_window(serve, caplog):
    with serve(drain_timeout_s=120) as live:
        with HeldModel(live):
            threads, replies = post_all(live.url, 2)
            wait_until(lambda: live.app.state.counts.in_flight == 2, what="two requests in flight")
            live.server.should_exit = True
            wait_until(lambda: any(r.getMessage().startswith("shutting down:") for r in caplog.records),
                       what="the shutdown to begin")
        for thread in threads:
            thread.join(120)
    assert [r.status_code for r in replies] == [200, 200]
    assert summary(caplog) == "shutdown: of 2 requests in flight, 2 finished and 0 were refused with 503 " \
                              "(drain window 120 s)"
