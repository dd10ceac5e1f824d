"""HTTP limits with raw sockets: a read deadline for incomplete requests (headers, body, nothing at
all), a cap on requests in flight and one on open connections, all answered with JSON."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import httpx
import pytest

from .conftest import HeldModel, wait_until

READ_TIMEOUT_S = 1.0


def read_reply(sock: socket.socket, timeout: float = 60) -> tuple[int, dict[str, str], dict]:
    """Read one reply until the server closes the connection: status, headers, JSON body."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


@pytest.fixture()
def limited(serve, caplog):
    caplog.set_level(logging.WARNING, logger="uvicorn.error")
    with serve(read_timeout_s=READ_TIMEOUT_S, max_concurrency=2, max_connections=5) as live:
        yield live
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]


def test_incomplete_requests_get_408_after_the_read_timeout(limited):
    body = json.dumps({"texts": ["fine"]}).encode()
    head = (b"POST /v1/classify HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode())
    cases = {
        "silent": b"",
        "partial headers": b"POST /v1/classify HTTP/1.1\r\nHost: t\r\n",
        "partial body": head + body[:5],
    }
    sockets = {}
    start = time.monotonic()
    for name, data in cases.items():
        sockets[name] = socket.create_connection(limited.address)
        sockets[name].sendall(data)
    # Keep-alive: a second request on a connection that already had a full one is held to the deadline too.
    kept = socket.create_connection(limited.address)
    kept.sendall(head + body)
    kept.settimeout(60)
    assert kept.recv(65536).startswith(b"HTTP/1.1 200")
    kept.sendall(head + body[:5])
    sockets["second request"] = kept
    for name, sock in sockets.items():
        status, headers, reply = read_reply(sock)
        assert status == 408, name
        assert headers["connection"] == "close" and reply == {
            "detail": f"the request was not received in full within {READ_TIMEOUT_S:g} s"}
        sock.close()
    assert time.monotonic() - start >= READ_TIMEOUT_S
    # A request sent in pieces within the deadline is served.
    sock = socket.create_connection(limited.address)
    sock.sendall(head)
    sock.sendall(body)
    sock.settimeout(60)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.close()


def test_requests_beyond_the_concurrency_limit_get_503(limited):
    replies: list[httpx.Response] = []

    def post() -> None:
        replies.append(httpx.post(limited.url + "/v1/classify", json={"texts": ["queued"]}, timeout=120))

    counts = limited.app.state.counts
    with HeldModel(limited):
        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_until(lambda: counts.limited == 2, what="two requests in flight")
        refused = httpx.post(limited.url + "/v1/classify", json={"texts": ["one too many"]}, timeout=60)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json() == {"detail": "the server is at its limit of 2 requests in flight: retry later"}
        health = httpx.get(limited.url + "/healthz", timeout=60)  # health stays outside the limit
        assert health.status_code == 200 and health.json()["in_flight"] == 2
    for thread in threads:
        thread.join(120)
    assert [r.status_code for r in replies] == [200, 200]


def test_connections_beyond_the_cap_get_503(limited):
    idle = [socket.create_connection(limited.address) for _ in range(5)]
    extra = socket.create_connection(limited.address)
    status, headers, reply = read_reply(extra)
    assert status == 503 and headers["retry-after"] == "1"
    assert reply == {"detail": "the server has its limit of 5 connections open: retry later"}
    for sock in idle:
        sock.close()
    # Once they are gone, new connections are served again.
    wait_until(lambda: httpx.get(limited.url + "/healthz", timeout=60).status_code == 200,
               what="a connection to be accepted again")
