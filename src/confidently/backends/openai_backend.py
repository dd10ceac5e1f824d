"""A model behind an OpenAI-compatible server (vLLM, llama.cpp's server, OpenAI): ``--backend openai``.

One request per text, ``max_tokens=1`` and ``temperature=0``, asking for the next token's
``top_logprobs``; the returned tokens become class masses with the same verbalizer rules as the
local backend. Such a server returns only the top-k tokens, so this backend is not exact: the
probability it left out is reported as ``uncovered_mass`` (a label may hide there, see
:attr:`confidently.types.Prediction.label_may_be_hidden`). Where the server can return the logprobs
of token ids we name (vLLM's ``logprob_token_ids``, new releases) and a tokenizer gives us the label
ids, the class masses are exact; servers that ignore the field (older vLLM, llama.cpp) are detected
because an id is missing from the reply, and their top-k is used.

Endpoints
---------
``completions`` sends a prompt string. With a tokenizer (``tokenizer=`` a registry name, local
folder or hub id; by default the model itself when it is a registry name or local folder) the chat
template is rendered here, so the prompt is exactly the local backend's; without one the task's
message plus its answer suffix is sent. ``chat`` sends the task's message as the user message and
the server applies its own chat template (OpenAI).

LoRA adapters
-------------
A server with several LoRA adapters on one base model (vLLM's ``--lora-modules NAME=PATH``) serves
each under its own model name. :meth:`OpenAIBackend.load_adapter` makes an adapter selectable by
:meth:`~OpenAIBackend.set_adapter`, as on the local backend, sending requests for it under the model
name ``engine_models`` gives it (default: the adapter's own name). Nothing is sent to the server
then: it loaded the weights itself, and they cannot be hashed from here, so ``hashes_weights`` is
False: whether the server's weights are the ones a calibration bundle was fitted on is for the
bundle's canary to show (``confidently serve --backend openai``).

User text is data (:mod:`~confidently.backends.text_as_data`): on ``completions`` with a tokenizer, a
prompt whose text holds a special-token string is sent as token ids, so the server cannot read it as
a control token. On ``chat`` the server renders and tokenizes the message itself, so this guarantee
is the server's (llama.cpp and vLLM parse special tokens there): prefer ``completions``. ``auto`` picks ``completions`` when a tokenizer
is at hand, else ``chat``.

Agreement with the local backend
--------------------------------
Measured on 200 synthetic sentiment sentences with qwen2.5-coder-0.5b-instruct served by
llama-cpp-python (quantized GGUF) against the transformers backend on the de-quantized float32
weights, same prompt (chat template rendered here), ``top_logprobs=20``, two runs: |ΔP(positive)|
mean 0.008-0.009, max 0.028-0.032 (llama.cpp's numbers move slightly with its prompt cache);
predictions agreed on 200 of 200 sentences; the uncovered mass was at most 0.004.
``tests/backends/test_openai_backend.py`` checks mean < 0.02, max < 0.10 (over 2x and 3x the
measured values: quantized kernels vs float32 weights) and agreement >= 95%.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from confidently.backends.base import Backend, Generated, sample_seed
from confidently.backends.http_transport import HttpTransport, ServerRejected
from confidently.backends.replies import NextToken, generated_text, parse_reply
from confidently.backends.text_as_data import encode_prompt, encode_text, special_token_ids
from confidently.backends.tokenizer import LoadedTokenizer, is_local_model, load_tokenizer
from confidently.backends.topk import TopKVerbalizer, label_ids, masses
from confidently.errors import ArtifactError, BackendError, ConfigError, TaskError, UnknownModelError
from confidently.models.registry import DEFAULT_MODEL
from confidently.tasks.task import Task, Verbalizer
from confidently.types import TokenProb

ENDPOINTS = ("auto", "completions", "chat")
PATHS = {"completions": "/completions", "chat": "/chat/completions"}
# Carries a system prompt inside a chat-endpoint prompt string (prompts are plain strings end to end).
SYSTEM_MARKER = "\u2063CONFIDENTLY_SYSTEM\u2063"


class Transport(Protocol):
    """Sends request bodies and returns the parsed JSON replies, in order."""

    def post_many(self, path: str, bodies: Sequence[dict[str, Any]]) -> list[Any]: ...

    def close(self) -> None: ...


def api_key_from_env(name: str | None) -> str | None:
    """The key stored in environment variable ``name`` (keys never travel as plain option values)."""
    if name is None:
        return None
    key = os.environ.get(name)
    if not key:
        raise ConfigError(f"--api-key names the environment variable {name!r}, which is not set or empty")
    return key


class OpenAIBackend(Backend):
    """A model served by an OpenAI-compatible server; top-k next-token logprobs per text.

    Parameters
    ----------
    model : the model name the server knows (on vLLM, an adapter's name selects the adapter).
    base_url : the server's API root, e.g. ``http://127.0.0.1:8080/v1``.
    api_key_env : NAME of the environment variable holding the API key (sent as a bearer token).
    endpoint : ``completions``, ``chat`` or ``auto`` (see the module docstring).
    tokenizer : registry name, local folder or hub id of the model's tokenizer (renders the chat
        template, finds label token ids, truncates long texts); ``"auto"``: the model itself when it
        is a registry name or local folder; None: none.
    top_logprobs : how many top tokens to ask for (OpenAI: at most 20 on chat, 5 on completions;
        vLLM: at most its --max-logprobs, 20 by default).
    token_ids : ask for the logprobs of every label token id (exact masses on servers that support
        ``logprob_token_ids``); needs a tokenizer.
    adapter : name (or folder, whose name is used) of a LoRA adapter the server serves; sent as the
        model name.
    engine_models : adapter name -> the model name the server serves it under, for adapters made
        selectable with :meth:`load_adapter` (an adapter not listed is sent under its own name).
    max_context : the server's context length in tokens (long texts are truncated to fit when a
        tokenizer is at hand).
    timeout, max_retries, max_concurrency : see :class:`~confidently.backends.http_transport.HttpTransport`.
    cache_size : replies remembered in memory, keyed by the request body (repeat questions are free).
    transport : send requests some other way (e.g. SageMaker); ``base_url`` is then not needed.
    """

    name = "openai"
    exact = False
    hashes_weights = False

    def __init__(self, model: str = DEFAULT_MODEL, *, base_url: str | None = None, api_key_env: str | None = None,
                 endpoint: str = "auto", tokenizer: str | None = "auto", top_logprobs: int = 20,
                 token_ids: bool = True, adapter: str | None = None, max_context: int = 2048,
                 timeout: float = 60.0, max_retries: int = 4, max_concurrency: int = 8, cache_size: int = 100_000,
                 transport: Transport | None = None, engine_models: Mapping[str, str] | None = None):
        if endpoint not in ENDPOINTS:
            raise ConfigError(f"endpoint must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
        if top_logprobs < 1:
            raise ConfigError(f"top_logprobs must be at least 1, got {top_logprobs}")
        if transport is None and not base_url:
            raise ConfigError("the openai backend needs the server's URL: --base-url http://HOST:PORT/v1")
        self.model_name = model
        self.model_id: str | None = Path(adapter).name if adapter else model
        self.base_model_id = self.model_id
        self.engine_models = dict(engine_models or {})
        self.active_adapter: str | None = None
        self._selectable: set[str] = set()  # adapters made selectable by load_adapter
        self.base_url = (base_url or "").rstrip("/")
        self.transport = transport or HttpTransport(self.base_url, api_key=api_key_from_env(api_key_env),
                                                    timeout=timeout, max_retries=max_retries,
                                                    max_concurrency=max_concurrency)
        self._tokenizer = self._find_tokenizer(model, tokenizer)
        self.endpoint = endpoint if endpoint != "auto" else ("completions" if self._tokenizer else "chat")
        self.top_logprobs = top_logprobs
        self.token_ids = token_ids and self._tokenizer is not None
        self._max_context = max_context
        self.weights_id = self.weights_id_of(None)
        self._vocab: list[str] | None = None
        self._special_ids: frozenset[int] | None = None
        self._cache: OrderedDict[str, NextToken] = OrderedDict()
        self._cache_size = cache_size

    @staticmethod
    def _find_tokenizer(model: str, tokenizer: str | None) -> LoadedTokenizer | None:
        if tokenizer != "auto":
            return None if tokenizer is None else load_tokenizer(tokenizer)
        if not is_local_model(model):
            return None
        try:
            return load_tokenizer(model)
        except UnknownModelError:
            return None  # a registry name whose packages are not installed: the server's model only

    def close(self) -> None:
        """Close the server connections."""
        self.transport.close()

    # -- LoRA adapters served by the server, one selected at a time ---------------------------
    def load_adapter(self, path: str | Path, name: str | None = None, *, activate: bool = True) -> str:
        """Make adapter ``name`` (default: the folder's name) selectable; requests for it name the model
        ``engine_models`` gives it, else ``name``. Nothing is read or sent: the server holds the weights."""
        name = name or Path(path).name
        self.unload_adapter(name)
        self._selectable.add(name)
        if activate:
            self.set_adapter(name)
        return name

    def set_adapter(self, name: str | None) -> None:
        """Send requests for adapter ``name``'s model, or for the base model when ``name`` is None."""
        if name is not None and name not in self._selectable:
            raise ArtifactError(f"no adapter named {name!r} is loaded "
                                f"(loaded: {', '.join(self._selectable) or 'none'})")
        self.active_adapter = name
        self.model_id = self.served_as(name)

    def unload_adapter(self, name: str) -> None:
        if name not in self._selectable:
            return
        if self.active_adapter == name:
            self.set_adapter(None)
        self._selectable.discard(name)
        # The server may serve other weights under that name next time: drop the replies remembered for it.
        model = self.served_as(name)
        self._cache = OrderedDict((key, reply) for key, reply in self._cache.items()
                                  if json.loads(key).get("model") != model)

    def served_as(self, adapter: str | None) -> str | None:
        return self.base_model_id if adapter is None else self.engine_models.get(adapter, adapter)

    def weights_id_of(self, adapter: str | None) -> str:
        return f"server:{self.base_url}#{self.served_as(adapter)}"

    # -- prompts ---------------------------------------------------------------------------
    def format_prompt(self, message: str, *, chat: bool | None = None, system_prompt: str | None = None,
                      answer_suffix: str = "\nAnswer:") -> str:
        if self.endpoint == "chat":
            if chat is False:
                raise BackendError("the chat endpoint always applies the server's chat template: use "
                                   "endpoint='completions' for a raw prompt (--raw, chat=False)")
            return f"{SYSTEM_MARKER}{system_prompt}{SYSTEM_MARKER}{message}" if system_prompt else message
        template = self._tokenizer is not None and bool(getattr(self._tokenizer.tokenizer, "chat_template", None))
        if chat and not template:
            raise BackendError("rendering the chat template for the completions endpoint needs the model's "
                               "tokenizer (tokenizer=NAME or folder); or use endpoint='chat'")
        use_chat = template if chat is None else chat

        def render(text: str) -> str:
            if use_chat:
                messages = ([{"role": "system", "content": system_prompt}] if system_prompt else [])
                messages.append({"role": "user", "content": text})
                return self._tokenizer.tokenizer.apply_chat_template(messages, tokenize=False,
                                                                     add_generation_prompt=True)
            # No BOS text: the server adds the model's BOS token itself when it tokenizes the prompt.
            return f"{text}{answer_suffix}"

        rendered = render(message)
        self.text_slots.record(rendered, message, render)
        return rendered

    @staticmethod
    def _messages(prompt: str) -> list[dict[str, str]]:
        if prompt.startswith(SYSTEM_MARKER):
            system, _, user = prompt[len(SYSTEM_MARKER):].partition(SYSTEM_MARKER)
            return [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return [{"role": "user", "content": prompt}]

    # -- vocabulary ----------------------------------------------------------------------------
    def vocabulary(self) -> Sequence[str]:
        """Decoded text of every token id; empty without a tokenizer (the server knows it, we do not)."""
        if self._tokenizer is None:
            return ()
        if self._vocab is None:
            tok = self._tokenizer.tokenizer
            self._vocab = tok.batch_decode([[i] for i in range(len(tok))])
        return self._vocab

    def verbalizer(self, task: Task) -> Verbalizer:
        if self._tokenizer is None:
            return TopKVerbalizer(task)
        verbalizer = Verbalizer(task, self.vocabulary(), self.encode)
        if verbalizer.has_sequences:
            raise TaskError(f"task {task.name!r}: multi-token label words cannot be scored from a server's "
                            "next-token list; use the transformers backend")
        return verbalizer

    def encode(self, text: str) -> list[int]:
        if self._tokenizer is None:
            return super().encode(text)
        return self._tokenizer.tokenizer(text, add_special_tokens=False).input_ids

    def encode_text(self, text: str) -> list[int]:
        if self._tokenizer is None:
            return super().encode(text)
        return encode_text(self._tokenizer.tokenizer, text)

    def decode(self, ids: Sequence[int]) -> str:
        if self._tokenizer is None:
            return super().decode(ids)
        return self._tokenizer.tokenizer.decode(list(ids))

    def count_tokens(self, text: str) -> int:
        # Without a tokenizer texts are never truncated, so a rough count (4 UTF-8 bytes per token) will do.
        if self._tokenizer is None:
            return len(text.encode("utf-8")) // 4 + 1
        return len(self.encode(text))

    @property
    def max_context(self) -> int:
        return self._max_context

    def fingerprint(self) -> str:
        tokenizer = self._tokenizer.weights_id if self._tokenizer else "-"
        return (f"{self.name}:{self.base_url}:{self.model_id}:{self.endpoint}:tokenizer={tokenizer}:"
                f"top={self.top_logprobs}:ids={self.token_ids}")

    # -- scoring -------------------------------------------------------------------------------
    def score_prompts(self, prompts: Sequence[str], verbalizer: Verbalizer, *,
                      shared_prefix: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ids = label_ids(verbalizer) if self.token_ids else []
        return masses(self._ask(prompts, self.top_logprobs, ids), verbalizer)

    def top_tokens(self, prompt: str, k: int) -> list[TokenProb]:
        reply = self._ask([prompt], max(k, self.top_logprobs), [])[0]
        vocab = self.vocabulary()
        entries = [(text, None, lp) for text, lp in reply.logprobs.items()]
        entries += [(vocab[i] if i < len(vocab) else f"token_id:{i}", i, lp) for i, lp in reply.ids.items()]
        entries.sort(key=lambda entry: -entry[2])
        return [TokenProb(rank, text, lp, token_id) for rank, (text, token_id, lp) in enumerate(entries[:k], 1)]

    def generate(self, prompts: Sequence[str], *, samples: int, max_new_tokens: int, temperature: float,
                 seed: int, shared_prefix: str = "", settled: Callable[[str], bool] | None = None
                 ) -> list[list[Generated]]:
        """See :meth:`Backend.generate`: one request per answer (the server caches prompt prefixes itself,
        and answers are not watched as they are generated, so ``shared_prefix`` and ``settled`` are not
        used), no logprobs asked, each with its own
        ``seed`` (:func:`sample_seed`); whether the same seed gives the same answer is up to the server
        (vLLM and llama.cpp honour it). A request that fails after its retries (timeout, 5xx, 400) or a
        malformed reply becomes that answer's ``error``; a refused key or unknown model/URL (401, 403,
        404) stops the run, since every other request would fail the same way."""
        requests = [(p, i) for p in prompts for i in range(samples)]
        bodies = []
        for prompt, i in requests:
            body = self._base_body(prompt)
            body.update(max_tokens=max_new_tokens, temperature=temperature,
                        seed=sample_seed(seed, prompt, i))
            bodies.append(body)
        # A transport without per-request failures (SageMaker) fails the batch on the first error.
        post = getattr(self.transport, "post_each", self.transport.post_many)
        replies = post(PATHS[self.endpoint], bodies)
        answers: list[Generated] = []
        for reply in replies:
            if isinstance(reply, ServerRejected) and reply.status in (401, 403, 404):
                raise reply
            if isinstance(reply, BackendError):
                answers.append(Generated("", 0, str(reply)))
                continue
            try:
                text, tokens = generated_text(reply, self.endpoint)
            except BackendError as error:
                answers.append(Generated("", 0, str(error)))
                continue
            answers.append(Generated(text, self.count_tokens(text) if tokens is None else tokens))
        return [answers[start:start + samples] for start in range(0, len(answers), samples)]

    def _base_body(self, prompt: str) -> dict[str, Any]:
        """The model and the prompt (messages on chat), as every request sends them."""
        body: dict[str, Any] = {}
        if self.model_id:
            body["model"] = self.model_id
        if self.endpoint == "chat":
            body["messages"] = self._messages(prompt)
        else:
            body["prompt"] = self._completion_prompt(prompt)
        return body

    def _body(self, prompt: str, top: int, ids: list[int]) -> dict[str, Any]:
        body: dict[str, Any] = {"max_tokens": 1, "temperature": 0, **self._base_body(prompt)}
        if self.endpoint == "chat":
            body.update(logprobs=True, top_logprobs=top)
        else:
            body.update(logprobs=top)
        if ids:
            body.update(logprob_token_ids=ids, return_tokens_as_token_ids=True)
        return body

    def _completion_prompt(self, prompt: str) -> str | list[int]:
        """The prompt as sent: the string, or its token ids when the user text in it holds special-token
        strings, which a server tokenizing the string would read as control tokens."""
        if self._tokenizer is None:
            return prompt
        tokenizer = self._tokenizer.tokenizer
        if self._special_ids is None:
            self._special_ids = special_token_ids(tokenizer)
        ids, text_had_specials = encode_prompt(tokenizer, prompt, self.text_slots.span(prompt), self._special_ids)
        if not text_had_specials:
            return prompt
        # A server adds BOS when it tokenizes a string, not to token ids: add it as it would.
        bos, probe = tokenizer.bos_token_id, tokenizer("x").input_ids
        return ([bos] if bos is not None and probe and probe[0] == bos else []) + ids

    def _ask(self, prompts: Sequence[str], top: int, ids: list[int]) -> list[NextToken]:
        """The parsed reply for each prompt, from the cache or the server."""
        bodies = [self._body(p, top, ids) for p in prompts]
        keys = [json.dumps(body, sort_keys=True) for body in bodies]
        missing = [i for i, key in enumerate(keys) if key not in self._cache]
        try:
            replies = self.transport.post_many(PATHS[self.endpoint], [bodies[i] for i in missing])
        except ServerRejected as error:
            if not ids or error.status != 400:
                raise
            # A server may refuse the token-id fields (e.g. more ids than its logprobs cap): use its top-k.
            warnings.warn(f"the server refused logprob_token_ids ({error.detail}); using its top-{top} tokens",
                          stacklevel=2)
            self.token_ids = False
            return self._ask(prompts, top, [])
        fresh = {keys[i]: parse_reply(reply, self.endpoint) for i, reply in zip(missing, replies)}
        found = [fresh[key] if key in fresh else self._cache[key] for key in keys]
        for key, parsed in fresh.items():
            self._cache[key] = parsed
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)  # the oldest first
        return found
