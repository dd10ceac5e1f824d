"""The calibration study on scored data: every method fitted on the calibration split and measured
only on data it did not see.

Two honest estimates per method: (1) cross-fitting — K-fold out-of-fold calibrated scores on the
calibration split; (2) the held-out test split, scored by the calibrator fitted on the whole
calibration split (the one that is saved). The method to ship and its decision threshold are chosen
on (1), never on the test split; (2) then reports what they do on new data.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from confidently.calibration import (Calibrator, ContextualCalibrator, SmallSampleWarning, StackedCalibrator,
                                     cross_fit_predict, make_calibrator)
from confidently.errors import CalibrationError
from confidently.metrics import metric_function, summarize
from confidently.thresholds import DecisionPolicy, ThresholdAnalysis, analyse_thresholds, certify_threshold

SUPERVISED = ("platt", "isotonic", "temperature", "histogram", "beta", "dirichlet")
CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")


@dataclass(frozen=True)
class EvaluationConfig:
    """Parameters of the study (each is written into metrics.json).

    methods : supervised calibrators to compare; ``"batch+platt"``-style stacks are allowed, and
        ``"contextual"`` / ``"contextual+platt"`` use the content-free scores.
    n_bins, mass_bins : equal-width bins for ECE (20, as the original) and equal-mass bins (15).
    n_splits : folds for cross-fitting on the calibration split.
    review_cost, error_cost : cost of one review and of one automated mistake.
    target_accuracy, level : the certified threshold's target and one-sided confidence level.
    budget_sizes, budget_repeats : label-budget curve: calibration-set sizes and random subsets each.
    n_resamples, seed : bootstrap resamples for every interval, and the seed of all randomness.
    """

    methods: tuple[str, ...] = (*SUPERVISED, "batch", "batch+platt", "contextual", "contextual+platt")
    n_bins: int = 20
    mass_bins: int = 15
    n_splits: int = 5
    review_cost: float = 1.0
    error_cost: float = 10.0
    target_accuracy: float = 0.95
    level: float = 0.95
    budget_sizes: tuple[int, ...] = (50, 100, 200, 500, 1000, 2000, 5000)
    budget_repeats: int = 20
    budget_methods: tuple[str, ...] = ("platt", "isotonic", "temperature", "histogram", "beta")
    n_resamples: int = 1000
    seed: int = 0


@dataclass
class MethodResult:
    """One calibration method: its saved calibrator and both held-out measurements."""

    name: str
    calibrator: Calibrator | None  # None for the raw scores
    crossfit_probs: np.ndarray
    test_probs: np.ndarray
    crossfit: dict
    test: dict
    thresholds: ThresholdAnalysis


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
    budget: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)

    def headline(self) -> dict:
        raw, best = self.methods["raw"].test["metrics"], self.methods[self.best].test["metrics"]
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
        }

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {
            "labels": list(self.labels),
            "config": asdict(self.config),
            "headline": self.headline(),
            "selection": (f"best method = lowest cross-fitted negative log-likelihood on the "
                          f"calibration split ({self.y_calibration.size} rows, {self.config.n_splits} folds); "
                          "test split never used for a choice"),
            "methods": {
                name: {
                    "crossfit_on_calibration_split": result.crossfit,
                    "test_split": result.test,
                    "thresholds_on_test_split": result.thresholds.to_dict(),
                }
                for name, result in self.methods.items()
            },
            "skipped_methods": self.skipped,
            "label_budget": {
                "how": (f"each calibrator fitted on {self.config.budget_repeats} random subsets of n calibration "
                        f"labels; ECE ({self.config.n_bins} equal-width bins) and certified coverage at "
                        f"{self.config.target_accuracy:.0%} measured on the whole test split"),
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


def _label_budget(cal_probs, y_cal, test_probs, y_test, config: EvaluationConfig) -> pd.DataFrame:
    """ECE and certified coverage on the test split after fitting on random subsets of n labels.

    One row per (calibrator, n_labels, repeat); subsets are drawn without replacement from the
    calibration split, and every fit is scored on the whole test split, which it never saw.
    """
    rng = np.random.default_rng(config.seed)
    ece = metric_function("ece", n_bins=config.n_bins, scheme="equal_width")
    sizes = [n for n in config.budget_sizes if n < y_cal.size] + [int(y_cal.size)]
    rows = []
    for n in sizes:
        repeats = 1 if n == y_cal.size else config.budget_repeats
        for repeat in range(repeats):
            idx = rng.choice(y_cal.size, size=n, replace=False)
            for method in config.budget_methods:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", SmallSampleWarning)
                    try:
                        calibrated = make_calibrator(method).fit(cal_probs[idx], y_cal[idx]).predict_proba(test_probs)
                    except CalibrationError:
                        continue  # e.g. one class only in a tiny subset
                cert = certify_threshold(calibrated.max(1), calibrated.argmax(1) == y_test,
                                         target_accuracy=config.target_accuracy, level=config.level)
                rows.append({"calibrator": method, "n_labels": n, "repeat": repeat,
                             "ece": float(ece(calibrated[None], y_test[None])[0]), "coverage": cert.coverage})
    return pd.DataFrame(rows, columns=["calibrator", "n_labels", "repeat", "ece", "coverage"])


def budget_summary(budget: pd.DataFrame) -> pd.DataFrame:
    """Mean and 90% band (5th-95th percentile over repeats) of ECE and coverage per size and method."""
    grouped = budget.groupby(["n_labels", "calibrator"], sort=True)
    summary = grouped.agg(repeats=("ece", "size"), ece_mean=("ece", "mean"),
                          ece_p05=("ece", lambda v: np.percentile(v, 5)), ece_p95=("ece", lambda v: np.percentile(v, 95)),
                          coverage_mean=("coverage", "mean"))
    return summary.reset_index()


def evaluate_scores(cal_probs: np.ndarray, y_cal: Sequence[int], test_probs: np.ndarray, y_test: Sequence[int], *,
                    labels: Sequence[str], content_free: np.ndarray | None = None,
                    config: EvaluationConfig = EvaluationConfig()) -> Evaluation:
    """Run the whole study on raw class probabilities of the calibration and test splits."""
    y_cal, y_test = np.asarray(y_cal), np.asarray(y_test)
    metric_args = {"n_bins": config.n_bins, "mass_bins": config.mass_bins, "n_resamples": config.n_resamples,
                   "seed": config.seed, "level": 0.95}
    threshold_args = {"review_cost": config.review_cost, "error_cost": config.error_cost,
                      "target_accuracy": config.target_accuracy, "level": config.level}

    def measured(name, calibrator, crossfit_probs, probs_on_test) -> MethodResult:
        correct = probs_on_test.argmax(1) == y_test
        return MethodResult(name, calibrator, crossfit_probs, probs_on_test,
                            summarize(crossfit_probs, y_cal, **metric_args),
                            summarize(probs_on_test, y_test, **metric_args),
                            analyse_thresholds(probs_on_test.max(1), correct, **threshold_args))

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
                    warnings.simplefilter("ignore", SmallSampleWarning)  # the warning is reported once below
                    crossfit = cross_fit_predict(lambda m=method: _build(m, content_free), cal_probs, y_cal,
                                                 n_splits=config.n_splits, seed=config.seed)
                calibrator = _build(method, content_free).fit(cal_probs, y_cal)
        except CalibrationError as error:
            skipped[method] = str(error)
            continue
        methods[method] = measured(method, calibrator, crossfit, calibrator.predict_proba(test_probs))
    if "isotonic" in methods and y_cal.size < 1000:
        skipped["isotonic (warning)"] = f"fitted on {y_cal.size} < 1000 examples: its steps may overfit"

    # Choose on the calibration split's out-of-fold scores only, by a proper scoring rule: binned ECE
    # on a few hundred rows is too noisy to rank methods, and it rewards uninformative constant scores.
    candidates = [name for name in methods if name != "raw"] or ["raw"]
    best = min(candidates, key=lambda name: methods[name].crossfit["metrics"]["nll"]["value"])
    chosen = methods[best]
    certificate = analyse_thresholds(chosen.crossfit_probs.max(1), chosen.crossfit_probs.argmax(1) == y_cal,
                                     **threshold_args).certified
    policy = DecisionPolicy.from_certificate(certificate)
    policy_on_test = _apply_policy(policy, chosen.test_probs, y_test)
    budget = _label_budget(cal_probs, y_cal, test_probs, y_test, config)
    return Evaluation(tuple(labels), y_cal, y_test, config, methods, best, policy, policy_on_test, budget, skipped)


def _apply_policy(policy: DecisionPolicy, probs: np.ndarray, y: np.ndarray) -> dict:
    """What the policy chosen on calibration data does on the test split."""
    automate = policy.decide(probs.max(1)) == "automate"
    correct = probs.argmax(1) == y
    n_auto = int(automate.sum())
    return {"threshold": policy.threshold, "n": int(y.size), "n_automated": n_auto,
            "coverage": n_auto / y.size if y.size else 0.0,
            "accuracy_automated": float(correct[automate].mean()) if n_auto else None,
            "n_review": int(y.size - n_auto)}
