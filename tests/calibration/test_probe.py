"""The hidden-state probe: fit, out-of-fold scores, JSON round trip, corrupt files refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from confidently.calibration.probe import HiddenStateProbe, cross_fit_probe
from confidently.errors import ArtifactError, CalibrationError, NotFittedError


def separable(n=120, d=16, k=2, seed=0, noise_seed=None):
    """Hidden states whose class shifts a few directions, plus noise: a linear probe can learn them."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = rng.normal(size=(k, d)) * 1.5
    noise = np.random.default_rng(noise_seed).normal(size=(n, d)) if noise_seed is not None else rng.normal(size=(n, d))
    return (centres[y] + noise).astype(np.float32), y


def test_probe_learns_a_linear_signal_and_outputs_bounded_probabilities():
    x, y = separable(k=3)
    probe = HiddenStateProbe().fit(x, y, n_classes=3)
    probs = probe.predict_proba(x)
    assert probs.shape == (120, 3)
    assert np.allclose(probs.sum(1), 1.0)
    assert probs.min() >= 1.0 / (120 + 3) - 1e-12  # Laplace's floor for 120 rows
    x_new, y_new = separable(k=3, seed=0, noise_seed=7)  # same centres, fresh noise
    assert (probe.predict_proba(x_new).argmax(1) == y_new).mean() > 0.9
    assert probe.C_ in probe.Cs


def test_probe_round_trips_through_json(tmp_path):
    x, y = separable()
    probe = HiddenStateProbe(classes=["negative", "positive"]).fit(x, y, n_classes=2)
    probe.save(tmp_path / "probe.json")
    loaded = HiddenStateProbe.from_dict(json.loads((tmp_path / "probe.json").read_text()))
    assert np.array_equal(loaded.predict_proba(x), probe.predict_proba(x))
    assert loaded.classes_.tolist() == ["negative", "positive"]
    assert loaded.to_dict() == probe.to_dict()


@pytest.mark.parametrize("corrupt, message", [
    (lambda d: d["state"].update(coef_=d["state"]["coef_"][:1]), "coef_"),
    (lambda d: d["state"].update(scale_=[0.0] * len(d["state"]["scale_"])), "scale_"),
    (lambda d: d["state"]["mean_"].__setitem__(0, float("nan")), "mean_"),
    (lambda d: d.update(format="pickle"), "not a confidently hidden-state probe"),
    (lambda d: d["state"].update(extra_=1), "unknown entries"),
])
def test_a_corrupt_probe_is_refused_at_load(corrupt, message):
    x, y = separable()
    data = HiddenStateProbe().fit(x, y, n_classes=2).to_dict()
    corrupt(data)
    with pytest.raises(ArtifactError, match=message):
        HiddenStateProbe.from_dict(data)


def test_cross_fitted_scores_come_from_probes_that_never_saw_the_row():
    x, y = separable(n=80)
    out_of_fold = cross_fit_probe(x, y, n_classes=2, n_splits=4, seed=3)
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=3)
    for train, test in folds.split(x, y):
        refit = HiddenStateProbe(n_splits=4, seed=3).fit(x[train], y[train], n_classes=2)
        assert np.allclose(out_of_fold[test], refit.predict_proba(x[test]))


def test_out_of_fold_scores_do_not_memorise_noise():
    """With more features than rows and random labels, a fit scores its own rows well; out-of-fold scores cannot."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 200)).astype(np.float32)
    y = rng.permutation(np.arange(60) % 2)
    in_sample = HiddenStateProbe(Cs=(10.0,)).fit(x, y, n_classes=2).predict_proba(x)
    assert (in_sample.argmax(1) == y).mean() == 1.0
    out_of_fold = cross_fit_probe(x, y, n_classes=2, Cs=(10.0,))
    assert (out_of_fold.argmax(1) == y).mean() < 0.75


def test_probe_refuses_bad_input():
    x, y = separable()
    with pytest.raises(NotFittedError):
        HiddenStateProbe().predict_proba(x)
    with pytest.raises(CalibrationError, match="at least 5 labelled rows of every class"):
        HiddenStateProbe().fit(x[:6], np.array([0, 0, 0, 0, 0, 1]), n_classes=2)
    probe = HiddenStateProbe().fit(x, y, n_classes=2)
    with pytest.raises(CalibrationError, match="fitted on 16"):
        probe.predict_proba(x[:, :8])
