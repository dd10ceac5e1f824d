"""CalibratedTextClassifier as a scikit-learn estimator, on the tiny in-process model (and once on a
real model, gemma-3-270m).

scikit-learn's own checks feed numeric matrices; an estimator of texts declares ``two_d_array=False``
and scikit-learn then skips every check. So the checks that need no data run here one by one, and
the ones that need data are written out below with texts: fit returns self and leaves the
parameters alone, predictions do not depend on row order or batch, refitting is idempotent, labels
are learned from ``y``, and the estimator works in cross_val_predict and GridSearchCV.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import estimator_checks
from sklearn.utils.validation import check_is_fitted

import confidently.workflows.estimator as estimator_module
from confidently import CalibratedTextClassifier
from confidently.calibration import IsotonicCalibrator, PlattCalibrator, cross_fit_predict, make_calibrator
from confidently.scoring.classifier import Classifier
from confidently.decision.conformal import ConformalPredictor
from confidently.data import generate_sentiment
from confidently.errors import CalibrationError, ConfigError, DataError
from confidently.decision.thresholds import certify_threshold

OPTIONS = {"device": "cpu", "dtype": "float32"}


@pytest.fixture(scope="module")
def data():
    rows = generate_sentiment(80, seed=0)
    return list(rows.texts), np.array(rows.labels)


@pytest.fixture
def make(tiny_model_dir):
    def make(**params) -> CalibratedTextClassifier:
        return CalibratedTextClassifier(**{"model": str(tiny_model_dir), "backend_options": OPTIONS, "cv": 3, **params})
    return make


@pytest.fixture
def counted(monkeypatch):
    """Counts model loads and texts scored, starting from an empty process cache."""
    estimator_module.clear_cache()
    counts = {"loads": 0, "texts": 0}
    load, score = estimator_module.load_backend, Classifier.score

    def counting_load(*args, **kwargs):
        counts["loads"] += 1
        return load(*args, **kwargs)

    def counting_score(self, texts, **kwargs):
        counts["texts"] += len(texts)
        return score(self, texts, **kwargs)

    monkeypatch.setattr(estimator_module, "load_backend", counting_load)
    monkeypatch.setattr(Classifier, "score", counting_score)
    yield counts
    estimator_module.clear_cache()


API_CHECKS = [
    estimator_checks.check_estimator_cloneable, estimator_checks.check_estimator_repr,
    estimator_checks.check_estimator_tags_renamed, estimator_checks.check_valid_tag_types,
    estimator_checks.check_no_attributes_set_in_init, estimator_checks.check_mixin_order,
    estimator_checks.check_parameters_default_constructible, estimator_checks.check_get_params_invariance,
    estimator_checks.check_set_params, estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
    estimator_checks.check_estimators_unfitted,
]


@pytest.mark.parametrize("check", API_CHECKS, ids=lambda check: check.__name__)
def test_scikit_learn_checks_that_need_no_numeric_data(check, make):
    check("CalibratedTextClassifier", make())


def test_scikit_learn_skips_its_data_checks_for_an_estimator_of_texts(make):
    with pytest.warns(estimator_checks.SkipTestWarning, match="Can't test estimator"):
        assert list(estimator_checks._yield_all_checks(make(), legacy=True)) == []


def test_fit_returns_self_keeps_parameters_and_learns_the_labels(make, data):
    texts, y = data
    estimator = make()
    params = repr(estimator.get_params())
    assert estimator.fit(texts, y) is estimator
    assert repr(estimator.get_params()) == params
    assert {name for name in vars(estimator) if not name.endswith("_") and not name.startswith("_")} == set(
        estimator.get_params())  # fit adds only fitted (``_``-suffixed) and private attributes
    check_is_fitted(estimator)
    assert estimator.classes_.tolist() == ["negative", "positive"]
    probs = estimator.predict_proba(texts)
    assert probs.shape == (80, 2) and np.all((probs > 0) & (probs < 1))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_array_equal(estimator.predict(texts), estimator.classes_[probs.argmax(axis=1)])
    decisions = estimator.decide(texts)
    threshold = estimator.policy_.threshold
    expected = np.full(80, "review") if threshold is None else np.where(probs.max(1) >= threshold, "automate", "review")
    np.testing.assert_array_equal(decisions, expected)
    assert estimator.score(texts, y) == pytest.approx(np.mean(estimator.predict(texts) == y))


@pytest.mark.filterwarnings("ignore::confidently.calibration.SmallSampleWarning")
def test_the_estimator_is_the_classifier_calibrator_and_certificate_it_is_made_of(make, data, tiny_model_dir):
    texts, y = data
    estimator = make(calibrator="isotonic", target_accuracy=0.6, level=0.8).fit(texts, y)
    classifier = Classifier(str(tiny_model_dir), "sentiment", **OPTIONS)
    raw = classifier.score(texts).probs  # columns in task order: negative, positive (already sorted)
    targets = (y == "positive").astype(int)
    calibrator = make_calibrator("isotonic").fit(raw, targets)
    np.testing.assert_allclose(estimator.predict_proba(texts[:20]), calibrator.predict_proba(raw[:20]), atol=1e-6)
    out_of_fold = cross_fit_predict("isotonic", raw, targets, n_splits=3, seed=0)
    certificate = certify_threshold(out_of_fold.max(1), out_of_fold.argmax(1) == targets, target_accuracy=0.6, level=0.8)
    assert estimator.certificate_.threshold == certificate.threshold
    assert estimator.certificate_.reason == certificate.reason
    assert estimator.policy_.certified == certificate.certified
    sets = ConformalPredictor(0.1).fit(out_of_fold, targets)  # fitted on the same out-of-fold scores
    assert estimator.prediction_sets_.quantiles_ == sets.quantiles_
    np.testing.assert_array_equal(estimator.predict_set(texts[:20]), sets.predict_set(calibrator.predict_proba(raw[:20])))


def test_predictions_do_not_depend_on_row_order_batch_or_refitting(make, data):
    texts, y = data
    estimator = make().fit(texts, y)
    state = repr(estimator.calibrator_.to_dict()), estimator.policy_
    whole = estimator.predict_proba(texts)
    estimator.predict(texts), estimator.decide(texts)
    assert (repr(estimator.calibrator_.to_dict()), estimator.policy_) == state
    order = np.random.default_rng(0).permutation(len(texts))
    np.testing.assert_allclose(estimator.predict_proba([texts[i] for i in order]), whole[order], atol=1e-12)
    np.testing.assert_allclose(estimator.predict_proba(texts[5:9]), whole[5:9], atol=1e-12)
    np.testing.assert_allclose(estimator.fit(texts, y).predict_proba(texts), whole, atol=1e-12)


def test_integer_labels_index_the_task_labels_as_label_encoder_numbers_them(make, data):
    texts, y = data
    encoded = LabelEncoder().fit_transform(y)
    by_name, by_index = make().fit(texts, y), make().fit(texts, encoded)
    assert by_index.classes_.tolist() == [0, 1]
    np.testing.assert_allclose(by_index.predict_proba(texts), by_name.predict_proba(texts), atol=1e-12)


def test_labels_spelled_as_in_a_users_file_keep_their_spelling(make, data):
    # pos/neg as data files spell them (the CLI's loaders read them too): predict answers in y's spelling
    texts, y = data
    spelled = np.where(y == "positive", "pos", "neg")
    by_name, by_spelling = make().fit(texts, y), make().fit(texts, spelled)
    assert by_spelling.classes_.tolist() == ["neg", "pos"]
    np.testing.assert_allclose(by_spelling.predict_proba(texts), by_name.predict_proba(texts), atol=1e-12)
    assert by_spelling.predict(texts).tolist() == [label[:3] for label in by_name.predict(texts)]
    assert by_spelling.score(texts, spelled) == by_name.score(texts, y)
    with pytest.raises(DataError, match=r"y\[1\] = 'pos' is not a label of the task"):  # two spellings of one label
        make().fit(texts, ["positive", "pos", *spelled[2:]])


def test_a_task_whose_labels_are_not_in_sorted_order_keeps_each_column_with_its_label(make, data, tmp_path):
    from confidently.tasks.task import SENTIMENT, Task

    reversed_task = Task(name="reversed", template=SENTIMENT.template, labels=SENTIMENT.labels[::-1])
    texts, y = data
    forward, backward = make().fit(texts, y), make(task=reversed_task).fit(texts, y)
    assert backward.classes_.tolist() == ["negative", "positive"]
    np.testing.assert_allclose(backward.predict_proba(texts), forward.predict_proba(texts), atol=1e-6)


def test_integer_labels_follow_the_tasks_order_as_data_files_read_them(make, data):
    # A task listing its labels out of sorted order: 0 is its first label, in the estimator as in a data
    # file (normalize_label), not the first label by name.
    from confidently.data.loaders import normalize_label
    from confidently.tasks.task import SENTIMENT, Task

    reversed_task = Task(name="reversed", template=SENTIMENT.template, labels=SENTIMENT.labels[::-1])
    labels = reversed_task.label_names
    assert labels == ("positive", "negative")
    texts, y = data
    as_in_a_file = np.array([labels.index(normalize_label(int(v), labels)) for v in (y == "negative").astype(int)])
    # temperature scaling keeps each column with its label (a flexible calibrator could learn a swap back)
    by_index = make(task=reversed_task, calibrator="temperature").fit(texts, as_in_a_file)
    by_name = make(task=reversed_task, calibrator="temperature").fit(texts, y)
    assert by_index.classes_.tolist() == [0, 1]
    # column j of the integer estimator is the task's label j: positive first
    np.testing.assert_allclose(by_index.predict_proba(texts), by_name.predict_proba(texts)[:, ::-1], atol=1e-6)
    assert [labels[i] for i in by_index.predict(texts)] == by_name.predict(texts).tolist()


def test_bad_input_is_refused_in_words(make, data):
    texts, y = data
    with pytest.raises(DataError, match=r"y\[3\] = 'neutral' is not a label of the task; expected one of \['negative', 'positive'\]"):
        make().fit(texts, [*y[:3], "neutral", *y[4:]])
    with pytest.raises(DataError, match=r"y\[0\] = 2 does not index the task's 2 labels"):
        make().fit(texts, np.r_[2, np.zeros(79, int)])
    with pytest.raises(DataError, match="not one string"):
        make().fit("one text", ["positive"])
    with pytest.raises(DataError, match=r"X\[1\] is int, not a text"):
        make().fit(["a", 3], ["positive", "negative"])
    with pytest.raises(DataError, match="1-D sequence of texts; got shape \\(2, 1\\)"):
        make().fit([["a"], ["b"]], ["positive", "negative"])
    with pytest.raises(DataError, match="y must be a 1-D array of 80 labels"):
        make().fit(texts, y[:10])
    with pytest.raises(CalibrationError, match="every class present needs at least 3 examples"):
        make(calibrator=PlattCalibrator(min_samples=2)).fit(texts[:22], np.r_[["negative"] * 2, ["positive"] * 20])
    with pytest.raises(ConfigError, match=r"cv must be an int >= 2; got 1; target_accuracy must be in \(0, 1\]; got True"):
        make(cv=1, target_accuracy=True).fit(texts, y)
    with pytest.raises(SklearnNotFittedError):
        make().predict(texts)


def test_clones_and_refits_load_the_model_once_and_score_each_text_once(make, data, counted):
    texts, y = data
    first = make().fit(texts, y)
    second = clone(first).set_params(calibrator=IsotonicCalibrator(warn_below=0)).fit(texts[:60], y[:60])
    second.predict_proba(texts)
    assert counted == {"loads": 1, "texts": len(set(texts))}
    assert isinstance(second.calibrator_, IsotonicCalibrator)
    make(batch_size=4).fit(texts, y)  # another batch size is another classifier: same weights, texts rescored
    assert counted["loads"] == 1


def test_grid_search_over_the_calibration_method(make, data, counted):
    texts, y = data
    search = GridSearchCV(make(), {"calibrator": ["platt", "temperature", "histogram"]}, scoring="neg_log_loss",
                          cv=StratifiedKFold(3, shuffle=True, random_state=0)).fit(texts, y)
    assert [p["calibrator"] for p in search.cv_results_["params"]] == ["platt", "temperature", "histogram"]
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    best = search.best_estimator_
    assert best.calibrator_.name == search.best_params_["calibrator"]
    np.testing.assert_array_equal(search.predict(texts[:5]), best.predict(texts[:5]))
    assert counted == {"loads": 1, "texts": len(set(texts))}  # 10 fits, one model load, each text scored once


def test_cross_val_predict_gives_out_of_fold_labels_and_probabilities(make, data):
    texts, y = data
    folds = StratifiedKFold(4, shuffle=True, random_state=2)
    probs = cross_val_predict(make(), texts, y, cv=folds, method="predict_proba")
    manual = np.empty_like(probs)
    for train, test in folds.split(texts, y):
        fold = make().fit([texts[i] for i in train], y[train])
        manual[test] = fold.predict_proba([texts[i] for i in test])
    np.testing.assert_allclose(probs, manual, atol=1e-12)
    labels = cross_val_predict(make(), texts, y, cv=folds)
    np.testing.assert_array_equal(labels, np.array(["negative", "positive"])[manual.argmax(1)])


@pytest.mark.model
def test_real_model_fit_predict_decide_on_a_handful_of_texts():
    rows = generate_sentiment(48, seed=3)
    texts, y = list(rows.texts), np.array(rows.labels)
    estimator = CalibratedTextClassifier(model="gemma-3-270m", backend_options={"dtype": "float32"}, cv=2,
                                         calibrator=PlattCalibrator(min_samples=10), target_accuracy=0.8)
    estimator.fit(texts[:32], y[:32])
    held_out = estimator.predict_proba(texts[32:])
    raw = Classifier("gemma-3-270m", "sentiment", backend=estimator._classifier().backend).score(texts[32:]).probs
    np.testing.assert_allclose(held_out, estimator.calibrator_.predict_proba(raw), atol=1e-6)
    assert np.abs(held_out - raw).max() > 0.01  # calibration moved the raw shares
    assert set(estimator.decide(texts[32:])) <= {"automate", "review"}
    sets = estimator.predict_set(texts[32:])
    np.testing.assert_array_equal(sets, estimator.prediction_sets_.predict_set(held_out))
    assert estimator.classes_.tolist() == ["negative", "positive"]
    print(f"gemma-3-270m, 32 fit / 16 held out: raw accuracy {np.mean(raw.argmax(1) == (y[32:] == 'positive')):.3f}, "
          f"calibrated accuracy {np.mean(estimator.predict(texts[32:]) == y[32:]):.3f}; {estimator.certificate_.reason}")
