"""Train / calibration / test splits without leaks, and stratified samples.

A calibrator fitted on texts the model was fine-tuned on, or evaluated on texts it was fitted on,
looks better than it is. So duplicates (by :func:`normalize_text`) are removed *before* splitting,
and the result is checked afterwards: no normalised text may appear in two splits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from confidently.data.dataset import Dataset, allocate, normalize_text, strata
from confidently.errors import DataError

SPLIT_NAMES = ("train", "calibration", "test")


@dataclass(frozen=True)
class SplitReport:
    """What :func:`split_dataset` did: sizes, duplicates removed, and the leak check.

    Attributes
    ----------
    n_input : int
        Rows given.
    n_unique : int
        Rows left after removing duplicate texts (the rows that were split).
    duplicates_dropped : int
        ``n_input - n_unique``.
    conflicting_labels : int
        Distinct texts whose copies carried different labels (the majority label was kept; ties
        keep the first occurrence's).
    shared_texts : int
        Normalised texts found in more than one split after splitting; always 0 (checked).
    counts : dict
        ``{split: {label: rows}}`` (label None for unlabelled data becomes ``"unlabelled"``).
    category_counts : dict or None
        ``{split: {category: rows}}`` when the dataset has a ``category`` column.
    """

    fractions: tuple[float, float, float]
    seed: int
    n_input: int
    n_unique: int
    duplicates_dropped: int
    conflicting_labels: int
    shared_texts: int
    counts: dict[str, dict[str, int]]
    category_counts: dict[str, dict[str, int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fractions": list(self.fractions), "seed": self.seed, "n_input": self.n_input,
            "n_unique": self.n_unique, "duplicates_dropped": self.duplicates_dropped,
            "conflicting_labels": self.conflicting_labels, "shared_texts": self.shared_texts,
            "counts": self.counts, "category_counts": self.category_counts,
        }


@dataclass(frozen=True)
class Splits:
    """The three splits and the report of how they were made."""

    train: Dataset
    calibration: Dataset
    test: Dataset
    report: SplitReport = field(repr=False)

    def items(self) -> list[tuple[str, Dataset]]:
        """``[("train", ...), ("calibration", ...), ("test", ...)]``, for writing or tabulating."""
        return [(name, getattr(self, name)) for name in SPLIT_NAMES]


def parse_fractions(fractions: Sequence[float] | str) -> tuple[float, float, float]:
    """Check and normalise split fractions: three non-negative numbers adding up to 1.

    Accepts a sequence or a comma-separated string (``"0.7,0.15,0.15"``) as the CLI passes it.
    """
    if isinstance(fractions, str):
        try:
            fractions = [float(part) for part in fractions.split(",")]
        except ValueError:
            raise DataError(f"fractions {fractions!r} are not numbers; write e.g. 0.7,0.15,0.15") from None
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(not np.isfinite(f) or f < 0 for f in values) or abs(sum(values) - 1.0) > 1e-6:
        raise DataError(f"fractions must be three numbers >= 0 for train, calibration and test that add up to 1, "
                        f"got {list(values)}")
    return values  # type: ignore[return-value]


def deduplicate(dataset: Dataset) -> tuple[Dataset, int, int]:
    """Keep one row per normalised text.

    The kept row is the first carrying the text's most frequent label (so a stray mislabelled copy
    does not win); extra columns come from that row.

    Returns
    -------
    (Dataset, int, int)
        The unique rows in their original order, the number of rows dropped, and the number of
        texts whose copies disagreed on the label.
    """
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(dataset.texts):
        groups.setdefault(normalize_text(text), []).append(i)
    keep: list[int] = []
    conflicts = 0
    for rows in groups.values():
        if dataset.labels is None or len(rows) == 1:
            keep.append(rows[0])
            continue
        labels = [dataset.labels[i] for i in rows]
        votes = Counter(labels)  # insertion order is first-seen order, so max() breaks ties by it
        conflicts += len(votes) > 1
        keep.append(rows[labels.index(max(votes, key=votes.__getitem__))])
    keep.sort()
    return dataset.subset(keep), len(dataset) - len(keep), conflicts


def split_dataset(dataset: Dataset, *, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 42) -> Splits:
    """Deduplicate, then split into train, calibration and test sets, stratified and reproducible.

    Parameters
    ----------
    dataset : Dataset
    fractions : three floats adding up to 1
        Shares of the unique rows for train, calibration and test.
    seed : int
        The same seed and input give the same splits.

    Returns
    -------
    Splits
        ``train``, ``calibration``, ``test`` and a :class:`SplitReport`.

    Notes
    -----
    Strata are (label, category): every label and every category keeps its share in each split,
    to within one row per stratum (largest-remainder rounding). Rows within a split are shuffled.

    Examples
    --------
    >>> from confidently.data import generate_sentiment
    >>> splits = split_dataset(generate_sentiment(200, seed=0))
    >>> [len(d) for _, d in splits.items()], splits.report.shared_texts
    ([140, 30, 30], 0)
    """
    values = parse_fractions(fractions)
    unique, dropped, conflicts = deduplicate(dataset)
    rng = np.random.default_rng(seed)
    groups = list(strata(unique).values())
    parts: list[list[int]] = [[], [], []]
    for rows, sizes in zip(groups, _allocate_strata([len(rows) for rows in groups], values)):
        order = [rows[i] for i in rng.permutation(len(rows))]
        start = 0
        for part, size in zip(parts, sizes):
            part.extend(order[start:start + size])
            start += size
    subsets = [unique.subset(rng.permutation(np.array(part, dtype=np.int64))) for part in parts]
    shared = _shared_texts(subsets)
    if shared:  # cannot happen after deduplication; a failure here is a bug, not bad input
        raise RuntimeError(f"{shared} texts ended up in more than one split")
    report = SplitReport(
        fractions=values, seed=seed, n_input=len(dataset), n_unique=len(unique), duplicates_dropped=dropped,
        conflicting_labels=conflicts, shared_texts=shared,
        counts={name: _count(d.labels or ("unlabelled",) * len(d)) for name, d in zip(SPLIT_NAMES, subsets)},
        category_counts=(
            {name: _count(d.columns["category"]) for name, d in zip(SPLIT_NAMES, subsets)}
            if "category" in unique.columns else None
        ),
    )
    return Splits(*subsets, report=report)


def _allocate_strata(sizes: Sequence[int], fractions: Sequence[float]) -> list[list[int]]:
    """Rows of each stratum per split: each stratum within one row of its share, totals exact.

    Rounding every stratum on its own lets the odd rows pile up in one split (ties always go the
    same way); here each stratum first gets the floor of its shares, and the rows left over are
    handed out by largest fractional remainder, but only to splits still short of their overall
    target (:func:`allocate` of the total).
    """
    targets = allocate(sum(sizes), fractions) if sizes else [0] * len(fractions)
    table = [[int(np.floor(n * f + 1e-9)) for f in fractions] for n in sizes]
    left = [n - sum(row) for n, row in zip(sizes, table)]
    need = [t - sum(row[k] for row in table) for k, t in enumerate(targets)]
    candidates = sorted(
        ((n * f - table[s][k], s, k) for s, n in enumerate(sizes) for k, f in enumerate(fractions)),
        key=lambda c: (-c[0], c[1], c[2]),
    )
    # Each pass hands out at least one row while any are left (left and need only shrink, and they
    # add up to the same total), so this ends; one pass nearly always suffices.
    while any(left):
        for _, s, k in candidates:
            if left[s] and need[k]:
                table[s][k] += 1
                left[s] -= 1
                need[k] -= 1
    return table


def _count(values: Sequence) -> dict[str, int]:
    return {str(key): n for key, n in sorted(Counter(values).items(), key=lambda kv: str(kv[0]))}


def _shared_texts(datasets: Sequence[Dataset]) -> int:
    """How many normalised texts occur in more than one of ``datasets``."""
    owners: Counter[str] = Counter()
    for d in datasets:
        owners.update({normalize_text(t) for t in d.texts})
    return sum(1 for n in owners.values() if n > 1)


def stratified_sample(dataset: Dataset, n: int, *, seed: int = 42) -> Dataset:
    """``n`` rows drawn without replacement, keeping each (label, category) stratum's share.

    Parameters
    ----------
    dataset : Dataset
    n : int
        Rows to draw, at most ``len(dataset)``.
    seed : int

    Returns
    -------
    Dataset
        The sampled rows, in their original order.

    Examples
    --------
    >>> from confidently.data import generate_sentiment
    >>> len(stratified_sample(generate_sentiment(500, seed=0), 100))
    100
    """
    if not 0 <= n <= len(dataset):
        raise DataError(f"cannot sample {n} rows from a dataset of {len(dataset)}", path=dataset.source)
    rng = np.random.default_rng(seed)
    groups = list(strata(dataset).values())
    chosen: list[int] = []
    for rows, quota in zip(groups, allocate(n, [len(rows) for rows in groups]) if groups else []):
        chosen.extend(rng.choice(rows, size=quota, replace=False).tolist())
    return dataset.subset(sorted(chosen))
