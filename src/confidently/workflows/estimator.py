"""A scikit-learn classifier of texts: a language model, a calibrator and a decision policy in one estimator.

``CalibratedTextClassifier(model=..., task=...).fit(texts, y)`` scores the texts with the model, fits a
calibrator on all of them and certifies a decision threshold on out-of-fold calibrated scores; then
``predict_proba`` gives calibrated probabilities, ``predict`` the label and ``decide`` whether to automate
or review each text. As a scikit-learn estimator it goes into ``cross_val_predict``, ``GridSearchCV``
(over the calibration method, say) and ``Pipeline``.

Loading weights takes seconds to minutes, and grid searches clone and refit an estimator many times, so
each process loads a model once per (backend, model, options) and keeps it, and scores a text once per
(model, task, options): a clone or a refit with another calibrator reuses both. :func:`clear_cache`
releases them.
"""

from __future__ import annotations

import math
import numbers
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from confidently.backends import Backend, load_backend
from confidently.calibration import Calibrator, cross_fit_predict, make_calibrator
from confidently.data.loaders import normalize_label
from confidently.scoring.classifier import DEFAULT_BATCH_SIZE, Classifier
from confidently.decision.conformal import ConformalPredictor
from confidently.decision.decisions import decide
from confidently.errors import ConfigError, DataError
from confidently.models.registry import DEFAULT_MODEL
from confidently.tasks.task import Task, get_task
from confidently.decision.policy import DecisionPolicy
from confidently.defaults import DEFAULT_PROCEDURE, procedure_problem
from confidently.decision.thresholds import CertifiedThreshold, certify_threshold

#: Most texts whose raw scores a process keeps (per model, task and options together), oldest dropped first.
MAX_CACHED_TEXTS = 200_000


class CalibratedTextClassifier(ClassifierMixin, BaseEstimator):
    """Classify texts with a language model, with calibrated probabilities and automate/review decisions.

    ``fit(texts, y)``:

    1. scores the texts with the model (raw class probabilities from the task's label words);
    2. fits ``calibrator`` on every row (``calibrator_``);
    3. calibrates every row out of fold (``cv`` stratified folds, each by a calibrator that did not see
       it) and certifies a confidence threshold on those scores by Learn-Then-Test (``procedure``: exact
       binomial tests from the strictest threshold down, :func:`~confidently.decision.thresholds.certify_threshold`),
       so that with probability >= ``level`` the accuracy of automated predictions is >= ``target_accuracy``;
       texts cut to fit the model's context count as reviewed. ``policy_`` automates predictions at or above
       it and reviews the rest (all of them when no threshold is certified);
    4. fits split-conformal (LAC) prediction sets at ``alpha`` on the same out-of-fold scores
       (``prediction_sets_``; :meth:`predict_set`).

    Parameters
    ----------
    model : str, default=DEFAULT_MODEL
        Registry name (``confidently models``), local folder, ``.gguf`` file or hub id.
    task : str or Task, default="sentiment"
        Built-in task name, task ``.json`` file, or a :class:`~confidently.tasks.task.Task`.
    calibrator : str or Calibrator, default="platt"
        A method name for :func:`~confidently.calibration.make_calibrator` (``"platt"``,
        ``"isotonic"``, ``"batch+platt"``...) or an unfitted calibrator, cloned for each fit.
    cv : int, default=5
        Folds of the out-of-fold calibration the threshold is certified on (every label needs at
        least ``cv`` examples).
    target_accuracy : float, default=0.95
        Accuracy the automated predictions must be certified to reach.
    level : float, default=0.95
        One-sided confidence level of that certificate.
    procedure : {"fallback", "fixed-sequence"}, default="fallback"
        How the thresholds are tested (:mod:`~confidently.decision.procedures`).
    alpha : float, default=0.1
        Allowed miscoverage of the prediction sets: each holds the true label with probability at
        least ``1 - alpha``.
    batch_size : int, default=16
        Texts per forward pass.
    backend : str, default="transformers"
        Backend name (``"transformers"``, ``"openai"``...).
    backend_options : dict, optional
        Passed to the backend (``{"device": "cpu", "dtype": "float32"}``, ``{"base_url": ...}``).
    chat : bool, optional
        Override the task's choice of applying the chat template.
    random_state : int, default=0
        Seed of the fold shuffle.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Every label of the task, sorted by name when ``y`` holds names; ``0, ..., n_classes - 1`` when
        ``y`` holds integers, which then index the task's labels in the task's order, as data files read
        them (:func:`~confidently.data.normalize_label`; ``sklearn.preprocessing.LabelEncoder`` numbers
        names in sorted order, the same only when the task lists its labels sorted); ``y``'s own
        spellings, sorted, when it spells every label its own way (``pos``/``neg``, ``Positive``, as
        data files may: see :func:`~confidently.data.normalize_label`), so ``predict`` answers in them.
        Columns of ``predict_proba`` are in this order.
    calibrator_ : Calibrator
        The calibrator fitted on every row.
    certificate_ : CertifiedThreshold
        The threshold certificate (``certificate_.reason`` says what was found).
    policy_ : DecisionPolicy
        Applies the certified threshold.
    prediction_sets_ : ConformalPredictor
        The prediction sets (columns in ``classes_`` order).
    n_samples_ : int
        Number of texts fitted on.

    Examples
    --------
    >>> from confidently import CalibratedTextClassifier  # doctest: +SKIP
    >>> clf = CalibratedTextClassifier(model="gemma-3-270m", cv=3).fit(texts, labels)  # doctest: +SKIP
    >>> clf.predict(["I love it"]), clf.decide(["I love it"])  # doctest: +SKIP
    """

    def __init__(self, *, model: str = DEFAULT_MODEL, task: str | Task = "sentiment",
                 calibrator: str | Calibrator = "platt", cv: int = 5, target_accuracy: float = 0.95,
                 level: float = 0.95, procedure: str = DEFAULT_PROCEDURE, alpha: float = 0.1, batch_size: int = DEFAULT_BATCH_SIZE, backend: str = "transformers",
                 backend_options: Mapping[str, Any] | None = None, chat: bool | None = None, random_state: int = 0):
        self.model = model
        self.task = task
        self.calibrator = calibrator
        self.cv = cv
        self.target_accuracy = target_accuracy
        self.level = level
        self.procedure = procedure
        self.alpha = alpha
        self.batch_size = batch_size
        self.backend = backend
        self.backend_options = backend_options
        self.chat = chat
        self.random_state = random_state

    def fit(self, X: Sequence[str], y: ArrayLike) -> CalibratedTextClassifier:
        """Score ``X`` (texts), fit the calibrator and certify the decision threshold; returns ``self``.

        ``y`` holds the task's label names, or integers indexing them in the task's order.
        """
        self._check_params()
        texts = _check_texts(X)
        classifier = self._classifier()
        classes, columns, targets = _encode_targets(y, classifier.labels, len(texts))
        raw, truncated = _raw_scores(classifier, texts)
        raw = raw[:, columns]
        calibrator = self._new_calibrator().fit(raw, targets)
        out_of_fold = cross_fit_predict(self._new_calibrator(), raw, targets, n_splits=self.cv, seed=self.random_state)
        certificate = certify_threshold(out_of_fold.max(axis=1), out_of_fold.argmax(axis=1) == targets,
                                        target_accuracy=self.target_accuracy, level=self.level,
                                        procedure=self.procedure, never_automated=truncated)
        self.classes_ = classes
        self.calibrator_ = calibrator
        self.certificate_: CertifiedThreshold = certificate
        self.policy_ = DecisionPolicy.from_certificate(certificate)
        self.prediction_sets_ = ConformalPredictor(self.alpha).fit(out_of_fold, targets)
        self.n_samples_ = len(texts)
        self._columns = columns
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Calibrated class probabilities, shape (n_texts, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self)
        texts = _check_texts(X)
        return self.calibrator_.predict_proba(_raw_scores(self._classifier(), texts)[0][:, self._columns])

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """The most probable label of each text after calibration."""
        calibrated = self.predict_proba(X)
        return self.classes_[np.argmax(calibrated, axis=1)]

    def decide(self, X: Sequence[str]) -> np.ndarray:
        """``"automate"`` or ``"review"`` for each text: its calibrated confidence against ``policy_``,
        through :func:`confidently.decision.decisions.decide` like every other path (a text cut to fit the
        model's context goes to review)."""
        check_is_fitted(self)
        raw, truncated = _raw_scores(self._classifier(), _check_texts(X))
        return decide(raw[:, self._columns], labels=[str(label) for label in self.classes_],
                      calibrator=self.calibrator_, policy=self.policy_, truncated=truncated).decision

    def predict_set(self, X: Sequence[str]) -> np.ndarray:
        """Each text's prediction set: bool array (n_texts, n_classes), ``True`` where ``classes_[j]`` is
        kept; the sets hold the true label at least ``1 - alpha`` of the time."""
        return self.prediction_sets_.predict_set(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    # --- internals --------------------------------------------------------------------------

    def _check_params(self) -> None:
        problems = []
        if not _is_int(self.cv) or self.cv < 2:
            problems.append(f"cv must be an int >= 2; got {self.cv!r}")
        if not _is_real(self.target_accuracy) or not 0.0 < self.target_accuracy <= 1.0:
            problems.append(f"target_accuracy must be in (0, 1]; got {self.target_accuracy!r}")
        if not _is_real(self.level) or not 0.0 < self.level < 1.0:
            problems.append(f"level must be in (0, 1); got {self.level!r}")
        if problem := procedure_problem(self.procedure):
            problems.append(problem)
        if not _is_real(self.alpha) or not 0.0 < self.alpha < 1.0:
            problems.append(f"alpha must be in (0, 1); got {self.alpha!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            problems.append(f"batch_size must be an int >= 1; got {self.batch_size!r}")
        if not isinstance(self.calibrator, (str, Calibrator)):
            problems.append(f"calibrator must be a method name or a Calibrator; got {self.calibrator!r}")
        if self.backend_options is not None and not isinstance(self.backend_options, Mapping):
            problems.append(f"backend_options must be a dict; got {self.backend_options!r}")
        if problems:
            raise ConfigError(f"{type(self).__name__}: " + "; ".join(problems))

    def _new_calibrator(self) -> Calibrator:
        if isinstance(self.calibrator, str):
            return make_calibrator(self.calibrator)
        return clone(self.calibrator)

    def _classifier(self) -> Classifier:
        return _shared_classifier(self.backend, self.model, dict(self.backend_options or {}), get_task(self.task),
                                  self.chat, self.batch_size)


def clear_cache() -> None:
    """Release the models and raw scores kept for :class:`CalibratedTextClassifier` in this process."""
    with _LOCK:
        _BACKENDS.clear()
        _CLASSIFIERS.clear()
        _SCORES.clear()


_LOCK = threading.Lock()
_BACKENDS: dict[tuple, Backend] = {}
_CLASSIFIERS: dict[tuple, Classifier] = {}
_SCORES: OrderedDict[tuple[str, str], tuple[np.ndarray, bool]] = OrderedDict()


def _shared_classifier(backend: str, model: str, options: dict[str, Any], task: Task, chat: bool | None,
                       batch_size: int) -> Classifier:
    """The process's classifier for these settings, loading the model only the first time."""
    backend_key = (backend, model, tuple(sorted((str(k), repr(v)) for k, v in options.items())))
    key = (backend_key, task.fingerprint(), chat, batch_size)
    with _LOCK:
        if key not in _CLASSIFIERS:
            if backend_key not in _BACKENDS:
                _BACKENDS[backend_key] = load_backend(backend, model=model, **options)
            _CLASSIFIERS[key] = Classifier(model, task, backend=_BACKENDS[backend_key], batch_size=batch_size, chat=chat)
        return _CLASSIFIERS[key]


def _raw_scores(classifier: Classifier, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Raw class probabilities of ``texts`` (task label order) and whether each was cut to fit, scoring only
    texts not seen before."""
    fingerprint = classifier.fingerprint()
    with _LOCK:
        known = {text: _SCORES[(fingerprint, text)] for text in texts if (fingerprint, text) in _SCORES}
    missing = [text for text in dict.fromkeys(texts) if text not in known]
    if missing:
        scores = classifier.score(missing)
        scored = dict(zip(missing, zip(scores.probs, scores.truncated)))
        known.update(scored)
        with _LOCK:
            _SCORES.update(((fingerprint, text), row) for text, row in scored.items())
            while len(_SCORES) > MAX_CACHED_TEXTS:
                _SCORES.popitem(last=False)
    return np.vstack([known[text][0] for text in texts]), np.array([known[text][1] for text in texts], dtype=bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_texts(X: Any) -> list[str]:
    if isinstance(X, (str, bytes)):
        raise DataError("X must be a sequence of texts, not one string; wrap it in a list")
    arr = np.asarray(X, dtype=object)
    if arr.ndim != 1:
        raise DataError(f"X must be a 1-D sequence of texts; got shape {arr.shape}")
    if arr.size == 0:
        raise DataError("X has no texts")
    for i, text in enumerate(arr):
        if not isinstance(text, str):
            raise DataError(f"X[{i}] is {type(text).__name__}, not a text")
    return [str(text) for text in arr]


def _encode_targets(y: ArrayLike, labels: Sequence[str], n_texts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(classes_, columns, targets)``: the classes, the raw-score column of each, and ``y`` as class indices.

    Names are sorted so that ``classes_`` is what scikit-learn expects of a classifier.
    """
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n_texts:
        raise DataError(f"y must be a 1-D array of {n_texts} labels, one per text; got shape {arr.shape}")
    if arr.dtype.kind in "iu" or (arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        # An integer indexes the task's labels in the task's order, as data files read it (normalize_label).
        targets = arr.astype(np.int64)
        bad = np.flatnonzero((targets < 0) | (targets >= len(labels)))
        if bad.size:
            raise DataError(f"y[{bad[0]}] = {arr[bad[0]]} does not index the task's {len(labels)} labels "
                            f"{list(labels)} (0 is {labels[0]!r}, in the task's order)")
        return np.arange(len(labels)), np.arange(len(labels)), targets
    names = sorted(labels)
    columns = np.array([labels.index(name) for name in names])
    values = arr.tolist()
    spellings = _spellings(values, labels)
    if spellings is not None:  # y spells the labels its own way: classes_ keeps its spellings
        names = sorted(spellings)
        columns = np.array([labels.index(spellings[name]) for name in names])
    index = {name: i for i, name in enumerate(names)}
    targets = np.empty(n_texts, dtype=np.int64)
    for i, label in enumerate(values):
        if label not in index:
            raise DataError(f"y[{i}] = {label!r} is not a label of the task; expected one of {names}")
        targets[i] = index[label]
    return np.array(names, dtype=object), columns, targets


def _spellings(values: list, labels: Sequence[str]) -> dict[str, str] | None:
    """``{spelling: task label}`` when ``values`` spell every task label one way of their own, else None.

    None (names are then checked as given) when every value is a task label, when a value maps to no
    label, or when the spellings do not name each label exactly once.
    """
    distinct = sorted({value for value in values if isinstance(value, str)})
    if len(distinct) != len(set(values)) or all(value in labels for value in distinct):
        return None
    try:
        spellings = {value: normalize_label(value, labels) for value in distinct}
    except DataError:
        return None
    return spellings if sorted(spellings.values()) == sorted(labels) else None
