"""A per-text size cap: a huge text is cut by the truncation rule before it is tokenized, so one
1 MB text costs what a text at the cap costs; texts under the cap are scored exactly as before."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from confidently.scoring.classifier import Classifier
from confidently.errors import ConfigError, DataError

MEGABYTE_TEXT = ("the film was great and I loved it " * 31000)[:1_000_000]


def test_a_megabyte_text_is_never_tokenized_whole(tiny_backend, monkeypatch):
    clf = Classifier(backend=tiny_backend)
    seen: list[int] = []
    encode_text = tiny_backend.encode_text
    monkeypatch.setattr(tiny_backend, "encode_text", lambda text: seen.append(len(text)) or encode_text(text))
    started = time.perf_counter()
    scores = clf.score([MEGABYTE_TEXT, "fine"])
    elapsed = time.perf_counter() - started
    assert max(seen) <= clf.max_text_chars == 16 * clf.max_text_tokens
    assert scores.truncated.tolist() == [True, False] and np.isfinite(scores.probs).all()
    assert elapsed < 30, elapsed  # bounded by the cap, not by the text


@pytest.mark.parametrize("side,start,end", [("right", True, False), ("left", False, True), ("middle", True, True)])
def test_the_character_cut_follows_the_truncation_rule(tiny_backend, side, start, end):
    text = "BEGIN " + "x " * 5000 + " END"
    clf = Classifier(backend=tiny_backend, truncation=side, max_text_tokens=4096, max_text_chars=200)
    kept, truncated = clf._fit_text(text)
    assert truncated and len(kept) <= 200
    assert kept.startswith("BEGIN") == start and kept.endswith("END") == end


def test_texts_under_the_cap_are_unchanged(tiny_backend):
    text = "the movie was great and I love it"
    capped = Classifier(backend=tiny_backend, max_text_chars=len(text))
    assert capped._fit_text(text) == (text, False)
    np.testing.assert_array_equal(capped.score([text]).mass, Classifier(backend=tiny_backend).score([text]).mass)


def test_the_caps_are_part_of_the_fingerprint(tiny_backend):
    assert Classifier(backend=tiny_backend, max_text_chars=1000).fingerprint() != \
        Classifier(backend=tiny_backend).fingerprint()


@pytest.mark.parametrize("option", [{"max_text_tokens": 4}, {"max_text_chars": 0}, {"max_text_tokens": 12.5},
                                    {"max_text_chars": True}])
def test_bad_caps_are_refused(tiny_backend, option):
    with pytest.raises(ConfigError, match="at least 8"):
        Classifier(backend=tiny_backend, **option)


def test_next_token_refuses_an_overlong_prompt(tiny_backend):
    with pytest.raises(DataError, match="--max-text-chars"):
        Classifier(backend=tiny_backend, max_text_chars=100).next_token("x" * 101)


def test_score_cli_caps_a_megabyte_row(tiny_model_dir, tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"text": MEGABYTE_TEXT}) + "\n" + json.dumps({"text": "fine"}) + "\n")
    out = tmp_path / "out.jsonl"
    result = subprocess.run([str(Path(sys.executable).with_name("confidently")), "score", str(data), "--out", str(out),
                             "--model", str(tiny_model_dir), "--max-text-tokens", "64", "--max-text-chars", "2000"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert pd.read_json(out, lines=True)["truncated"].tolist() == [True, False]
