"""The dataset object every stage passes on: texts, optional canonical labels and extra columns.

Scoring, calibration and fine-tuning only need ``texts`` and ``labels``; the extra columns (category,
domain, sentiment, anything a user's file carried) ride along so reports can break results down by
them and saved files keep them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from confidently.errors import DataError

#: Column names a Dataset reserves for its own fields; extra columns may not reuse them.
RESERVED_COLUMNS = ("text", "label")


def normalize_text(text: str) -> str:
    """The form two texts are compared in when looking for duplicates.

    Case-folded, with every run of whitespace collapsed to one space and the ends stripped, so
    ``"Great  game!\\n"`` and ``"great game!"`` count as the same text.

    Parameters
    ----------
    text : str

    Returns
    -------
    str

    Examples
    --------
    >>> normalize_text("  The  Match\\twas GREAT ")
    'the match was great'
    """
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class GivenColumns:
    """How a data file named and spelled its columns, so outputs can keep them as they came.

    Attributes
    ----------
    order : the file's column names, in its order.
    text_column, label_column : which of them held the text and the label (``label_column`` None when the
        file had no label column).
    label_values : the label column's values as the file wrote them (``1``, ``pos``), one per row; None
        without labels.
    """

    order: tuple[str, ...]
    text_column: str
    label_column: str | None = None
    label_values: tuple | None = None


@dataclass(frozen=True)
class Dataset:
    """Texts with optional labels and extra per-row columns; immutable.

    Parameters
    ----------
    texts : tuple of str, length n
    labels : tuple of str, length n, or None
        Canonical label names (the task's), or None when the data is unlabelled.
    columns : mapping of str to tuple, each of length n
        Extra per-row columns, e.g. ``"category"``, ``"domain"``, ``"sentiment"``.
    source : str or None
        Where the rows came from (a path), for messages and manifests.
    given : GivenColumns or None
        How the file named and spelled its columns (set by the loaders; :meth:`to_given_frame`). Not
        compared, hashed or kept by :meth:`subset`.

    Examples
    --------
    >>> ds = Dataset(("good", "bad"), ("positive", "negative"), {"domain": ("sports", "workplace")})
    >>> len(ds), ds.label_indices(("negative", "positive")).tolist()
    (2, [1, 0])
    """

    texts: tuple[str, ...]
    labels: tuple[str, ...] | None
    columns: Mapping[str, tuple] = field(default_factory=dict)
    source: str | None = None
    given: GivenColumns | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Lists, arrays and generators are accepted and frozen into tuples so the object really is
        # immutable and cheap to compare.
        texts = tuple(self.texts)
        object.__setattr__(self, "texts", texts)
        n = len(texts)
        if self.labels is not None:
            labels = tuple(self.labels)
            if len(labels) != n:
                raise DataError(f"{len(labels)} labels for {n} texts", path=self.source)
            object.__setattr__(self, "labels", labels)
        columns: dict[str, tuple] = {}
        for name, values in dict(self.columns).items():
            if name in RESERVED_COLUMNS:
                raise DataError(f"extra column {name!r} clashes with the dataset's own {name!r}", path=self.source)
            values = tuple(values)
            if len(values) != n:
                raise DataError(f"column {name!r} has {len(values)} values for {n} texts", path=self.source)
            columns[name] = values
        object.__setattr__(self, "columns", MappingProxyType(columns))
        if self.source is not None:
            object.__setattr__(self, "source", str(self.source))

    def __len__(self) -> int:
        return len(self.texts)

    # A dataclass with a mapping field cannot be hashed; say so plainly rather than fail inside hash().
    __hash__ = None  # type: ignore[assignment]

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """The rows at ``indices`` (in that order), or where a boolean mask of length n is True."""
        index = np.asarray(indices)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise IndexError(f"boolean mask of shape {index.shape} for a dataset of {len(self)} rows")
            index = np.flatnonzero(index)
        order = [int(i) for i in index.ravel()]

        def pick(values: tuple) -> tuple:
            return tuple(values[i] for i in order)

        return Dataset(
            texts=pick(self.texts),
            labels=None if self.labels is None else pick(self.labels),
            columns={name: pick(values) for name, values in self.columns.items()},
            source=self.source,
        )

    def _column_items(self) -> list[tuple[str, tuple]]:
        # One place fixes the column order every export uses: text, label, then the extras.
        items: list[tuple[str, tuple]] = [("text", self.texts)]
        if self.labels is not None:
            items.append(("label", self.labels))
        items.extend(self.columns.items())
        return items

    def to_frame(self):
        """A pandas DataFrame with columns ``text``, ``label`` (when labelled), then the extras."""
        import pandas as pd  # pandas is slow to import; only exports need it

        return pd.DataFrame({name: list(values) for name, values in self._column_items()})

    @property
    def given_names(self) -> tuple[str, ...]:
        """The column names of :meth:`to_given_frame`, in order (without building it)."""
        return self.given.order if self.given is not None else tuple(name for name, _ in self._column_items())

    def to_given_frame(self):
        """A pandas DataFrame of the file's own columns, names and values as it gave them (text and label
        columns under their own names, labels as spelled); :meth:`to_frame` for a dataset built in code."""
        import pandas as pd

        if self.given is None:
            return self.to_frame()
        given = self.given
        columns: dict[str, list] = {}
        for name in given.order:
            if name == given.text_column:
                columns[name] = list(self.texts)
            elif name == given.label_column:
                columns[name] = list(given.label_values)
            else:  # a file's own text/label column that was not the one mapped is kept renamed
                columns[name] = list(self.columns[f"{name}_original" if name in RESERVED_COLUMNS else name])
        return pd.DataFrame(columns)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per row, keys in the order of :meth:`to_frame`."""
        items = self._column_items()
        return [{name: values[i] for name, values in items} for i in range(len(self))]

    def label_indices(self, labels: Sequence[str]) -> np.ndarray:
        """The position of each row's label in ``labels``, as an int64 array of shape (n,).

        Raises
        ------
        DataError
            When the dataset is unlabelled or holds a label that is not in ``labels``.
        """
        if self.labels is None:
            raise DataError("the dataset has no labels; load it with a label column", path=self.source)
        position = {label: i for i, label in enumerate(labels)}
        unknown = sorted(set(self.labels) - set(position))
        if unknown:
            raise DataError(
                f"label {unknown[0]!r} is not one of the task's labels ({', '.join(labels)})", path=self.source
            )
        return np.fromiter((position[label] for label in self.labels), dtype=np.int64, count=len(self))

    def sha256(self) -> str:
        """A content hash of every row (texts, labels and extra columns), for manifests.

        Keys are sorted inside each row so the hash depends on the content, not on column order;
        ``source`` is not part of it.
        """
        digest = hashlib.sha256()
        for record in self.to_records():
            line = json.dumps(record, sort_keys=True, ensure_ascii=False, default=json_value)
            digest.update(line.encode("utf-8") + b"\n")
        return digest.hexdigest()


def json_value(value: Any) -> Any:
    """JSON form of values pandas and pyarrow hand back (numpy scalars and arrays, dates)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def strata(dataset: Dataset) -> dict[tuple, list[int]]:
    """Row indices grouped by (label, category), in order of first appearance.

    Splitting and sampling stratify by these keys: by label always (None when unlabelled) and by
    category when the dataset has that column, so each split keeps every strength of example.
    """
    labels = dataset.labels if dataset.labels is not None else (None,) * len(dataset)
    categories = dataset.columns.get("category", (None,) * len(dataset))
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(labels, categories)):
        groups.setdefault(key, []).append(i)
    return groups


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` that add up to ``total``.

    Largest-remainder rounding: each part gets the floor of its share, and the units left over go to
    the largest fractional parts (earlier parts win ties), so the result is deterministic.

    Examples
    --------
    >>> allocate(10, [0.7, 0.15, 0.15])
    [7, 2, 1]
    """
    weight_sum = float(sum(weights))
    if total < 0 or weight_sum <= 0 or any(w < 0 for w in weights):
        raise DataError(f"cannot share {total} in proportions {list(weights)}")
    shares = [total * w / weight_sum for w in weights]
    parts = [int(np.floor(s + 1e-9)) for s in shares]
    left = total - sum(parts)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - parts[i]), i))
    for i in by_remainder[:left]:
        parts[i] += 1
    return parts
