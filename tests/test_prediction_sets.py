"""Prediction sets on every output: the bundle carries them (conformal.json, hashed), the one decide path
applies them, and the set-based decision rule ("automate when the set holds only the answer") is chosen
by the user or the bundle."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from confidently.bundle.bundle import CONFORMAL_FILE, read_bundle
from confidently.scoring.classifier import Classifier
from confidently.decision.conformal import ConformalPredictor, decide_by_sets
from confidently.decision.calibrated import CalibratedClassifier
from confidently.decision.decisions import decide
from confidently.errors import ArtifactError, ConfidentlyError, ConfigError, DataError
from confidently.workflows.score_file import score_file

from test_bundle import POLICY, TEXTS, edit_manifest, fitted_platt, make_bundle

LABELS = ("negative", "positive")


def fitted_sets(alpha: float = 0.1, seed: int = 0, **options) -> ConformalPredictor:
    """LAC sets fitted on Platt-calibrated synthetic scores (as evaluate fits them on calibrated ones)."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(0.05, 0.95, 300)
    y = (rng.uniform(size=300) < score).astype(int)
    probs = fitted_platt().predict_proba(np.column_stack([1 - score, score]))
    groups = np.where(rng.uniform(size=300) < 0.5, "books", "films")
    return ConformalPredictor(alpha, **options).fit(probs, y, groups=groups if options.get("condition_on") == "group"
                                                    else None)


@pytest.fixture(scope="module")
def clf(tiny_backend):
    return Classifier(backend=tiny_backend)


def test_decide_applies_the_sets_to_the_answer_probabilities():
    sets = fitted_sets()
    raw = np.array([[0.52, 0.48], [0.02, 0.98], [0.97, 0.03], [0.3, 0.7]])
    decisions = decide(raw, labels=LABELS, calibrator=fitted_platt(), policy=POLICY, prediction_sets=sets)
    expected = sets.predict_set(fitted_platt().predict_proba(raw))
    np.testing.assert_array_equal(decisions.sets, expected)
    assert decisions.set_lists == [[LABELS[j] for j in np.flatnonzero(row)] for row in expected]
    assert 1 in expected.sum(1) and 2 in expected.sum(1)  # the rows exercise both set sizes
    frame = decisions.to_frame()
    assert frame["prediction_set"].tolist() == decisions.set_lists
    assert frame["prediction_set_size"].tolist() == expected.sum(1).tolist()
    # the threshold rule still decides by default; the sets are shown beside it
    assert decisions.decided_by == "threshold" and decisions.threshold == 0.7
    assert list(decisions.decision) == list(POLICY.decide(decisions.confidence))
    prediction = decisions.prediction(1, "t", _scores(raw))
    assert prediction.prediction_set == decisions.set_lists[1] and prediction.set_guarantee == sets.guarantee
    assert json.loads(json.dumps(prediction.to_dict()))["prediction_set"] == decisions.set_lists[1]


def test_the_set_rule_automates_only_single_label_sets_and_states_its_guarantee():
    sets = fitted_sets()
    raw = np.array([[0.52, 0.48], [0.02, 0.98], [0.97, 0.03], [0.3, 0.7]])
    decisions = decide(raw, labels=LABELS, calibrator=fitted_platt(), policy=POLICY, prediction_sets=sets,
                       rule="prediction_set")
    sizes = decisions.sets.sum(1)
    assert list(decisions.decision) == ["automate" if size == 1 else "review" for size in sizes]
    assert decisions.decided_by == "prediction_set" and decisions.threshold is None
    assert decisions.guarantee == sets.decision_guarantee
    assert "wrong automated answers are at most 10% of all items" in decisions.guarantee
    assert decisions.prediction(0, "t", _scores(raw)).decided_by == "prediction_set"


def test_a_single_label_set_that_is_not_the_answer_is_reviewed():
    # Class-conditional sets can keep one label that is not the most probable: automating the answer
    # there would break the guarantee (its error would not be a miss of the set).
    sets = np.array([[False, True], [True, False], [True, True], [False, False]])
    probs = np.array([[0.6, 0.4], [0.8, 0.2], [0.5, 0.5], [0.9, 0.1]])
    assert list(decide_by_sets(sets, probs)) == ["review", "automate", "review", "review"]


def test_without_sets_nothing_is_invented_and_the_set_rule_is_refused():
    raw = np.array([[0.52, 0.48], [0.1, 0.9]])
    decisions = decide(raw, labels=LABELS, calibrator=fitted_platt(), policy=POLICY)
    assert decisions.sets is None and decisions.set_lists is None and decisions.set_guarantee is None
    assert "prediction_set" not in decisions.to_frame()
    assert decisions.prediction(0, "t", _scores(raw)).prediction_set is None
    with pytest.raises(ConfigError, match="needs prediction sets"):
        decide(raw, labels=LABELS, policy=POLICY, rule="prediction_set")
    with pytest.raises(ConfigError, match="decision rule must be one of"):
        decide(raw, labels=LABELS, policy=POLICY, rule="sets")
    with pytest.raises(ArtifactError, match="fitted on 2 classes, the task has 3"):
        decide(np.full((1, 3), 1 / 3), labels=("a", "b", "c"), prediction_sets=fitted_sets())


def test_per_slice_sets_need_each_rows_group_value():
    sets = fitted_sets(condition_on="group", group_column="domain")
    raw = np.array([[0.52, 0.48], [0.1, 0.9]])
    absent = decide(raw, labels=LABELS, prediction_sets=sets)
    assert absent.sets is None  # no value given: left out, never guessed
    given = decide(raw, labels=LABELS, prediction_sets=sets, groups=["books", "films"])
    np.testing.assert_array_equal(given.sets, sets.predict_set(raw, groups=["books", "films"]))
    with pytest.raises(DataError, match="fitted per domain: give each text's domain value"):
        decide(raw, labels=LABELS, prediction_sets=sets, rule="prediction_set")
    with pytest.raises(DataError, match="group 'music' was not in the calibration data"):
        decide(raw, labels=LABELS, prediction_sets=sets, groups=["music", "films"])


def test_the_bundle_carries_the_sets_as_a_hashed_file(clf, tmp_path):
    sets = fitted_sets()
    make_bundle(tmp_path, clf, extra_json={CONFORMAL_FILE: sets.to_dict()}, metadata={"decision_rule": "prediction_set"})
    bundle = read_bundle(tmp_path)
    assert CONFORMAL_FILE in bundle.manifest["files"] and bundle.decision_rule == "prediction_set"
    assert bundle.prediction_sets.quantiles_ == sets.quantiles_
    assert bundle.extras[CONFORMAL_FILE] == sets.to_dict()
    # tampering is caught by the hash, before the sets are used
    data = json.loads((tmp_path / CONFORMAL_FILE).read_text())
    data["quantiles"]["all"] = 0.999
    (tmp_path / CONFORMAL_FILE).write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="conformal.json changed since the bundle was written"):
        read_bundle(tmp_path)


@pytest.mark.parametrize("change,message", [
    (lambda data: data.update(n_classes=3), "fitted on 3 classes, the task has 2"),
    (lambda data: data["quantiles"].update(all=4.0), r"quantiles\['all'\] must be a number in \[0, 1\]"),
    (lambda data: data.update(condition_on="class"), "needs quantile keys 0, 1"),
])
def test_malformed_sets_in_a_rehashed_bundle_are_refused(clf, tmp_path, change, message):
    data = fitted_sets().to_dict()
    change(data)
    with pytest.raises(ArtifactError, match=message) as caught:
        make_bundle(tmp_path, clf, extra_json={CONFORMAL_FILE: data})  # write_bundle reads its bundle back
    assert str(caught.value).startswith(str(tmp_path / CONFORMAL_FILE)) and "\n" not in str(caught.value)


def test_the_rule_is_checked_when_written_and_read(clf, tmp_path):
    with pytest.raises(ConfigError, match="needs the prediction sets"):
        make_bundle(tmp_path / "a", clf, metadata={"decision_rule": "prediction_set"})
    with pytest.raises(ConfigError, match="decision_rule must be one of"):
        make_bundle(tmp_path / "b", clf, metadata={"decision_rule": "vote"})
    make_bundle(tmp_path / "c", clf)
    assert read_bundle(tmp_path / "c").decision_rule == "threshold"  # bundles that record none
    edit_manifest(tmp_path / "c", lambda m: m.update(decision_rule="prediction_set"))
    with pytest.raises(ArtifactError, match="decision_rule is 'prediction_set' but the bundle lists no conformal"):
        read_bundle(tmp_path / "c")


def test_calibrated_classifier_takes_sets_and_rule_from_the_bundle(clf, tmp_path):
    sets = fitted_sets()
    make_bundle(tmp_path / "sets", clf, extra_json={CONFORMAL_FILE: sets.to_dict()},
                metadata={"decision_rule": "prediction_set"})
    calibrated = CalibratedClassifier(clf, bundle=tmp_path / "sets")
    many = calibrated.classify_many(TEXTS)
    scores = clf.score(TEXTS)
    expected = sets.predict_set(fitted_platt().predict_proba(scores.probs))
    for prediction, row in zip(many, expected):
        assert prediction.prediction_set == [LABELS[j] for j in np.flatnonzero(row)]
        assert prediction.decided_by == "prediction_set" and prediction.threshold is None
        assert prediction.decision == ("automate" if row.sum() == 1 else "review")
    one = calibrated.classify(TEXTS[0])
    assert one.prediction_set == many[0].prediction_set and one.decision == many[0].decision
    # the user overrides the bundle's rule
    by_threshold = CalibratedClassifier(clf, bundle=tmp_path / "sets", decision_rule="threshold")
    assert by_threshold.rule.decided_by == "threshold" and by_threshold.classify_many(TEXTS)[0].prediction_set
    # a bundle without sets: no set, a note saying why, and the set rule refused
    make_bundle(tmp_path / "plain", clf)
    plain = CalibratedClassifier(clf, bundle=tmp_path / "plain")
    assert plain.classify(TEXTS[0]).prediction_set is None and "carries none" in plain.sets_note
    with pytest.raises(ConfidentlyError, match="needs prediction sets"):
        CalibratedClassifier(clf, bundle=tmp_path / "plain", decision_rule="prediction_set")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_score_writes_the_set_columns_and_uses_the_group_column(clf, tmp_path, suffix):
    sets = fitted_sets(condition_on="group", group_column="domain")
    make_bundle(tmp_path / "bundle", clf, extra_json={CONFORMAL_FILE: sets.to_dict()},
                metadata={"decision_rule": "prediction_set"})
    data = tmp_path / "in.jsonl"
    domains = ["books", "films", "films", "books"]
    data.write_text("".join(json.dumps({"text": t, "domain": d}) + "\n" for t, d in zip(TEXTS, domains)))
    calibrated = CalibratedClassifier(clf, bundle=tmp_path / "bundle")
    frame = score_file(calibrated, data, tmp_path / f"out{suffix}", progress=False)
    calibrated_probs = fitted_platt().predict_proba(clf.score(TEXTS).probs)
    expected = sets.predict_set(calibrated_probs, groups=domains)
    assert frame["prediction_set"].tolist() == [[LABELS[j] for j in np.flatnonzero(r)] for r in expected]
    assert frame["decision"].tolist() == list(decide_by_sets(expected, calibrated_probs))
    out = tmp_path / f"out{suffix}"
    written = (pd.read_json(out, lines=True) if suffix == ".jsonl" else pd.read_csv(out) if suffix == ".csv"
               else pd.read_parquet(out))
    cells = [json.loads(c) if suffix == ".csv" else list(c) for c in written["prediction_set"]]
    assert cells == frame["prediction_set"].tolist()
    # without the column the set rule cannot decide: refused before any row is scored
    bare = tmp_path / "bare.jsonl"
    bare.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    with pytest.raises(DataError, match="fitted per domain, but the file has no 'domain' column"):
        score_file(calibrated, bare, tmp_path / "bare-out.jsonl", progress=False)
    assert not (tmp_path / "bare-out.jsonl.partial").exists()


def _scores(raw: np.ndarray):
    from confidently.types import Scores

    n = raw.shape[0]
    return Scores(LABELS, raw * 0.9, np.full(n, 0.1), np.zeros(n, dtype=bool), None)


def test_cli_classify_and_score_show_the_sets_and_take_the_rule(clf, tiny_model_dir, tmp_path):
    import subprocess
    import sys

    sets = fitted_sets()
    make_bundle(tmp_path / "bundle", clf, extra_json={CONFORMAL_FILE: sets.to_dict()})
    make_bundle(tmp_path / "plain", clf)
    cli = [sys.executable, "-m", "confidently.cli.__main__"]

    def run(*args):
        done = subprocess.run([*cli, *map(str, args)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return " ".join(done.stdout.split())

    shown = json.loads(run("classify", TEXTS[0], "--model", tiny_model_dir, "--calibration", tmp_path / "bundle",
                           "--decision-rule", "prediction_set", "--json"))
    expected = CalibratedClassifier(clf, bundle=tmp_path / "bundle", decision_rule="prediction_set").classify(TEXTS[0])
    assert shown["prediction_set"] == expected.prediction_set and shown["decided_by"] == "prediction_set"
    assert shown["decision"] == expected.decision and shown["guarantee"] == sets.decision_guarantee
    text = run("classify", TEXTS[0], "--model", tiny_model_dir, "--calibration", tmp_path / "bundle")
    assert "prediction set: {" + ", ".join(expected.prediction_set) + "}" in text
    assert "automate at confidence >= 0.70" in text  # the bundle's own rule: the threshold
    assert "carries none" in run("classify", TEXTS[0], "--model", tiny_model_dir, "--calibration", tmp_path / "plain")
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    said = run("score", data, "--out", tmp_path / "out.jsonl", "--model", tiny_model_dir, "--calibration",
               tmp_path / "bundle", "--decision-rule", "prediction_set")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert all(r["decision"] == ("automate" if len(r["prediction_set"]) == 1 else "review") for r in rows)
    assert "mean prediction-set size" in said and "automate when the prediction set holds only the answer" in said
    refused = subprocess.run([*cli, "classify", "x", "--model", str(tiny_model_dir), "--calibration",
                              str(tmp_path / "plain"), "--decision-rule", "prediction_set"],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "needs a calibration bundle that carries prediction sets" in refused.stderr
    assert "Traceback" not in refused.stderr
