"""Reading the next-token log-probabilities out of OpenAI-shaped replies.

Two shapes exist:

* ``/v1/completions``: ``choices[0].logprobs.top_logprobs[0]`` maps token *text* to its logprob
  (OpenAI, vLLM, llama.cpp; SageMaker LMI answers a ``"prompt"`` body the same way). vLLM keys
  tokens as ``"token_id:123"`` when asked with ``return_tokens_as_token_ids``.
* ``/v1/chat/completions``: ``choices[0].logprobs.content[0].top_logprobs`` is a list of
  ``{token, logprob}`` entries.

Both become one :class:`NextToken`: every returned token with its logprob, and its vocabulary id
when the server gave one.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confidently.errors import BackendError

_TOKEN_ID_KEY = re.compile(r"^token_id:(\d+)$")

# What each server needs before it returns logprobs at all (shown when a reply holds none).
NO_LOGPROBS_HINT = (
    "the server must return next-token logprobs: llama.cpp's python server needs logits_all=True "
    "(`python -m llama_cpp.server --logits_all true`, the default), and on the chat endpoint top_logprobs "
    "must be set; vLLM caps the count at --max-logprobs (default 20); OpenAI returns at most 20 on chat and "
    "5 on completions, and some models refuse logprobs"
)


@dataclass(frozen=True)
class NextToken:
    """The next-token log-probabilities a server returned for one prompt.

    Attributes
    ----------
    logprobs : token text → natural-log probability, for tokens keyed by their text.
    ids : vocabulary id → logprob, for tokens keyed ``"token_id:N"`` (vLLM's
        ``return_tokens_as_token_ids``).
    """

    logprobs: dict[str, float]
    ids: dict[int, float]

    @property
    def covered(self) -> float:
        """Probability of every returned token together (at most 1)."""
        return min(1.0, math.fsum(math.exp(lp) for lp in [*self.logprobs.values(), *self.ids.values()]))


def _excerpt(reply: Any) -> str:
    return json.dumps(reply, ensure_ascii=False, default=str)[:300]


def _logprob(value: Any, where: str, reply: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise BackendError(f"malformed reply: {where} holds {value!r}, not a log-probability: {_excerpt(reply)}")
    return float(value)


def _first_choice(reply: Any, endpoint: str) -> Mapping:
    choices = reply.get("choices") if isinstance(reply, Mapping) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise BackendError(f"malformed {endpoint} reply (no choices): {_excerpt(reply)}")
    return choices[0]


def _no_logprobs(endpoint: str, reply: Any) -> BackendError:
    return BackendError(f"the {endpoint} reply holds no logprobs ({NO_LOGPROBS_HINT}): {_excerpt(reply)}")


def _top_from_completion(reply: Any) -> dict[str, Any]:
    logprobs = _first_choice(reply, "completions").get("logprobs")
    top = logprobs.get("top_logprobs") if isinstance(logprobs, Mapping) else None
    if not isinstance(top, list) or not top or not isinstance(top[0], Mapping) or not top[0]:
        raise _no_logprobs("completions", reply)
    return dict(top[0])


def _top_from_chat(reply: Any) -> dict[str, Any]:
    logprobs = _first_choice(reply, "chat").get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
    first = content[0] if isinstance(content, list) and content else None
    entries = first.get("top_logprobs") if isinstance(first, Mapping) else None
    if not isinstance(entries, list) or not entries:
        raise _no_logprobs("chat", reply)
    top: dict[str, Any] = {}
    for entry in [*entries, first]:  # the sampled token too, in case the list left it out
        if not isinstance(entry, Mapping) or not isinstance(entry.get("token"), str):
            raise BackendError(f"malformed chat reply: a top_logprobs entry is {entry!r}: {_excerpt(reply)}")
        top.setdefault(entry["token"], entry.get("logprob"))
    return top


def parse_reply(reply: Any, endpoint: str) -> NextToken:
    """The first generated position's top tokens from a ``completions`` or ``chat`` reply.

    Raises
    ------
    BackendError
        When the reply is not an OpenAI-shaped completion, or holds no logprobs (the message says
        which server option is missing).
    """
    top = _top_from_chat(reply) if endpoint == "chat" else _top_from_completion(reply)
    logprobs: dict[str, float] = {}
    ids: dict[int, float] = {}
    for key, value in top.items():
        if not isinstance(key, str):
            raise BackendError(f"malformed reply: token {key!r} is not a string: {_excerpt(reply)}")
        logprob = _logprob(value, f"the logprob of {key!r}", reply)
        match = _TOKEN_ID_KEY.match(key)
        if match:
            ids[int(match.group(1))] = logprob
        else:
            logprobs[key] = logprob
    return NextToken(logprobs, ids)


def generated_text(reply: Any, endpoint: str) -> tuple[str, int | None]:
    """The generated text of a ``completions`` or ``chat`` reply, and its token count from ``usage``
    (None when the server gives none). A null or missing content is the empty answer.

    Raises
    ------
    BackendError
        When the reply is not an OpenAI-shaped completion.
    """
    choice = _first_choice(reply, endpoint)
    if endpoint == "chat":
        message = choice.get("message")
        if not isinstance(message, Mapping):
            raise BackendError(f"malformed chat reply (no message): {_excerpt(reply)}")
        text = message.get("content")
    else:
        text = choice.get("text")
    if text is not None and not isinstance(text, str):
        raise BackendError(f"malformed {endpoint} reply: the generated text is {text!r}: {_excerpt(reply)}")
    usage = reply.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, Mapping) else None
    valid = isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0
    return text or "", tokens if valid else None
