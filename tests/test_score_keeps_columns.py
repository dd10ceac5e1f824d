"""``score`` writes the file's own columns as they came (names, label spellings, order) and the model's
columns beside them; a file column the model's would overwrite is refused before anything is scored."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from confidently.data import load_dataset
from confidently.errors import DataError
from confidently.scoring.classifier import Classifier
from confidently.workflows.score_file import score_file


@pytest.fixture(scope="module")
def clf(tiny_backend):
    return Classifier(backend=tiny_backend)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_the_files_columns_and_spellings_come_back_unchanged(clf, tmp_path, suffix):
    given = pd.DataFrame({"id": [7, 8, 9], "stars": ["pos", "NEG", "Positive"],
                          "review": ["great film", "awful", "I love it"], "label": ["a", "b", "c"]})
    data = tmp_path / "in.csv"
    given.to_csv(data, index=False)
    out = tmp_path / f"out{suffix}"
    frame = score_file(clf, data, out, text_column="review", label_column="stars", progress=False)
    written = {".csv": pd.read_csv, ".parquet": pd.read_parquet,
               ".jsonl": lambda path: pd.read_json(path, lines=True)}[suffix](out)
    for table in (frame, written):
        assert list(table.columns[:4]) == ["id", "stars", "review", "label"]  # the file's order and names
        pd.testing.assert_frame_equal(table[given.columns].reset_index(drop=True).astype(str), given.astype(str))
        assert {"raw_prediction", "raw_confidence", "truncated"} <= set(table.columns)
    # the labels were still read in the task's names: stars 'pos', 'NEG', 'Positive'
    assert load_dataset(data, text_column="review", label_column="stars").labels == ("positive", "negative",
                                                                                      "positive")


def test_a_column_the_model_would_overwrite_is_refused_before_scoring(clf, tmp_path, monkeypatch):
    data = tmp_path / "earlier-output.jsonl"
    data.write_text(json.dumps({"text": "great film", "raw_prediction": "positive"}) + "\n")
    monkeypatch.setattr(Classifier, "score", lambda *a, **k: pytest.fail("scored before the check"))
    with pytest.raises(DataError, match="column 'raw_prediction' has the name of a column score writes"):
        score_file(clf, data, tmp_path / "out.csv", progress=False)
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.csv.partial").exists()
