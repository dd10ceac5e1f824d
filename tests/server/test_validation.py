"""Bad requests get a 4xx naming what was wrong, never a 500."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def server(serve, adapters_dir):
    with serve(adapters_dir=adapters_dir, max_texts=4, max_text_chars=50, max_body_bytes=4096) as live:
        yield live


CASES = [
    ("empty list", {"texts": []}, 422, "texts: List should have at least 1 item"),
    ("too many texts", {"texts": ["a"] * 5}, 422, "5 texts sent, at most 4"),
    ("blank text", {"texts": ["  \n"]}, 422, "texts[0]: Value error, text is empty or only whitespace"),
    ("lone surrogate", {"texts": ["\ud800"]}, 422, "texts[0]: Input should be a valid string, unable to parse"),
    ("number as text", {"texts": [3]}, 422, "texts[0]: Input should be a valid string"),
    ("texts not a list", {"texts": "hello"}, 422, "texts: Input should be a valid list"),
    ("missing texts", {}, 422, "texts: Field required"),
    ("unknown field", {"texts": ["a"], "adaptr": "alpha"}, 422, "adaptr: Extra inputs are not permitted"),
    ("string as int", {"texts": ["a"], "top_tokens": "3"}, 422, "top_tokens: Input should be a valid integer"),
    ("negative top tokens", {"texts": ["a"], "top_tokens": -1}, 422, "top_tokens: Input should be greater"),
    ("bad adapter name", {"texts": ["a"], "adapter": "../alpha"}, 422, "adapter: String should match pattern"),
    ("unknown adapter", {"texts": ["a"], "adapter": "zeta"}, 404, "no adapter named 'zeta' is loaded"),
    ("not an object", ["a"], 422, "Input should be a valid dictionary"),
]


@pytest.mark.parametrize(("case", "body", "status", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_request_is_explained(http, case, body, status, message):
    reply = http.post("/v1/classify", content=json.dumps(body), headers={"content-type": "application/json"})
    assert reply.status_code == status, reply.text
    assert message in reply.json()["detail"]


@pytest.mark.parametrize("content", [b'{"texts": [', b'{"texts": ["\xff"]}', b"\xe4\x9c"])
def test_malformed_json(http, content):
    reply = http.post("/v1/classify", content=content, headers={"content-type": "application/json"})
    assert reply.status_code == 422
    assert reply.json()["detail"].startswith("body is not valid JSON")


def test_body_size_limit(http):
    reply = http.post("/v1/classify", json={"texts": ["a" * 5000]})
    assert reply.status_code == 413


def test_wrong_content_type_and_method(http):
    assert http.post("/v1/classify", content=b"texts=a", headers={"content-type": "text/plain"}).status_code == 422
    assert http.get("/v1/classify").status_code == 405
    assert http.get("/nowhere").json() == {"detail": "Not Found"}
