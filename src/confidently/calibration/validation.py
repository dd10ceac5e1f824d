"""Checks on the arrays that calibrators, metrics and thresholds receive, done once at the public entry.

Every check converts its input to a plain numpy array and raises :class:`~confidently.errors.DataError`
with a message that names the argument, the offending row or value, and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from confidently.errors import DataError

#: Rows of ``probs`` must sum to 1 within this tolerance: float32 model outputs renormalised over the
#: label words are off by ~1e-6, while anything larger means the columns are not one distribution.
ROW_SUM_ATOL = 1e-3


def check_probs(probs: ArrayLike, *, n_classes: int | None = None, name: str = "probs") -> np.ndarray:
    """Return ``probs`` as a float array of shape (n_samples, n_classes) of class probabilities.

    Parameters
    ----------
    probs : array-like of shape (n_samples, n_classes)
        Each row a probability distribution over the classes (values in [0, 1], summing to 1 within
        :data:`ROW_SUM_ATOL`); at least one row and two classes.
    n_classes : int, optional
        The number of columns required (a fitted calibrator's class count).
    name : str
        The argument's name, used in error messages.

    Raises
    ------
    DataError
        If the array is not numeric, has the wrong shape, holds non-finite values or values outside
        [0, 1], or a row does not sum to 1.
    """
    arr = _as_float(probs, name)
    if arr.ndim != 2:
        raise DataError(f"{name} must be a 2-D array of shape (n_samples, n_classes); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise DataError(f"{name} has no rows")
    if arr.shape[1] < 2:
        raise DataError(f"{name} must have at least 2 class columns; got {arr.shape[1]}")
    if n_classes is not None and arr.shape[1] != n_classes:
        raise DataError(f"{name} has {arr.shape[1]} class columns but {n_classes} were expected")
    _check_unit_interval(arr, name)
    sums = arr.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_ATOL)
    if bad.size:
        raise DataError(
            f"rows of {name} must sum to 1 (±{ROW_SUM_ATOL}); row {bad[0]} sums to {sums[bad[0]]:.6g} "
            f"({bad.size} such rows); pass class probabilities, not raw masses or logits"
        )
    return arr


def check_labels(y: ArrayLike, *, n_samples: int, n_classes: int, name: str = "y") -> np.ndarray:
    """Return ``y`` as an int array of shape (n_samples,) of class indices in [0, n_classes).

    Integer-valued floats (``1.0``) and booleans are accepted; anything else is refused.

    Raises
    ------
    DataError
        If ``y`` has the wrong shape or length, holds non-integers, or an index out of range.
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of class indices; got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise DataError(f"{name} has {arr.shape[0]} entries but probs has {n_samples} rows")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise DataError(f"{name} must hold integer class indices; got non-integer values")
    elif arr.dtype.kind not in "iub":
        raise DataError(f"{name} must hold integer class indices; got dtype {arr.dtype}")
    labels = arr.astype(np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        raise DataError(
            f"{name}[{bad[0]}] = {labels[bad[0]]} is not a class index in [0, {n_classes - 1}]"
        )
    return labels


def encode_labels(
    y: ArrayLike, *, n_samples: int, n_classes: int, classes: ArrayLike | None = None, name: str = "y"
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(classes_, indices)``: the label of each probability column, and ``y`` as column indices.

    The rule, as in scikit-learn, is that the columns are named by ``classes`` when given, else by the
    labels in ``y``:

    * ``classes`` given: column ``j`` is ``classes[j]``; every value of ``y`` must be one of them.
    * integer (or integer-valued, or boolean) ``y`` with every value in ``[0, n_classes)``: the values are
      column indices and ``classes_`` is ``0, ..., n_classes - 1`` (a class may be absent from ``y``).
    * any other ``y`` (strings, other integers): ``classes_`` is the sorted distinct values of ``y``,
      which must number exactly ``n_classes``, column ``j`` being ``classes_[j]``.

    Raises
    ------
    DataError
        If ``y`` has the wrong shape or length, or its labels cannot name the ``n_classes`` columns.
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of labels; got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise DataError(f"{name} has {arr.shape[0]} entries but probs has {n_samples} rows")
    if classes is not None:
        names = check_classes(classes, n_classes=n_classes)
        lookup = {label: j for j, label in enumerate(names.tolist())}
        indices = np.empty(arr.shape[0], dtype=np.int64)
        for i, label in enumerate(arr.tolist()):
            if label not in lookup:
                raise DataError(f"{name}[{i}] = {label!r} is not one of classes {names.tolist()}")
            indices[i] = lookup[label]
        return names, indices
    if _is_index_array(arr, n_classes):
        return np.arange(n_classes), arr.astype(np.int64)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DataError(f"{name} holds non-finite labels")
    try:
        names, indices = np.unique(arr, return_inverse=True)
    except TypeError:
        raise DataError(f"{name} mixes labels of types that cannot be sorted (e.g. str and int)") from None
    if names.size != n_classes:
        raise DataError(
            f"{name} holds {names.size} distinct labels {names.tolist()[:10]} but probs has {n_classes} "
            "columns; pass classes=[...] naming every column in order"
        )
    return check_classes(names, name=f"the labels in {name}"), indices.astype(np.int64)


def check_classes(classes: ArrayLike, *, n_classes: int | None = None, name: str = "classes") -> np.ndarray:
    """Return ``classes`` as a 1-D array of distinct str or int labels (JSON-able), one per column."""
    try:  # a loaded file may hold null or a number here
        values = None if isinstance(classes, (str, bytes, Mapping)) else list(classes)
    except TypeError:
        values = None
    if values is None or not values:
        raise DataError(f"{name} must be a non-empty list of labels; got {classes!r}")
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    strings = all(isinstance(v, str) for v in values)
    integers = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if not (strings or integers):
        raise DataError(f"{name} must hold only strings or only integers; got {values[:10]!r}")
    if len(set(values)) != len(values):
        raise DataError(f"{name} must be distinct; got {values!r}")
    if n_classes is not None and len(values) != n_classes:
        raise DataError(f"{name} names {len(values)} classes but probs has {n_classes} columns")
    return np.asarray(values, dtype=object if strings else np.int64)


def _is_index_array(arr: np.ndarray, n_classes: int) -> bool:
    if arr.dtype.kind == "b":
        return True
    if arr.dtype.kind in "iu":
        return bool(arr.size == 0 or (arr.min() >= 0 and arr.max() < n_classes))
    if arr.dtype.kind == "f":
        finite = np.all(np.isfinite(arr))
        return bool(finite and np.all(arr == np.round(arr)) and (arr.size == 0 or (arr.min() >= 0 and arr.max() < n_classes)))
    return False


def check_confidence(confidence: ArrayLike, *, name: str = "confidence") -> np.ndarray:
    """Return ``confidence`` as a non-empty 1-D float array with values in [0, 1]."""
    arr = _as_float(confidence, name)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise DataError(f"{name} must be a non-empty 1-D array; got shape {arr.shape}")
    _check_unit_interval(arr, name)
    return arr


def check_correct(correct: ArrayLike, *, n_samples: int, name: str = "correct") -> np.ndarray:
    """Return ``correct`` as a bool array of shape (n_samples,); values must be 0/1 or booleans."""
    arr = np.asarray(correct)
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise DataError(f"{name} must be a 1-D array of {n_samples} booleans; got shape {arr.shape}")
    if arr.dtype.kind != "b":
        if arr.dtype.kind not in "iuf" or not np.all((arr == 0) | (arr == 1)):
            raise DataError(f"{name} must hold booleans or 0/1 values")
    return arr.astype(bool)


def _as_float(values: ArrayLike, name: str) -> np.ndarray:
    if hasattr(values, "toarray") or hasattr(values, "tocsr"):  # scipy.sparse, without importing it
        raise DataError(f"{name} must be a dense array; sparse input is not supported (call .toarray())")
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as error:
        raise DataError(f"{name} must be a numeric array: {error}") from None
    if arr.dtype.kind == "c":
        raise DataError(f"{name} must hold real numbers: Complex data not supported")
    try:
        return arr.astype(float)
    except (TypeError, ValueError) as error:
        raise DataError(f"{name} must be a numeric array: {error}") from None


def _check_unit_interval(arr: np.ndarray, name: str) -> None:
    finite = np.isfinite(arr)
    bad = ~finite | (arr < 0.0) | (arr > 1.0)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        index = ", ".join(map(str, where))
        what = "NaN or inf" if not finite[where] else "outside [0, 1]"
        raise DataError(f"{name} must hold probabilities in [0, 1]; {name}[{index}] = {arr[where]} is {what}")
