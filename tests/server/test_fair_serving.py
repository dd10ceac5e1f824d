"""Fair serving: the per-request cost budget, big requests split into parts that take turns with small
ones, and the work of a client that disconnects dropped (queued parts at once, a running one is its last)."""

from __future__ import annotations

import json
import socket
import threading

import httpx
import pytest

from .conftest import ADMIN_TOKEN, HeldModel, wait_until

BIG = [f"text number {i}, the movie was great" for i in range(16)]  # four parts of batch_size 4


@pytest.fixture(scope="module")
def server(serve, adapters_dir):
    with serve(adapters_dir=adapters_dir, batch_size=4) as live:
        yield live


class Recording:
    """Wraps the model worker's handler: records the texts of each batch, and can stop before running one."""

    def __init__(self, batcher):
        self.batcher, self.inner = batcher, batcher._handler
        self.batches: list[list[str]] = []
        self.entered, self.proceed = threading.Event(), threading.Event()
        self.proceed.set()

    def __call__(self, key, jobs):
        self.batches.append([text for job in jobs for text in job.texts])
        self.entered.set()
        assert self.proceed.wait(120)
        return self.inner(key, jobs)

    def __enter__(self) -> Recording:
        self.batcher._handler = self
        return self

    def __exit__(self, *exc) -> None:
        self.proceed.set()
        self.batcher._handler = self.inner


@pytest.fixture()
def recording(server):
    with Recording(server.app.state.service.batcher) as rec:
        yield rec


def health(http) -> dict:
    return http.get("/healthz").json()


def post_in_thread(url: str, body: dict, replies: dict, name: str) -> threading.Thread:
    def post() -> None:
        replies[name] = httpx.post(url + "/v1/classify", json=body, timeout=120)

    thread = threading.Thread(target=post)
    thread.start()
    return thread


def test_a_request_over_the_cost_budget_is_refused(serve, http):
    limits = health(http)["limits"]
    assert limits["max_request_cost"] == 65536 and limits["max_concurrency"] == 128
    texts = ["x" * 8192] * 8  # the request: 65,536 characters, two passes each with top tokens
    reply = http.post("/v1/classify", json={"texts": texts, "top_tokens": 50})
    assert reply.status_code == 422
    assert reply.json()["detail"] == ("texts: the request costs 131072 (characters scored, at most 32768 per text, "
                                      "× 2 forward passes), more than this server's budget of 65536 per request: "
                                      "send fewer or shorter texts, or top_tokens 0")


def test_a_small_request_is_not_held_up_by_a_big_one(server, http, recording):
    replies: dict[str, httpx.Response] = {}
    with HeldModel(server) as held:
        big = post_in_thread(server.url, {"texts": BIG}, replies, "big")
        wait_until(lambda: held.batcher.queued == 16, what="the big request to queue")
        small = post_in_thread(server.url, {"texts": ["just one"]}, replies, "small")
        wait_until(lambda: held.batcher.queued == 17, what="the small request to queue")
    big.join(120), small.join(120)
    assert replies["big"].status_code == 200 and len(replies["big"].json()["results"]) == 16
    assert replies["small"].status_code == 200
    # The small request first (its one part finishes first in virtual time), then the big one's parts.
    assert recording.batches == [["just one"], BIG[:4], BIG[4:8], BIG[8:12], BIG[12:]]
    # Split or not, a text gets the same scores and top tokens (with them, parts hold one text here).
    with_top = http.post("/v1/classify", json={"texts": BIG, "top_tokens": 2}).json()["results"]
    alone = http.post("/v1/classify", json={"texts": BIG[10:11], "top_tokens": 2}).json()["results"][0]
    assert alone["raw_probs"] == pytest.approx(replies["big"].json()["results"][10]["raw_probs"], abs=1e-5)
    assert alone["raw_probs"] == pytest.approx(with_top[10]["raw_probs"], abs=1e-5)
    assert [t["token"] for t in alone["top_tokens"]] == [t["token"] for t in with_top[10]["top_tokens"]]


def request_bytes(body: dict) -> bytes:
    payload = json.dumps(body).encode()
    return (b"POST /v1/classify HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)


def base_texts_scored(metrics: str) -> float:
    lines = [line for line in metrics.splitlines() if line.startswith('confidently_texts_total{adapter="(base)"}')]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_a_disconnected_clients_queued_work_is_dropped(server, http):
    batcher = server.app.state.service.batcher
    before = http.get("/metrics").text
    with HeldModel(server):
        client = socket.create_connection(server.address)
        client.sendall(request_bytes({"texts": ["dropped text one", "dropped text two"]}))
        wait_until(lambda: batcher.queued == 2, what="the request to queue")
        client.close()
        wait_until(lambda: batcher.queued == 0, what="the abandoned request to leave the queue")
    assert http.post("/v1/classify", json={"texts": ["after"]}).status_code == 200
    assert base_texts_scored(http.get("/metrics").text) == base_texts_scored(before) + 1  # only "after"
    assert 'route="/v1/classify",method="POST",status="499"' in http.get("/metrics").text


def test_a_disconnected_clients_running_request_stops_after_its_part(server, http, recording):
    batcher = server.app.state.service.batcher
    recording.proceed.clear()
    client = socket.create_connection(server.address)
    client.sendall(request_bytes({"texts": BIG}))
    assert recording.entered.wait(120)  # the first part is on the model
    assert batcher.queued == 12
    client.close()
    wait_until(lambda: batcher.queued == 0, what="the abandoned parts to leave the queue")
    recording.proceed.set()
    assert http.post("/v1/classify", json={"texts": ["after"]}).status_code == 200
    assert recording.batches == [BIG[:4], ["after"]]


def test_an_adapter_reloaded_between_a_requests_parts_is_a_409(server, recording):
    batcher = server.app.state.service.batcher
    replies: dict[str, httpx.Response] = {}
    recording.proceed.clear()
    big = post_in_thread(server.url, {"texts": BIG, "adapter": "alpha"}, replies, "big")
    assert recording.entered.wait(120)  # its first part is on the model, with the alpha loaded now

    def reload() -> None:
        replies["reload"] = httpx.post(server.url + "/v1/adapters/alpha", timeout=120,
                                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    reloading = threading.Thread(target=reload)
    reloading.start()
    wait_until(lambda: len(batcher._calls) == 1, what="the reload to queue")  # it runs before the next part
    recording.proceed.set()
    big.join(120), reloading.join(120)
    assert replies["reload"].status_code == 201
    assert replies["big"].status_code == 409
    assert replies["big"].json()["detail"] == ("adapter 'alpha' was reloaded while this request was being scored, "
                                               "so its texts saw different weights: send it again")
