"""Base model vs fine-tuned adapter on the same held-out test rows, with paired intervals.

One backend holds the base model; the adapter is loaded onto it and switched on and off
(``set_adapter``), never a second model copy. Both are scored on the same test rows, calibrated the
same way (Platt and isotonic, fitted on calibration rows when given, else 5-fold cross-fitted on the
test rows so no row is calibrated by a calibrator that saw it), and every difference
(fine-tuned − base) comes with a paired-bootstrap 95% interval: both models are measured on the same
resampled rows, so the interval reflects only how they differ.

Decisions are compared at thresholds fixed before the test rows are seen: each model's certified
threshold (Learn-Then-Test on its cross-fitted calibration-row scores; only when calibration rows are
given) and a few fixed confidence levels. For each, the cost view: automated share, automated
mistakes, review hours and cost per ``projection_volume`` items, both models and the paired difference.

:func:`compare` computes; :func:`confidently.finetune.report.write_comparison` writes report.html, metrics.json,
summary.md and scores.parquet (the report is laid out by :mod:`confidently.finetune.report`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from confidently.backends.transformers_backend import TransformersBackend
from confidently.bundle.bundle import Bundle, read_bundle
from confidently.calibration import SmallSampleWarning, cross_fit_predict, make_calibrator
from confidently.scoring.classifier import Classifier
from confidently.data import Dataset
from confidently.errors import ConfigError, DataError
from confidently.finetune.data import check_labels
from confidently.metrics import metric_function, paired_bootstrap_diff, summarize
from confidently.decision.decisions import Decisions, decide, reads_hidden
from confidently.decision.policy import DecisionPolicy
from confidently.workflows.evaluation import slice_table
from confidently.workflows.labelled import SeenRows
from confidently.scoring.checkpointed import score_datasets
from confidently.defaults import DEFAULT_PROCEDURE, procedure_problem
from confidently.decision.thresholds import certify_threshold
from confidently.decision.volume import project_volume
from confidently.types import Scores

MODELS = ("base", "fine-tuned")
METHODS = ("raw", "platt", "isotonic")
#: Metrics compared with a paired-bootstrap interval, by key in ``metrics.json``.
DIFFERENCE_METRICS = ("accuracy", "ece", "brier", "auroc")
#: The decision rule chosen on calibration rows, beside the fixed thresholds (named by their value).
CERTIFIED = "certified"
#: Per-row decision outcomes compared between the models: (key, description).
DECISION_QUANTITIES = (("coverage", "share automated"), ("mistakes", "automated mistakes per {volume:,}"),
                       ("review_hours", "review hours per {volume:,}"), ("cost", "cost per {volume:,}"))


@dataclass(frozen=True)
class CompareConfig:
    """Settings of the comparison (all written into metrics.json).

    n_resamples, seed : bootstrap resamples of every interval, and their seed (also the folds').
    n_bins : equal-width bins of ECE and the reliability diagrams.
    target_accuracy, level : the certified threshold's target accuracy and confidence ``1 - delta``.
    procedure : how the thresholds are tested (:data:`~confidently.decision.procedures.PROCEDURES`).
    automation_thresholds : fixed calibrated-confidence thresholds whose decisions are compared too.
    review_cost, error_cost, minutes_per_review, projection_volume : the cost view (as in ``evaluate``).
    n_splits : folds of the cross-fitting on the test rows when no calibration rows are given.
    batch_size : prompts per forward pass.
    """

    n_resamples: int = 1000
    seed: int = 0
    n_bins: int = 20
    target_accuracy: float = 0.95
    level: float = 0.95
    procedure: str = DEFAULT_PROCEDURE
    automation_thresholds: tuple[float, ...] = (0.80, 0.90, 0.95)
    review_cost: float = 1.0
    error_cost: float = 10.0
    minutes_per_review: float = 2.0
    projection_volume: int = 10_000
    n_splits: int = 5
    batch_size: int = 16

    def __post_init__(self) -> None:
        if not all(0.5 <= t <= 1.0 for t in self.automation_thresholds):
            raise ConfigError(f"automation_thresholds must lie in [0.5, 1]; got {self.automation_thresholds}")
        if self.n_resamples < 0 or self.n_splits < 2 or not 0.5 <= self.target_accuracy <= 1.0:
            raise ConfigError("need n_resamples >= 0, n_splits >= 2 and target_accuracy in [0.5, 1]")
        if min(self.review_cost, self.error_cost) < 0 or self.minutes_per_review <= 0 or self.projection_volume < 1:
            raise ConfigError("need review_cost, error_cost >= 0, minutes_per_review > 0 and projection_volume >= 1")
        if problem := procedure_problem(self.procedure):
            raise ConfigError(problem)


@dataclass
class Comparison:
    """Everything :func:`compare` measured.

    ``probs[model][method]`` holds test-row class probabilities (model: ``base``/``fine-tuned``;
    method: ``raw``/``platt``/``isotonic``); ``shipped`` the fine-tuned model through the adapter's own
    calibrator and policy. ``decisions[model][method]`` holds the certified threshold (chosen on the
    calibration rows, None without them) and, per rule (``certified`` and each fixed threshold), what it
    does on the test rows and its cost view; ``decision_differences[method][rule][quantity]`` the paired
    difference of each cost-view quantity; ``manifest`` is the adapter bundle's
    manifest. ``seen_by_adapter`` says how many test rows have texts the adapter bundle was trained,
    validated or calibrated on (:meth:`~confidently.workflows.labelled.SeenRows.to_dict`; ``"unknown"`` for a
    bundle that keeps no record), and ``unseen`` (None when it saw none) gives per model the figures ``score``
    gives (:func:`~confidently.workflows.labelled.labelled_figures`: raw accuracy, and for the fine-tuned model
    its own calibrator's accuracy and its sets' coverage, each with its exact interval) on the rows it never saw.
    """

    labels: tuple[str, ...]
    test: Dataset
    y: np.ndarray
    adapter: Path
    manifest: dict[str, Any]
    config: CompareConfig
    calibration_source: str
    probs: dict[str, dict[str, np.ndarray]]
    metrics: dict[str, dict[str, dict]]
    decisions: dict[str, dict[str, dict]]
    differences: dict[str, dict[str, dict]]
    decision_differences: dict[str, dict[str, dict[str, dict]]]
    shipped: dict[str, Any]
    slices: pd.DataFrame
    neutral_by_domain: pd.DataFrame | None = None
    seen_by_adapter: dict[str, Any] | str = "unknown"
    unseen: dict[str, dict] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metadata": self.metadata,
            "config": asdict(self.config),
            "labels": list(self.labels),
            "n_test": int(self.y.size),
            "adapter": {"path": str(self.adapter), "base_model": self.manifest["model"]["name"],
                        "base_weights_id": self.manifest["model"]["weights_id"],
                        "weights_sha256": self.manifest["model"]["adapter_sha256"],
                        "training_data_sha256": self.manifest.get("training_data_sha256")},
            "test_data_sha256": self.test.sha256(),
            "calibration": self.calibration_source,
            "metrics": self.metrics,
            "decisions": self.decisions,
            "differences_fine_tuned_minus_base": self.differences,
            "decision_differences_fine_tuned_minus_base": self.decision_differences,
            "shipped_calibrator_and_policy": self.shipped,
            "slices": self.slices.to_dict(orient="records"),
            "neutral_by_domain": (None if self.neutral_by_domain is None
                                  else self.neutral_by_domain.to_dict(orient="records")),
            "seen_by_adapter": self.seen_by_adapter,
            "unseen_by_adapter": self.unseen,
        }


def compare(test: Dataset, adapter: str | Path, *, backend: TransformersBackend | None = None,
            calibration: Dataset | None = None, config: CompareConfig = CompareConfig(),
            cache_dir: str | Path | None = None, progress: bool = True) -> Comparison:
    """Score ``test`` with the base model and with ``adapter`` on one backend, and compare them.

    Parameters
    ----------
    test : held-out labelled rows the adapter never saw (not its training or calibration data).
    adapter : a folder written by :func:`confidently.finetune.finetune`.
    backend : a loaded backend of the adapter's base model; loaded from the manifest when None.
    calibration : labelled rows to fit the Platt and isotonic calibrators on, for both models;
        without it, they are cross-fitted on the test rows.
    config : bootstrap, binning and decision settings.
    cache_dir : where finished scores are checkpointed (one store per model), or None.

    Raises
    ------
    ArtifactError
        The adapter's manifest is missing or changed, or it was trained on other base weights.
    DataError
        Test labels the task does not know, or test data identical to the training data.
    """
    adapter = Path(adapter)
    bundle = read_bundle(adapter)
    manifest, task = bundle.manifest, bundle.task
    y = check_labels(test, task, role="test")
    if test.sha256() in (manifest.get("training_data_sha256"), bundle.fitted_on.get("rows_sha256")):
        raise DataError(f"the test data is the data adapter {adapter} was trained or calibrated on; "
                        "compare on held-out rows", path=test.source)
    if calibration is not None:
        check_labels(calibration, task, role="calibration")
    groups = _set_groups(bundle, test)  # before anything is scored
    backend = backend or TransformersBackend(bundle.model.name)
    classifier = Classifier(task=task, backend=backend, batch_size=config.batch_size, chat=bundle.chat)
    name = backend.load_adapter(adapter, activate=False)
    previous = backend.active_adapter
    hidden = reads_hidden(bundle.calibrator)  # an ensemble's combiner reads every prompt's class masses
    parts = {"test": test, **({"calibration": calibration} if calibration is not None else {})}
    scores = {}
    try:
        for model, adapter_name in zip(MODELS, (None, name)):
            backend.set_adapter(adapter_name)
            if adapter_name is not None:
                bundle.check(classifier)  # the weights just loaded are the ones the bundle was calibrated on
            cache = Path(cache_dir) / model if cache_dir is not None else None
            scores[model] = (score_datasets(classifier, parts, cache, progress=progress, hidden=hidden)
                             if cache is not None else {k: classifier.score(v.texts, hidden=hidden)
                                                        for k, v in parts.items()})
    finally:
        backend.set_adapter(previous)
    y_cal = None if calibration is None else calibration.label_indices(task.label_names)
    calibrated = {model: _calibrated(scores[model], y, y_cal, config) for model in MODELS}
    probs = {model: calibrated[model][0] for model in MODELS}
    source = (f"Platt and isotonic {config.n_splits}-fold cross-fitted on the test rows (out-of-fold scores)"
              if calibration is None else f"Platt and isotonic fitted on {len(calibration)} calibration rows per model")
    rules = {m: {k: decision_rules(p, y, calibrated[m][1].get(k), y_cal, config,
                                   cut={split: s.truncated for split, s in scores[m].items()})
                 for k, p in probs[m].items()} for m in MODELS}
    decisions = {m: {k: {"certified": None if certificate is None else certificate.to_dict(),
                         "rules": {name: outcome.to_dict(config) for name, outcome in outcomes.items()}}
                     for k, (certificate, outcomes) in rules[m].items()} for m in MODELS}
    seen = SeenRows.of(bundle, test.texts)
    return Comparison(
        labels=task.label_names, test=test, y=y, adapter=adapter, manifest=manifest, config=config,
        calibration_source=source, probs=probs,
        metrics={m: {k: summarize(p, y, n_bins=config.n_bins, n_resamples=config.n_resamples, seed=config.seed)
                     for k, p in probs[m].items()} for m in MODELS},
        decisions=decisions,
        differences={k: _differences(probs["fine-tuned"][k], probs["base"][k], y, config) for k in METHODS},
        decision_differences={k: _decision_differences(rules["fine-tuned"][k][1], rules["base"][k][1], config)
                              for k in METHODS},
        shipped=_shipped(bundle, scores["fine-tuned"]["test"], y, config, groups=groups),
        slices=slice_comparison(test, probs, y, task.label_names),
        neutral_by_domain=neutral_by_domain(test, probs, task.label_names),
        seen_by_adapter=seen.to_dict(),
        unseen=_unseen(seen, bundle, {m: scores[m]["test"] for m in MODELS}, y, groups) if seen.n_seen else None,
        metadata={"adapter": str(adapter), "base model": bundle.model.name, "task": task.name,
                  "test rows": len(test)},
    )


def _calibrated(scores: dict, y: np.ndarray, y_cal: np.ndarray | None,
                config: CompareConfig) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Test-row probabilities per method, and (with calibration rows) the calibration rows' own
    out-of-sample probabilities per method, on which thresholds are certified."""
    raw = scores["test"].probs
    out, on_calibration = {"raw": raw}, {}
    if y_cal is not None:
        on_calibration["raw"] = scores["calibration"].probs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        for method in METHODS[1:]:
            if y_cal is not None:
                cal_raw = scores["calibration"].probs
                out[method] = make_calibrator(method).fit(cal_raw, y_cal).predict_proba(raw)
                on_calibration[method] = cross_fit_predict(method, cal_raw, y_cal, n_splits=config.n_splits,
                                                           seed=config.seed)
            else:
                out[method] = cross_fit_predict(method, raw, y, n_splits=config.n_splits, seed=config.seed)
    return out, on_calibration


# -- decisions: rules fixed before the test rows are seen, compared row by row ---------------------

def automated_count(threshold: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Batch-first: rows whose confidence is >= ``threshold``, per resample (``probs`` (r, n, k))."""
    def count(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (probs.max(axis=-1) >= threshold).sum(axis=-1).astype(float)
    return count


def decision_quantity(key: str, config: CompareConfig) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Batch-first: one cost-view quantity from per-row ``automated`` and ``mistake`` flags, shape (r, n)."""
    volume, minutes = config.projection_volume, config.minutes_per_review

    def quantity(automated: np.ndarray, mistake: np.ndarray) -> np.ndarray:
        if key == "coverage":
            return automated.mean(axis=-1)
        if key == "mistakes":
            return volume * mistake.mean(axis=-1)
        if key == "review_hours":
            return volume * (1.0 - automated).mean(axis=-1) * minutes / 60.0
        return volume * (config.review_cost * (1.0 - automated) + config.error_cost * mistake).mean(axis=-1)

    return quantity


@dataclass(frozen=True)
class RuleOutcome:
    """One decision rule on the test rows: its threshold (None: review everything) and per-row flags."""

    threshold: float | None
    automated: np.ndarray
    correct: np.ndarray

    @property
    def mistakes(self) -> np.ndarray:
        return self.automated & ~self.correct

    def to_dict(self, config: CompareConfig) -> dict[str, Any]:
        projection = project_volume(self.automated, self.correct, volume=config.projection_volume,
                                    minutes_per_review=config.minutes_per_review, review_cost=config.review_cost,
                                    error_cost=config.error_cost, n_resamples=config.n_resamples, seed=config.seed)
        automated = self.automated
        return {"threshold": self.threshold, "n_automated": int(automated.sum()), "coverage": float(automated.mean()),
                "accuracy": float(self.correct[automated].mean()) if automated.any() else None,
                "projection": projection.to_dict()}


def decision_rules(probs: np.ndarray, y: np.ndarray, on_calibration: np.ndarray | None, y_cal: np.ndarray | None,
                   config: CompareConfig, *, cut: dict[str, np.ndarray]):
    """The certificate (chosen on the calibration rows' out-of-sample scores; None without them) and
    each rule's outcome on the test rows: ``certified`` (when there is a certificate) and every
    fixed threshold. ``cut`` marks each split's truncated rows: no rule automates them."""
    correct = probs.argmax(1) == y
    labels = [str(j) for j in range(probs.shape[1])]

    def automated(policy: DecisionPolicy) -> np.ndarray:  # decided as decide() decides every user's answer
        return decide(probs, labels=labels, policy=policy, truncated=cut["test"]).decision == "automate"

    rules: dict[str, RuleOutcome] = {}
    certificate = None
    if on_calibration is not None:
        certificate = certify_threshold(on_calibration.max(1), on_calibration.argmax(1) == y_cal,
                                        target_accuracy=config.target_accuracy, level=config.level,
                                        procedure=config.procedure, never_automated=cut["calibration"])
        rules[CERTIFIED] = RuleOutcome(certificate.threshold, automated(DecisionPolicy.from_certificate(certificate)),
                                       correct)
    for t in config.automation_thresholds:
        fixed = DecisionPolicy(threshold=t, target_accuracy=None, certified=False, method=f"fixed threshold {t:.2f}")
        rules[f"{t:.2f}"] = RuleOutcome(t, automated(fixed), correct)
    return certificate, rules


def _decision_differences(fine_tuned: dict[str, RuleOutcome], base: dict[str, RuleOutcome],
                          config: CompareConfig) -> dict[str, dict[str, dict]]:
    """Per rule and cost-view quantity: fine-tuned − base, paired bootstrap over the test rows (the
    thresholds stay fixed: they were chosen before these rows were seen)."""
    def flags(outcome: RuleOutcome) -> tuple[np.ndarray, np.ndarray]:
        return outcome.automated.astype(float), outcome.mistakes.astype(float)

    return {rule: {key: paired_bootstrap_diff(decision_quantity(key, config), flags(fine_tuned[rule]),
                                              flags(base[rule]), n_resamples=config.n_resamples,
                                              seed=config.seed).to_dict()
                   for key, _ in DECISION_QUANTITIES}
            for rule in fine_tuned}


def _differences(fine_tuned: np.ndarray, base: np.ndarray, y: np.ndarray, config: CompareConfig) -> dict[str, dict]:
    functions = {name: metric_function(name, n_bins=config.n_bins) if name == "ece" else metric_function(name)
                 for name in DIFFERENCE_METRICS}
    for t in config.automation_thresholds:
        functions[f"automated_at_{t:.2f}"] = automated_count(t)
    return {name: paired_bootstrap_diff(fn, (fine_tuned, y), (base, y), n_resamples=config.n_resamples,
                                        seed=config.seed).to_dict()
            for name, fn in functions.items()}


def _set_groups(bundle: Bundle, test: Dataset) -> list | None:
    """The test rows' values of the column the bundle's prediction sets are fitted per (None when they are not
    per slice, or the rows lack it); refused when the bundle decides by those sets and the rows lack it."""
    sets = bundle.prediction_sets
    if sets is None or sets.condition_on != "group":
        return None
    column = sets.group_column or "group"
    if column not in test.columns:
        if bundle.decision_rule == "prediction_set":
            raise DataError(f"the adapter decides by prediction sets fitted per {column}, but the test rows have no "
                            f"{column!r} column", path=test.source)
        return None
    return list(test.columns[column])


def _shipped_decisions(bundle: Bundle, test: Scores, groups: list | None) -> Decisions:
    """The adapter's own calibrator, policy, prediction sets and decision rule (fitted on its calibration split)
    on the test rows' scores, deciding them as the bundle does when applied (its features when the calibrator
    reads them; ``groups``: the rows' values of the sets' column, for sets fitted per slice; a truncated text is
    reviewed)."""
    return decide(test.probs, labels=bundle.task.label_names, calibrator=bundle.calibrator,
                  policy=bundle.policy, hidden=test.hidden, prediction_sets=bundle.prediction_sets,
                  groups=groups, rule=bundle.decision_rule, truncated=test.truncated)


def _unseen(seen: SeenRows, bundle: Bundle, test: dict[str, Scores], y: np.ndarray,
            groups: list | None) -> dict[str, dict]:
    """Per model, the figures ``score`` gives on the test rows the adapter bundle never saw, from each model's
    rows as ``score`` writes them: the base model's raw, the adapter's through its own bundle."""
    frames = {"base": test["base"].to_frame(),
              "fine-tuned": test["fine-tuned"].to_frame().join(
                  _shipped_decisions(bundle, test["fine-tuned"], groups).to_frame())}
    truth = [bundle.task.label_names[i] for i in y]
    return {model: seen.unseen_figures(frames[model], truth) for model in MODELS}


def _shipped(bundle: Bundle, test: Scores, y: np.ndarray, config: CompareConfig, *,
             groups: list | None = None) -> dict[str, Any]:
    """What the adapter's own bundle does with the test rows' scores (:func:`_shipped_decisions`): its metrics,
    rule and guarantee, and how many rows it automates at what accuracy."""
    decisions = _shipped_decisions(bundle, test, groups)
    automate = decisions.decision == "automate"
    correct = decisions.label_index == y
    return {"metrics": summarize(decisions.probs, y, n_bins=config.n_bins, n_resamples=config.n_resamples,
                                 seed=config.seed)["metrics"],
            "calibrated": decisions.calibrated, "policy": bundle.policy.to_dict(),
            "decision_rule": decisions.decided_by, "guarantee": decisions.guarantee,
            "n_automated": int(automate.sum()),
            "coverage": float(automate.mean()),
            "accuracy_automated": float(correct[automate].mean()) if automate.any() else None}


# -- slices --------------------------------------------------------------------------------------

def slice_comparison(test: Dataset, probs: dict[str, dict[str, np.ndarray]], y: np.ndarray,
                     labels: tuple[str, ...]) -> pd.DataFrame:
    """Both models' rows of :func:`confidently.workflows.evaluation.slice_table` (raw and Platt accuracy,
    predicted-label rates per category and per domain) side by side, with the raw accuracy difference."""
    frames = [slice_table(test, probs[model]["raw"], probs[model]["platt"], y, labels) for model in MODELS]
    if not len(frames[0]):
        return frames[0]
    table = pd.concat([frame.set_index(["slice", "n"]).add_suffix(f" {model}") for frame, model in zip(frames, MODELS)],
                      axis=1).reset_index()
    table["accuracy_raw fine-tuned − base"] = table["accuracy_raw fine-tuned"] - table["accuracy_raw base"]
    return table


def neutral_by_domain(test: Dataset, probs: dict[str, dict[str, np.ndarray]],
                      labels: tuple[str, ...]) -> pd.DataFrame | None:
    """On neutral texts, the share each model predicts positive, per domain (the learned domain shortcut).

    Neutral rows are those whose ``sentiment`` (or, failing that, ``category``) column says
    ``neutral``; None when the data has no such rows or no ``domain`` column.
    """
    column = next((c for c in ("sentiment", "category") if c in test.columns), None)
    if column is None or "domain" not in test.columns:
        return None
    neutral = np.asarray(test.columns[column], dtype=object) == "neutral"
    if not neutral.any():
        return None
    domains = np.asarray(test.columns["domain"], dtype=object)
    positive = len(labels) - 1
    labelled = None if test.labels is None else np.asarray(test.labels, dtype=object) == labels[positive]
    rows = []
    for domain in sorted(set(domains[neutral]), key=str):
        mask = neutral & (domains == domain)
        row: dict[str, Any] = {"domain": domain, "n": int(mask.sum())}
        if labelled is not None:
            row[f"labelled {labels[positive]}"] = float(labelled[mask].mean())
        for model in MODELS:
            predicted = probs[model]["raw"][mask].argmax(1)
            row[f"predicted {labels[positive]} {model}"] = float((predicted == positive).mean())
        rows.append(row)
    return pd.DataFrame(rows)
