"""The live accuracy's anytime-valid confidence sequence: simulated audit streams looked at after every audit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import betabinom, binom

from confidently.decision.binomial import clopper_pearson_lower
from confidently.errors import DataError
from confidently.monitoring import LiveAccuracy
from confidently.monitoring.accuracy import MIN_AUDITED
from confidently.monitoring.sequence import confidence_sequence

TARGET, LEVEL = 0.9, 0.95


def audit_streams(accuracy: float, *, streams: int, looks: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Running counts of correct audits (streams, looks) and the audit count at each look (looks,)."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.random((streams, looks)) < accuracy, axis=1), np.arange(1, looks + 1)


def at_every_look(bounds, correct: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, ...]:
    """``bounds(correct, n)`` for each (stream, look), computed once per distinct count."""
    base = n[-1] + 1
    pairs, where = np.unique(correct * base + np.broadcast_to(n, correct.shape), return_inverse=True)
    return tuple(np.asarray(b)[where].reshape(correct.shape) for b in bounds(pairs // base, pairs % base))


def anytime(correct, n):
    return confidence_sequence(correct, n, LEVEL)


def single_look(correct, n):
    """The rule the verdict used to read: one-sided 95% Clopper-Pearson bounds."""
    return clopper_pearson_lower(correct, n, LEVEL), 1 - clopper_pearson_lower(n - correct, n, LEVEL)


def test_anytime_false_alarms_stay_within_the_level_where_per_look_clopper_pearson_does_not():
    # 2,000 deployments whose automation is exactly on target, each looked at after every one of 3,000 audits
    correct, n = audit_streams(TARGET, streams=2000, looks=3000, seed=0)
    lower, upper = at_every_look(anytime, correct, n)
    judged = n >= MIN_AUDITED
    false_alarm = (upper < TARGET)[:, judged].any(axis=1).mean()
    false_ok = (lower >= TARGET)[:, judged].any(axis=1).mean()
    missed_at_some_look = ((lower > TARGET) | (upper < TARGET)).any(axis=1).mean()
    assert false_alarm <= 1 - LEVEL and false_ok <= 1 - LEVEL and missed_at_some_look <= 1 - LEVEL
    # The rule it replaces, the one-sided 95% Clopper-Pearson upper bound, on the same streams
    per_look_upper = at_every_look(single_look, correct, n)[1][:, judged]
    per_look_alarm = (per_look_upper < TARGET).any(axis=1).mean()
    assert per_look_alarm > 4 * (1 - LEVEL)  # 35% of the streams: repeated looks, not the bound, break it
    assert (per_look_upper[:, -1] < TARGET).mean() <= 1 - LEVEL  # at one look fixed in advance it holds
    # the verdict is these bounds, for counts on either side of the alarm line
    for stream in range(0, 2000, 250):
        live = LiveAccuracy.from_counts(int(correct[stream, 99]), 100, target=TARGET, level=LEVEL)
        assert (live.lower, live.upper) == (lower[stream, 99], upper[stream, 99])
        assert live.alarm == (upper[stream, 99] < TARGET)


def test_the_alarm_fires_when_automation_misses_the_target():
    correct, n = audit_streams(0.85, streams=200, looks=3000, seed=1)
    _, upper = at_every_look(anytime, correct, n)
    first = np.argmax(upper < TARGET, axis=1)
    assert (upper < TARGET).any(axis=1).all()  # every deployment 5 points under target is caught
    assert np.median(n[first]) < 1000


@pytest.mark.parametrize("n", [1, 20, 100, 3000])
def test_bounds_on_edge_counts_match_the_closed_form(n):
    # All right: M_n(p) = 1 / ((n + 1) p^n), so p leaves the sequence when p^n <= (1 - level) / (n + 1)
    edge = ((1 - LEVEL) / (n + 1)) ** (1 / n)
    lower, upper = confidence_sequence([n, 0], [n, n], LEVEL)
    assert lower[0] == pytest.approx(edge, abs=1e-9) and upper[0] == 1.0
    assert lower[1] == 0.0 and upper[1] == pytest.approx(1 - edge, abs=1e-9)  # all wrong: the mirror image


@pytest.mark.parametrize("correct,n", [(1, 20), (17, 20), (85, 100), (900, 1000), (2950, 3000)])
def test_bounds_are_where_the_mixture_martingale_reaches_one_over_alpha(correct, n):
    lower, upper = (float(b) for b in confidence_sequence(correct, n, LEVEL))
    assert 0 < lower < correct / n < upper < 1

    def martingale(p: float) -> float:  # Beta(1, 1) mixture over the Binomial(n, p) likelihood
        return betabinom.pmf(correct, n, 1, 1) / binom.pmf(correct, n, p)

    assert martingale(lower) == pytest.approx(1 / (1 - LEVEL), rel=1e-6)
    assert martingale(upper) == pytest.approx(1 / (1 - LEVEL), rel=1e-6)
    assert martingale((lower + correct / n) / 2) < 1 / (1 - LEVEL) > martingale((upper + correct / n) / 2)


def test_bounds_move_with_the_counts():
    n = np.full(101, 100)
    lower, upper = confidence_sequence(np.arange(101), n, LEVEL)
    assert np.all(np.diff(lower) > 0) and np.all(np.diff(upper) > 0)  # one more right raises both
    # at a steady 90% the interval narrows as audits accumulate (it need not nest exactly)
    sizes = np.array([20, 100, 1000, 10000])
    low, high = confidence_sequence(0.9 * sizes, sizes, LEVEL)
    assert np.all(np.diff(high - low) < 0) and np.all((low < 0.9) & (0.9 < high))
    wider = confidence_sequence(900, 1000, 0.99)
    assert wider[0] < low[2] and wider[1] > high[2]
    assert np.isnan(confidence_sequence(0, 0, LEVEL)).all()
    with pytest.raises(DataError):
        confidence_sequence(5, 4, LEVEL)
    with pytest.raises(DataError):
        confidence_sequence(1, 4, 1.0)


def test_live_accuracy_states_what_its_bounds_are():
    live = LiveAccuracy.from_counts(160, 200, target=TARGET)
    record = live.to_dict()
    assert record["bounds"].startswith("anytime-valid 95% confidence sequence (Robbins' beta-binomial mixture")
    assert "at every look" in record["bounds"]
    assert record["single_look_lower"] > record["lower"] and record["single_look_upper"] < record["upper"]
    assert "anytime-valid 95% bounds 0.695-0.883, valid at every look; single-look Clopper-Pearson 0.748-0.845" \
        in live.describe()
    empty = LiveAccuracy.from_counts(0, 0, target=TARGET).to_dict()
    assert empty["single_look_lower"] is None and empty["bounds"] == record["bounds"]
