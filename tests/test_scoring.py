"""Checkpointed scoring: a killed run resumes where it stopped and loses no finished rows."""

import json

import numpy as np
import pandas as pd
import pytest

from confidently.scoring.classifier import Classifier
from confidently.errors import ArtifactError, ConfidentlyError, DataError
from confidently.scoring.checkpointed import ScoreStore, score_with_store
from confidently.workflows.score_file import score_file

TEXTS = [f"the movie was {w} and I {v} it" for w in ("great", "awful", "boring", "wonderful", "bad")
         for v in ("love", "hate")]


@pytest.fixture()
def clf(tiny_backend):
    return Classifier(backend=tiny_backend, batch_size=4)


def test_reused_rows_are_announced(clf, tmp_path, capsys):
    store = tmp_path / "store"
    score_with_store(clf, TEXTS[:3], ScoreStore(store, clf.fingerprint(), clf.labels), progress=False)
    score_with_store(clf, TEXTS[:5], ScoreStore(store, clf.fingerprint(), clf.labels), progress=True)
    said = " ".join(capsys.readouterr().err.split())
    assert f"reusing 3 rows already scored in {store}" in said and "2 left to score" in said


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_store_reuses_finished_rows(clf, tmp_path):
    store = ScoreStore(tmp_path / "store", clf.fingerprint(), clf.labels)
    first = score_with_store(clf, TEXTS[:6], store, checkpoint_every=4, progress=False)
    assert len(store.chunks) == 2
    calls = []
    original = clf.score
    clf.score = lambda texts, **kw: calls.append(list(texts)) or original(texts, **kw)
    again = score_with_store(clf, TEXTS, ScoreStore(tmp_path / "store", clf.fingerprint(), clf.labels),
                             checkpoint_every=4, progress=False)
    assert sum(len(c) for c in calls) == len(TEXTS) - 6  # only the new rows were scored
    np.testing.assert_allclose(again.mass[:6], first.mass, atol=1e-12)
    np.testing.assert_allclose(again.probs, Classifier(backend=clf.backend).score(TEXTS).probs, atol=1e-5)


def test_store_for_another_model_is_refused(clf, tmp_path):
    ScoreStore(tmp_path / "s", clf.fingerprint(), clf.labels).append(["k"], clf.score(["fine"]))
    with pytest.raises(ArtifactError, match="another model"):
        ScoreStore(tmp_path / "s", "other-fingerprint", clf.labels)


def test_killed_run_resumes_without_rescoring(clf, tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", [{"text": t, "label": "positive" if "love" in t else "negative"}
                                                for t in TEXTS])
    out = tmp_path / "scores.parquet"
    scored: list[int] = []
    original = clf.score

    def dies_after_two_chunks(texts, **kw):
        if len(scored) == 2:
            raise KeyboardInterrupt
        scored.append(len(texts))
        return original(texts, **kw)

    clf.score = dies_after_two_chunks
    with pytest.raises(KeyboardInterrupt):
        score_file(clf, data, out, checkpoint_every=3, progress=False)
    assert not out.exists() and (tmp_path / "scores.parquet.partial" / "manifest.json").exists()
    with pytest.raises(ConfidentlyError, match="--resume"):
        score_file(clf, data, out, checkpoint_every=3, progress=False)
    clf.score = lambda texts, **kw: scored.append(len(texts)) or original(texts, **kw)
    frame = score_file(clf, data, out, checkpoint_every=3, progress=False, resume=True)
    assert sum(scored) == len(TEXTS)  # every row scored exactly once across both runs
    assert not (tmp_path / "scores.parquet.partial").exists()
    written = pd.read_parquet(out)
    assert list(written["text"]) == TEXTS
    assert {"raw_p_negative", "raw_p_positive", "mass_positive", "other_mass", "raw_prediction", "raw_confidence",
            "truncated", "label"} <= set(written.columns)
    assert not any(column.startswith("calibrated") or column == "decision" for column in written.columns)
    np.testing.assert_allclose(written["raw_p_positive"], Classifier(backend=clf.backend).score(TEXTS).probs[:, 1],
                               atol=1e-5)
    assert len(frame) == len(TEXTS)


def test_malformed_line_names_file_and_line(clf, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": oops}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2"):
        score_file(clf, bad, tmp_path / "o.parquet", progress=False)
