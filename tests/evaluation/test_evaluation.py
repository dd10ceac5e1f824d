"""The calibration study on synthetic scores with a known miscalibration."""

import dataclasses
from html import escape
import json
import warnings

import numpy as np
import pytest

from confidently.calibration import cross_fit_predict
from confidently.decision.conformal import ConformalPredictor
from confidently.workflows.evaluation import EvaluationConfig, evaluate_scores
from confidently.report.evaluation import write_evaluation
from confidently.decision.thresholds import analyse_thresholds, certify_threshold

FAST = EvaluationConfig(budget_sizes=(50, 200), budget_repeats=3, n_resamples=200)
DOMAINS = ("sports", "work")


def miscalibrated(n, seed):
    rng = np.random.default_rng(seed)
    logit = rng.normal(0, 2.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    p = 1 / (1 + np.exp(-(3 * logit - 1)))  # overconfident and biased
    return np.stack([1 - p, p], axis=1), y


def domains(n, seed):
    return np.random.default_rng(seed + 100).choice(DOMAINS, n)


@pytest.fixture(scope="module")
def evaluation():
    cal, y_cal = miscalibrated(800, 0)
    test, y_test = miscalibrated(600, 1)
    return evaluate_scores(cal, y_cal, test, y_test, labels=("negative", "positive"),
                           content_free=np.array([[0.62, 0.38], [0.58, 0.42]]),
                           groups=(domains(800, 0), domains(600, 1)), test_slices={"domain": domains(600, 1)},
                           config=dataclasses.replace(FAST, conformal_by="domain"))


def test_calibration_reduces_held_out_ece(evaluation):
    raw = evaluation.methods["raw"].test["metrics"]["ece"]["value"]
    for name in ("platt", "temperature", "beta"):
        assert evaluation.methods[name].test["metrics"]["ece"]["value"] < raw / 2


def test_crossfit_scores_are_out_of_fold(evaluation):
    # In-sample calibrated scores of the saved calibrator differ from the out-of-fold ones we report.
    platt = evaluation.methods["platt"]
    cal, y_cal = miscalibrated(800, 0)
    in_sample = platt.calibrator.predict_proba(cal)
    assert np.abs(in_sample - platt.crossfit_probs).max() > 1e-4


def test_choice_uses_calibration_data_only(evaluation):
    best = evaluation.best
    crossfit = {name: r.crossfit["metrics"]["nll"]["value"] for name, r in evaluation.methods.items()
                if name != "raw"}
    assert best == min(crossfit, key=crossfit.get)


def test_label_free_methods_use_their_own_inputs(evaluation):
    contextual = evaluation.methods["contextual"].calibrator.bias_
    batch = evaluation.methods["batch"].calibrator.bias_
    np.testing.assert_allclose(contextual, [0.6, 0.4])
    assert np.abs(batch - contextual).max() > 0.01


def test_policy_is_certified_on_calibration_then_applied_to_test(evaluation):
    policy, on_test = evaluation.policy, evaluation.policy_on_test
    best = evaluation.methods[evaluation.best]
    _, y_cal = miscalibrated(800, 0)
    on_calibration = certify_threshold(best.crossfit_probs.max(1), best.crossfit_probs.argmax(1) == y_cal)
    assert policy.certified and policy.threshold == on_calibration.threshold
    assert on_test["n_automated"] == int((best.test_probs.max(1) >= policy.threshold).sum())
    assert policy.guarantee.startswith("with probability >= 95% over the calibration sample, the accuracy")


def test_no_threshold_is_chosen_on_the_test_split(evaluation, tmp_path):
    _, y_cal = miscalibrated(800, 0)
    _, y_test = miscalibrated(600, 1)
    for result in evaluation.methods.values():
        # every chosen threshold comes from the calibration split's cross-fitted scores
        again = analyse_thresholds(result.crossfit_probs.max(1), result.crossfit_probs.argmax(1) == y_cal)
        assert result.chosen.certified == again.certified and result.chosen.optimal == again.optimal
        assert not hasattr(result.on_test, "certified")  # the test split is measured, nothing chosen
        assert result.on_test.n == y_test.size
    metrics = json.loads(write_evaluation(evaluation, tmp_path, title="t", metadata={})["metrics"].read_text())
    assert "thresholds_on_test_split" not in json.dumps(metrics)
    thresholds = metrics["methods"][evaluation.best]["thresholds"]
    assert thresholds["chosen_on_calibration_split"]["certified"]["threshold"] == evaluation.policy.threshold
    assert "certified" not in thresholds["measured_on_test_split"]


def test_cost_projection_is_the_policy_on_the_test_split(evaluation):
    best = evaluation.methods[evaluation.best]
    _, y_test = miscalibrated(600, 1)
    automate = best.test_probs.max(1) >= evaluation.policy.threshold
    wrong = automate & (best.test_probs.argmax(1) != y_test)
    projection = evaluation.projection
    assert projection.automated[0] == pytest.approx(10_000 * automate.mean())
    assert projection.errors[0] == pytest.approx(10_000 * wrong.mean())
    assert projection.review_hours[0] == pytest.approx(10_000 * (~automate).mean() * 2.0 / 60)
    assert projection.errors[1] <= projection.errors[0] <= projection.errors[2]


def test_prediction_sets_are_fitted_on_calibration_and_measured_on_test(evaluation):
    best = evaluation.methods[evaluation.best]
    _, y_cal = miscalibrated(800, 0)
    _, y_test = miscalibrated(600, 1)
    sets = evaluation.sets
    assert set(sets.predictors) == {"lac", "aps", "lac by class", "aps by class", "lac by domain", "aps by domain"}
    assert sets.shipped == "lac by domain"
    again = ConformalPredictor(0.1, condition_on="group", group_column="domain").fit(
        best.crossfit_probs, y_cal, groups=domains(800, 0))
    predicted = again.predict_set(best.test_probs, groups=domains(600, 1))
    table = sets.coverage["lac by domain"].set_index("part")
    assert table.loc["all", "coverage"] == pytest.approx(predicted[np.arange(600), y_test].mean())
    assert set(table.index) == {"all", "class=negative", "class=positive", "domain=sports", "domain=work"}
    for name, coverage in sets.coverage.items():  # 600 test rows: within sampling error of 90%
        assert coverage.set_index("part").loc["all", "coverage_high"] >= 0.9, name


def test_label_budget_certifies_on_the_subset_and_measures_on_test(evaluation):
    budget = evaluation.budget
    assert sorted(set(budget["n_labels"])) == [50, 200, 800]
    assert set(budget["calibrator"]) == set(FAST.budget_methods)
    assert budget.loc[budget["n_labels"] == 50, "threshold"].isna().all()  # 50 < the 93 automated needed
    cal, y_cal = miscalibrated(800, 0)
    test, y_test = miscalibrated(600, 1)
    whole = budget[(budget["n_labels"] == 800) & (budget["calibrator"] == "platt")].iloc[0]
    out_of_fold = cross_fit_predict("platt", cal, y_cal, n_splits=5, seed=FAST.seed)
    threshold = certify_threshold(out_of_fold.max(1), out_of_fold.argmax(1) == y_cal).threshold
    assert whole["threshold"] == threshold == evaluation.methods["platt"].chosen.certified.threshold
    platt_test = evaluation.methods["platt"].test_probs
    assert whole["coverage"] == pytest.approx(np.mean(platt_test.max(1) >= threshold))


def test_small_samples_get_plain_notes_not_warnings():
    cal, y_cal = miscalibrated(120, 4)
    test, y_test = miscalibrated(90, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning escaping the study fails the test
        small = evaluate_scores(cal, y_cal, test, y_test, labels=("negative", "positive"),
                                config=dataclasses.replace(FAST, methods=("platt", "isotonic"), budget_sizes=(50,),
                                                           n_resamples=50))
    notes = " ".join(small.notes)
    assert "The calibration split has only 120 rows" in notes and "The test split has only 90 rows" in notes
    assert "isotonic: isotonic calibration fitted on 120 examples" in notes


def test_written_files_agree(evaluation, tmp_path):
    paths = write_evaluation(evaluation, tmp_path, title="t", metadata={"model": "synthetic"})
    metrics = json.loads(paths["metrics"].read_text())
    assert "conformal" not in paths  # the prediction sets travel in the bundle (run_evaluate), not beside it
    shipped = metrics["prediction_sets"]["sets"]["lac by domain"]["predictor"]
    assert ConformalPredictor.from_dict(shipped).quantiles_ == evaluation.sets.predictors["lac by domain"].quantiles_
    report = paths["report"].read_text()
    assert evaluation.policy.guarantee.replace(">=", "&gt;=") in report
    assert f"{evaluation.projection.automated[0]:,.0f}" in report
    ece = metrics["methods"]["platt"]["test_split"]["metrics"]["ece"]["value"]
    assert ece == pytest.approx(evaluation.methods["platt"].test["metrics"]["ece"]["value"])
    assert f"{ece:.4f}" in paths["report"].read_text() and f"{ece:.4f}" in paths["summary"].read_text()
    from confidently.calibration import load_calibrator

    saved = load_calibrator(tmp_path / "calibrators" / f"{evaluation.best}.json")  # the bundle's is run_evaluate's
    np.testing.assert_allclose(saved.predict_proba(miscalibrated(50, 3)[0]),
                               evaluation.methods[evaluation.best].calibrator.predict_proba(miscalibrated(50, 3)[0]))


def test_summary_table_columns_match_their_values_for_a_binary_task(evaluation, tmp_path):
    """A binary task has no classwise ECE: the summary's header must not name it, or every later value sits
    under the wrong metric (AURC's column was left empty)."""
    summary = write_evaluation(evaluation, tmp_path, title="t", metadata={})["summary"].read_text()
    table = [line for line in summary.splitlines() if line.startswith("| ")]
    header, rows = table[0].strip("| ").split(" | "), [line.strip("| ").split(" | ") for line in table[1:]]
    assert "classwise ECE (20 equal-width)" not in header
    assert all(len(row) == len(header) for row in rows)
    platt = next(row for row in rows if row[0] == "platt")
    aurc = evaluation.methods["platt"].test["metrics"]["aurc"]["value"]
    assert platt[header.index("AURC")].startswith(f"{aurc:.4f}")
    assert "95% bootstrap interval" in summary and "bias-corrected" in summary


def test_three_classes_get_classwise_calibration_in_the_report(tmp_path):
    from scipy.special import softmax

    def confused(n, seed):
        # True probabilities: softmax of 0.5 ln p, with class 0's score also speaking for class 1.
        rng = np.random.default_rng(seed)
        raw = softmax(rng.normal(0.0, 2.0, (n, 3)), axis=1)
        true = softmax(np.log(raw) @ np.array([[0.5, 0, 0], [0.4, 0.5, 0], [0, 0, 0.5]]).T, axis=1)
        return raw, np.minimum((rng.random(n)[:, None] > np.cumsum(true, axis=1)).sum(axis=1), 2)

    cal, y_cal = confused(600, 0)
    test, y_test = confused(600, 1)
    config = EvaluationConfig(methods=("temperature", "isotonic", "dirichlet"), budget_sizes=(100,),
                              budget_repeats=2, n_resamples=200)
    result = evaluate_scores(cal, y_cal, test, y_test, labels=("a", "b", "c"), config=config)
    classwise = {name: r.test["metrics"]["classwise_ece"]["value"] for name, r in result.methods.items()}
    assert classwise["dirichlet"] < classwise["raw"] / 2
    assert len(result.methods["dirichlet"].test["reliability_by_class"]) == 3
    paths = write_evaluation(result, tmp_path, title="three", metadata={})
    report = paths["report"].read_text()
    assert "Calibration of every class" in report and "per-class reliability on the test split" in report
    assert f"{classwise['dirichlet']:.4f}" in report


def test_a_certified_threshold_that_automates_no_test_row_is_reported_not_a_crash(tmp_path):
    """Every test row cut to fit (so reviewed): the threshold certified on calibration rows automates none of
    them, and the report, summary and command line say so instead of formatting a missing accuracy."""
    from types import SimpleNamespace

    from confidently.cli.evaluate import _print_headline

    rng = np.random.default_rng(0)
    y_cal, y_test = rng.integers(0, 2, 600), rng.integers(0, 2, 50)
    confident = lambda y: np.where(np.arange(2)[None, :] == y[:, None], 0.98, 0.02)  # noqa: E731
    config = EvaluationConfig(methods=("platt",), budget_sizes=(300,), budget_repeats=1, n_resamples=20)
    result = evaluate_scores(confident(y_cal), y_cal, confident(y_test), y_test, labels=("negative", "positive"),
                             truncated=(np.zeros(600, bool), np.ones(50, bool)), config=config)
    assert result.policy.threshold is not None and result.policy_on_test["n_automated"] == 0
    paths = write_evaluation(result, tmp_path, title="t", metadata={})
    assert "automated 0 of 50 (0.0%), so there is no accuracy to measure" in paths["summary"].read_text()
    assert "automates 0 of 50 (0.0%)" in paths["report"].read_text()
    _print_headline(SimpleNamespace(evaluation=result, paths={"report": paths["report"],
                                                              "bundle": tmp_path / "manifest.json"}, scores=None), 0.0)


def test_what_the_policy_automated_on_test_carries_its_exact_interval():
    from confidently.report.evaluation import automated_text

    text = automated_text({"n_automated": 40, "n": 100, "coverage": 0.4, "accuracy_automated": 0.95})
    assert text.startswith("40 of 100 (40.0%) at accuracy 95.0% (38/40, exact 95% CI ")  # 38 of 40 right
    low, high = (float(v.rstrip("%")) for v in text.split("CI ")[1].rstrip(")").split("–"))
    assert 83.0 < low < 84.0 and 99.0 < high < 99.5


def test_the_cost_view_projects_the_rule_the_bundle_decides_by(tmp_path):
    cal, y_cal = miscalibrated(800, 0)
    test, y_test = miscalibrated(600, 1)
    config = dataclasses.replace(FAST, methods=("platt",), budget_sizes=(200,), budget_repeats=1)
    by_threshold = evaluate_scores(cal, y_cal, test, y_test, labels=("negative", "positive"), config=config)
    by_sets = evaluate_scores(cal, y_cal, test, y_test, labels=("negative", "positive"),
                              config=dataclasses.replace(config, decision_rule="prediction_set"))
    per_row = by_threshold.projection.volume / y_test.size
    assert by_threshold.projection.automated[0] == pytest.approx(per_row * by_threshold.policy_on_test["n_automated"])
    assert by_sets.sets.rule_on_test["n_automated"] != by_sets.policy_on_test["n_automated"]
    assert by_sets.projection.automated[0] == pytest.approx(per_row * by_sets.sets.rule_on_test["n_automated"])
    assert by_sets.headline()["projection"]["decided_by"] == "prediction_set"
    summary = write_evaluation(by_sets, tmp_path, title="t", metadata={})["summary"].read_text()
    assert "the bundle's rule (its prediction sets, automating single-label ones) automates" in summary
    shipped = by_sets.sets.predictors[by_sets.sets.shipped]
    assert (f"The bundle decides by its prediction sets, automating single-label ones; an automate decision "
            f"promises: {shipped.decision_guarantee}.") in " ".join(summary.split())
    html = write_evaluation(by_threshold, tmp_path / "t", title="t", metadata={})["report"].read_text()
    assert escape(f"The bundle decides by its certified threshold; an automate decision promises: "
                  f"{by_threshold.policy.guarantee}.") in " ".join(html.split())


def test_the_command_line_gives_set_coverage_and_the_set_rule_with_n_and_interval(evaluation, tmp_path, capsys):
    from types import SimpleNamespace

    from confidently.cli.evaluate import _print_headline
    from confidently.report.evaluation import automated_text

    paths = write_evaluation(evaluation, tmp_path, title="t", metadata={})
    _print_headline(SimpleNamespace(evaluation=evaluation, paths={"report": paths["report"],
                                                                  "bundle": tmp_path / "manifest.json"}, scores=None), 0.0)
    said = " ".join(capsys.readouterr().out.split())
    shipped = evaluation.sets.coverage[evaluation.sets.shipped].set_index("part").loc["all"]
    covered = round(shipped["coverage"] * 600)
    assert (f"{shipped['coverage']:.1%} ({covered}/600, exact 95% CI {shipped['coverage_low']:.1%}–"
            f"{shipped['coverage_high']:.1%}) of the test rows covered") in said
    assert f"set rule (automate single-label sets): automates {automated_text(evaluation.sets.rule_on_test)}" in said
    assert f"the bundle decides by: threshold; an automate decision promises: {evaluation.policy.guarantee}" in said
