"""A misbehaving OpenAI-compatible server on loopback, for the backend's error paths.

It answers ``/v1/completions`` and ``/v1/chat/completions`` with a made-up next-token distribution
(a function of the prompt, so reruns get the same numbers) or, as told, with HTTP errors, bodies
that are not JSON, replies without logprobs, slow replies, or by dying. It tests error handling and
request shapes, not model output (the llama.cpp server does that).
"""

import asyncio
import hashlib
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

TOP_TOKENS = ("yes", "no", " Yes", " No", "maybe", "The", "I", ".", "\n", "It")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_yes_share(prompt: str) -> float:
    """A made-up P(yes | yes or no) in (0.05, 0.95), fixed by the prompt's text."""
    return 0.05 + 0.9 * int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def fake_distribution(prompt: str, label_share: float = 0.9) -> dict[str, float]:
    """Probabilities of :data:`TOP_TOKENS` after ``prompt``: ``label_share`` on yes/no, a bit on the rest."""
    yes = fake_yes_share(prompt)
    probs = {"yes": 0.8 * label_share * yes, " Yes": 0.2 * label_share * yes,
             "no": 0.8 * label_share * (1 - yes), " No": 0.2 * label_share * (1 - yes)}
    rest = [t for t in TOP_TOKENS if t not in probs]
    for i, token in enumerate(rest):
        probs[token] = (1 - label_share) * 0.5 ** (i + 1)  # leaves some mass outside the list
    return probs


def model_distribution(backend, adapter: str | None = None) -> Callable[[str, list[int] | None], dict[str, float]]:
    """A local backend's own next-token distribution (with ``adapter``; None: the bare base model), served as
    ``Behaviour.distribution`` or one of ``Behaviour.models``: the requested ids (like vLLM's
    ``logprob_token_ids``), else the top 50 tokens by text."""
    vocab = backend.vocabulary()

    def distribution(prompt: str, token_ids: list[int] | None) -> dict[str, float]:
        row = backend.next_token_logprobs([prompt], adapters=[adapter])[0]
        if token_ids:
            return {f"token_id:{i}": math.exp(row[i]) for i in token_ids}
        top = sorted(range(len(row)), key=lambda i: -row[i])[:50]
        return {vocab[i]: math.exp(row[i]) for i in reversed(top)}  # the likeliest text wins a clash

    return distribution


@dataclass
class Behaviour:
    """What the fake server does; tests change it while it runs.

    ``mode``: ``ok``, ``status`` (answer ``status`` with an error body), ``flaky`` (``status`` for
    the first ``failures`` requests, then ok), ``not_json``, ``no_logprobs``, ``slow`` (sleep
    ``delay`` s first), ``die_after`` (answer ``ok_requests`` requests, then shut down).
    """

    mode: str = "ok"
    status: int = 500
    failures: int = 0
    delay: float = 0.0
    ok_requests: int = 0
    label_share: float = 0.9
    token_ids: bool = False  # honour logprob_token_ids like a new vLLM
    vocabulary: tuple[str, ...] = ()  # id -> text, for token_ids
    retry_after: str | None = None
    # Requests without logprobs (black-box scorers) get this function's text for (prompt, seed) as the
    # generated answer; None is a null content. Without it they get the top token, as before.
    answer: Callable[[str, int | None], str | None] | None = None
    # prompt -> {token text or "token_id:N": probability}: a real model's distribution, served
    # instead of the made-up one (the backend contract suite compares backends on it)
    distribution: Callable[[str, list[int] | None], dict[str, float]] | None = None
    # model name -> such a distribution: an engine serving several models (vLLM's LoRA adapters, each
    # under its own name); a request for a model not listed gets vLLM's 404
    models: dict[str, Callable[[str, list[int] | None], dict[str, float]]] | None = None


@dataclass
class FakeServer:
    """``with FakeServer() as server: ... server.url ... server.requests``."""

    port: int = field(default_factory=free_port)
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def prompts(self) -> list[str]:
        return [body.get("prompt") or body["messages"][-1]["content"] for body in self.requests]

    def __enter__(self) -> "FakeServer":
        import uvicorn

        self._server = uvicorn.Server(uvicorn.Config(self._app(), host="127.0.0.1", port=self.port,
                                                     log_level="critical"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(30)

    def _app(self):
        app = FastAPI()

        async def answer(request: Request, chat: bool):
            body = await request.json()
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                b = self.behaviour
                if b.mode == "slow" or b.delay:
                    await asyncio.sleep(b.delay)
                if b.mode == "status" or (b.mode == "flaky" and len(self.requests) <= b.failures):
                    headers = {"Retry-After": b.retry_after} if b.retry_after else {}
                    return JSONResponse({"error": {"message": f"made-up failure {b.status}"}}, b.status, headers)
                if b.mode == "not_json":
                    return PlainTextResponse("<html>502 Bad Gateway</html>")
                if b.mode == "die_after" and len(self.requests) > b.ok_requests:
                    self._server.should_exit = True
                    return JSONResponse({"error": {"message": "shutting down"}}, 503)
                if b.models is not None and body.get("model") not in b.models:
                    return JSONResponse({"error": {"message": f"The model `{body.get('model')}` does not exist."}},
                                        404)
                return JSONResponse(self._reply(body, chat))
            finally:
                self.in_flight -= 1

        @app.post("/v1/completions")
        async def completions(request: Request):
            return await answer(request, chat=False)

        @app.post("/v1/chat/completions")
        async def chat_completions(request: Request):
            return await answer(request, chat=True)

        return app

    def _reply(self, body: dict[str, Any], chat: bool) -> dict[str, Any]:
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        if self.behaviour.answer is not None and not body.get("logprobs"):
            return self._generated(self.behaviour.answer(prompt, body.get("seed")), body, chat)
        probs = fake_distribution(prompt, self.behaviour.label_share)
        if self.behaviour.models is not None:
            probs = self.behaviour.models[body["model"]](prompt, body.get("logprob_token_ids"))
        elif self.behaviour.distribution is not None:
            probs = self.behaviour.distribution(prompt, body.get("logprob_token_ids"))
        elif self.behaviour.token_ids and body.get("logprob_token_ids"):
            probs = self._by_id(prompt, body["logprob_token_ids"])
        top = sorted(probs.items(), key=lambda item: -item[1])
        if not body.get("logprob_token_ids") or not self.behaviour.token_ids:
            k = body["top_logprobs"] if chat else body["logprobs"]
            top = top[:k]
        if self.behaviour.mode == "no_logprobs":
            logprobs = None
        elif chat:
            entries = [{"token": t, "logprob": math.log(p), "bytes": None} for t, p in top]
            logprobs = {"content": [{**entries[0], "top_logprobs": entries}]}
        else:
            logprobs = {"tokens": [top[0][0]], "token_logprobs": [math.log(top[0][1])],
                        "top_logprobs": [{t: math.log(p) for t, p in top}], "text_offset": [0]}
        choice = {"index": 0, "logprobs": logprobs, "finish_reason": "length"}
        if chat:
            choice["message"] = {"role": "assistant", "content": top[0][0]}
        else:
            choice["text"] = top[0][0]
        return {"id": "fake", "object": "chat.completion" if chat else "text_completion",
                "model": body.get("model"), "choices": [choice]}

    @staticmethod
    def _generated(text: str | None, body: dict[str, Any], chat: bool) -> dict[str, Any]:
        """A reply with generated text and no logprobs; usage counts one token per word."""
        choice = {"index": 0, "logprobs": None, "finish_reason": "stop"}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        tokens = len((text or "").split())
        return {"id": "fake", "object": "chat.completion" if chat else "text_completion", "model": body.get("model"),
                "choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": tokens,
                                               "total_tokens": 10 + tokens}}

    def _by_id(self, prompt: str, ids: list[int]) -> dict[str, float]:
        """Like vLLM's logprob_token_ids: every requested id keyed ``token_id:N``, spread by label."""
        yes = fake_yes_share(prompt)
        vocab = self.behaviour.vocabulary
        yes_ids = [i for i in ids if vocab[i].strip().lower() in ("yes", "true", "positive", "y")]
        no_ids = [i for i in ids if i not in yes_ids]
        probs = {f"token_id:{i}": 0.9 * yes / len(yes_ids) for i in yes_ids}
        probs.update({f"token_id:{i}": 0.9 * (1 - yes) / len(no_ids) for i in no_ids})
        return probs

