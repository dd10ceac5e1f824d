"""The calibration study on scored data: every method fitted on the calibration split and measured
only on data it did not see.

Two honest estimates per method: (1) cross-fitting — K-fold out-of-fold calibrated scores on the
calibration split; (2) the held-out test split, scored by the calibrator fitted on the whole
calibration split (the one that is saved). The method to ship, its decision threshold (certified by
Learn-Then-Test) and its conformal prediction sets are all fitted on (1), never on the test split;
(2) then reports what they do on new data.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from confidently.calibration import (CalibrationWarning, Calibrator, ContextualCalibrator, StackedCalibrator,
                                     cross_fit_predict, make_calibrator)
from confidently.calibration.ensemble import PromptCombiner, cross_fit_ensemble
from confidently.calibration.probe import HiddenStateProbe, cross_fit_probe
from confidently.data import Dataset
from confidently.decision.conformal import ConformalPredictor, measure_sets
from confidently.decision.decisions import decide
from confidently.errors import CalibrationError, ConfigError, DataError
from confidently.metrics import metric_function, summarize
from confidently.decision.policy import DecisionPolicy
from confidently.defaults import DEFAULT_PROCEDURE, procedure_problem
from confidently.decision.thresholds import (ThresholdAnalysis, ThresholdMeasurement, analyse_thresholds,
                                             certify_threshold, measure_thresholds)
from confidently.decision.volume import VolumeProjection, project_volume

SUPERVISED = ("platt", "isotonic", "temperature", "histogram", "beta", "dirichlet")
#: Methods fitted on the rows' ``hidden`` features (:attr:`Scores.hidden`), not on their class probabilities:
#: name -> (the combiner, its out-of-fold scores).
FEATURE_METHODS = {"probe": (HiddenStateProbe, cross_fit_probe), "ensemble": (PromptCombiner, cross_fit_ensemble)}
CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")


@dataclass(frozen=True)
class EvaluationConfig:
    """Parameters of the study (each is written into metrics.json).

    methods : supervised calibrators to compare; ``"batch+platt"``-style stacks are allowed, and
        ``"contextual"`` / ``"contextual+platt"`` use the content-free scores.
    n_bins, mass_bins : equal-width bins for ECE (20, as the original) and equal-mass bins (15).
    n_splits : folds for cross-fitting on the calibration split.
    review_cost, error_cost : cost of one review and of one automated mistake.
    minutes_per_review, projection_volume : review time per item, and the volume the cost view projects onto.
    target_accuracy, level : the certified threshold's target accuracy and confidence ``1 - delta``.
    procedure : how the thresholds are tested (:data:`~confidently.decision.procedures.PROCEDURES`).
    alpha : allowed miscoverage of the conformal prediction sets (they hold the true label >= 1 - alpha).
    conformal_by : a data column to fit per-slice (Mondrian) prediction sets on, or None.
    decision_rule : what the bundle's answers are decided by: ``"threshold"`` (the certified threshold)
        or ``"prediction_set"`` (automate when the shipped prediction set holds only the answer).
    budget_sizes, budget_repeats : label-budget curve: calibration-set sizes and random subsets each.
    n_resamples, seed : bootstrap resamples for every interval, and the seed of all randomness.
    """

    methods: tuple[str, ...] = (*SUPERVISED, "batch", "batch+platt", "contextual", "contextual+platt")
    n_bins: int = 20
    mass_bins: int = 15
    n_splits: int = 5
    review_cost: float = 1.0
    error_cost: float = 10.0
    minutes_per_review: float = 2.0
    projection_volume: int = 10_000
    target_accuracy: float = 0.95
    level: float = 0.95
    procedure: str = DEFAULT_PROCEDURE
    alpha: float = 0.1
    conformal_by: str | None = None
    decision_rule: str = "threshold"
    budget_sizes: tuple[int, ...] = (50, 100, 200, 500, 1000, 2000, 5000)
    budget_repeats: int = 20
    budget_methods: tuple[str, ...] = ("platt", "isotonic", "temperature", "histogram", "beta")
    n_resamples: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        from confidently.decision.decisions import DECISION_RULES

        if self.decision_rule not in DECISION_RULES:  # refused before anything is scored
            raise ConfigError(f"decision_rule must be one of {', '.join(DECISION_RULES)}; got {self.decision_rule!r}")
        if problem := procedure_problem(self.procedure):
            raise ConfigError(problem)


@dataclass
class MethodResult:
    """One calibration method: its saved calibrator, both held-out measurements, and its thresholds.

    ``chosen`` holds the thresholds chosen on the cross-fitted calibration scores (certified and
    cost-optimal); ``on_test`` measures every threshold on the test split and chooses nothing.
    """

    name: str
    calibrator: Calibrator | HiddenStateProbe | None  # None for the raw scores
    crossfit_probs: np.ndarray
    test_probs: np.ndarray
    crossfit: dict
    test: dict
    chosen: ThresholdAnalysis
    on_test: ThresholdMeasurement


@dataclass
class PredictionSets:
    """Conformal prediction sets fitted on the calibration split and measured on the test split.

    ``predictors`` maps a name (``lac``, ``aps by class``...) to the fitted predictor; ``coverage``
    maps the same names to :func:`~confidently.decision.conformal.measure_sets` tables on the test split;
    ``shipped`` names the one saved as ``conformal.json``.
    """

    predictors: dict[str, ConformalPredictor]
    coverage: dict[str, pd.DataFrame]
    shipped: str
    scored_on: str
    rule_on_test: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {}
        for name, predictor in self.predictors.items():
            out[name] = {"predictor": predictor.to_dict(), "guarantee": predictor.guarantee,
                         "guaranteed_range": {key: list(predictor.bounds(key)) for key in predictor.counts_},
                         "test_split": self.coverage[name].to_dict(orient="records")}
        return {"shipped": self.shipped, "scored_on": self.scored_on, "sets": out,
                "set_rule_on_test": self.rule_on_test}


@dataclass
class Evaluation:
    labels: tuple[str, ...]
    y_calibration: np.ndarray
    y_test: np.ndarray
    config: EvaluationConfig
    methods: dict[str, MethodResult]
    best: str
    policy: DecisionPolicy
    policy_on_test: dict
    projection: VolumeProjection
    sets: PredictionSets
    budget: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def headline(self) -> dict:
        raw, best = self.methods["raw"].test["metrics"], self.methods[self.best].test["metrics"]
        shipped = self.sets.coverage[self.sets.shipped].set_index("part").loc["all"]
        return {
            "n_calibration": int(self.y_calibration.size),
            "n_test": int(self.y_test.size),
            "accuracy_raw": raw["accuracy"],
            "accuracy_calibrated": best["accuracy"],
            "ece_raw": raw["ece"],
            "ece_calibrated": best["ece"],
            "best_method": self.best,
            "policy": self.policy.to_dict(),
            "policy_on_test": self.policy_on_test,
            "projection": {**self.projection.to_dict(), "decided_by": self.config.decision_rule},
            "prediction_sets": {"name": self.sets.shipped, "alpha": self.config.alpha,
                                "coverage_on_test": float(shipped["coverage"]),
                                "coverage_on_test_exact_95": [float(shipped["coverage_low"]),
                                                              float(shipped["coverage_high"])],
                                "mean_set_size_on_test": float(shipped["mean_set_size"]),
                                "n_test": int(shipped["n"])},
            "decision_rule": self.config.decision_rule,
            "set_rule_on_test": self.sets.rule_on_test,
        }

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {
            "labels": list(self.labels),
            "config": asdict(self.config),
            "headline": self.headline(),
            "selection": (f"best method = lowest cross-fitted negative log-likelihood on the "
                          f"calibration split ({self.y_calibration.size} rows, {self.config.n_splits} folds); "
                          "thresholds and prediction sets fitted on the same cross-fitted scores; "
                          "test split never used for a choice"),
            "methods": {
                name: {
                    "crossfit_on_calibration_split": result.crossfit,
                    "test_split": result.test,
                    "thresholds": {
                        "chosen_on_calibration_split": {"certified": result.chosen.certified.to_dict(),
                                                        "cost_optimal": result.chosen.optimal.to_dict()},
                        "measured_on_test_split": result.on_test.to_dict(),
                    },
                }
                for name, result in self.methods.items()
            },
            "prediction_sets": self.sets.to_dict(),
            "skipped_methods": self.skipped,
            "notes": self.notes,
            "label_budget": {
                "how": (f"each calibrator fitted on {self.config.budget_repeats} random subsets of n calibration "
                        f"labels, its threshold certified on the subset's own cross-fitted scores "
                        f"({self.config.n_splits} folds); ECE ({self.config.n_bins} equal-width bins), and the "
                        f"coverage and accuracy of that threshold, measured on the whole test split"),
                "summary": budget_summary(self.budget).to_dict(orient="records") if len(self.budget) else [],
            },
        }


def _build(method: str, content_free: np.ndarray | None) -> Calibrator:
    """A fresh calibrator for ``method``; the contextual step is fitted on the content-free scores."""
    steps = method.split("+")
    if "contextual" in steps:
        if content_free is None:
            raise CalibrationError(f"method {method!r} needs content-free scores")
        built = [ContextualCalibrator().fit(content_free) if s == "contextual" else make_calibrator(s) for s in steps]
        return built[0] if len(built) == 1 else StackedCalibrator(steps=built)
    return make_calibrator(method)


def _label_budget(cal_probs, y_cal, test_probs, y_test, config: EvaluationConfig, *,
                  cut: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    """ECE, and what a threshold certified with only n labels does, on the test split.

    One row per (calibrator, n_labels, repeat); subsets are drawn without replacement from the
    calibration split. On each subset a calibrator is fitted (it scores the test split) and the
    threshold is certified on the subset's own cross-fitted scores, as the full study does; the test
    split only measures both. ``cut`` marks the truncated calibration and test rows, never automated.
    """
    rng = np.random.default_rng(config.seed)
    ece = metric_function("ece", n_bins=config.n_bins, scheme="equal_width")
    sizes = [n for n in config.budget_sizes if n < y_cal.size] + [int(y_cal.size)]
    rows = []
    for n in sizes:
        repeats = 1 if n == y_cal.size else config.budget_repeats
        for repeat in range(repeats):
            # the whole split in its own order, so that row repeats the study's cross-fitting exactly
            idx = np.arange(n) if n == y_cal.size else rng.choice(y_cal.size, size=n, replace=False)
            for method in config.budget_methods:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", CalibrationWarning)
                    try:
                        calibrated = make_calibrator(method).fit(cal_probs[idx], y_cal[idx]).predict_proba(test_probs)
                        out_of_fold = cross_fit_predict(method, cal_probs[idx], y_cal[idx],
                                                        n_splits=config.n_splits, seed=config.seed)
                    except CalibrationError:
                        continue  # e.g. one class only, or too few per class to cross-fit, in a tiny subset
                cert = certify_threshold(out_of_fold.max(1), out_of_fold.argmax(1) == y_cal[idx],
                                         target_accuracy=config.target_accuracy, level=config.level,
                                         procedure=config.procedure, never_automated=cut[0][idx])
                automated = automated_on_test(test_probs, calibrated, DecisionPolicy.from_certificate(cert),
                                              cut=cut[1])
                right = calibrated.argmax(1) == y_test
                accuracy = float(right[automated].mean()) if automated.any() else np.nan
                rows.append({"calibrator": method, "n_labels": n, "repeat": repeat,
                             "ece": float(ece(calibrated[None], y_test[None])[0]),
                             "threshold": cert.threshold, "coverage": float(automated.mean()),
                             "accuracy_automated": accuracy,
                             "below_target": bool(automated.any() and accuracy < config.target_accuracy)})
    return pd.DataFrame(rows, columns=["calibrator", "n_labels", "repeat", "ece", "threshold", "coverage",
                                       "accuracy_automated", "below_target"])


def budget_summary(budget: pd.DataFrame) -> pd.DataFrame:
    """Per size and method: mean and 90% band (5th-95th percentile over repeats) of ECE, mean test
    coverage of the certified threshold, and how many repeats certified one whose test accuracy
    fell below the target (``below_target``)."""
    grouped = budget.groupby(["n_labels", "calibrator"], sort=True)
    summary = grouped.agg(repeats=("ece", "size"), ece_mean=("ece", "mean"),
                          ece_p05=("ece", lambda v: np.percentile(v, 5)), ece_p95=("ece", lambda v: np.percentile(v, 95)),
                          coverage_mean=("coverage", "mean"), certified=("threshold", "count"),
                          below_target=("below_target", "sum"))
    return summary.reset_index()


def evaluate_scores(cal_probs: np.ndarray, y_cal: Sequence[int], test_probs: np.ndarray, y_test: Sequence[int], *,
                    labels: Sequence[str], content_free: np.ndarray | None = None,
                    groups: tuple[Sequence, Sequence] | None = None, test_slices: dict[str, Sequence] | None = None,
                    hidden: tuple[np.ndarray, np.ndarray] | None = None, hidden_method: str = "probe",
                    truncated: tuple[np.ndarray, np.ndarray] | None = None,
                    config: EvaluationConfig = EvaluationConfig()) -> Evaluation:
    """Run the whole study on raw class probabilities of the calibration and test splits.

    ``groups`` holds the ``config.conformal_by`` column of the calibration and test rows (for per-slice
    prediction sets); ``test_slices`` maps column names to test-row values, to break set coverage down by.
    ``hidden`` holds the final hidden states of the calibration and test rows: the hidden-state probe
    (:mod:`confidently.calibration.probe`) then competes as one more method, named ``probe``, cross-fitted
    on the calibration split like the others. With ``hidden_method="ensemble"`` ``hidden`` holds every
    prompt's class masses instead, and the ensemble's combiner competes, named ``ensemble``.
    ``truncated`` marks the calibration and test rows cut to fit the context: the decision never
    automates them, so every threshold is certified and measured with them counted as reviewed.
    """
    y_cal, y_test = np.asarray(y_cal), np.asarray(y_test)
    cut = ((np.zeros(y_cal.size, bool), np.zeros(y_test.size, bool)) if truncated is None
           else (np.asarray(truncated[0], bool), np.asarray(truncated[1], bool)))
    if config.conformal_by is not None and groups is None:
        raise DataError(f"conformal_by={config.conformal_by!r} needs that column's values for both splits")
    metric_args = {"n_bins": config.n_bins, "mass_bins": config.mass_bins, "n_resamples": config.n_resamples,
                   "seed": config.seed, "level": 0.95}
    threshold_args = {"review_cost": config.review_cost, "error_cost": config.error_cost,
                      "target_accuracy": config.target_accuracy, "level": config.level}
    notes: list[str] = []

    def measured(name, calibrator, crossfit_probs, probs_on_test) -> MethodResult:
        return MethodResult(name, calibrator, crossfit_probs, probs_on_test,
                            summarize(crossfit_probs, y_cal, **metric_args),
                            summarize(probs_on_test, y_test, **metric_args),
                            analyse_thresholds(crossfit_probs.max(1), crossfit_probs.argmax(1) == y_cal,
                                               **threshold_args, procedure=config.procedure, never_automated=cut[0]),
                            measure_thresholds(probs_on_test.max(1), probs_on_test.argmax(1) == y_test,
                                               **threshold_args, never_automated=cut[1]))

    methods = {"raw": measured("raw", None, cal_probs, test_probs)}
    skipped: dict[str, str] = {}
    for method in config.methods:
        if "contextual" in method and content_free is None:
            skipped[method] = "no content-free scores were given"
            continue
        try:
            if method == "contextual":
                # Fitted on the content-free inputs alone: no labelled row is involved, so its scores on
                # the calibration split are already out-of-sample.
                calibrator = _build(method, content_free)
                crossfit = calibrator.predict_proba(cal_probs)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", CalibrationWarning)  # the folds repeat the full fit's warning
                    crossfit = cross_fit_predict(lambda m=method: _build(m, content_free), cal_probs, y_cal,
                                                 n_splits=config.n_splits, seed=config.seed)
                # The saved calibrator's warnings become plain notes in the report, never raw Python warnings.
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", CalibrationWarning)
                    calibrator = _build(method, content_free).fit(cal_probs, y_cal)
                notes += [f"{method}: {message}" for message in
                          dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, CalibrationWarning))]
        except CalibrationError as error:
            skipped[method] = str(error)
            continue
        methods[method] = measured(method, calibrator, crossfit, calibrator.predict_proba(test_probs))
    if hidden is not None:
        k = cal_probs.shape[1]
        if hidden_method not in FEATURE_METHODS:
            raise ConfigError(f"hidden_method must be one of {', '.join(FEATURE_METHODS)}; got {hidden_method!r}")
        combiner, cross_fit = FEATURE_METHODS[hidden_method]
        try:
            crossfit = cross_fit(hidden[0], y_cal, n_classes=k, n_splits=config.n_splits, seed=config.seed)
            fitted = combiner(n_splits=config.n_splits, seed=config.seed).fit(hidden[0], y_cal, n_classes=k)
        except CalibrationError as error:
            skipped[hidden_method] = str(error)
        else:
            methods[hidden_method] = measured(hidden_method, fitted, crossfit, fitted.predict_proba(hidden[1]))

    # Choose on the calibration split's out-of-fold scores only, by a proper scoring rule: binned ECE
    # on a few hundred rows is too noisy to rank methods, and it rewards uninformative constant scores.
    candidates = [name for name in methods if name != "raw"] or ["raw"]
    best = min(candidates, key=lambda name: methods[name].crossfit["metrics"]["nll"]["value"])
    chosen = methods[best]
    policy = DecisionPolicy.from_certificate(chosen.chosen.certified)
    # what each rule does on the test split, decided as decide() decides it (a cut text is reviewed)
    automate = automated_on_test(test_probs, calibrated_test_probs(chosen), policy, cut=cut[1])
    correct = chosen.test_probs.argmax(1) == y_test
    policy_on_test = _policy_on_test(policy, automate, correct)
    sets = _prediction_sets(chosen, y_cal, y_test, labels, groups, test_slices, config)
    by_sets = automated_on_test(test_probs, calibrated_test_probs(chosen), None, cut=cut[1],
                                prediction_sets=sets.predictors[sets.shipped],
                                groups=None if config.conformal_by is None else groups[1])
    sets = replace(sets, rule_on_test=_rule_on_test(by_sets, correct))
    # the cost view is of the rule the bundle decides by
    projection = project_volume(by_sets if config.decision_rule == "prediction_set" else automate, correct,
                                volume=config.projection_volume, minutes_per_review=config.minutes_per_review,
                                review_cost=config.review_cost, error_cost=config.error_cost,
                                n_resamples=config.n_resamples, seed=config.seed)
    budget = _label_budget(cal_probs, y_cal, test_probs, y_test, config, cut=cut)
    notes += small_sample_notes(y_cal, y_test, chosen.chosen, sets, config)
    return Evaluation(tuple(labels), y_cal, y_test, config, methods, best, policy, policy_on_test, projection, sets,
                      budget, skipped, notes)


def _prediction_sets(chosen: MethodResult, y_cal: np.ndarray, y_test: np.ndarray, labels: Sequence[str],
                     groups: tuple[Sequence, Sequence] | None, test_slices: dict[str, Sequence] | None,
                     config: EvaluationConfig) -> PredictionSets:
    """LAC and APS sets, marginal, per class and (with ``conformal_by``) per slice, fitted on the chosen
    calibrator's cross-fitted calibration scores and measured on its test-split scores (what the set rule does
    there is added by :func:`evaluate_scores`)."""
    slices = dict(test_slices or {})
    if config.conformal_by is not None:
        slices[config.conformal_by] = groups[1]
    conditions = [None, "class"] + (["group"] if config.conformal_by is not None else [])
    predictors, coverage = {}, {}
    for condition in conditions:
        for score in ("lac", "aps"):
            predictor = ConformalPredictor(config.alpha, score=score, condition_on=condition,
                                           group_column=config.conformal_by if condition == "group" else None)
            name = predictor.name
            cal_groups, test_groups = (groups[0], groups[1]) if condition == "group" else (None, None)
            predictor.fit(chosen.crossfit_probs, y_cal, groups=cal_groups)
            predictors[name] = predictor
            coverage[name] = measure_sets(predictor.predict_set(chosen.test_probs, groups=test_groups), y_test,
                                          labels=labels, slices=slices)
    shipped = f"lac by {config.conformal_by}" if config.conformal_by is not None else "lac"
    return PredictionSets(predictors, coverage, shipped, scored_on=chosen.name)


def calibrated_test_probs(method: MethodResult) -> np.ndarray | None:
    """The method's test-split probabilities as :func:`decide` takes them: None for the raw scores."""
    return None if method.calibrator is None else method.test_probs


def automated_on_test(raw: np.ndarray, calibrated: np.ndarray | None, policy: DecisionPolicy | None, *,
                      cut: np.ndarray, prediction_sets: ConformalPredictor | None = None,
                      groups: Sequence | None = None) -> np.ndarray:
    """Which test rows a rule automates, decided by the one :func:`~confidently.decision.decisions.decide`
    every user's answer goes through: ``policy``'s threshold on the calibrated (else raw) confidence, or, with
    ``prediction_sets``, single-label sets; a row flagged in ``cut`` (truncated) is reviewed either way."""
    rule = "threshold" if prediction_sets is None else "prediction_set"
    labels = [str(j) for j in range(raw.shape[1])]
    decisions = decide(raw, labels=labels, policy=policy, calibrated_probs=calibrated,
                       prediction_sets=prediction_sets, groups=groups, rule=rule, truncated=cut)
    return decisions.decision == "automate"


def _rule_on_test(automate: np.ndarray, correct: np.ndarray) -> dict:
    """What a decision rule chosen on calibration data does on the test split: how much it automates,
    how accurate that is, and automated errors as a share of all rows (what the set rule bounds by alpha)."""
    n, n_auto = int(automate.size), int(automate.sum())
    errors = int((automate & ~correct).sum())
    return {"n": n, "n_automated": n_auto, "coverage": n_auto / n if n else 0.0,
            "accuracy_automated": float(correct[automate].mean()) if n_auto else None,
            "automated_errors_share_of_all": errors / n if n else 0.0}


def small_sample_notes(y_cal: np.ndarray, y_test: np.ndarray, chosen: ThresholdAnalysis, sets: PredictionSets,
                       config: EvaluationConfig) -> list[str]:
    """Plain-language notes on what the sample sizes limit (shown in the report, kept in metrics.json)."""
    notes = []
    if y_cal.size < 300:
        notes.append(f"The calibration split has only {y_cal.size} rows: calibrators are fitted on few examples "
                     "and can make calibration worse on new data; compare the test-split ECE of raw and "
                     "calibrated scores, and label more data before relying on either.")
    if y_test.size < 300:
        notes.append(f"The test split has only {y_test.size} rows: every test figure carries a wide interval.")
    certificate = chosen.certified
    if not certificate.certified:
        notes.append(f"{certificate.reason[0].upper()}{certificate.reason[1:]}. Every prediction goes to review.")
    for name, predictor in sets.predictors.items():
        thin = [key for key, q in predictor.quantiles_.items() if np.isinf(q)]
        if thin:
            need = int(np.ceil(1 / config.alpha - 1))
            notes.append(f"Prediction sets '{name}': {len(thin)} part(s) have fewer than {need} calibration rows, "
                         f"too few for {1 - config.alpha:.0%} coverage, so their sets hold every label.")
    return notes


def _policy_on_test(policy: DecisionPolicy, automate: np.ndarray, correct: np.ndarray) -> dict:
    """What the policy chosen on calibration data does on the test split: each row's decision (``automate``)
    and whether its prediction is right (``correct``)."""
    n, n_auto = int(automate.size), int(automate.sum())
    return {"threshold": policy.threshold, "n": n, "n_automated": n_auto,
            "coverage": n_auto / n if n else 0.0,
            "accuracy_automated": float(correct[automate].mean()) if n_auto else None,
            "n_review": n - n_auto}


#: Columns the report breaks results down by when the data has them.
SLICE_COLUMNS = ("category", "domain")


def slice_table(test: Dataset, raw: np.ndarray, calibrated: np.ndarray, y: np.ndarray,
                labels: tuple[str, ...]) -> pd.DataFrame:
    """Accuracy (raw and calibrated) and calibrated predicted-label rates per category and per domain."""
    rows = []
    for column in SLICE_COLUMNS:
        if column not in test.columns:
            continue
        values = np.asarray(test.columns[column], dtype=object)
        for value in sorted(set(values), key=str):
            mask = values == value
            row = {"slice": f"{column}={value}", "n": int(mask.sum()),
                   "accuracy_raw": float((raw[mask].argmax(1) == y[mask]).mean()),
                   "accuracy_calibrated": float((calibrated[mask].argmax(1) == y[mask]).mean())}
            for j, label in enumerate(labels):
                row[f"predicted_{label}_calibrated"] = float((calibrated[mask].argmax(1) == j).mean())
            rows.append(row)
    return pd.DataFrame(rows)
