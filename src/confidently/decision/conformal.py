"""Conformal prediction sets: every label that cannot be ruled out, with a coverage guarantee.

Split conformal prediction (Vovk et al. 2005; Angelopoulos & Bates 2021) turns class probabilities
into a *set* of labels per item. Fitted on ``n`` labelled calibration rows it guarantees

    P(true label in set) >= 1 - alpha,

on average over the calibration sample and a new item drawn like it, and at most
``1 - alpha + 1/(n + 1)`` when the scores have no ties. Two nonconformity scores:

* ``"lac"`` (least ambiguous set-valued classifier; Sadinle, Lei & Wasserman 2019): ``1 - p(y)``. The
  smallest sets on average.
* ``"aps"`` (adaptive prediction sets; Romano, Sesia & Candès 2020): the probability of the labels
  ranked above ``y``, so labels join the set in rank order until the ones above hold more than the
  quantile. Sets grow where the model is unsure, so coverage is more even across easy and hard
  items. This is APS without its random tie-break (a text always gets the same set, and the top
  label is always in it); the top label scores 0, so when more than ``1 - alpha`` of calibration
  rows have the top label right the scores tie there and coverage can exceed the upper end (it never
  falls below ``1 - alpha``).

Mondrian conformal (Vovk et al. 2003) computes one quantile per group instead of one overall, so the
guarantee holds *within* each group: per true class (``condition_on="class"``) or per slice, any
column the user names (``condition_on="group"``, with ``groups=`` at fit and predict).

The rows used to fit must not have shaped the probabilities (use raw model scores, or calibrated
scores from a calibrator that did not see them). :meth:`ConformalPredictor.decide` is a decision rule:
automate when the set holds exactly one label, review otherwise.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from confidently.calibration.validation import check_labels, check_probs
from confidently.errors import ArtifactError, DataError, NotFittedError
from confidently.files import atomic_write_json, check_format, read_artifact
from confidently.decision.binomial import clopper_pearson_interval

CONFORMAL_FORMAT = "confidently.conformal"
CONFORMAL_FORMAT_VERSION = 1
SCORES = ("lac", "aps")
CONDITIONS = (None, "class", "group")
_MARGINAL = "all"  # the key of the single quantile of a marginal predictor


def nonconformity(probs: np.ndarray, score: str) -> np.ndarray:
    """The score of every (row, label) pair, shape (n_samples, n_classes); larger = less plausible.

    ``lac``: ``1 - p[i, j]``. ``aps``: the sum of ``p[i, l]`` over the labels ``l`` ranked above ``j``
    in row ``i`` (equal probabilities ranked by column order).
    """
    if score == "lac":
        return 1.0 - probs
    if score == "aps":
        order = np.argsort(-probs, axis=1, kind="stable")
        ranked = np.take_along_axis(probs, order, axis=1)
        above = np.cumsum(ranked, axis=1) - ranked  # mass of the labels ranked strictly above
        out = np.empty_like(probs)
        np.put_along_axis(out, order, above, axis=1)
        return out
    raise DataError(f"score must be one of {', '.join(SCORES)}; got {score!r}")


def conformal_quantile(scores: ArrayLike, alpha: float) -> float:
    """The ``ceil((n + 1)(1 - alpha))``-th smallest of ``n`` calibration scores; ``inf`` when that
    rank exceeds ``n`` (too few rows for this alpha: every label must then be kept)."""
    values = np.sort(np.asarray(scores, dtype=float))
    rank = math.ceil((values.size + 1) * (1.0 - alpha))
    return math.inf if rank > values.size else float(values[rank - 1])


def coverage_bounds(n: int, alpha: float) -> tuple[float, float]:
    """The range split conformal guarantees for ``n`` calibration rows: ``[1 - alpha, 1 - alpha + 1/(n + 1)]``
    (the upper end needs scores without ties; with ``rank > n`` every label is kept and coverage is 1)."""
    if math.ceil((n + 1) * (1.0 - alpha)) > n:
        return 1.0, 1.0
    return 1.0 - alpha, min(1.0, 1.0 - alpha + 1.0 / (n + 1))


class ConformalPredictor:
    """Split conformal prediction sets on class probabilities, scikit-learn style.

    Parameters
    ----------
    alpha : float, default=0.1
        Allowed miscoverage: sets hold the true label at least ``1 - alpha`` of the time.
    score : {"lac", "aps"}, default="lac"
        Nonconformity score (see the module docstring).
    condition_on : {None, "class", "group"}, default=None
        ``None``: one quantile, marginal coverage. ``"class"``: one per true class, coverage within each
        class. ``"group"``: one per value of ``groups`` (a slice such as a domain), coverage within each.
    group_column : str, optional
        With ``condition_on="group"``: the name of the data column the groups come from (stored in the
        file, so whoever applies the sets knows which value to pass).

    Attributes
    ----------
    quantiles_ : dict of str to float
        The fitted score quantile per key (``"all"``, a label index as text, or a group value as
        text); ``inf`` keeps every label.
    counts_ : dict of str to int
        Calibration rows behind each quantile.
    n_classes_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> cal_probs = rng.dirichlet([1, 1, 1], size=500)
    >>> cal_y = np.array([rng.choice(3, p=p) for p in cal_probs])  # labels drawn from the probabilities
    >>> sets = ConformalPredictor(alpha=0.1).fit(cal_probs, cal_y).predict_set([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]])
    >>> sets.sum(axis=1).tolist()  # a confident row gets one label, an unsure one several
    [1, 3]
    """

    def __init__(self, alpha: float = 0.1, *, score: str = "lac", condition_on: str | None = None,
                 group_column: str | None = None):
        if not (isinstance(alpha, numbers.Real) and 0.0 < alpha < 1.0):
            raise DataError(f"alpha must be in (0, 1); got {alpha!r}")
        if score not in SCORES:
            raise DataError(f"score must be one of {', '.join(SCORES)}; got {score!r}")
        if condition_on not in CONDITIONS:
            raise DataError(f"condition_on must be None, 'class' or 'group'; got {condition_on!r}")
        if group_column is not None and (condition_on != "group" or not isinstance(group_column, str)):
            raise DataError("group_column names the column of condition_on='group' sets; it needs that condition")
        self.alpha = float(alpha)
        self.score = score
        self.condition_on = condition_on
        self.group_column = group_column
        self.quantiles_: dict[str, float] | None = None
        self.counts_: dict[str, int] | None = None
        self.n_classes_: int | None = None

    @property
    def name(self) -> str:
        """``lac``, ``aps``, ``lac by class``, ``aps by domain`` (the group column, else ``group``)..."""
        if self.condition_on is None:
            return self.score
        return f"{self.score} by {self.group_column or self.condition_on}"

    # -- fitting and predicting ---------------------------------------------------------------------
    def fit(self, probs: ArrayLike, y: ArrayLike, *, groups: ArrayLike | None = None) -> ConformalPredictor:
        """Compute the score quantile(s) on calibration rows ``probs`` (n, k) with labels ``y`` (n,)."""
        p = check_probs(probs)
        labels = check_labels(y, n_samples=p.shape[0], n_classes=p.shape[1])
        true_scores = nonconformity(p, self.score)[np.arange(labels.size), labels]
        keys = self._row_keys(labels, groups, p.shape[0])
        if self.condition_on == "class":
            present = {str(j) for j in range(p.shape[1])}
            missing = sorted(present - set(keys), key=int)
            if missing:
                raise DataError(f"class-conditional sets need calibration rows of every class; class "
                                f"{', '.join(missing)} has none")
        self.quantiles_, self.counts_ = {}, {}
        for key in sorted({str(k) for k in keys}, key=_natural):
            chosen = true_scores[keys == key]
            self.quantiles_[key] = conformal_quantile(chosen, self.alpha)
            self.counts_[key] = int(chosen.size)
        self.n_classes_ = int(p.shape[1])
        return self

    def predict_set(self, probs: ArrayLike, *, groups: ArrayLike | None = None) -> np.ndarray:
        """Bool array (n, k): ``True`` where label ``j`` is in row ``i``'s set."""
        self._check_fitted()
        p = check_probs(probs, n_classes=self.n_classes_)
        scores = nonconformity(p, self.score)
        if self.condition_on == "class":
            limit = np.array([self.quantiles_[str(j)] for j in range(self.n_classes_)])[None, :]
        elif self.condition_on == "group":
            keys = self._group_keys(groups, p.shape[0])
            unknown = sorted(set(keys) - set(self.quantiles_), key=_natural)
            if unknown:
                raise DataError(f"group {unknown[0]!r} was not in the calibration data (known: "
                                f"{', '.join(sorted(self.quantiles_, key=_natural))})")
            limit = np.array([self.quantiles_[key] for key in keys])[:, None]
        else:
            limit = np.full((1, 1), self.quantiles_[_MARGINAL])
        return scores <= limit

    def label_sets(self, probs: ArrayLike, labels: Sequence[str], *,
                   groups: ArrayLike | None = None) -> list[list[str]]:
        """Each row's set as label names (task order): the ``prediction_set`` of a scored text."""
        if len(labels) != self.n_classes_:
            raise DataError(f"{len(labels)} labels given for prediction sets fitted on {self.n_classes_} classes")
        return set_labels(self.predict_set(probs, groups=groups), labels)

    def decide(self, probs: ArrayLike, *, groups: ArrayLike | None = None) -> np.ndarray:
        """``"automate"`` where the set holds exactly one label, the most probable one, else ``"review"``
        (see :func:`decide_by_sets`); an array of str."""
        return decide_by_sets(self.predict_set(probs, groups=groups), check_probs(probs))

    def bounds(self, key: str = _MARGINAL) -> tuple[float, float]:
        """The coverage range guaranteed for one quantile's key (see :func:`coverage_bounds`)."""
        self._check_fitted()
        return coverage_bounds(self.counts_[key], self.alpha)

    @property
    def guarantee(self) -> str:
        """What the sets promise, in words."""
        group = f" within each {self.group_column} value" if self.group_column else " within each group"
        within = {None: "", "class": " within each true class", "group": group}[self.condition_on]
        return (f"the set holds the true label at least {1 - self.alpha:.0%} of the time{within}, on average over "
                "the calibration sample and new items drawn like it")

    @property
    def decision_guarantee(self) -> str:
        """What automating single-label sets (:meth:`decide`) promises, in words."""
        within = {None: "", "class": " within each true class",
                  "group": f" within each {self.group_column or 'group'} value"}[self.condition_on]
        return (f"an answer is automated when its prediction set holds only that label; an automated answer can "
                f"be wrong only when the set misses the true label, so wrong automated answers are at most "
                f"{self.alpha:.0%} of all items{within}, on average over the calibration sample and new items "
                "drawn like it (this bounds errors among all items, not the error rate among automated ones)")

    # -- files --------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {"format": CONFORMAL_FORMAT, "format_version": CONFORMAL_FORMAT_VERSION, "alpha": self.alpha,
                "score": self.score, "condition_on": self.condition_on, "group_column": self.group_column,
                "n_classes": self.n_classes_,
                "quantiles": {k: None if math.isinf(q) else q for k, q in self.quantiles_.items()},
                "counts": dict(self.counts_), "guarantee": self.guarantee}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConformalPredictor:
        """Rebuild from :meth:`to_dict`; malformed input raises :class:`ArtifactError`."""
        check_format(data, format=CONFORMAL_FORMAT, version=CONFORMAL_FORMAT_VERSION, what="prediction-set file")
        try:
            predictor = cls(data["alpha"], score=data["score"], condition_on=data["condition_on"],
                            group_column=data.get("group_column"))
            quantiles, counts, n_classes = data["quantiles"], data["counts"], data["n_classes"]
        except (KeyError, TypeError, DataError) as error:
            raise ArtifactError(f"malformed prediction sets: {error}") from None
        if not _whole(n_classes, low=2):
            raise ArtifactError(f"malformed prediction sets: n_classes must be a whole number >= 2; got {n_classes!r}")
        if not (isinstance(quantiles, Mapping) and isinstance(counts, Mapping) and quantiles
                and set(quantiles) == set(counts)):
            raise ArtifactError("malformed prediction sets: quantiles and counts must name the same non-empty keys")
        expected = {None: {_MARGINAL}, "class": {str(j) for j in range(n_classes)}}.get(predictor.condition_on)
        if expected is not None and set(quantiles) != expected:
            raise ArtifactError(f"malformed prediction sets: condition_on={predictor.condition_on!r} needs quantile "
                                f"keys {', '.join(sorted(expected, key=_natural))}; got "
                                f"{', '.join(sorted(map(str, quantiles), key=_natural))}")
        for key, q in quantiles.items():
            # scores lie in [0, 1], so a quantile outside it is not one this library wrote; null keeps every label
            if q is not None and not (isinstance(q, numbers.Real) and not isinstance(q, bool) and 0.0 <= q <= 1.0):
                raise ArtifactError(f"malformed prediction sets: quantiles[{key!r}] must be a number in [0, 1] or "
                                    f"null; got {q!r}")
            if not _whole(counts[key], low=1):
                raise ArtifactError(f"malformed prediction sets: counts[{key!r}] must be a whole number >= 1; "
                                    f"got {counts[key]!r}")
        predictor.quantiles_ = {str(k): math.inf if q is None else float(q) for k, q in quantiles.items()}
        predictor.counts_ = {str(k): int(c) for k, c in counts.items()}
        predictor.n_classes_ = int(n_classes)
        return predictor

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> ConformalPredictor:
        return read_artifact(path, cls.from_dict)

    def __repr__(self) -> str:
        column = f", group_column={self.group_column!r}" if self.group_column else ""
        return (f"ConformalPredictor(alpha={self.alpha}, score={self.score!r}, "
                f"condition_on={self.condition_on!r}{column})")

    # -- helpers ------------------------------------------------------------------------------------
    def _row_keys(self, labels: np.ndarray, groups: ArrayLike | None, n: int) -> np.ndarray:
        if self.condition_on == "class":
            return labels.astype(str)
        if self.condition_on == "group":
            return self._group_keys(groups, n)
        return np.full(n, _MARGINAL)

    def _group_keys(self, groups: ArrayLike | None, n: int) -> np.ndarray:
        if self.condition_on != "group":
            return np.full(n, _MARGINAL)
        if groups is None:
            raise DataError(f"condition_on='group' needs groups= (one {self.group_column or 'group'} value per row)")
        keys = np.asarray([str(g) for g in np.asarray(groups, dtype=object).ravel()], dtype=object)
        if keys.size != n:
            raise DataError(f"groups has {keys.size} values but there are {n} rows")
        return keys

    def _check_fitted(self) -> None:
        if self.quantiles_ is None:
            raise NotFittedError("this ConformalPredictor is not fitted yet; call fit() first")


def decide_by_sets(sets: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """``"automate"`` where a row's set is exactly its most probable label, else ``"review"``.

    Requiring the set's one label to be the answer keeps the guarantee exact: an automated answer is
    wrong only if the set (that one label) misses the true label. (A class-conditional set can hold a
    single label that is not the most probable one; that row is reviewed.)
    """
    sets = np.asarray(sets, dtype=bool)
    answer_in_set = sets[np.arange(sets.shape[0]), np.asarray(probs).argmax(axis=1)]
    return np.where((sets.sum(axis=1) == 1) & answer_in_set, "automate", "review")


def set_labels(sets: np.ndarray, labels: Sequence[str]) -> list[list[str]]:
    """Each row's set as a list of label names, in the task's label order."""
    return [[labels[j] for j in np.flatnonzero(row)] for row in np.asarray(sets, dtype=bool)]


def measure_sets(sets: np.ndarray, y: ArrayLike, *, labels: Sequence[str],
                 slices: Mapping[str, ArrayLike] | None = None, level: float = 0.95) -> pd.DataFrame:
    """Empirical coverage and set size of prediction sets on labelled rows: overall, per true class,
    and per value of each slice column.

    Returns one row per part with ``part``, ``n``, ``coverage`` and its exact two-sided ``level``
    Clopper–Pearson interval (``coverage_low``, ``coverage_high``), ``mean_set_size``, and the shares
    of sets holding one label (``singleton``) and none (``empty``).
    """
    sets = np.asarray(sets, dtype=bool)
    y = np.asarray(y)
    covered = sets[np.arange(y.size), y]
    sizes = sets.sum(axis=1)
    parts: list[tuple[str, np.ndarray]] = [("all", np.ones(y.size, dtype=bool))]
    parts += [(f"class={label}", y == j) for j, label in enumerate(labels)]
    for column, values in (slices or {}).items():
        values = np.asarray(values, dtype=object)
        parts += [(f"{column}={value}", values == value) for value in sorted(set(values), key=str)]
    rows = []
    for part, mask in parts:
        n = int(mask.sum())
        hits = int(covered[mask].sum())
        low, high = clopper_pearson_interval(hits, n, level)
        rows.append({"part": part, "n": n, "coverage": hits / n if n else math.nan, "coverage_low": low,
                     "coverage_high": high, "mean_set_size": float(sizes[mask].mean()) if n else math.nan,
                     "singleton": float((sizes[mask] == 1).mean()) if n else math.nan,
                     "empty": float((sizes[mask] == 0).mean()) if n else math.nan})
    return pd.DataFrame(rows)


def _whole(value: Any, *, low: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


def _natural(key: str) -> tuple[int, Any]:
    """Sort class indices numerically and other keys as text."""
    return (0, int(key)) if key.isdigit() else (1, key)
