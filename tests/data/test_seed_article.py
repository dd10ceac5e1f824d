"""The original study's 10,000-line set through the .txt-folder loader (skipped where it is absent)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from confidently.data import load_dataset, normalize_text, split_dataset

# Beside the repository, not in it: CI clones the repo next to shared/ as well.
SEED_ARTICLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "seed-article"

pytestmark = pytest.mark.skipif(not SEED_ARTICLE.is_dir(), reason=f"{SEED_ARTICLE} is absent")


@pytest.fixture(scope="module")
def seed_article():
    return load_dataset(SEED_ARTICLE)


def test_loads_all_lines_with_labels_and_categories(seed_article):
    assert len(seed_article) == 10000
    counts = Counter(zip(seed_article.columns["category"], seed_article.labels))
    assert counts == {("strong", "positive"): 500, ("strong", "negative"): 500,
                      ("medium", "positive"): 1000, ("medium", "negative"): 1000,
                      ("weak", "positive"): 2500, ("weak", "negative"): 2500,
                      ("neutral", "positive"): 1000, ("neutral", "negative"): 1000}


def test_duplicates_are_dropped_before_splitting(seed_article):
    splits = split_dataset(seed_article, seed=0)
    report = splits.report
    assert (report.n_unique, report.duplicates_dropped, report.shared_texts) == (8801, 1199, 0)
    seen = [{normalize_text(t) for t in part.texts} for _, part in splits.items()]
    assert sum(map(len, seen)) == len(set().union(*seen)) == 8801
