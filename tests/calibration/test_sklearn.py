"""Calibrators as scikit-learn citizens: the estimator checks, clone, deep parameters, Pipeline,
GridSearchCV, cross_val_predict and string labels.

scikit-learn's checks feed arbitrary real features (make_blobs, iris); a calibrator's input must be
rows of class probabilities, so the checks that need fitted data are expected to fail for that one
reason, and the same properties are tested below on probability rows instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from confidently.calibration import (
    BatchCalibrator,
    BetaCalibrator,
    Calibrator,
    ContextualCalibrator,
    HistogramBinningCalibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    StackedCalibrator,
    TemperatureCalibrator,
    load_calibrator,
)
from confidently.errors import CalibrationError, DataError, NotFittedError
from synthetic import make_scores


def every_calibrator() -> list[Calibrator]:
    return [PlattCalibrator(), IsotonicCalibrator(warn_below=0), TemperatureCalibrator(),
            HistogramBinningCalibrator(), BetaCalibrator(), BatchCalibrator(), ContextualCalibrator(),
            StackedCalibrator(steps=[BatchCalibrator(), PlattCalibrator()])]


def ids(calibrator: Calibrator) -> str:
    return type(calibrator).__name__


X_IS_NOT_PROBABILITIES = (
    "the check fits on arbitrary real features (make_blobs, iris, 3 * uniform); a calibrator's X must be "
    "rows of class probabilities and fit refuses anything else; the property is tested on probability rows "
    "in this file"
)
NEEDS_PROBABILITY_ROWS = [
    "check_classifier_data_not_an_array", "check_classifiers_classes", "check_classifiers_regression_target",
    "check_classifiers_train", "check_dict_unchanged", "check_dont_overwrite_parameters", "check_dtype_object",
    "check_estimators_dtypes", "check_estimators_fit_returns_self", "check_estimators_nan_inf",
    "check_estimators_overwrite_params", "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_fit2d_1feature", "check_fit2d_1sample", "check_fit2d_predict1d", "check_fit_check_is_fitted",
    "check_fit_idempotent", "check_fit_score_takes_y", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_n_features_in", "check_n_features_in_after_fitting",
    "check_pipeline_consistency", "check_readonly_memmap_input", "check_requires_y_none", "check_supervised_y_2d",
]
EXPECTED_FAILURES = {
    **{name: X_IS_NOT_PROBABILITIES for name in NEEDS_PROBABILITY_ROWS},
    "check_estimators_empty_data_messages": (
        "wants scikit-learn's exact '0 feature(s) (shape=(12, 0)) while a minimum of N is required'; fit refuses "
        "0 columns with its own message (test_malformed_input_is_refused_in_words)"
    ),
    "check_positive_only_tag_during_fit": (
        "wants the phrase 'Negative values in data'; fit refuses a negative probability naming the entry and "
        "the [0, 1] range (test_malformed_input_is_refused_in_words)"
    ),
}


@parametrize_with_checks(every_calibrator(), expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
                         xfail_strict=True)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# --- the same properties, on probability rows -----------------------------------------------------

@pytest.fixture(scope="module", params=[2, 3], ids=["binary", "3-class"])
def scores(request):
    probs, y = make_scores(600, request.param, seed=request.param)
    return probs, y


def fitted(calibrator: Calibrator, probs: np.ndarray, y: np.ndarray) -> Calibrator:
    if isinstance(calibrator, ContextualCalibrator):
        return calibrator.fit(probs[:50])  # content-free rows stand-in: label-free either way
    return calibrator.fit(probs, y)


@pytest.mark.parametrize("calibrator", every_calibrator(), ids=ids)
def test_fit_returns_self_keeps_parameters_and_adds_only_fitted_attributes(calibrator, scores):
    params = repr(calibrator.get_params(deep=False))
    public = {k for k in vars(calibrator) if not k.endswith("_")}
    assert fitted(calibrator, *scores) is calibrator
    assert repr(calibrator.get_params(deep=False)) == params
    assert {k for k in vars(calibrator) if not k.endswith("_")} == public
    check_is_fitted(calibrator)
    assert calibrator.n_features_in_ == scores[0].shape[1]


@pytest.mark.parametrize("calibrator", every_calibrator(), ids=ids)
def test_predicting_changes_nothing_and_does_not_depend_on_row_order_or_batch(calibrator, scores):
    probs, y = scores
    calibrator = fitted(calibrator, probs, y)
    state = repr(calibrator.to_dict())
    whole = calibrator.predict_proba(probs)
    calibrator.predict(probs)
    assert repr(calibrator.to_dict()) == state
    order = np.random.default_rng(0).permutation(len(probs))
    np.testing.assert_allclose(calibrator.predict_proba(probs[order]), whole[order], atol=1e-12)
    np.testing.assert_allclose(calibrator.predict_proba(probs[:7]), whole[:7], atol=1e-12)
    np.testing.assert_array_equal(calibrator.predict(probs), calibrator.classes_[whole.argmax(1)])


@pytest.mark.parametrize("calibrator", every_calibrator(), ids=ids)
def test_fit_is_idempotent_and_accepts_any_array_like(calibrator, scores, tmp_path):
    probs, y = scores
    expected = fitted(clone(calibrator), probs, y).predict_proba(probs)
    twice = fitted(fitted(clone(calibrator), probs, y), probs, y)
    np.testing.assert_allclose(twice.predict_proba(probs), expected, atol=1e-12)
    memmap = np.lib.format.open_memmap(tmp_path / "probs.npy", mode="w+", dtype=float, shape=probs.shape)
    memmap[:] = probs
    memmap.flush()
    readonly = np.load(tmp_path / "probs.npy", mmap_mode="r")
    for variant in (probs.tolist(), np.asfortranarray(probs), readonly, pd.DataFrame(probs), probs.astype(object)):
        got = fitted(clone(calibrator), variant, y).predict_proba(variant)
        np.testing.assert_allclose(got, expected, atol=1e-12)
    single = probs.astype(np.float32)  # rounding the input moves the fit a little, nothing more
    np.testing.assert_allclose(fitted(clone(calibrator), single, y).predict_proba(single), expected, atol=1e-3)


@pytest.mark.parametrize("calibrator", every_calibrator(), ids=ids)
def test_unfitted_use_raises_both_not_fitted_errors(calibrator, scores):
    with pytest.raises(SklearnNotFittedError, match="not fitted"):
        calibrator.predict(scores[0])
    with pytest.raises(NotFittedError):
        calibrator.predict_proba(scores[0])
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(calibrator)
    assert not hasattr(calibrator, "n_features_in_")


def test_malformed_input_is_refused_in_words(scores):
    probs, y = scores
    nan = probs.copy()
    nan[3, 1] = np.nan
    for bad, message in [
        (nan, r"probs\[3, 1\] = nan is NaN or inf"),
        (probs - 0.5, r"probs\[0, \d\] = -0.\d+ is outside \[0, 1\]"),
        (probs[:, :1], "at least 2 class columns; got 1"),
        (np.empty((0, probs.shape[1])), "no rows"),
        (probs + 0j, "Complex data not supported"),
    ]:
        with pytest.raises(DataError, match=message):
            PlattCalibrator().fit(bad, y[:len(bad)])
    calibrator = PlattCalibrator().fit(probs, y)
    with pytest.raises(DataError, match="NaN or inf"):
        calibrator.predict(nan)
    with pytest.raises(CalibrationError, match="requires y to be passed, but the target y is None"):
        PlattCalibrator().fit(probs)
    with pytest.raises(DataError, match="1-D array of labels"):
        PlattCalibrator().fit(probs, y[:, None])
    with pytest.raises(DataError, match="must hold only strings or only integers; got \\[0.5, 1.5"):
        PlattCalibrator().fit(probs, y + 0.5)  # a continuous target cannot name the columns


def test_sparse_input_is_refused_in_words(scores):
    from scipy.sparse import csr_matrix

    with pytest.raises(DataError, match="sparse input is not supported"):
        PlattCalibrator().fit(csr_matrix(scores[0]), scores[1])


# --- labels ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("calibrator", every_calibrator(), ids=ids)
def test_string_labels_name_the_columns_in_sorted_order(calibrator, scores, tmp_path):
    probs, y = scores
    names = np.array(["ant", "bee", "cat"])[: probs.shape[1]]
    by_index = fitted(clone(calibrator), probs, y)
    by_name = fitted(clone(calibrator), probs, names[y])
    np.testing.assert_allclose(by_name.predict_proba(probs), by_index.predict_proba(probs), atol=1e-12)
    if not isinstance(calibrator, ContextualCalibrator):  # fitted without labels: columns keep their index
        assert by_name.classes_.tolist() == names.tolist()
        assert set(by_name.predict(probs)) <= set(names)
        assert by_name.score(probs, names[y]) == pytest.approx(by_index.score(probs, y))
    by_name.save(tmp_path / "c.json")
    loaded = load_calibrator(tmp_path / "c.json")
    np.testing.assert_array_equal(loaded.classes_, by_name.classes_)
    np.testing.assert_array_equal(loaded.predict(probs), by_name.predict(probs))


def test_classes_names_columns_that_are_not_in_sorted_order(scores):
    probs, y = scores
    k = probs.shape[1]
    task_order = ["yes", "no", "maybe"][:k]  # a task's labels, not sorted
    labels = np.array(task_order)[y]
    calibrator = PlattCalibrator(classes=task_order).fit(probs, labels)
    assert calibrator.classes_.tolist() == task_order
    np.testing.assert_allclose(calibrator.predict_proba(probs), PlattCalibrator().fit(probs, y).predict_proba(probs))
    with pytest.raises(DataError, match=r"y\[0\] = 'perhaps' is not one of classes"):
        PlattCalibrator(classes=task_order).fit(probs, ["perhaps", *labels[1:]])
    with pytest.raises(DataError, match=f"classes names 1 classes but probs has {k} columns"):
        PlattCalibrator(classes=["yes"]).fit(probs, y)
    with pytest.raises(DataError, match="distinct"):
        PlattCalibrator(classes=["yes"] * k).fit(probs, y)


def test_labels_that_cannot_name_the_columns_are_refused():
    probs, y = make_scores(200, 3, seed=0)
    with pytest.raises(DataError, match="2 distinct labels \\['a', 'b'\\] but probs has 3 columns; pass classes"):
        PlattCalibrator().fit(probs, np.where(y == 0, "a", "b"))


# --- clone, parameters, meta-estimators ----------------------------------------------------------

def test_clone_gives_unfitted_copies_with_equal_parameters():
    stack = StackedCalibrator(steps=[BatchCalibrator(), HistogramBinningCalibrator(bins=7)])
    probs, y = make_scores(300, 2, seed=0)
    stack.fit(probs, y)
    copy = clone(stack)
    assert not copy.is_fitted and copy.get_params(deep=False).keys() == stack.get_params(deep=False).keys()
    assert copy.steps[1] is not stack.steps[1] and copy.steps[1].bins == 7


def test_clone_keeps_the_fit_of_a_contextual_calibrator_fitted_on_content_free_rows():
    probs, y = make_scores(300, 2, seed=0)
    contextual = ContextualCalibrator().fit(probs[:3])
    copy = clone(contextual)
    assert copy is not contextual
    np.testing.assert_array_equal(copy.bias_, contextual.bias_)
    assert not clone(ContextualCalibrator()).is_fitted
    stack = clone(StackedCalibrator(steps=[contextual, PlattCalibrator()]))
    np.testing.assert_allclose(stack.fit(probs, y).predict_proba(probs),
                               StackedCalibrator(steps=[contextual, PlattCalibrator()]).fit(probs, y).predict_proba(probs))


def test_stacked_parameters_reach_each_step_by_method_name():
    stack = StackedCalibrator(steps=[BatchCalibrator(), PlattCalibrator(), PlattCalibrator()])
    params = stack.get_params(deep=True)
    assert {"steps", "classes", "batch", "platt-1", "platt-2", "platt-1__min_samples"} <= set(params)
    assert params["platt-2"] is stack.steps[2]
    stack.set_params(**{"platt-2__min_samples": 50})
    assert stack.steps[2].min_samples == 50 and stack.steps[1].min_samples == 20
    isotonic = IsotonicCalibrator()
    stack.set_params(**{"platt-1": isotonic})
    assert stack.steps[1] is isotonic
    assert [name for name in stack.get_params() if "__" not in name and name not in ("steps", "classes")] == [
        "batch", "isotonic", "platt"]
    with pytest.raises(ValueError, match="Invalid parameter 'temperature'"):
        stack.set_params(temperature__min_samples=3)


@pytest.fixture(scope="module")
def logits_and_labels():
    """A model's logits (3x over-confident) and string labels, the input of a Pipeline."""
    probs, y = make_scores(900, 3, seed=5)
    return np.log(probs), np.array(["ant", "bee", "cat"])[y]


def pipeline(calibrator: Calibrator) -> Pipeline:
    return Pipeline([("softmax", FunctionTransformer(softmax, kw_args={"axis": 1})), ("calibrate", calibrator)])


def test_a_calibrator_is_a_pipeline_step_and_grid_search_picks_the_method(logits_and_labels):
    logits, labels = logits_and_labels
    search = GridSearchCV(
        pipeline(PlattCalibrator()),
        {"calibrate": [IsotonicCalibrator(warn_below=0), TemperatureCalibrator(), HistogramBinningCalibrator()],
         "calibrate__min_samples": [20]},
        scoring="neg_log_loss", cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(logits, labels)
    scores = dict(zip((type(p["calibrate"]).__name__ for p in search.cv_results_["params"]),
                      search.cv_results_["mean_test_score"]))
    # temperature is the true model here (softmax(3z) undone by T=3); it must win on held-out log loss
    assert max(scores, key=scores.get) == "TemperatureCalibrator"
    assert type(search.best_estimator_["calibrate"]) is TemperatureCalibrator
    assert search.best_estimator_["calibrate"].temperature_ == pytest.approx(3.0, rel=0.15)
    assert search.predict(logits[:5]).tolist() == search.best_estimator_.predict(logits[:5]).tolist()


def test_grid_search_over_a_stacked_steps_parameter(logits_and_labels):
    logits, labels = logits_and_labels
    stack = StackedCalibrator(steps=[BatchCalibrator(), HistogramBinningCalibrator()])
    search = GridSearchCV(pipeline(stack), {"calibrate__histogram__bins": [2, 15]}, scoring="neg_log_loss", cv=3)
    search.fit(logits, labels)
    assert [p["calibrate__histogram__bins"] for p in search.cv_results_["params"]] == [2, 15]
    assert search.best_estimator_["calibrate"].steps_[1].bins == search.best_params_["calibrate__histogram__bins"]


def test_cross_val_predict_gives_each_row_a_probability_from_a_calibrator_that_never_saw_it(logits_and_labels):
    logits, labels = logits_and_labels
    folds = StratifiedKFold(4, shuffle=True, random_state=1)
    out = cross_val_predict(pipeline(PlattCalibrator()), logits, labels, cv=folds, method="predict_proba")
    manual = np.empty_like(out)
    for train, test in folds.split(logits, labels):
        manual[test] = pipeline(PlattCalibrator()).fit(logits[train], labels[train]).predict_proba(logits[test])
    np.testing.assert_allclose(out, manual, atol=1e-12)
    predicted = cross_val_predict(pipeline(PlattCalibrator()), logits, labels, cv=folds)
    assert set(predicted) <= {"ant", "bee", "cat"}
    np.testing.assert_array_equal(predicted, np.array(["ant", "bee", "cat"])[manual.argmax(1)])
