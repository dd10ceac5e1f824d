"""Splits: deduplication before splitting, no leaks (property-tested), stratification, determinism."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confidently.data import Dataset, normalize_text, split_dataset, stratified_sample
from confidently.data.splits import parse_fractions
from confidently.errors import DataError


def normalised_sets(splits):
    return [{normalize_text(t) for t in part.texts} for _, part in splits.items()]


# Texts drawn from a small pool and re-cased / re-spaced, so duplicates are frequent.
_variant = st.tuples(st.sampled_from(["good game", "bad day", "a meeting", "x", "the end", "Yes", "no way"]),
                     st.booleans(), st.sampled_from(["", " ", "  ", "\t"]), st.integers(0, 3))
_row = st.tuples(_variant, st.sampled_from(["positive", "negative"]), st.sampled_from(["weak", "strong", None]))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_row, min_size=1, max_size=60), seed=st.integers(0, 2**16),
       fractions=st.sampled_from([(0.7, 0.15, 0.15), (0.5, 0.25, 0.25), (0.8, 0.2, 0.0), (1.0, 0.0, 0.0), (0.0, 0.5, 0.5)]))
def test_no_text_is_in_two_splits(rows, seed, fractions):
    texts = []
    for (base, upper, space, suffix), _, _ in rows:
        text = (base.upper() if upper else base).replace(" ", " " + space) + " #" * suffix
        texts.append(space + text + space)
    ds = Dataset(texts, [label for _, label, _ in rows], {"category": [c for _, _, c in rows]})
    splits = split_dataset(ds, fractions=fractions, seed=seed)
    train, calibration, test = normalised_sets(splits)
    assert not (train & calibration or train & test or calibration & test)
    unique = {normalize_text(t) for t in texts}
    assert train | calibration | test == unique
    report = splits.report
    assert report.shared_texts == 0
    assert report.n_unique == len(unique) == sum(len(part) for _, part in splits.items())
    assert report.duplicates_dropped == len(texts) - len(unique)


def test_duplicates_and_conflicts_are_counted():
    ds = Dataset(["Good game", "good  game ", "GOOD GAME", "bad", "Bad", "fine", "fine "],
                 ["negative", "positive", "positive", "negative", "positive", "positive", "positive"],
                 {"row": list(range(7))})
    splits = split_dataset(ds, fractions=(1.0, 0.0, 0.0))
    report = splits.report
    assert (report.n_input, report.n_unique, report.duplicates_dropped) == (7, 3, 4)
    assert report.conflicting_labels == 2  # "good game" (2 vs 1) and "bad" (1 vs 1)
    kept = dict(zip(splits.train.texts, zip(splits.train.labels, splits.train.columns["row"])))
    assert kept["good  game "] == ("positive", 1)  # majority label, its first row
    assert kept["bad"] == ("negative", 3)  # a tie keeps the first occurrence
    assert kept["fine"] == ("positive", 5)


def test_stratified_proportions(generated):
    splits = split_dataset(generated, fractions=(0.7, 0.15, 0.15), seed=3)
    assert [len(part) for _, part in splits.items()] == [7000, 1500, 1500]
    whole = Counter(zip(generated.labels, generated.columns["category"]))
    for (_, part), fraction in zip(splits.items(), (0.7, 0.15, 0.15)):
        counts = Counter(zip(part.labels, part.columns["category"]))
        for stratum, total in whole.items():
            assert abs(counts[stratum] - fraction * total) <= 1, (stratum, counts[stratum])
    assert splits.report.counts["test"] == {"negative": 750, "positive": 750}
    assert splits.report.category_counts["calibration"] == {"medium": 300, "neutral": 300, "strong": 150,
                                                            "weak": 750}


def test_odd_sized_strata_still_give_exact_totals():
    ds = Dataset([f"text {i}" for i in range(203)], ["positive" if i % 3 else "negative" for i in range(203)],
                 {"category": [("a", "b", "c", "d", "e")[i % 5] for i in range(203)]})
    splits = split_dataset(ds, seed=0)
    assert [len(part) for _, part in splits.items()] == [142, 31, 30]


def test_split_is_deterministic(generated):
    small = generated.subset(range(1000))
    first, again = split_dataset(small, seed=11), split_dataset(small, seed=11)
    other = split_dataset(small, seed=12)
    assert first.train == again.train and first.test == again.test and first.report == again.report
    assert set(first.test.texts) != set(other.test.texts)


def test_unlabelled_data_splits_too():
    ds = Dataset([f"t{i}" for i in range(20)] + ["T0"], None)
    splits = split_dataset(ds, seed=0)
    assert splits.report.duplicates_dropped == 1
    assert splits.report.counts["train"] == {"unlabelled": 14}
    assert splits.report.category_counts is None


def test_report_is_json_ready(generated):
    report = split_dataset(generated.subset(range(100))).report
    assert json.loads(json.dumps(report.to_dict()))["n_input"] == 100


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.7, 0.2, 0.2), (-0.1, 0.6, 0.5), "a,b,c"])
def test_bad_fractions(fractions):
    with pytest.raises(DataError):
        parse_fractions(fractions)


def test_fractions_from_text():
    assert parse_fractions("0.8, 0.1,0.1") == (0.8, 0.1, 0.1)


def test_stratified_sample(generated):
    sample = stratified_sample(generated, 1000, seed=1)
    assert len(sample) == 1000
    whole = Counter(zip(generated.labels, generated.columns["category"]))
    assert Counter(zip(sample.labels, sample.columns["category"])) == {key: n // 10 for key, n in whole.items()}
    assert sample == stratified_sample(generated, 1000, seed=1)
    assert sample.texts != stratified_sample(generated, 1000, seed=2).texts
    assert len(set(sample.texts)) == 1000
    order = {text: i for i, text in enumerate(generated.texts)}
    assert [order[t] for t in sample.texts] == sorted(order[t] for t in sample.texts)  # original order kept
    with pytest.raises(DataError, match="cannot sample 10001 rows"):
        stratified_sample(generated, 10001)
    assert len(stratified_sample(generated, 0)) == 0
