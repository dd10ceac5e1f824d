"""Reading a saved calibrator back: every value checked where it enters, nothing trusted.

A saved calibrator is data from a disk or a client. Each reader takes one JSON value and the place it
came from (``state.maps_[0].x``), checks its type, shape and range, and returns a plain Python number
or a float array; anything else raises :class:`~confidently.errors.ArtifactError` naming the place,
what was expected and what was found. JSON ``true`` is never a number (Python counts it as 1), NaN and
Infinity (which Python's ``json`` module accepts) are refused, and nesting deeper than
:data:`MAX_DEPTH` is refused before anything walks it recursively.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from confidently.errors import ArtifactError

#: Deepest nesting of lists and objects a saved calibrator may have. A stack of plain calibrators
#: nests about 8 levels, each level of stacking about 4 more.
MAX_DEPTH = 40


def check_depth(data: Any, *, limit: int = MAX_DEPTH) -> None:
    """Refuse ``data`` nested more than ``limit`` levels deep (walked with a stack, not recursion)."""
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, Mapping):
            children: Iterable[Any] = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth >= limit:
            raise ArtifactError(f"saved calibrator is nested more than {limit} levels deep; not a calibrator file")
        pending.extend((child, depth + 1) for child in children)


def describe(value: Any) -> str:
    """A short repr for error messages (a corrupt file may hold megabytes in one value)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_number(value: Any) -> bool:
    """A real number that is not a boolean (JSON ``true`` is not 1)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def read_real(value: Any, where: str, *, low: float | None = None, high: float | None = None,
              positive: bool = False) -> float:
    """A finite number in ``[low, high]`` (``> 0`` when ``positive``)."""
    ok = is_number(value) and math.isfinite(value)
    ok = ok and (low is None or value >= low) and (high is None or value <= high) and (not positive or value > 0)
    if not ok:
        raise ArtifactError(f"{where} must be {_range('a finite number', low, high, positive)}; got {describe(value)}")
    return float(value)


def read_int(value: Any, where: str, *, low: int) -> int:
    """An integer >= ``low`` (an integral float such as ``3.0`` is not accepted)."""
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low):
        raise ArtifactError(f"{where} must be an int >= {low}; got {describe(value)}")
    return int(value)


def read_vector(value: Any, where: str, *, length: int | None = None, min_length: int = 1,
                low: float | None = None, high: float | None = None, positive: bool = False,
                order: str | None = None) -> np.ndarray:
    """A list of finite numbers as a float array.

    ``order`` is ``None``, ``"non-decreasing"`` or ``"increasing"`` (strictly).
    """
    if not isinstance(value, list):
        raise ArtifactError(f"{where} must be a list of numbers; got {describe(value)}")
    if length is not None and len(value) != length:
        raise ArtifactError(f"{where} must hold {length} numbers; got {len(value)}")
    if len(value) < min_length:
        raise ArtifactError(f"{where} must hold at least {min_length} numbers; got {len(value)}")
    for i, item in enumerate(value):
        read_real(item, f"{where}[{i}]", low=low, high=high, positive=positive)
    arr = np.asarray(value, dtype=float)
    steps = np.diff(arr)
    if order == "non-decreasing" and np.any(steps < 0):
        i = int(np.flatnonzero(steps < 0)[0])
        raise ArtifactError(f"{where} must be sorted (non-decreasing); {where}[{i + 1}] = {arr[i + 1]} < {arr[i]}")
    if order == "increasing" and np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0])
        raise ArtifactError(f"{where} must be strictly increasing; {where}[{i + 1}] = {arr[i + 1]} <= {arr[i]}")
    return arr


def read_object(value: Any, where: str, keys: Iterable[str]) -> Mapping[str, Any]:
    """A JSON object with exactly ``keys``."""
    expected = sorted(keys)
    if not isinstance(value, Mapping):
        raise ArtifactError(f"{where} must be an object with keys {expected}; got {describe(value)}")
    if sorted(value) != expected:
        raise ArtifactError(f"{where} must have exactly the keys {expected}; got {sorted(map(str, value))}")
    return value


def read_any(value: Any, where: str) -> Any:
    """A value of a fitted state no reader describes: numbers finite and never booleans, lists of
    numbers as float arrays, objects and other lists read item by item (depth already bounded)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        raise ArtifactError(f"{where} must be a number, a list or an object; got {describe(value)}")
    if is_number(value):
        return read_real(value, where)
    if isinstance(value, Mapping):
        return {key: read_any(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        if all(is_number(item) for item in value):
            return read_vector(value, where, min_length=0)
        return [read_any(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise ArtifactError(f"{where} has an unreadable value {describe(value)}")


def _range(kind: str, low: float | None, high: float | None, positive: bool) -> str:
    if positive and high is None:
        return f"{kind} > 0"
    if low is None and high is None:
        return kind
    lo = "0 (exclusive)" if positive else ("-inf" if low is None else f"{low:g}")
    hi = "inf" if high is None else f"{high:g}"
    return f"{kind} in [{lo}, {hi}]"
