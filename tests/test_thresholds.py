"""Threshold analysis, the Clopper–Pearson certificate and the decision policy."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from confidently.errors import ArtifactError, DataError
from confidently.thresholds import (
    DecisionPolicy,
    analyse_thresholds,
    certify_threshold,
    clopper_pearson_lower,
    threshold_grid,
    threshold_table,
)

CONF = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
CORRECT = np.array([False, True, False, True, True, True])


def test_grid_is_050_to_099_with_exact_decimals():
    grid = threshold_grid()
    assert grid.size == 50 and grid[0] == 0.5 and grid[-1] == 0.99
    assert 0.7 in grid and 0.29 not in grid
    np.testing.assert_array_equal(threshold_grid(0.8, 0.9, 0.05), [0.8, 0.85, 0.9])


@pytest.mark.parametrize("k, n", [(1, 1), (5, 10), (95, 100), (100, 100), (970, 1000), (3, 7)])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_clopper_pearson_lower_bound_is_the_beta_quantile(k, n, level):
    expected = beta.ppf(1 - level, k, n - k + 1)
    assert clopper_pearson_lower(k, n, level) == pytest.approx(expected, rel=1e-10)


def test_clopper_pearson_edge_cases():
    assert clopper_pearson_lower(0, 10) == 0.0
    assert clopper_pearson_lower(20, 20) == pytest.approx(0.05 ** (1 / 20))  # closed form for k = n
    assert math.isnan(clopper_pearson_lower(0, 0))
    with pytest.raises(DataError):
        clopper_pearson_lower(5, 3)


def test_clopper_pearson_covers_at_least_its_level():
    rng = np.random.default_rng(0)
    true_p, n = 0.9, 60
    k = rng.binomial(n, true_p, 4000)
    assert np.mean(clopper_pearson_lower(k, np.full(k.shape, n)) <= true_p) >= 0.95


def test_counts_and_costs_by_hand():
    analysis = analyse_thresholds(CONF, CORRECT, thresholds=[0.5, 0.7, 0.9, 0.99], review_cost=1.0, error_cost=10.0)
    row = analysis.rows[1]  # t = 0.7 automates 0.7 (wrong), 0.8, 0.9, 0.95: confidence >= t is automated
    assert (row.threshold, row.n_automated, row.n_automated_errors, row.n_review) == (0.7, 4, 1, 2)
    assert row.coverage == pytest.approx(4 / 6) and row.accuracy == pytest.approx(0.75)
    assert row.cost == 1.0 * 2 + 10.0 * 1 and row.cost_per_item == pytest.approx(12 / 6)
    assert row.accuracy_lower_bound == pytest.approx(beta.ppf(0.05, 3, 2))
    last = analysis.rows[-1]
    assert last.n_automated == 0 and math.isnan(last.accuracy) and last.cost == 6.0
    # costs 22, 12, 4, 6 -> optimum at 0.9
    assert analysis.optimal.threshold == 0.9


def test_cost_optimum_matches_brute_force():
    rng = np.random.default_rng(4)
    conf = rng.uniform(0.5, 1.0, 500)
    correct = rng.random(500) < conf
    analysis = analyse_thresholds(conf, correct, review_cost=2.0, error_cost=7.0)
    brute = [2.0 * np.sum(conf < t) + 7.0 * np.sum((conf >= t) & ~correct) for t in threshold_grid()]
    np.testing.assert_allclose([row.cost for row in analysis.rows], brute)
    assert analysis.optimal.threshold == threshold_grid()[int(np.argmin(brute))]


def test_certified_threshold_is_the_lowest_whose_bound_meets_the_target():
    rng = np.random.default_rng(5)
    conf = rng.uniform(0.5, 1.0, 3000)
    correct = rng.random(3000) < conf
    certificate = certify_threshold(conf, correct, target_accuracy=0.9)
    brute = [
        t for t in threshold_grid()
        if np.sum(conf >= t) and clopper_pearson_lower(np.sum(correct[conf >= t]), np.sum(conf >= t)) >= 0.9
    ]
    assert certificate.certified and certificate.threshold == brute[0]
    assert certificate.coverage == pytest.approx(np.mean(conf >= brute[0]))
    assert certificate.accuracy_lower_bound >= 0.9
    assert "meets the target 90.0%" in certificate.reason


def test_no_certificate_when_no_threshold_qualifies():
    certificate = certify_threshold(CONF, CORRECT, target_accuracy=0.95)
    assert certificate.threshold is None and not certificate.certified
    assert certificate.coverage == 0.0 and certificate.n_automated == 0
    assert "no threshold from 0.50 to 0.99 certifies 95.0% accuracy; the best 95% lower bound" in certificate.reason
    json.dumps(certificate.to_dict(), allow_nan=False)


def test_threshold_table_is_a_dataframe_with_one_row_per_threshold():
    table = threshold_table(CONF, CORRECT)
    assert isinstance(table, pd.DataFrame) and len(table) == 50
    assert {"threshold", "n_automated", "coverage", "accuracy", "n_review", "cost", "cost_per_item"} <= set(table)
    json.dumps(analyse_thresholds(CONF, CORRECT).to_dict(), allow_nan=False)


def test_analysis_refuses_bad_arguments():
    with pytest.raises(DataError, match="error_cost must be a finite number >= 0"):
        analyse_thresholds(CONF, CORRECT, error_cost=-1)
    with pytest.raises(DataError, match="strictly increasing"):
        analyse_thresholds(CONF, CORRECT, thresholds=[0.9, 0.8])
    with pytest.raises(DataError, match="confidence must hold probabilities"):
        analyse_thresholds([0.5, 1.5], [True, False])


def test_policy_decides_and_round_trips(tmp_path):
    rng = np.random.default_rng(5)
    conf = rng.uniform(0.5, 1.0, 3000)
    correct = rng.random(3000) < conf
    analysis = analyse_thresholds(conf, correct, target_accuracy=0.9)
    policy = DecisionPolicy.from_certificate(analysis.certified)
    assert policy.certified and policy.target_accuracy == 0.9 and "Clopper-Pearson" in policy.method
    t = policy.threshold
    np.testing.assert_array_equal(policy.decide([t - 0.01, t, 1.0]), ["review", "automate", "automate"])
    policy.save(tmp_path / "policy.json")
    assert DecisionPolicy.load(tmp_path / "policy.json") == policy
    assert DecisionPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
    cost_policy = DecisionPolicy.from_cost(analysis)
    assert not cost_policy.certified and cost_policy.threshold == analysis.optimal.threshold


def test_policy_without_a_threshold_reviews_everything():
    policy = DecisionPolicy.from_certificate(certify_threshold(CONF, CORRECT))
    assert policy.threshold is None and not policy.certified
    np.testing.assert_array_equal(policy.decide([0.5, 1.0]), ["review", "review"])


def test_malformed_policies_are_refused(tmp_path):
    good = DecisionPolicy(0.9, 0.95, True, "test").to_dict()
    with pytest.raises(ArtifactError, match="threshold must be a number in \\[0, 1\\]"):
        DecisionPolicy.from_dict({**good, "threshold": 1.5})
    with pytest.raises(ArtifactError, match="not a confidently decision policy"):
        DecisionPolicy.from_dict({"threshold": 0.9})
    with pytest.raises(ArtifactError, match="malformed"):
        DecisionPolicy.from_dict({key: v for key, v in good.items() if key != "method"})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="bad.json: not a readable JSON file"):
        DecisionPolicy.load(tmp_path / "bad.json")
