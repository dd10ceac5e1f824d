"""The Dataset object: validation, subsets, exports, label indices, content hash."""

from __future__ import annotations

import numpy as np
import pytest

from confidently.data import Dataset, normalize_text
from confidently.data.dataset import allocate
from confidently.errors import DataError


@pytest.fixture
def small() -> Dataset:
    return Dataset(["good", "bad", "fine"], ["positive", "negative", "positive"],
                   {"domain": ["sports", "workplace", "other"]}, source="mem.jsonl")


def test_fields_are_frozen_into_tuples(small):
    assert small.texts == ("good", "bad", "fine")
    assert small.labels == ("positive", "negative", "positive")
    assert small.columns["domain"] == ("sports", "workplace", "other")
    assert len(small) == 3
    with pytest.raises(TypeError):
        small.columns["domain"] = ()  # the mapping is read-only
    with pytest.raises(AttributeError):
        small.texts = ()


def test_lengths_and_reserved_names_are_checked():
    with pytest.raises(DataError, match="2 labels for 3 texts"):
        Dataset(("a", "b", "c"), ("x", "y"))
    with pytest.raises(DataError, match="column 'domain' has 1 values for 2 texts"):
        Dataset(("a", "b"), None, {"domain": ("x",)})
    with pytest.raises(DataError, match="clashes"):
        Dataset(("a",), None, {"label": ("x",)})


def test_subset_by_indices_and_mask(small):
    picked = small.subset([2, 0])
    assert picked.texts == ("fine", "good")
    assert picked.labels == ("positive", "positive")
    assert picked.columns["domain"] == ("other", "sports")
    assert picked.source == "mem.jsonl"
    assert small.subset(np.array([False, True, False])).texts == ("bad",)
    assert len(small.subset([])) == 0


def test_frame_and_records_put_text_and_label_first(small):
    frame = small.to_frame()
    assert list(frame.columns) == ["text", "label", "domain"]
    assert frame["label"].tolist() == ["positive", "negative", "positive"]
    assert small.to_records()[1] == {"text": "bad", "label": "negative", "domain": "workplace"}
    unlabelled = Dataset(("a",), None)
    assert list(unlabelled.to_frame().columns) == ["text"]
    assert unlabelled.to_records() == [{"text": "a"}]


def test_label_indices(small):
    assert small.label_indices(("negative", "positive")).tolist() == [1, 0, 1]
    assert small.label_indices(("positive", "negative")).dtype == np.int64
    with pytest.raises(DataError, match="'positive' is not one of the task's labels"):
        small.label_indices(("negative", "neutral"))
    with pytest.raises(DataError, match="no labels"):
        Dataset(("a",), None).label_indices(("negative", "positive"))


def test_sha256_depends_on_content_only(small):
    same = Dataset(small.texts, small.labels, dict(small.columns), source="elsewhere.csv")
    assert small.sha256() == same.sha256()
    assert small.sha256() != small.subset([0, 1]).sha256()
    assert small.sha256() != Dataset(small.texts, ("positive",) * 3, dict(small.columns)).sha256()


@pytest.mark.parametrize("text, expected", [
    ("  The  Match\twas\nGREAT ", "the match was great"),
    ("Straße", "strasse"),  # casefold, not just lower
    ("same", "same"),
])
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize("total, weights, expected", [
    (10, [0.7, 0.15, 0.15], [7, 2, 1]),
    (0, [1, 1], [0, 0]),
    (10000, [500, 500, 1000, 1000, 2500, 2500, 1000, 1000], [500, 500, 1000, 1000, 2500, 2500, 1000, 1000]),
    (7, [1, 1, 1], [3, 2, 2]),
])
def test_allocate_adds_up(total, weights, expected):
    assert allocate(total, weights) == expected
