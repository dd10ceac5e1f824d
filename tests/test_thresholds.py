"""Threshold analysis, the Clopper–Pearson certificate and the decision policy."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta, binom

from confidently.errors import ArtifactError, DataError
from confidently.decision.binomial import binomial_p_value, clopper_pearson_lower, min_automated_for
from confidently.decision.policy import DecisionPolicy
from confidently.decision.thresholds import analyse_thresholds, certify_threshold, threshold_grid, threshold_table

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


def test_p_value_is_the_binomial_tail_and_agrees_with_the_clopper_pearson_bound():
    assert binomial_p_value(2, 100, 0.95) == pytest.approx(binom.cdf(2, 100, 0.05))
    assert math.isnan(binomial_p_value(0, 0, 0.95))
    errors = np.arange(0, 40)
    p = binomial_p_value(errors, 300, 0.9)
    lower = clopper_pearson_lower(300 - errors, 300, 0.95)
    np.testing.assert_array_equal(p <= 0.05, lower >= 0.9)  # the same decision, two ways of writing it


def test_min_automated_is_the_smallest_count_that_can_afford_one_error():
    m = min_automated_for(0.95, 0.95)
    assert binom.cdf(1, m, 0.05) <= 0.05 < binom.cdf(1, m - 1, 0.05)
    assert m == 93
    assert min_automated_for(0.9, 0.95) < m < min_automated_for(0.95, 0.99)


def test_certified_threshold_follows_the_fixed_sequence_from_the_strictest_down():
    rng = np.random.default_rng(5)
    conf = rng.uniform(0.5, 1.0, 3000)
    correct = rng.random(3000) < conf
    certificate = certify_threshold(conf, correct, target_accuracy=0.9, procedure="fixed-sequence")
    chosen = None
    for t in threshold_grid()[::-1]:  # by hand: skip thin thresholds, stop at the first p > 0.05
        automated = conf >= t
        if automated.sum() < min_automated_for(0.9, 0.95):
            continue
        if binom.cdf(np.sum(automated & ~correct), automated.sum(), 0.1) > 0.05:
            break
        chosen = t
    assert certificate.certified and certificate.threshold == chosen
    assert certificate.coverage == pytest.approx(np.mean(conf >= chosen))
    assert certificate.accuracy_lower_bound >= 0.9 and certificate.p_value <= 0.05
    assert "testing stopped at" in certificate.reason
    assert certificate.guarantee == ("with probability >= 95% over the calibration sample, the accuracy of automated "
                                     "predictions is >= 90% (on new data drawn like the calibration data)")


def test_the_sequence_stops_at_the_first_failure_even_if_a_lower_threshold_would_pass():
    # 0.99 automates 100 with 0 errors (passes); 0.98 adds 20 with 5 errors (fails); 0.97 adds 2,000
    # right ones, which would pass on its own, but the sequence never gets there.
    conf = np.concatenate([np.full(100, 0.995), np.full(20, 0.985), np.full(2000, 0.975)])
    correct = np.concatenate([np.ones(100), np.r_[np.zeros(5), np.ones(15)], np.ones(2000)]).astype(bool)
    analysis = analyse_thresholds(conf, correct, thresholds=[0.97, 0.98, 0.99], target_accuracy=0.95,
                                  procedure="fixed-sequence")
    assert analysis.rows[0].p_value <= 0.05  # 0.97 alone would be certified
    certificate = analysis.certified
    assert certificate.threshold == 0.99 and certificate.n_tested == 2 and certificate.procedure == "fixed-sequence"
    assert "testing stopped at 0.98: 120 automated, 5 wrong" in certificate.reason


def test_the_fallback_goes_on_after_a_failure():
    # 0.99 automates 100, all right; 0.98 adds 30 with 6 errors; 0.97 adds 2,000 right ones. The fallback gives a
    # quarter of delta to 0.98 (the strictest with the 125 predictions needed for one error at 0.0125) and
    # three quarters to 0.97 (the strictest automating a quarter of the 2,130 rows): 0.98 fails, 0.97 passes.
    conf = np.concatenate([np.full(100, 0.995), np.full(30, 0.985), np.full(2000, 0.975)])
    correct = np.concatenate([np.ones(100), np.r_[np.zeros(6), np.ones(24)], np.ones(2000)]).astype(bool)
    certificate = certify_threshold(conf, correct, thresholds=[0.97, 0.98, 0.99], target_accuracy=0.95)
    assert certificate.procedure == "fallback" and certificate.threshold == 0.97 and certificate.n_tested == 2
    assert certificate.min_automated == min_automated_for(0.95, 1 - 0.25 * 0.05) == 125
    assert certificate.reason.endswith(
        "fallback testing from the strictest threshold down, 25% of 0.05 from 0.98 (the strictest threshold "
        "automating >= 125); 75% of 0.05 from 0.97 (the strictest threshold automating >= 533); testing stopped "
        "at 0.98: 130 automated, 6 wrong, p = 0.525 > 0.0125")
    assert "(p = 1.03e-38 <= 0.0375;" in certificate.reason  # the level 0.97 was tested at
    fixed = certify_threshold(conf, correct, thresholds=[0.97, 0.98, 0.99], target_accuracy=0.95,
                              procedure="fixed-sequence")
    assert fixed.threshold == 0.99  # the fixed sequence stops at 0.98


def test_the_fallback_passes_a_rejected_level_on():
    # 210 rows: a quarter of them (53) is fewer than the 125 the strict start needs, so both starts enter at
    # 0.99 (200 right, rejected at the whole 0.05), which passes 0.05 on to 0.98 (210 with 4 wrong, p = 0.0189)
    conf = np.concatenate([np.full(200, 0.995), np.full(10, 0.985)])
    correct = np.concatenate([np.ones(200), np.r_[np.zeros(4), np.ones(6)]]).astype(bool)
    certificate = certify_threshold(conf, correct, thresholds=[0.98, 0.99], target_accuracy=0.95)
    assert certificate.threshold == 0.98 and certificate.n_tested == 2
    assert "(p = 0.0189 <= 0.05;" in certificate.reason and certificate.reason.endswith("every tested threshold was rejected")
    # the fixed sequence from the same start does the same; the fallback only differs after a failure
    assert certify_threshold(conf, correct, thresholds=[0.98, 0.99], target_accuracy=0.95, min_automated=125,
                             procedure="fixed-sequence").threshold == 0.98


def test_an_unknown_procedure_is_refused():
    with pytest.raises(DataError, match="procedure must be one of fallback, fixed-sequence; got 'bonferroni'"):
        certify_threshold(CONF, CORRECT, procedure="bonferroni")


def test_no_certificate_when_no_threshold_qualifies():
    certificate = certify_threshold(CONF, CORRECT, target_accuracy=0.95, procedure="fixed-sequence")
    assert certificate.threshold is None and not certificate.certified
    assert certificate.coverage == 0.0 and certificate.n_automated == 0 and certificate.n_tested == 0
    assert certificate.reason == ("no threshold certifies 95.0% accuracy (no threshold automates the minimum 93 "
                                  "predictions needed to test it); label more data or lower the target")
    assert "every prediction goes to review" in certificate.guarantee
    json.dumps(certificate.to_dict(), allow_nan=False)
    failed = certify_threshold(CONF, CORRECT, target_accuracy=0.95, min_automated=1, procedure="fixed-sequence")
    assert not failed.certified and failed.n_tested == 1
    assert "testing stopped at 0.95: 1 automated, 0 wrong, p = 0.95 > 0.05" in failed.reason


# -- the guarantee, by simulation -----------------------------------------------------------------
# 2,000 calibration sets of 1,000 predictions from a known distribution; a run fails when the
# certified threshold's true accuracy (known in closed form) is below the 95% target. Learn-Then-Test
# must fail in at most delta = 5% of runs, plus three Monte-Carlo standard errors.
RUNS, ROWS = 2000, 1000
ALLOWED = 0.05 + 3 * math.sqrt(0.05 * 0.95 / RUNS)


def _failure_rates(draw, true_accuracy, seed):
    rng = np.random.default_rng(seed)
    ltt = old = certified = 0
    for _ in range(RUNS):
        conf, correct = draw(rng)
        analysis = analyse_thresholds(conf, correct, target_accuracy=0.95, level=0.95)
        if analysis.certified.certified:
            certified += 1
            ltt += true_accuracy(analysis.certified.threshold) < 0.95
        # the previous rule: the lowest threshold whose Clopper-Pearson bound passes, after seeing all
        lowest = next((row.threshold for row in analysis.rows if row.accuracy_lower_bound >= 0.95), None)
        old += lowest is not None and true_accuracy(lowest) < 0.95
    return ltt / RUNS, old / RUNS, certified / RUNS


def test_simulation_ltt_holds_where_the_lowest_passing_threshold_rule_fails():
    # a model 94.9% right at every confidence: nothing may be certified at 95%
    ltt, old, _ = _failure_rates(lambda rng: (rng.uniform(0.5, 1.0, ROWS), rng.random(ROWS) < 0.949),
                                 lambda t: 0.949, seed=11)
    assert ltt <= ALLOWED
    assert old > ALLOWED + 0.03  # the old rule fails about three times as often as it promised


def test_simulation_ltt_holds_and_certifies_on_a_calibrated_model():
    # confidence 0.5 + 0.5 * Beta(5, 1), each prediction right with probability equal to its confidence;
    # accuracy above t is 0.5 + 0.5 * E[S | S >= u], u = 2t - 1, with E[S | S >= u] = 5/6 (1 - u^6) / (1 - u^5)
    def draw(rng):
        conf = 0.5 + 0.5 * rng.beta(5.0, 1.0, ROWS)
        return conf, rng.random(ROWS) < conf

    def true_accuracy(t):
        u = 2 * t - 1
        return 0.5 + 0.5 * (5 / 6) * (1 - u ** 6) / (1 - u ** 5)

    ltt, _, certified = _failure_rates(draw, true_accuracy, seed=12)
    assert ltt <= ALLOWED
    assert certified > 0.9  # it is not safe by never certifying


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
    assert "Learn-Then-Test" in policy.method and policy.level == 0.95
    assert policy.procedure == "fallback" and "fallback testing (Wiens 2003)" in policy.method
    assert policy.to_dict()["procedure"] == "fallback"
    assert policy.guarantee == analysis.certified.guarantee
    assert json.loads(json.dumps(policy.to_dict()))["guarantee"] == policy.guarantee  # stated in the file
    t = policy.threshold
    np.testing.assert_array_equal(policy.decide([t - 0.01, t, 1.0]), ["review", "automate", "automate"])
    policy.save(tmp_path / "policy.json")
    assert DecisionPolicy.load(tmp_path / "policy.json") == policy
    assert DecisionPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
    cost_policy = DecisionPolicy.from_cost(analysis)
    assert not cost_policy.certified and cost_policy.threshold == analysis.optimal.threshold
    assert cost_policy.guarantee == (f"not certified: automates at confidence >= {cost_policy.threshold:.2f} "
                                     "with no accuracy guarantee")


def test_policy_without_a_threshold_reviews_everything():
    policy = DecisionPolicy.from_certificate(certify_threshold(CONF, CORRECT))
    assert policy.threshold is None and not policy.certified
    assert policy.guarantee.endswith("so every prediction goes to review")
    np.testing.assert_array_equal(policy.decide([0.5, 1.0]), ["review", "review"])


def test_policies_written_before_the_guarantee_fields_still_load(tmp_path):
    old = {"format": "confidently.policy", "format_version": 1, "threshold": 0.8, "target_accuracy": 0.95,
           "certified": True, "method": "lowest threshold with ..."}
    (tmp_path / "policy.json").write_text(json.dumps(old))
    policy = DecisionPolicy.load(tmp_path / "policy.json")
    assert (policy.threshold, policy.level, policy.procedure) == (0.8, None, None)
    assert policy.guarantee == ("automated predictions certified 95% accurate by an older rule that did not record "
                                "its confidence level")
    np.testing.assert_array_equal(policy.decide([0.79, 0.8]), ["review", "automate"])


def test_malformed_policies_are_refused(tmp_path):
    good = DecisionPolicy(0.9, 0.95, True, "test").to_dict()
    with pytest.raises(ArtifactError, match="threshold must be a number in \\[0, 1\\]"):
        DecisionPolicy.from_dict({**good, "threshold": 1.5})
    with pytest.raises(ArtifactError, match="procedure must be one of fallback, fixed-sequence"):
        DecisionPolicy.from_dict({**good, "procedure": "holm"})
    with pytest.raises(ArtifactError, match="not a confidently decision policy"):
        DecisionPolicy.from_dict({"threshold": 0.9})
    with pytest.raises(ArtifactError, match="malformed"):
        DecisionPolicy.from_dict({key: v for key, v in good.items() if key != "method"})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="bad.json: not a readable JSON file"):
        DecisionPolicy.load(tmp_path / "bad.json")
