"""Reference distributions, PSI/KS drift and live accuracy, on data whose drift is known by construction."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from confidently.calibration import TemperatureCalibrator
from confidently.errors import ArtifactError, ConfigError
from confidently.monitoring import DriftMonitor, DriftThresholds, LiveAccuracy, Reference, psi
from confidently.decision.policy import DecisionPolicy

LABELS = ("negative", "positive")


def rows(n: int, *, seed: int, sharpness: float = 1.0, positive_share: float = 0.5):
    """Raw probabilities (n, 2) and other mass: confidence grows with ``sharpness``."""
    rng = np.random.default_rng(seed)
    top = 0.5 + 0.5 * rng.beta(2 * sharpness, 2, size=n)
    positive = rng.random(n) < positive_share
    probs = np.column_stack([np.where(positive, 1 - top, top), np.where(positive, top, 1 - top)])
    return probs, rng.beta(1, 20, size=n)


def reference(**kwargs) -> Reference:
    probs, other = rows(1000, seed=0)
    return Reference.from_scores(probs, other, labels=LABELS, source="test rows", **kwargs)


def observe(monitor: DriftMonitor, probs: np.ndarray, other: np.ndarray, decisions=None) -> None:
    labels = [LABELS[i] for i in probs.argmax(axis=1)]
    monitor.observe(probs.max(axis=1), other, labels, decisions or [None] * len(labels))


def test_psi_matches_the_formula():
    # Reference 50/50, live 90/10, each bin smoothed by half a count.
    expected, actual = np.array([50.5, 50.5]) / 101, np.array([90.5, 10.5]) / 101
    by_hand = sum((a - e) * math.log(a / e) for a, e in zip(actual, expected))
    assert psi(np.array([50, 50]), np.array([90, 10])) == pytest.approx(by_hand)
    assert psi(np.array([30, 70]), np.array([30, 70])) == 0.0
    assert psi(np.array([10, 0]), np.array([0, 10])) > 2  # empty bins stay finite


def test_reference_bins_are_deciles_and_roundtrip_json():
    policy = DecisionPolicy(threshold=0.8, target_accuracy=0.9, certified=True, method="test")
    probs, other = rows(1000, seed=0)
    ref = Reference.from_scores(probs, other, labels=LABELS, policy=policy, source="test rows")
    assert ref.n == 1000 and ref.source == "test rows"
    conf = ref.continuous["raw_confidence"]
    assert len(conf.edges) == 9 and np.allclose(conf.shares, 0.1, atol=0.002)
    assert len(conf.quantiles) == 1000 and conf.quantiles[0] == probs.max(axis=1).min()
    assert ref.decision_rates["automate"] == pytest.approx(np.mean(probs.max(axis=1) >= 0.8))
    assert sum(ref.label_shares.values()) == pytest.approx(1.0)
    assert Reference.from_dict(json.loads(json.dumps(ref.to_dict()))) == ref


def test_reference_uses_the_calibrated_label_and_confidence():
    probs, other = rows(400, seed=1)
    y = (probs[:, 1] > 0.5).astype(int)
    calibrator = TemperatureCalibrator().fit(probs, y)
    policy = DecisionPolicy(threshold=0.9, target_accuracy=0.9, certified=True, method="test")
    ref = Reference.from_scores(probs, other, labels=LABELS, calibrator=calibrator, policy=policy, source="t")
    calibrated = calibrator.predict_proba(probs).max(axis=1)
    assert ref.decision_rates["automate"] == pytest.approx(np.mean(calibrated >= 0.9))


def test_a_malformed_reference_in_a_bundle_names_its_file(tmp_path):
    from confidently.bundle.bundle import ModelIdentity, write_bundle
    from confidently.tasks.task import SENTIMENT

    bundle = write_bundle(tmp_path, model=ModelIdentity("tiny", "transformers", "a" * 64), task=SENTIMENT,
                          chat=None, calibrator=None, fitted_on={"rows_sha256": "0" * 64, "n_rows": 0},
                          policy=DecisionPolicy(threshold=None, target_accuracy=None, certified=False, method="t"),
                          extra_json={"reference.json": {"format": "confidently.reference", "format_version": 1,
                                                         "labels": ["a"]}})
    with pytest.raises(ArtifactError, match="reference.json: malformed reference distribution"):
        Reference.from_bundle(bundle)


def test_traffic_like_the_reference_raises_no_alarm():
    monitor = DriftMonitor(LABELS, reference())
    observe(monitor, *rows(800, seed=7))
    report = monitor.report()
    assert report.status == "ok" and report.alarms == []
    assert [f.feature for f in report.features] == ["raw_confidence", "other_mass", "label"]
    assert all(f.psi < 0.05 for f in report.features)


def test_shifted_confidence_and_labels_raise_alarms_once():
    monitor = DriftMonitor(LABELS, reference())
    # Much less confident traffic, four in five predicted positive; other mass unchanged.
    observe(monitor, *rows(600, seed=8, sharpness=0.2, positive_share=0.8))
    report = monitor.report()
    by_name = {f.feature: f for f in report.features}
    assert report.status == "drift"
    assert by_name["raw_confidence"].alarm and by_name["raw_confidence"].ks_pvalue < 1e-6
    assert by_name["label"].alarm and by_name["label"].live_shares[1] > 0.7
    assert by_name["other_mass"].psi < 0.1  # unchanged; its KS p-value is chance under no drift
    fresh = monitor.new_alarms()
    assert {"label", "raw_confidence"} <= {a.split(":")[0] for a in fresh}
    assert monitor.new_alarms() == []  # already raised: not logged again


def test_decision_rates_drift_is_judged_against_the_policy():
    policy = DecisionPolicy(threshold=0.8, target_accuracy=0.9, certified=True, method="test")
    monitor = DriftMonitor(LABELS, reference(policy=policy), DriftThresholds(min_n=50))
    probs, other = rows(300, seed=9)
    observe(monitor, probs, other, ["review"] * 300)  # a policy now sending everything to review
    decision = next(f for f in monitor.report().features if f.feature == "decision")
    assert decision.alarm and decision.live_shares == [0.0, 1.0]


def test_few_texts_or_no_reference_raise_nothing():
    monitor = DriftMonitor(LABELS, reference())
    observe(monitor, *rows(50, seed=3, sharpness=0.1))
    report = monitor.report()
    assert report.status == "too few texts" and report.alarms == [] and report.n_live == 50
    other = DriftMonitor(("a", "b", "c"), reference())
    assert other.report().status == "no reference"
    assert "labels ['negative', 'positive'] are not the served labels" in other.report().reference_source
    with pytest.raises(ConfigError):
        DriftThresholds(min_n=10, window=5)


def test_the_window_keeps_only_the_latest_texts():
    monitor = DriftMonitor(LABELS, reference(), DriftThresholds(window=200, min_n=100))
    observe(monitor, *rows(400, seed=4, sharpness=0.1))
    observe(monitor, *rows(200, seed=5))
    report = monitor.report()
    assert report.n_live == 200 and report.status == "ok"


@pytest.mark.parametrize("correct,n", [(0, 25), (19, 20), (85, 100), (100, 100), (990, 1000)])
def test_live_accuracy_single_look_bounds_are_exact_clopper_pearson(correct, n):
    live = LiveAccuracy.from_counts(correct, n, target=0.9)
    # One-sided 95% bounds are the two-sided 90% exact interval.
    interval = binomtest(correct, n).proportion_ci(confidence_level=0.90, method="exact")
    assert live.single_look_lower == pytest.approx(interval.low, abs=1e-9)
    assert live.single_look_upper == pytest.approx(interval.high, abs=1e-9)
    assert live.accuracy == correct / n
    # the verdict reads the anytime bounds, which are wider than the single-look ones
    assert live.lower <= live.single_look_lower and live.upper >= live.single_look_upper
    assert live.alarm == (live.upper < 0.9)


def test_live_accuracy_status():
    assert LiveAccuracy.from_counts(0, 0, target=0.9).status == "too few audited texts"
    assert LiveAccuracy.from_counts(0, 0, target=0.9).lower is None
    few = LiveAccuracy.from_counts(5, 10, target=0.9)
    assert few.status == "too few audited texts" and not few.alarm
    assert LiveAccuracy.from_counts(85, 100, target=0.9).status == "unconfirmed"
    assert LiveAccuracy.from_counts(80, 100, target=0.9).status == "unconfirmed"  # anytime upper bound 0.907
    assert LiveAccuracy.from_counts(70, 100, target=0.9).status == "below target"
    assert LiveAccuracy.from_counts(100, 100, target=0.9).status == "ok"
    assert LiveAccuracy.from_counts(50, 100, target=None).status == "no target"
    assert "85 of" not in LiveAccuracy.from_counts(85, 100, target=0.9).describe()
    assert "0.850 on 100 audited texts" in LiveAccuracy.from_counts(85, 100, target=0.9).describe()


def test_live_accuracy_alarms_on_evidence_of_a_miss_not_on_an_unconfirmed_target():
    # 49 of 50 right: the lower bound (0.831) cannot confirm 95%, but nothing shows a miss either
    unconfirmed = LiveAccuracy.from_counts(49, 50, target=0.95)
    assert unconfirmed.status == "unconfirmed" and not unconfirmed.alarm
    assert unconfirmed.lower < 0.95 <= unconfirmed.upper
    assert unconfirmed.describe().endswith("unconfirmed: 0.95 lies between the anytime bounds, so the audits neither "
                                           "confirm the target nor show that automation misses it")
    # 160 of 200 (80%): the anytime upper bound is under 90%, the audits show automation misses it
    missed = LiveAccuracy.from_counts(160, 200, target=0.9)
    assert missed.status == "below target" and missed.alarm and missed.upper < 0.9
    assert missed.describe().endswith(f"below target: the anytime upper bound {missed.upper:.3f} is under 0.9")
    confirmed = LiveAccuracy.from_counts(100, 100, target=0.9)
    assert confirmed.status == "ok" and not confirmed.alarm
    assert confirmed.describe().endswith(f"ok: the anytime lower bound {confirmed.lower:.3f} reaches 0.9")


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")
def test_the_drift_report_says_the_reference_decision_rates_are_in_sample():
    probs, other = rows(300, seed=11, sharpness=0.5)
    y = (np.random.default_rng(12).random(300) < probs[:, 1]).astype(int)
    policy = DecisionPolicy(threshold=0.8, target_accuracy=0.9, certified=True, method="test")
    calibrator = TemperatureCalibrator().fit(probs, y)
    fitted_here = Reference.from_scores(probs, other, labels=LABELS, policy=policy, calibrator=calibrator, source="t")
    assert fitted_here.decision_rates["automate"] == pytest.approx(np.mean(calibrator.predict_proba(probs).max(1)
                                                                           >= 0.8))
    assert "in sample: the calibrator applied to the rows it was fitted on" in fitted_here.decided_by
    raw = Reference.from_scores(probs, other, labels=LABELS, policy=policy, source="t")
    assert "on the raw probabilities (no calibrator)" in raw.decided_by
    # the drift report repeats it beside the rates, before and after the first live text
    monitor = DriftMonitor(LABELS, fitted_here)
    assert monitor.report().reference_decided_by == fitted_here.decided_by
    observe(monitor, probs, other, ["automate"] * 300)
    report = monitor.report()
    assert report.reference_decided_by == fitted_here.decided_by and report.to_dict()["reference_decided_by"]
    assert DriftMonitor(LABELS, None).report().reference_decided_by is None
