"""A text cut to fit is never automated: its confidence is about the part the model saw.

Every path decides through :func:`confidently.decision.decisions.decide`, which sends a truncated text
to review with the reason ``"truncated"``; these tests check the rule itself and then each path that
scores texts (Python API, ``score``, ``classify --json``, the scikit-learn estimator) on the tiny
model, whose 256-position context truncates a long text by itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from confidently.decision.calibrated import CalibratedClassifier
from confidently.decision.decisions import REVIEW_REASONS, decide
from confidently.decision.policy import DecisionPolicy
from confidently.errors import DataError
from confidently.scoring.classifier import Classifier
from confidently.types import Scores

from test_bundle import POLICY, fitted_platt
from test_prediction_sets import fitted_sets

LABELS = ("negative", "positive")
#: Automates everything it is asked about: only the truncation rule can send a text to review.
AUTOMATE_ALL = DecisionPolicy(threshold=0.0, target_accuracy=None, certified=False, method="test: automate all")
SHORT = "the movie was great and I love it"
LONG = "a wonderful film, I love it " * 200  # far past the tiny model's 256 positions


def test_a_truncated_text_is_reviewed_under_the_threshold_rule_whatever_its_confidence():
    raw = np.array([[0.02, 0.98], [0.02, 0.98], [0.5, 0.5]])
    decisions = decide(raw, labels=LABELS, policy=POLICY, truncated=[False, True, False])
    assert list(decisions.decision) == ["automate", "review", "review"]
    assert list(decisions.review_reason) == [None, "truncated", "below_threshold"]
    frame = decisions.to_frame()
    assert frame["review_reason"].isna().tolist() == [True, False, False]  # automated: no reason (null)
    assert frame["review_reason"].tolist()[1:] == ["truncated", "below_threshold"]
    # without the flags the same confident row would be automated: the flag is what decides
    assert list(decide(raw, labels=LABELS, policy=POLICY).decision) == ["automate", "automate", "review"]


def test_a_truncated_text_is_reviewed_under_the_set_rule_too():
    sets = fitted_sets()
    raw = np.array([[0.02, 0.98], [0.02, 0.98]])
    plain = decide(raw, labels=LABELS, calibrator=fitted_platt(), policy=POLICY, prediction_sets=sets,
                   rule="prediction_set")
    assert list(plain.decision) == ["automate", "automate"]
    cut = decide(raw, labels=LABELS, calibrator=fitted_platt(), policy=POLICY, prediction_sets=sets,
                 rule="prediction_set", truncated=np.array([True, False]))
    assert list(cut.decision) == ["review", "automate"] and list(cut.review_reason) == ["truncated", None]


def test_every_reason_is_named_and_none_without_a_decision():
    raw = np.array([[0.5, 0.5], [0.1, 0.9]])
    nothing_certified = DecisionPolicy(None, 0.99, False, "none qualified")
    assert list(decide(raw, labels=LABELS, policy=nothing_certified).review_reason) == ["no_threshold"] * 2
    sets = decide(raw, labels=LABELS, calibrator=fitted_platt(), policy=POLICY, prediction_sets=fitted_sets(),
                  rule="prediction_set")
    assert "set_not_single" in list(sets.review_reason)
    assert decide(raw, labels=LABELS, truncated=[True, False]).review_reason is None  # no policy: no decision
    assert set(REVIEW_REASONS) == {"truncated", "below_threshold", "no_threshold", "set_not_single"}


@pytest.mark.parametrize("flags", [[True], [1, 0], np.array([[True, False]])])
def test_malformed_truncation_flags_are_refused(flags):
    with pytest.raises(DataError, match="truncated must be 2 true/false values"):
        decide(np.array([[0.5, 0.5], [0.1, 0.9]]), labels=LABELS, policy=POLICY, truncated=flags)


def test_a_prediction_carries_the_reason_into_its_json():
    raw = np.array([[0.02, 0.98]])
    scores = Scores(LABELS, raw, np.zeros(1), np.array([True]))
    prediction = decide(raw, labels=LABELS, policy=POLICY, truncated=scores.truncated).prediction(0, "t", scores)
    shown = json.loads(json.dumps(prediction.to_dict()))
    assert shown["decision"] == "review" and shown["review_reason"] == "truncated" and shown["truncated"] is True


@pytest.fixture(scope="module")
def automate_all(tiny_backend):
    return CalibratedClassifier(Classifier(backend=tiny_backend), policy=AUTOMATE_ALL)


def test_the_python_api_reviews_a_text_the_model_saw_only_part_of(automate_all):
    many = automate_all.classify_many([SHORT, LONG])
    assert [p.truncated for p in many] == [False, True]
    assert [(p.decision, p.review_reason) for p in many] == [("automate", None), ("review", "truncated")]
    explained = automate_all.classify(LONG, top_k=0)  # the one-text path scores on its own
    assert explained.truncated and (explained.decision, explained.review_reason) == ("review", "truncated")


def test_score_file_writes_the_reason_beside_the_decision(automate_all, tmp_path):
    from confidently.workflows.score_file import score_file

    data = tmp_path / "texts.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in (SHORT, LONG, SHORT)))
    frame = score_file(automate_all, data, tmp_path / "scores.csv", progress=False)
    assert frame["truncated"].tolist() == [False, True, False]
    assert frame["decision"].tolist() == ["automate", "review", "automate"]
    written = pd.read_csv(tmp_path / "scores.csv", keep_default_na=False)
    assert written["review_reason"].tolist() == ["", "truncated", ""]


def test_the_estimator_reviews_a_truncated_text(tiny_model_dir):
    from confidently import CalibratedTextClassifier
    from confidently.data import generate_sentiment

    rows = generate_sentiment(40, seed=0)
    clf = CalibratedTextClassifier(model=str(tiny_model_dir), backend_options={"device": "cpu", "dtype": "float32"},
                                   cv=3).fit(list(rows.texts), np.array(rows.labels))
    clf.policy_ = AUTOMATE_ALL  # a policy that automates everything: only the truncation rule reviews
    assert clf.decide([SHORT, LONG]).tolist() == ["automate", "review"]


def test_cli_classify_json_and_score_show_the_reason(tiny_model_dir, tmp_path):
    bundle = tmp_path / "bundle"
    _automate_all_bundle(tiny_model_dir, bundle)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400"}
    cli = [sys.executable, "-m", "confidently"]
    common = ["--model", str(tiny_model_dir), "--calibration", str(bundle), "--device", "cpu", "--dtype", "float32"]
    reply = subprocess.run([*cli, "classify", LONG, *common, "--json", "-k", "0"], capture_output=True, text=True,
                           env=env, timeout=300)
    assert reply.returncode == 0, reply.stderr[-2000:]
    shown = json.loads(reply.stdout)
    assert shown["truncated"] and (shown["decision"], shown["review_reason"]) == ("review", "truncated")
    data, out = tmp_path / "texts.jsonl", tmp_path / "scores.csv"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in (SHORT, LONG)))
    scored = subprocess.run([*cli, "score", str(data), "--out", str(out), *common], capture_output=True, text=True,
                            env=env, timeout=300)
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert "1 of 2 automated" in scored.stdout and "1 truncated text sent to review" in scored.stdout
    assert pd.read_csv(out, keep_default_na=False)["review_reason"].tolist() == ["", "truncated"]


def _automate_all_bundle(model_dir, folder) -> None:
    """A calibration bundle for the tiny model whose policy automates every text it may."""
    from test_bundle import make_bundle

    make_bundle(folder, Classifier(model=str(model_dir), device="cpu", dtype="float32"), policy=AUTOMATE_ALL)


def test_evaluate_decides_its_truncated_rows_review_and_says_how_many(tiny_model_dir, tmp_path):
    from confidently.data import Dataset, generate_sentiment, split_dataset, stratified_sample
    from confidently.workflows.evaluation import EvaluationConfig
    from confidently.workflows.pipeline import run_evaluate

    splits = split_dataset(generate_sentiment(300, seed=3), seed=3)
    sample = stratified_sample(splits.test, 20, seed=3)
    test = Dataset((*sample.texts, LONG), (*sample.labels, "positive"))
    config = EvaluationConfig(methods=("platt",), budget_sizes=(50,), budget_repeats=2, n_resamples=50)
    run_evaluate(Classifier(model=str(tiny_model_dir), dtype="float32"), splits.calibration, test, tmp_path,
                 config=config, progress=False)
    frame = pd.read_parquet(tmp_path / "scores.parquet")
    rows = frame[frame["split"] == "test"]
    assert rows["truncated"].tolist() == [False] * 20 + [True]
    assert rows["decision"].iloc[-1] == "review" and rows["review_reason"].iloc[-1] == "truncated"
    assert "truncated" not in rows["review_reason"].iloc[:-1].tolist()
    notes = json.loads((tmp_path / "metrics.json").read_text())["notes"]
    assert any("1 of 21 test rows" in note and "always decided review" in note for note in notes)


def test_compare_counts_the_shipped_bundle_as_applied_truncated_rows_reviewed():
    from types import SimpleNamespace

    from confidently.tasks.task import SENTIMENT
    from confidently.workflows.comparison import CompareConfig, _shipped

    bundle = SimpleNamespace(task=SENTIMENT, calibrator=None, policy=AUTOMATE_ALL, prediction_sets=None,
                             decision_rule="threshold")
    test = Scores(LABELS, np.array([[0.1, 0.9], [0.2, 0.8], [0.7, 0.3]]), np.zeros(3), np.array([False, True, False]))
    shipped = _shipped(bundle, test, np.array([1, 1, 0]), CompareConfig(n_resamples=20))
    assert (shipped["n_automated"], shipped["coverage"]) == (2, pytest.approx(2 / 3))


def test_compare_decides_the_shipped_adapter_by_its_own_rule_the_prediction_sets():
    from types import SimpleNamespace

    from confidently.tasks.task import SENTIMENT
    from confidently.workflows.comparison import CompareConfig, _shipped

    sets = fitted_sets()  # LAC: keeps every label of probability >= 0.31
    bundle = SimpleNamespace(task=SENTIMENT, calibrator=None, policy=AUTOMATE_ALL, prediction_sets=sets,
                             decision_rule="prediction_set")
    probs = np.array([[0.1, 0.9], [0.5, 0.5], [0.45, 0.55], [0.7, 0.3]])
    test = Scores(LABELS, probs, np.zeros(4), np.array([False, False, False, True]))
    shipped = _shipped(bundle, test, np.array([1, 1, 0, 0]), CompareConfig(n_resamples=20))
    # the threshold would automate the three whole texts; the set rule only the single-label set
    assert shipped["n_automated"] == 1 and shipped["accuracy_automated"] == 1.0
    assert shipped["decision_rule"] == "prediction_set" and shipped["guarantee"] == sets.decision_guarantee


def test_compare_refuses_test_rows_without_the_column_the_adapter_decides_by():
    from types import SimpleNamespace

    from confidently.data import Dataset
    from confidently.workflows.comparison import _set_groups

    bundle = SimpleNamespace(prediction_sets=fitted_sets(condition_on="group", group_column="domain"),
                             decision_rule="prediction_set")
    rows = Dataset(["good", "bad"], ["positive", "negative"], columns={"domain": ["books", "films"]})
    assert _set_groups(bundle, rows) == ["books", "films"]
    with pytest.raises(DataError, match="fitted per domain, but the test rows have no 'domain' column"):
        _set_groups(bundle, Dataset(["good", "bad"], ["positive", "negative"]))


def _confident_rows(n: int, cut_share: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-class probabilities all at 0.98 for the label, except the ``cut_share`` of rows flagged
    truncated, which are just as confident and wrong: (probs, labels, truncated)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    cut = rng.random(n) < cut_share
    predicted = np.where(cut, 1 - y, y)
    probs = np.where(np.arange(2)[None, :] == predicted[:, None], 0.98, 0.02)
    return probs, y, cut


def test_certification_counts_truncated_rows_as_reviewed():
    from confidently.decision.thresholds import analyse_thresholds

    probs, y, cut = _confident_rows(600, 0.15, seed=1)
    confidence, correct = probs.max(1), probs.argmax(1) == y
    blind = analyse_thresholds(confidence, correct)
    assert not blind.certified.certified  # the cut rows' mistakes sit among the confident ones
    aware = analyse_thresholds(confidence, correct, never_automated=cut)
    assert aware.certified.certified
    at = next(row for row in aware.rows if row.threshold == aware.certified.threshold)
    assert at.n_automated == int((~cut).sum()) and at.n_automated_errors == 0
    assert at.n_review == int(cut.sum())
    # and the other way round: right answers on cut texts must not lift rows the policy will automate
    wrong = correct & (np.random.default_rng(2).random(y.size) < 0.85)
    inflated = analyse_thresholds(confidence, np.where(cut, True, wrong), never_automated=cut)
    assert not inflated.certified.certified
    with pytest.raises(DataError, match="never_automated"):
        analyse_thresholds(confidence, correct, never_automated=cut[:-1])


def test_evaluate_certifies_and_measures_only_rows_it_would_automate():
    from confidently.workflows.evaluation import EvaluationConfig, evaluate_scores

    cal_probs, y_cal, cal_cut = _confident_rows(600, 0.15, seed=3)
    test_probs, y_test, test_cut = _confident_rows(400, 0.15, seed=4)
    config = EvaluationConfig(methods=("platt",), budget_sizes=(300,), budget_repeats=1, n_resamples=20)
    blind = evaluate_scores(cal_probs, y_cal, test_probs, y_test, labels=LABELS, config=config)
    assert blind.policy.threshold is None
    aware = evaluate_scores(cal_probs, y_cal, test_probs, y_test, labels=LABELS, truncated=(cal_cut, test_cut),
                            config=config)
    assert aware.policy.threshold is not None
    assert aware.policy_on_test["n_automated"] == int((~test_cut).sum())
    assert aware.policy_on_test["accuracy_automated"] == 1.0
    assert aware.projection.automated[0] == pytest.approx(
        aware.projection.volume * aware.policy_on_test["n_automated"] / y_test.size)
    full = aware.budget[aware.budget["n_labels"] == y_cal.size]
    assert np.allclose(full["coverage"], (~test_cut).mean())


def test_evaluate_measures_the_set_rule_with_its_truncated_rows_reviewed():
    from confidently.workflows.evaluation import EvaluationConfig, evaluate_scores

    cal_probs, y_cal, cal_cut = _confident_rows(600, 0.15, seed=3)
    test_probs, y_test, test_cut = _confident_rows(400, 0.15, seed=4)
    # alpha above the share of confidently wrong rows: every set holds the answer alone
    config = EvaluationConfig(methods=("platt",), budget_sizes=(300,), budget_repeats=1, n_resamples=20, alpha=0.2,
                              decision_rule="prediction_set")
    aware = evaluate_scores(cal_probs, y_cal, test_probs, y_test, labels=LABELS, truncated=(cal_cut, test_cut),
                            config=config)
    rule = aware.sets.rule_on_test
    assert rule["n"] == y_test.size
    assert rule["n_automated"] == int((~test_cut).sum())  # the cut rows, confidently wrong, go to review
    assert rule["accuracy_automated"] == 1.0 and rule["automated_errors_share_of_all"] == 0.0


def test_compare_rules_never_automate_truncated_rows():
    from confidently.workflows.comparison import CERTIFIED, CompareConfig, decision_rules

    cal_probs, y_cal, cal_cut = _confident_rows(600, 0.15, seed=5)
    test_probs, y_test, test_cut = _confident_rows(200, 0.15, seed=6)
    certificate, rules = decision_rules(test_probs, y_test, cal_probs, y_cal, CompareConfig(n_resamples=20),
                                        cut={"calibration": cal_cut, "test": test_cut})
    assert certificate.certified
    for outcome in rules.values():
        assert not outcome.automated[test_cut].any()
    assert rules[CERTIFIED].automated.sum() == int((~test_cut).sum())


# KS of a window identical to the reference has statistic 0, where scipy's exact p-value gives up (asymptotic)
@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")
@pytest.mark.parametrize("rule", ["threshold", "prediction_set"])
def test_the_drift_reference_decides_truncated_rows_as_the_server_does(rule):
    """The reference's decision rates come from ``decide`` with the rows' truncation flags (and the bundle's
    rule), so a live window of the same rows, decided by the server, shows no decision drift."""
    from confidently.monitoring import DriftMonitor, Reference

    rng = np.random.default_rng(7)
    confidence, positive = rng.uniform(0.95, 0.99, 400), rng.random(400) < 0.5
    probs = np.column_stack([np.where(positive, 1 - confidence, confidence), np.where(positive, confidence,
                                                                                     1 - confidence)])
    cut = rng.random(400) < 0.2
    other = rng.beta(1, 20, 400)
    served = dict(labels=LABELS, calibrator=fitted_platt(), policy=POLICY, prediction_sets=fitted_sets(), rule=rule)
    server = decide(probs, truncated=cut, **served).decision
    reference = Reference.from_scores(probs, other, source="rows", truncated=cut, **served)
    assert reference.decision_rates == {d: pytest.approx(np.mean(server == d)) for d in ("automate", "review")}
    assert reference.decision_rates["review"] == pytest.approx(cut.mean())  # only the cut rows: all confident
    assert f"{cut.sum()} of 400 rows cut to fit" in reference.decided_by
    assert Reference.from_scores(probs, other, source="rows", **served).decision_rates["review"] == 0.0
    monitor = DriftMonitor(LABELS, reference)
    monitor.observe(probs.max(1), other, [LABELS[i] for i in probs.argmax(1)], list(server))
    decision = next(f for f in monitor.report().features if f.feature == "decision")
    assert decision.live_shares == pytest.approx(decision.reference_shares) and decision.psi == pytest.approx(0.0)


def test_a_reference_written_before_it_said_how_it_decided_still_loads():
    from confidently.monitoring import Reference

    probs, _, _ = _confident_rows(50, 0.0, seed=8)
    data = Reference.from_scores(probs, np.zeros(50), labels=LABELS, policy=POLICY, source="rows").to_dict()
    del data["decided_by"]
    assert Reference.from_dict(data).decided_by == "not recorded"


def test_evaluate_keeps_the_calibration_rows_truncation_for_recalibration_and_drift(tiny_model_dir, tmp_path):
    from confidently.bundle.bundle import read_bundle
    from confidently.data import Dataset, generate_sentiment, split_dataset, stratified_sample
    from confidently.feedback.recalibration import CalibrationRows
    from confidently.monitoring import Reference
    from confidently.workflows.evaluation import EvaluationConfig
    from confidently.workflows.pipeline import run_evaluate

    splits = split_dataset(generate_sentiment(300, seed=3), seed=3)
    calibration = Dataset((*splits.calibration.texts, LONG), (*splits.calibration.labels, "positive"))
    config = EvaluationConfig(methods=("platt",), budget_sizes=(50,), budget_repeats=2, n_resamples=50)
    clf = Classifier(model=str(tiny_model_dir), dtype="float32")
    run_evaluate(clf, calibration, stratified_sample(splits.test, 20, seed=3), tmp_path, config=config,
                 progress=False)
    bundle = read_bundle(tmp_path)
    rows = CalibrationRows.from_bundle(bundle)
    assert rows.truncated.tolist() == [False] * len(splits.calibration) + [True]
    reference = Reference.from_bundle(bundle)
    assert f"1 of {len(calibration)} rows cut to fit" in reference.decided_by
    assert "in sample: the calibrator applied to the rows it was fitted on" in reference.decided_by
    server = CalibratedClassifier.from_bundle(clf, bundle).decide(rows.probs, truncated=rows.truncated).decision
    assert reference.decision_rates == {d: pytest.approx(np.mean(server == d)) for d in ("automate", "review")}
