"""What a classify request costs, and how it is cut into work items for the fair scheduler.

Cost is counted in characters of text times forward passes: scoring a text is one pass, its top
tokens (``top_tokens`` > 0, whatever the count) a second one. Characters rather than tokens, so a
client can compute the cost of a request before sending it; the model's time grows with both. A text
longer than the server's cap (``max_text_chars`` in GET /healthz) is cut to it before it is scored, so it
counts as the cap.

Texts are scored in batches, but each text's top tokens take a pass of their own over the whole
prompt, which took about four times as long as scoring the text (gemma-3-270m and the tiny test
model, 16 texts, CPU). So a work item with top tokens holds a quarter as many texts, and holds the
model about as long as one without.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from confidently.server.batching import Part

#: How many texts' scoring one text's top-token pass takes about as long as (measured; see above).
TOP_TOKEN_PASS_WEIGHT = 4


@dataclass(frozen=True)
class Job:
    """The payload of one work item: consecutive texts of one request, for one adapter (None: the base model)."""

    texts: list[str]
    top_tokens: int
    adapter: str | None = None


def passes(top_tokens: int) -> int:
    """Forward passes per text: one to score it, one more for its top tokens."""
    return 2 if top_tokens else 1


def text_cost(text: str, top_tokens: int, text_cap: int) -> int:
    """One text's cost: the characters scored (at most ``text_cap``, what it is cut to) × passes."""
    return min(len(text), text_cap) * passes(top_tokens)


def request_cost(texts: Sequence[str], top_tokens: int, text_cap: int) -> int:
    """The request's cost: :func:`text_cost` summed over its texts."""
    return sum(text_cost(text, top_tokens, text_cap) for text in texts)


def split(texts: Sequence[str], top_tokens: int, *, max_texts: int, max_cost: int, text_cap: int,
          adapter: str | None = None) -> list[Part]:
    """Consecutive runs of ``texts`` for ``adapter``, each at most ``max_texts`` texts (a quarter of that
    with top tokens) and ``max_cost`` cost, each text costing at most ``text_cap`` characters per pass.

    A text costlier than ``max_cost`` on its own is a work item by itself (texts are never cut here).
    """
    if top_tokens:
        max_texts = max(1, max_texts // TOP_TOKEN_PASS_WEIGHT)
    parts: list[Part] = []
    run: list[str] = []
    cost = 0
    for text in texts:
        this = text_cost(text, top_tokens, text_cap)
        if run and (len(run) == max_texts or cost + this > max_cost):
            parts.append(Part(Job(run, top_tokens, adapter), size=len(run), cost=cost))
            run, cost = [], 0
        run.append(text)
        cost += this
    parts.append(Part(Job(run, top_tokens, adapter), size=len(run), cost=cost))
    return parts
