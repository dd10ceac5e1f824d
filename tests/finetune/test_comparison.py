"""compare on the tiny model: one backend, paired differences, and a report whose numbers are metrics.json's."""

import json

import numpy as np
import pytest

from confidently.scoring.classifier import Classifier
from confidently.calibration import cross_fit_predict
from confidently.workflows.comparison import CompareConfig, automated_count, compare
from confidently.finetune.report import write_comparison
from confidently.errors import ArtifactError, DataError
from confidently.tasks.task import SENTIMENT
from confidently.decision.thresholds import certify_threshold


@pytest.fixture(scope="module")
def comparison(backend, trained, separable):
    weights = backend.model.get_input_embeddings().weight
    result = compare(separable(120, seed=7), trained.path, backend=backend, progress=False,
                     config=CompareConfig(n_resamples=200))
    # one base model, adapters switched on it: the base weights were never copied
    assert backend.model.get_input_embeddings().weight.data_ptr() == weights.data_ptr()
    return result


def test_scores_are_the_classifiers_with_and_without_the_adapter(comparison, backend, trained):
    classifier = Classifier(backend=backend)
    texts = comparison.test.texts
    backend.set_adapter(None)
    np.testing.assert_allclose(comparison.probs["base"]["raw"], classifier.score(texts).probs, atol=1e-6)
    backend.set_adapter(trained.path.name)
    try:
        np.testing.assert_allclose(comparison.probs["fine-tuned"]["raw"], classifier.score(texts).probs, atol=1e-6)
    finally:
        backend.set_adapter(None)


def test_differences_are_paired_and_consistent_with_the_decisions(comparison):
    y = comparison.y
    for method in ("raw", "platt", "isotonic"):
        base, tuned = comparison.probs["base"][method], comparison.probs["fine-tuned"][method]
        diffs = comparison.differences[method]
        accuracy = [comparison.metrics[m][method]["metrics"]["accuracy"]["value"] for m in ("base", "fine-tuned")]
        assert diffs["accuracy"]["diff"] == pytest.approx(accuracy[1] - accuracy[0])
        assert diffs["accuracy"]["ci_low"] <= diffs["accuracy"]["diff"] <= diffs["accuracy"]["ci_high"]
        for model, probs in (("base", base), ("fine-tuned", tuned)):
            decisions = comparison.decisions[model][method]
            # without calibration rows nothing is certified: no threshold is chosen on the test rows
            assert decisions["certified"] is None and "certified" not in decisions["rules"]
            assert automated_count(0.9)(probs[None], y[None])[0] == decisions["rules"]["0.90"]["n_automated"]
        coverage = [comparison.decisions[m][method]["rules"]["0.90"]["coverage"] for m in ("base", "fine-tuned")]
        difference = comparison.decision_differences[method]["0.90"]["coverage"]
        assert difference["diff"] == pytest.approx(coverage[1] - coverage[0])
        assert difference["ci_low"] <= difference["diff"] <= difference["ci_high"]
    # the adapter learned the task, and the interval says so
    assert comparison.differences["raw"]["accuracy"]["ci_low"] > 0.2


def test_certified_thresholds_come_from_the_calibration_rows(backend, trained, separable):
    calibration = separable(200, seed=9)
    result = compare(separable(120, seed=7), trained.path, backend=backend, calibration=calibration,
                     progress=False, config=CompareConfig(n_resamples=200))
    y, y_cal = result.y, calibration.label_indices(SENTIMENT.label_names)
    backend.set_adapter(trained.path.name)
    try:
        cal_raw = Classifier(backend=backend).score(calibration.texts).probs
    finally:
        backend.set_adapter(None)
    out_of_fold = cross_fit_predict("platt", cal_raw, y_cal, n_splits=5, seed=0)
    certificate = certify_threshold(out_of_fold.max(1), out_of_fold.argmax(1) == y_cal)
    decided = result.decisions["fine-tuned"]["platt"]
    assert decided["certified"]["threshold"] == certificate.threshold
    rule = decided["rules"]["certified"]
    tuned = result.probs["fine-tuned"]["platt"]
    automated = tuned.max(1) >= certificate.threshold if certificate.certified else np.zeros(y.size, bool)
    assert rule["n_automated"] == int(automated.sum())
    # the cost view: per 10,000 items, at 2 min per review, 1 per review and 10 per automated mistake
    mistakes = automated & (tuned.argmax(1) != y)
    projection = rule["projection"]
    assert projection["review_hours"]["value"] == pytest.approx(10_000 * (~automated).mean() * 2 / 60)
    assert projection["cost"]["value"] == pytest.approx(10_000 * ((~automated).mean() + 10 * mistakes.mean()))
    base_cost = result.decisions["base"]["platt"]["rules"]["certified"]["projection"]["cost"]["value"]
    difference = result.decision_differences["platt"]["certified"]["cost"]
    assert difference["diff"] == pytest.approx(projection["cost"]["value"] - base_cost)
    assert difference["ci_low"] <= difference["diff"] <= difference["ci_high"]


def test_report_numbers_agree_with_metrics_json(comparison, tmp_path):
    paths = write_comparison(comparison, tmp_path / "run")
    metrics = json.loads(paths["metrics"].read_text())
    html, summary = paths["report"].read_text(), paths["summary"].read_text()
    for model in ("base", "fine-tuned"):
        for key in ("accuracy", "ece", "brier"):
            value = metrics["metrics"][model]["platt"]["metrics"][key]
            text = f"{value['value']:.4f} [{value['ci_low']:.4f}, {value['ci_high']:.4f}]"
            assert text in html and text in summary
    diff = metrics["differences_fine_tuned_minus_base"]["raw"]["accuracy"]
    assert f"{diff['diff']:.4f} [{diff['ci_low']:.4f}, {diff['ci_high']:.4f}]" in html
    assert html.count("<img") >= 5  # metric bars, confidence, 2x reliability, neutral-by-domain
    cost = metrics["decision_differences_fine_tuned_minus_base"]["platt"]["0.90"]["cost"]
    assert f"{cost['diff']:.0f} [{cost['ci_low']:.0f}, {cost['ci_high']:.0f}]" in html
    assert "No threshold is chosen on the test rows" in html
    assert metrics["n_test"] == 120 and metrics["labels"] == list(SENTIMENT.label_names)
    domains = {row["domain"] for row in metrics["neutral_by_domain"]}
    assert domains == {"sports", "workplace"}
    assert {row["slice"] for row in metrics["slices"]} >= {"category=strong", "domain=sports"}
    assert paths["scores"].exists()


def test_test_data_must_be_held_out(backend, trained, separable):
    with pytest.raises(DataError, match="trained or calibrated on"):
        compare(separable(240, seed=0), trained.path, backend=backend, progress=False)


def test_changed_adapter_files_are_refused(backend, trained, separable, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained.path, copy)
    (copy / "calibrator.json").write_text("{}")
    with pytest.raises(ArtifactError, match="calibrator.json changed since the bundle was written"):
        compare(separable(60, seed=8), copy, backend=backend, progress=False)


def test_the_report_states_the_shipped_rule_its_guarantee_and_its_interval(comparison, tmp_path):
    from html import escape

    from confidently.report.evaluation import automated_text

    html = write_comparison(comparison, tmp_path / "run")["report"].read_text()
    shipped = comparison.shipped
    assert shipped["decision_rule"] == "threshold" and shipped["guarantee"]
    assert escape(f"the rule automates {automated_text({**shipped, 'n': comparison.y.size})} test rows") in html
    assert escape(f"Guarantee: {shipped['guarantee']}") in html


def test_test_rows_the_adapter_saw_get_the_figures_again_on_the_rest_with_exact_intervals(backend, trained,
                                                                                         separable):
    # 10 of the adapter's own training rows among 40 fresh ones: the figures over all 50 are partly in-sample, so
    # compare states score's figures (raw accuracy; the adapter's own calibrated accuracy and set coverage) on the
    # 40 rows it never saw, each with n and its exact interval
    from confidently.bundle.bundle import read_bundle
    from confidently.data import Dataset
    from confidently.decision.binomial import clopper_pearson_interval
    from confidently.finetune.report import summary_markdown

    train, fresh = trained.splits.train, separable(40, seed=7)
    mixed = Dataset(texts=[*train.texts[:10], *fresh.texts], labels=[*train.labels[:10], *fresh.labels])
    result = compare(mixed, trained.path, backend=backend, progress=False, config=CompareConfig(n_resamples=50))
    assert result.seen_by_adapter["n_rows"] == 10 and result.seen_by_adapter["by_role"]["training"] == 10
    y, bundle = result.y[10:], read_bundle(trained.path)
    calibrated = bundle.calibrator.predict_proba(result.probs["fine-tuned"]["raw"][10:])
    sets = bundle.prediction_sets.predict_set(calibrated)
    expected = {"base": {"raw_accuracy": result.probs["base"]["raw"][10:].argmax(1) == y},
                "fine-tuned": {"raw_accuracy": result.probs["fine-tuned"]["raw"][10:].argmax(1) == y,
                               "calibrated_accuracy": calibrated.argmax(1) == y,
                               "set_coverage": sets[np.arange(y.size), y]}}
    for model, figures in expected.items():
        unseen = result.unseen[model]
        assert unseen["rows"] == 40 and set(unseen) == {"rows", *figures}
        for name, hits in figures.items():
            k = int(hits.sum())
            assert (unseen[name]["k"], unseen[name]["n"]) == (k, 40)
            assert (unseen[name]["low"], unseen[name]["high"]) == clopper_pearson_interval(k, 40)
    summary = summary_markdown(result, "t")
    assert "10 of 50 test rows have texts the adapter saw; on the 40 rows it never saw: base raw accuracy " in summary
    assert json.loads(json.dumps(result.to_dict()))["unseen_by_adapter"] == result.unseen


def test_no_figures_on_unseen_rows_when_the_adapter_saw_none_of_them(comparison, tmp_path):
    assert comparison.seen_by_adapter["n_rows"] == 0 and comparison.unseen is None
    assert "never saw" not in write_comparison(comparison, tmp_path / "run")["summary"].read_text()
