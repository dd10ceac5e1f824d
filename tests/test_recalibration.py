"""Recalibration from reviewed labels: adopted when demonstrably better on held-out labels, kept otherwise;
versions written beside the original, never over it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from confidently.calibration import TemperatureCalibrator
from confidently.cli.app import app
from confidently.feedback import LoggedText, open_store
from confidently.bundle.bundle import ModelIdentity, read_bundle, write_bundle
from confidently.bundle.versions import latest_version, version_label
from confidently.monitoring.canary import CANARY_FILE, Canary
from confidently.feedback.recalibration import CALIBRATION_ROWS_FILE, CalibrationRows, recalibrate
from confidently.bundle.seen import SEEN_FILE, SeenTexts, fingerprint, seen_payload
from confidently.tasks.task import SENTIMENT
from confidently.decision.policy import DecisionPolicy

LABELS = ("negative", "positive")


def draw(n: int, rng, *, sharpness: float):
    """Raw probabilities and labels where P(top label is right | confidence c) = 0.5 + sharpness * (c - 0.5)."""
    confidence = 0.5 + 0.5 * rng.beta(2, 1, size=n)
    top = rng.integers(0, 2, size=n)
    probs = np.where(top[:, None] == np.arange(2), confidence[:, None], 1 - confidence[:, None])
    right = rng.random(n) < 0.5 + sharpness * (confidence - 0.5)
    return probs, np.where(right, top, 1 - top)


MODEL = ModelIdentity("tiny", "transformers", "a" * 64, "float32", "b" * 64)


@pytest.fixture()
def folder(tmp_path):
    """A bundle calibrated when the model was honest (sharpness 1), with its calibration rows and a canary."""
    rng = np.random.default_rng(0)
    probs, y = draw(600, rng, sharpness=1.0)
    rows = CalibrationRows(LABELS, probs, y, rng.beta(1, 30, size=600))
    canary = Canary.select([f"t{i}" for i in range(600)], y, probs, task=SENTIMENT, size=8)
    out = tmp_path / "support"
    write_bundle(out, model=MODEL, task=SENTIMENT, chat=None, calibrator=TemperatureCalibrator().fit(probs, y),
                 policy=DecisionPolicy(threshold=0.8, target_accuracy=0.9, certified=True, method="test", level=0.95),
                 fitted_on={"rows_sha256": "0" * 64, "n_rows": 600},
                 extra_json={CALIBRATION_ROWS_FILE: rows.to_dict(), CANARY_FILE: canary.to_dict(),
                             SEEN_FILE: seen_payload({"calibration": [f"t{i}" for i in range(600)]})})
    return out


def fill(store, n: int, *, sharpness: float, seed: int, adapter: str = "support") -> None:
    rng = np.random.default_rng(seed)
    probs, y = draw(n, rng, sharpness=sharpness)
    store.record(f"r{seed}", adapter, "v1", [
        LoggedText(position=i, label=LABELS[int(p.argmax())], confidence=float(p.max()), decision="review",
                   probs=dict(zip(LABELS, p.tolist())), queue="review" if i % 3 else "audit", text=f"text {i}")
        for i, p in enumerate(probs)])
    for i, label in enumerate(y):
        store.label(f"r{seed}", i, LABELS[label], reviewer="ann")


def test_overconfident_live_traffic_gets_a_new_version(folder, tmp_path):
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.3, seed=1)  # the model became overconfident
        result = recalibrate(folder, store, adapter="support")
    assert result.adopted and result.version == 2 and result.folder == folder / "versions" / "v2"
    report = result.report
    assert report["n_feedback"] == 300 and report["n_held_out"] == 90 and report["n_train_feedback"] == 210
    assert report["nll_new"] < report["nll_old"] and report["nll_difference"]["high"] < 0
    assert "wrote version 2" in result.describe()
    latest = latest_version(folder)
    # The version is a complete bundle of its own: same model and task, read back with every hash checked.
    version = latest.bundle
    assert latest.number == 2 and version.calibrator.temperature_ > 1.5  # softer: less confident
    assert version.model == MODEL and version.task == SENTIMENT and version.policy.target_accuracy == 0.9
    assert {"reference.json", "recalibration.json", CANARY_FILE} <= set(version.extras)
    assert version.extras[CANARY_FILE] == read_bundle(folder).extras[CANARY_FILE]
    assert version.fitted_on["parent_manifest_sha256"] == read_bundle(folder).manifest_sha256
    assert version.fitted_on["n_rows"] == 600 + 210 and version.extras["recalibration.json"]["adapter"] == "support"
    assert latest.label == f"{version.manifest_sha256[:12]}.v2" == version_label(version, 2)
    # The folder's own files are untouched; a second run builds version 3 and keeps version 2.
    assert read_bundle(folder).calibrator.temperature_ < 1.3
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.1, seed=2)
        again = recalibrate(folder, store, adapter="support")
    assert again.version == 3 and read_bundle(folder / "versions" / "v2").calibrator is not None
    assert read_bundle(again.folder).fitted_on["parent_version"] == 2


def test_a_version_carries_the_texts_its_root_saw_and_the_reviewed_texts_it_was_refitted_on(folder, tmp_path):
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.3, seed=1)  # texts "text 0" ... "text 299"
        result = recalibrate(folder, store, adapter="support")
    seen = SeenTexts.from_bundle(read_bundle(result.folder))
    root = SeenTexts.from_bundle(read_bundle(folder))
    assert seen.roles["calibration"] == root.roles["calibration"] and "feedback" not in root.roles
    feedback = seen.overlap([f"text {i}" for i in range(300)])
    assert feedback.by_role["feedback"] == 210 == result.report["n_train_feedback"]
    # the 90 held out judged it (it was adopted for doing better on them): seen too, under their own role
    assert feedback.by_role["feedback-holdout"] == 90 == result.report["n_held_out"] and feedback.seen.all()
    assert seen.overlap(["t5", "never logged"]).seen.tolist() == [True, False] and not seen.notes


def test_scoring_the_held_out_feedback_texts_on_a_new_version_warns(folder, tmp_path):
    # what `score` reads of a bundle (SeenRows): before, the 90 held-out texts were not recorded, so figures on
    # them passed for out-of-sample ones with no warning, though the version was adopted for doing better there
    from confidently.workflows.labelled import SeenRows

    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.3, seed=1)
        result = recalibrate(folder, store, adapter="support")
    version = read_bundle(result.folder)
    trained_on = SeenTexts.from_bundle(version).roles["feedback"]
    held_out = [t for t in (f"text {i}" for i in range(300)) if fingerprint(t) not in trained_on]
    assert len(held_out) == 90 == result.report["n_held_out"]
    rows = SeenRows.of(version, [*held_out, "a text nobody reviewed"])
    assert rows.n_seen == 90 and rows.to_dict()["by_role"] == {"calibration": 0, "feedback": 0, "feedback-holdout": 90}
    assert "(90 as feedback-holdout)" in rows.overlap.warning(result.folder, "figures are partly in-sample")


def test_traffic_like_the_calibration_rows_keeps_the_old(folder, tmp_path):
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=1.0, seed=3)
        result = recalibrate(folder, store, adapter="support")
    assert not result.adopted and result.folder is None and not (folder / "versions").exists()
    assert result.report["nll_difference"]["high"] >= 0
    assert result.describe().startswith("kept version 1: on 90 held-out labels")


def test_too_few_labels_keep_the_old(folder, tmp_path):
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 30, sharpness=0.1, seed=4)
        fill(store, 200, sharpness=0.1, seed=5, adapter="other")  # another adapter's labels do not count
        result = recalibrate(folder, store, adapter="support")
    assert not result.adopted
    assert result.describe() == ("kept version 1: too few reviewed labels: 30, of which 9 would be held out; "
                                 "need 20 held out (about 67 labels)")


def test_labels_for_texts_never_queued_are_left_out_and_counted(folder, tmp_path):
    # the server takes a label for any logged text (200), so the report must say why fewer were used
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 30, sharpness=0.1, seed=4)
        store.record("automated", "support", "v1", [
            LoggedText(position=i, label="positive", confidence=0.95, decision="automate",
                       probs={"negative": 0.05, "positive": 0.95}, queue=None, text=None) for i in range(13)])
        for i in range(13):
            store.label("automated", i, "negative", reviewer="ann")
        result = recalibrate(folder, store, adapter="support")
    assert result.report["n_feedback"] == 30 and result.report["n_feedback_not_queued"] == 13
    assert result.describe() == ("kept version 1: too few reviewed labels: 30, of which 9 would be held out; "
                                 "need 20 held out (about 67 labels) (13 labels for texts the server did not "
                                 "queue for review or audit left out: texts chosen by whoever sent them could "
                                 "bias the calibrator)")


def test_a_tampered_version_is_refused(folder, tmp_path):
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.3, seed=1)
        recalibrate(folder, store, adapter="support")
    policy = folder / "versions" / "v2" / "policy.json"
    policy.write_text(policy.read_text().replace('"certified": true', '"certified": false'))
    from confidently.errors import ArtifactError

    with pytest.raises(ArtifactError, match="v2/policy.json changed since the bundle was written"):
        latest_version(folder)


def test_cli_reports_either_way(folder, tmp_path):
    db = tmp_path / "feedback.db"
    with open_store(db) as store:
        fill(store, 300, sharpness=0.3, seed=1)
    # An evaluate-style bundle (no adapter weights) calibrates the base model unless --adapter says otherwise.
    base = CliRunner().invoke(app, ["recalibrate", str(folder), "--feedback", str(db), "--json"])
    assert base.exit_code == 0, base.output
    assert json.loads(base.stdout)["adapter"] is None and not json.loads(base.stdout)["adopted"]
    result = CliRunner().invoke(app, ["recalibrate", str(folder), "--feedback", str(db), "--adapter", "support",
                                      "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["adopted"] and report["version"] == 2 and report["adapter"] == "support"
    missing = CliRunner().invoke(app, ["recalibrate", str(folder), "--feedback", str(tmp_path / "nope.db")])
    assert "nope.db: no such feedback store" in str(missing.exception)


def test_a_bundle_without_calibration_rows_is_one_clear_error(tmp_path):
    from confidently.errors import ArtifactError

    write_bundle(tmp_path / "old", model=MODEL, task=SENTIMENT, chat=None, calibrator=None,
                 policy=DecisionPolicy(threshold=None, target_accuracy=None, certified=False, method="test"),
                 fitted_on={"rows_sha256": "0" * 64, "n_rows": 0})
    with open_store(tmp_path / "feedback.db") as store, \
            pytest.raises(ArtifactError, match="the bundle has no calibration_rows.json"):
        recalibrate(tmp_path / "old", store, adapter=None)


@pytest.mark.parametrize("kind", ["probe", "ensemble"])
def test_a_probe_or_combiner_bundle_without_kept_features_is_refused_before_any_refit(kind, tmp_path):
    # A bundle written before features were kept: its calibration_rows.json holds class probabilities only;
    # a probe reads hidden states and a combiner every prompt's class masses, so neither can be refitted
    # from them: one line, nothing written. (Bundles written now keep them: test_feature_recalibration.py.)
    from confidently.calibration.ensemble import PromptCombiner
    from confidently.calibration.probe import HiddenStateProbe

    rng = np.random.default_rng(0)
    probs, y = draw(200, rng, sharpness=1.0)
    features = np.hstack([probs, probs[:, ::-1]]) if kind == "ensemble" else rng.normal(size=(200, 6)) + y[:, None]
    fitted = (PromptCombiner() if kind == "ensemble" else HiddenStateProbe()).fit(features, y, n_classes=2)
    out = tmp_path / "bundle"
    write_bundle(out, model=MODEL, task=SENTIMENT, chat=None, calibrator=fitted,
                 policy=DecisionPolicy(threshold=0.8, target_accuracy=0.9, certified=True, method="test", level=0.95),
                 fitted_on={"rows_sha256": "0" * 64, "n_rows": 200},
                 extra_json={CALIBRATION_ROWS_FILE: CalibrationRows(LABELS, probs, y, np.zeros(200)).to_dict()})
    assert read_bundle(out).calibrator.reads_hidden
    db = tmp_path / "feedback.db"
    with open_store(db) as store:
        fill(store, 300, sharpness=0.3, seed=1)
    expected = "a prompt ensemble's combiner" if kind == "ensemble" else "a hidden-state probe"
    result = CliRunner().invoke(app, ["recalibrate", str(out), "--feedback", str(db), "--adapter", "support"])
    assert result.exit_code == 1
    assert expected in str(result.exception) and "keep class probabilities only" in str(result.exception)
    assert not (out / "versions").exists()


def cut_bundle(out, *, record_truncation: bool, seed: int = 0):
    """A bundle like ``folder``'s whose calibration rows include texts cut to fit (5%), each as confident as
    can be (0.99) and wrong; with ``record_truncation`` False its calibration_rows.json is format version 1,
    written before rows recorded truncation. Returns the rows' truncation flags."""
    rng = np.random.default_rng(seed)
    probs, y = draw(600, rng, sharpness=1.0)
    cut = rng.random(600) < 0.05
    top = probs.argmax(1)
    probs = np.where(cut[:, None], np.where(top[:, None] == np.arange(2), 0.99, 0.01), probs)
    y = np.where(cut, 1 - top, y)
    rows = CalibrationRows(LABELS, probs, y, rng.beta(1, 30, size=600), truncated=cut if record_truncation else None)
    write_bundle(out, model=MODEL, task=SENTIMENT, chat=None, calibrator=TemperatureCalibrator().fit(probs, y),
                 policy=DecisionPolicy(threshold=0.8, target_accuracy=0.9, certified=True, method="test", level=0.95),
                 fitted_on={"rows_sha256": "0" * 64, "n_rows": 600},
                 extra_json={CALIBRATION_ROWS_FILE: rows.to_dict()})
    return cut


def test_truncated_calibration_rows_are_certified_as_reviewed(tmp_path, monkeypatch):
    """The server never automates a cut text, so the re-certified threshold is that of the rows it will
    automate: exactly ``certify_threshold(..., never_automated=flags)`` on the out-of-fold scores."""
    from confidently.decision.decisions import decide
    from confidently.decision.thresholds import certify_threshold
    from confidently.feedback import recalibration
    from confidently.monitoring.reference import Reference

    cut = cut_bundle(tmp_path / "bundle", record_truncation=True)
    calls = []

    def spy(confidence, correct, **kwargs):  # the real certificate, with what it was asked on
        calls.append((np.asarray(confidence), np.asarray(correct), kwargs))
        return certify_threshold(confidence, correct, **kwargs)

    monkeypatch.setattr(recalibration, "certify_threshold", spy)
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.3, seed=1)
        result = recalibrate(tmp_path / "bundle", store, adapter="support")
    assert result.adopted and len(calls) == 1
    confidence, correct, kwargs = calls[0]
    assert np.array_equal(kwargs.pop("never_automated"), cut)
    aware, blind = certify_threshold(confidence, correct, never_automated=cut, **kwargs), \
        certify_threshold(confidence, correct, **kwargs)
    assert aware.certified and not blind.certified  # the cut rows' confident mistakes would block every threshold
    version = read_bundle(result.folder)
    assert version.policy.threshold == aware.threshold == result.report["policy"]["threshold"]
    assert result.report["truncation_known"] is True and result.report["n_calibration_rows_truncated"] == cut.sum()
    # the new version's reference decides the cut rows review, as the server will
    rows = CalibrationRows.from_bundle(read_bundle(tmp_path / "bundle"))
    served = decide(rows.probs, labels=LABELS, calibrator=version.calibrator, policy=version.policy, truncated=cut)
    reference = Reference.from_bundle(version)
    assert reference.decision_rates["review"] == pytest.approx(np.mean(served.decision == "review"))
    assert reference.decision_rates["review"] >= cut.mean()


def test_calibration_rows_written_before_truncation_was_recorded_read_as_none_cut(tmp_path):
    cut_bundle(tmp_path / "bundle", record_truncation=False)
    bundle = read_bundle(tmp_path / "bundle")
    assert bundle.extras[CALIBRATION_ROWS_FILE]["format_version"] == 1
    rows = CalibrationRows.from_bundle(bundle)
    assert rows.truncated is None and not rows.truncation_known and not rows.never_automated.any()
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.3, seed=1)
        result = recalibrate(tmp_path / "bundle", store, adapter="support")
    # the same rows, their cut texts unknown: certified as if automatable, which blocks every threshold here
    assert result.adopted and result.report["policy"]["threshold"] is None
    assert result.report["truncation_known"] is False and result.report["n_calibration_rows_truncated"] == 0
    assert "predates truncation flags" in result.describe()


def test_calibration_rows_keep_truncation_flags_and_refuse_malformed_ones():
    from confidently.errors import ArtifactError

    probs, y = draw(4, np.random.default_rng(0), sharpness=1.0)
    rows = CalibrationRows(LABELS, probs, y, np.zeros(4), truncated=np.array([False, True, False, False]))
    data = json.loads(json.dumps(rows.to_dict()))
    assert data["format_version"] == 2 and data["truncated"] == [False, True, False, False]
    back = CalibrationRows.from_dict(data)
    assert back.truncation_known and back.never_automated.tolist() == [False, True, False, False]
    for bad in ([0, 1, 0, 0], [False, True], "no"):
        with pytest.raises(ArtifactError, match="truncated must be a list of 4 true/false values"):
            CalibrationRows.from_dict({**data, "truncated": bad})
    with pytest.raises(ArtifactError, match="KeyError: 'truncated'"):
        CalibrationRows.from_dict({key: value for key, value in data.items() if key != "truncated"})
    with pytest.raises(ArtifactError, match="format_version 3 is not supported"):
        CalibrationRows.from_dict({**data, "format_version": 3})


def sets_bundle(out, *, rule: str, condition_on: str | None, scorer=None):
    """The ``folder`` fixture's bundle, also carrying prediction sets (fitted on its calibrated rows) and
    deciding by ``rule``; with ``scorer`` when given."""
    from confidently.bundle.bundle import CONFORMAL_FILE
    from confidently.decision.conformal import ConformalPredictor

    rng = np.random.default_rng(0)
    probs, y = draw(600, rng, sharpness=1.0)
    groups = np.where(rng.random(600) < 0.5, "books", "films")
    calibrator = TemperatureCalibrator().fit(probs, y)
    sets = ConformalPredictor(0.2, condition_on=condition_on, group_column="domain" if condition_on == "group"
                              else None).fit(calibrator.predict_proba(probs), y,
                                             groups=groups if condition_on == "group" else None)
    write_bundle(out, model=MODEL, task=SENTIMENT, chat=None, calibrator=calibrator,
                 policy=DecisionPolicy(threshold=0.8, target_accuracy=0.9, certified=True, method="test", level=0.95),
                 fitted_on={"rows_sha256": "0" * 64, "n_rows": 600}, scorer=scorer, metadata={"decision_rule": rule},
                 extra_json={CALIBRATION_ROWS_FILE: CalibrationRows(LABELS, probs, y, rng.beta(1, 30, 600)).to_dict(),
                             CONFORMAL_FILE: sets.to_dict()})
    return sets


def test_a_new_version_keeps_the_decision_rule_and_scorer_with_sets_refitted_for_its_calibrator(tmp_path):
    from confidently.scorers.spec import ScorerSpec

    scorer = ScorerSpec.make("verbalized")
    old_sets = sets_bundle(tmp_path / "support", rule="prediction_set", condition_on="class", scorer=scorer)
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.3, seed=1)
        result = recalibrate(tmp_path / "support", store, adapter="support")
    assert result.adopted
    version = read_bundle(result.folder)
    assert version.decision_rule == "prediction_set" and version.scorer == scorer
    sets = version.prediction_sets
    assert (sets.alpha, sets.score, sets.condition_on) == (old_sets.alpha, old_sets.score, "class")
    assert sets.counts_ == old_sets.counts_  # the same calibration rows, scored by the new calibrator out of fold
    assert sets.quantiles_ != old_sets.quantiles_
    assert "refitted" in result.report["prediction_sets"] and result.report["decision_rule"] == "prediction_set"
    assert "single-label prediction sets" in version.extras["reference.json"]["decided_by"]


def test_sets_per_slice_that_cannot_be_refitted_keep_the_old_version_when_they_decide(tmp_path):
    sets_bundle(tmp_path / "support", rule="prediction_set", condition_on="group")
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.3, seed=1)
        result = recalibrate(tmp_path / "support", store, adapter="support")
    assert not result.adopted and not (tmp_path / "support" / "versions").exists()
    assert "fitted per domain, which the calibration rows do not record" in result.describe()


def test_sets_per_slice_are_left_out_of_a_version_decided_by_its_threshold(tmp_path):
    sets_bundle(tmp_path / "support", rule="threshold", condition_on="group")
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.3, seed=1)
        result = recalibrate(tmp_path / "support", store, adapter="support")
    version = read_bundle(result.folder)
    assert result.adopted and version.decision_rule == "threshold" and version.prediction_sets is None
    assert result.report["prediction_sets"].startswith("left out: fitted per domain")
    from types import SimpleNamespace

    from confidently.decision.calibrated import CalibratedClassifier

    applied = CalibratedClassifier.from_bundle(SimpleNamespace(labels=LABELS), version, checked=False)
    assert applied.bundle is version and "could not refit its bundle's sets" in applied.sets_note


def test_versions_left_from_an_earlier_bundle_in_the_folder_are_refused_not_applied(folder, tmp_path):
    """Re-running evaluate into a folder that holds versions recalibrated from its earlier bundle: the stale
    newest version must not decide for the new bundle (serve, classify, score and recalibrate read it)."""
    from confidently.errors import ArtifactError

    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.3, seed=1)
        assert recalibrate(folder, store, adapter="support").version == 2
        fill(store, 300, sharpness=0.1, seed=2)
        assert recalibrate(folder, store, adapter="support").version == 3
    assert latest_version(folder).number == 3  # an intact chain: v3 from v2 from the folder's bundle
    old = read_bundle(folder)
    write_bundle(folder, model=MODEL, task=SENTIMENT, chat=None, calibrator=old.calibrator,
                 policy=DecisionPolicy(threshold=0.9, target_accuracy=0.9, certified=True, method="new", level=0.95),
                 fitted_on={"rows_sha256": "1" * 64, "n_rows": 600},
                 extra_json={name: old.extras[name] for name in (CALIBRATION_ROWS_FILE, CANARY_FILE)})
    with pytest.raises(ArtifactError, match="v2 was recalibrated from another bundle than .* holds now"):
        latest_version(folder)


def test_evaluate_into_a_folder_with_versions_says_they_are_now_refused(tiny_model_dir, tmp_path):
    from confidently.bundle.versions import write_version
    from confidently.data import generate_sentiment, split_dataset, stratified_sample
    from confidently.errors import ArtifactError
    from confidently.scoring.classifier import Classifier
    from confidently.workflows.evaluation import EvaluationConfig
    from confidently.workflows.pipeline import run_evaluate

    splits = split_dataset(generate_sentiment(200, seed=5), seed=5)
    config = EvaluationConfig(methods=("platt",), budget_sizes=(40,), budget_repeats=1, n_resamples=20)
    clf = Classifier(model=str(tiny_model_dir), dtype="float32")
    test = stratified_sample(splits.test, 20, seed=5)
    run_evaluate(clf, splits.calibration, test, tmp_path, config=config, progress=False)
    first = read_bundle(tmp_path)
    write_version(first, 2, calibrator=first.calibrator, policy=first.policy, fitted_on={
        "rows_sha256": "0" * 64, "n_rows": 1, "parent_version": 1, "parent_manifest_sha256": first.manifest_sha256})
    assert latest_version(tmp_path).number == 2
    again = run_evaluate(clf, splits.calibration, test, tmp_path, config=dataclasses.replace(config, alpha=0.2),
                         progress=False)
    assert any("holds versions recalibrated from the bundle this run replaced" in note
               for note in again.evaluation.notes)
    with pytest.raises(ArtifactError, match="recalibrated from another bundle"):
        latest_version(tmp_path)
