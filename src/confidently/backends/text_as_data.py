"""User text is data: a special-token string inside it (``<|im_end|>``, ``<start_of_turn>``) is never
read as a control token, while the prompt template's own special tokens still are.

A backend records, each time it renders a prompt around a message, the (prefix, suffix) the message
sits between (:class:`TextSlots`); a prompt is then tokenized with the text's span known
(:func:`encode_prompt`). A prompt whose text holds no special-token string is tokenized whole,
exactly as before; otherwise the prompt is cut at the template's special tokens and every other
piece is tokenized with special-token parsing off (``split_special_tokens=True``). Tokenizers split
at special tokens before anything else, so both ways agree wherever the text has none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

# Stands in for the message while a prompt is rendered, to find where the message sits.
TEXT_MARKER = "\u2063CONFIDENTLY_TEXT\u2063"


class TextSlots:
    """The (prefix, suffix) pairs a backend has rendered around user text."""

    def __init__(self) -> None:
        self._pairs: set[tuple[str, str]] = set()

    def record(self, rendered: str, message: str, render: Callable[[str], str]) -> None:
        """Remember where ``message`` sits in ``rendered`` (``render`` renders any message the same way)."""
        prefix, marker, suffix = render(TEXT_MARKER).partition(TEXT_MARKER)
        if marker and rendered == prefix + message + suffix:
            self._pairs.add((prefix, suffix))

    def add(self, prefix: str, suffix: str) -> None:
        self._pairs.add((prefix, suffix))

    def span(self, prompt: str) -> tuple[int, int] | None:
        """Where the user text is in ``prompt``: the longest recorded prefix and suffix around it."""
        best: tuple[str, str] | None = None
        for prefix, suffix in self._pairs:
            if (len(prompt) >= len(prefix) + len(suffix) and prompt.startswith(prefix) and prompt.endswith(suffix)
                    and (best is None or len(prefix) + len(suffix) > len(best[0]) + len(best[1]))):
                best = (prefix, suffix)
        return None if best is None else (len(best[0]), len(prompt) - len(best[1]))


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` read as plain text (no special tokens parsed, none added)."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True).input_ids


def special_token_ids(tokenizer) -> frozenset[int]:
    """Ids of every special token: the named ones and the added tokens marked special."""
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    return frozenset(tokenizer.all_special_ids) | {i for i, token in added.items() if getattr(token, "special", False)}


def encode_prompt(tokenizer, prompt: str, span: tuple[int, int] | None,
                  specials: frozenset[int]) -> tuple[list[int], bool]:
    """Token ids of ``prompt`` whose characters ``span`` are user text, and whether that text held
    special-token strings (which are then tokenized as plain text)."""
    if span is None:
        return tokenizer(prompt, add_special_tokens=False).input_ids, False
    start, end = span
    whole, found = _whole_and_specials(tokenizer, prompt, specials)
    if not any(a < end and b > start for a, b, _ in found):
        return whole, False  # the usual case: one tokenization, the same as ever
    template = [(a, b, i) for a, b, i in found if b <= start or a >= end]
    ids: list[int] = []
    cursor = 0
    for token_start, token_end, token_id in template:
        ids += encode_text(tokenizer, prompt[cursor:token_start]) if token_start > cursor else []
        ids.append(token_id)
        cursor = token_end
    ids += encode_text(tokenizer, prompt[cursor:]) if cursor < len(prompt) else []
    return ids, True


def _whole_and_specials(tokenizer, prompt: str,
                        specials: frozenset[int]) -> tuple[list[int], list[tuple[int, int, int]]]:
    """The prompt's ids tokenized whole, and (start, end, id) of each special token in it."""
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(encoded.input_ids)
        return ids, [(a, b, i) for i, (a, b) in zip(ids, encoded.offset_mapping) if i in specials]
    # slow tokenizers give no offsets: find the special strings ourselves
    return tokenizer(prompt, add_special_tokens=False).input_ids, _find_specials(tokenizer, prompt, specials)


def _find_specials(tokenizer, prompt: str, specials: frozenset[int]) -> list[tuple[int, int, int]]:
    contents: Sequence[str] = sorted(tokenizer.convert_ids_to_tokens(sorted(specials)), key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(c) for c in contents if c))
    return [(m.start(), m.end(), tokenizer.convert_tokens_to_ids(m.group())) for m in pattern.finditer(prompt)]
