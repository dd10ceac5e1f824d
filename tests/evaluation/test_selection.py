"""Choosing the method to ship: by cross-fitted log-loss (the default) or by certified coverage at delta/M."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from confidently.cli.app import app
from confidently.data import generate_sentiment, save_dataset, stratified_sample
from confidently.decision.policy import DecisionPolicy
from confidently.decision.selection import per_method_level, select_method
from confidently.decision.thresholds import certify_threshold
from confidently.errors import ConfigError
from confidently.workflows.evaluation import EvaluationConfig, evaluate_scores

METHODS = ("platt", "isotonic", "temperature", "beta")


def overconfident_with_confident_errors(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes, log-odds 2.5x overconfident, and 15% of the most confident answers flipped (wrong)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    z = 2.5 * rng.normal((2 * y - 1) * 1.5, 1.0)
    z = np.where((np.abs(z) > 7) & (rng.random(n) < 0.15), -z, z)
    p = 1 / (1 + np.exp(-z))
    return np.column_stack([1 - p, p]), y


def study(select_by: str, **overrides):
    cal, y_cal = overconfident_with_confident_errors(2, 400)
    test, y_test = overconfident_with_confident_errors(102, 400)
    config = EvaluationConfig(methods=METHODS, budget_sizes=(), budget_repeats=1, n_resamples=20,
                              target_accuracy=0.9, select_by=select_by, **overrides)
    return evaluate_scores(cal, y_cal, test, y_test, labels=("negative", "positive"), config=config)


def test_coverage_ships_the_method_certifying_most_at_delta_over_m_where_log_loss_ships_another():
    by_loss, by_coverage = study("log-loss"), study("coverage")
    level = 1 - 0.05 / len(METHODS)
    cal_y = by_coverage.y_calibration
    # each candidate's certificate recomputed here from its out-of-fold scores, at delta/M
    coverage = {name: certify_threshold(by_coverage.methods[name].crossfit_probs.max(1),
                                        by_coverage.methods[name].crossfit_probs.argmax(1) == cal_y,
                                        target_accuracy=0.9, level=level).coverage for name in METHODS}
    assert by_coverage.best == max(METHODS, key=coverage.get)
    # the constructed scores make the rules disagree: the log-loss winner certifies less at delta/M
    assert by_loss.best != by_coverage.best and coverage[by_loss.best] < coverage[by_coverage.best]
    nll = {name: by_loss.methods[name].crossfit["metrics"]["nll"]["value"] for name in METHODS}
    assert by_loss.best == min(METHODS, key=nll.get)
    for name in METHODS:
        assert by_coverage.methods[name].chosen.certified.level == pytest.approx(level)
    assert by_coverage.methods["raw"].chosen.certified.level == 0.95  # raw is no candidate: certified at delta


def test_the_shipped_policy_is_the_winners_certificate_at_delta_over_m():
    evaluation = study("coverage")
    winner = evaluation.methods[evaluation.best]
    certificate = certify_threshold(winner.crossfit_probs.max(1), winner.crossfit_probs.argmax(1) == evaluation.y_calibration,
                                    target_accuracy=0.9, level=1 - 0.05 / len(METHODS))
    assert certificate.certified and evaluation.policy.threshold == certificate.threshold
    # after the choice the guarantee holds at 1 - delta (the union bound), which the policy states
    assert evaluation.policy.level == 0.95 and "with probability >= 95%" in evaluation.policy.guarantee
    assert "M = 4" in evaluation.policy.method and "0.9875" in evaluation.policy.method
    # the test-split figures apply that threshold
    automated = winner.test_probs.max(1) >= certificate.threshold
    assert evaluation.policy_on_test["n_automated"] == int(automated.sum())
    # the manifest/metrics texts state the rule, M and the per-method level
    selection = evaluation.to_dict()["headline"]["selection"]
    assert selection["rule"] == "coverage" and selection["n_candidates"] == 4
    assert selection["level_per_method"] == pytest.approx(0.9875) and selection["chosen"] == evaluation.best
    assert "delta/M" in evaluation.to_dict()["selection"]
    json.dumps(evaluation.to_dict())  # metrics.json stays JSON


def test_the_label_budget_certifies_at_the_shipped_level():
    # the full-size budget row repeats the study's cross-fitting exactly, so its threshold is the policy's
    evaluation = study("coverage", budget_methods=METHODS)
    full = evaluation.budget[(evaluation.budget["calibrator"] == evaluation.best)
                             & (evaluation.budget["n_labels"] == evaluation.y_calibration.size)]
    assert list(full["threshold"]) == [evaluation.policy.threshold]
    assert "level 0.9875" in evaluation.to_dict()["label_budget"]["how"]


def test_log_loss_stays_the_default_and_unchanged():
    assert EvaluationConfig().select_by == "log-loss"
    evaluation = study("log-loss")
    chosen = evaluation.methods[evaluation.best].chosen.certified
    assert chosen.level == 0.95 and evaluation.policy == DecisionPolicy.from_certificate(chosen)
    assert evaluation.selection.level_per_method == 0.95


def test_ties_in_coverage_go_to_the_lower_log_loss_and_uncertified_counts_as_nothing():
    y = np.arange(400) % 2
    strong = certify_threshold(np.full(400, 0.99), np.ones(400, bool), target_accuracy=0.9)
    none = certify_threshold(np.full(400, 0.99), y == 0, target_accuracy=0.9)
    assert strong.coverage == 1.0 and not none.certified
    assert select_method("coverage", {"a": 0.3, "b": 0.2}, {"a": strong, "b": strong}) == "b"
    assert select_method("coverage", {"a": 0.3, "b": 0.2}, {"a": strong, "b": none}) == "a"
    assert select_method("coverage", {"a": 0.3, "b": 0.2}, {"a": none, "b": none}) == "b"
    assert select_method("log-loss", {"a": 0.3, "b": 0.2}, {"a": strong, "b": none}) == "b"
    assert per_method_level("coverage", 0.95, 5) == pytest.approx(0.99)
    assert per_method_level("log-loss", 0.95, 5) == 0.95


def test_bad_rules_and_combinations_are_refused():
    with pytest.raises(ConfigError, match="select_by must be one of log-loss, coverage"):
        EvaluationConfig(select_by="ece")
    with pytest.raises(ConfigError, match="no threshold decides"):
        EvaluationConfig(select_by="coverage", decision_rule="prediction_set")


def test_cli_select_by_coverage_end_to_end(tiny_model_dir, tmp_path):
    data = tmp_path / "data.jsonl"
    save_dataset(stratified_sample(generate_sentiment(400, seed=3), 120, seed=3), data)
    result = CliRunner().invoke(app, ["evaluate", "--data", str(data), "--model", str(tiny_model_dir), "--dtype",
                                      "float32", "--methods", "platt,temperature,isotonic", "--select-by", "coverage",
                                      "--budget-repeats", "1", "--out", str(tmp_path / "run")], terminal_width=200)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["selection"]["rule"] == "coverage" and manifest["selection"]["n_candidates"] == 3
    assert manifest["selection"]["level_per_method"] == pytest.approx(1 - 0.05 / 3)
    policy = DecisionPolicy.load(tmp_path / "run" / "policy.json")
    assert policy.level == 0.95 and "M = 3" in policy.method
    assert "M = 3" in (tmp_path / "run" / "summary.md").read_text()
    assert "chosen among M = 3 methods" in " ".join(result.output.split())


@pytest.mark.parametrize("extra, expected", [(["--select-by", "ece"], "--select-by"),
                                             (["--select-by", "coverage", "--decision-rule", "prediction_set"],
                                              "no threshold decides")])
def test_cli_bad_select_by_is_one_line_and_exit_2(tmp_path, extra, expected):
    import subprocess

    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "fine", "label": "positive"}\n')
    executable = Path(sys.executable).with_name("confidently")
    result = subprocess.run([str(executable), "evaluate", "--data", str(data), "--model", "no-such-model",
                             "--out", str(tmp_path / "run"), *extra], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr and "no-such-model" not in result.stderr
