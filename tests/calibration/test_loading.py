"""Loading a saved calibrator fails closed: every corrupt value is refused at load with one line naming
the file and what was expected, and nothing loaded can hand out a number outside [0, 1].

The fuzz tests (hypothesis) mutate real saved calibrators of every method at random and hold the
loader to one rule: either an ArtifactError, or a calibrator whose outputs are probabilities.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confidently.calibration import (
    BatchCalibrator,
    BetaCalibrator,
    DirichletCalibrator,
    HistogramBinningCalibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    StackedCalibrator,
    TemperatureCalibrator,
    calibrator_from_dict,
    load_calibrator,
)
from confidently.errors import ArtifactError, CalibrationError
from synthetic import make_scores

BINARY = make_scores(400, 2, seed=0)
MULTI = make_scores(400, 3, seed=1)


def saved(calibrator, data=BINARY) -> dict:
    return calibrator.fit(*data).to_dict()


SAVED = {
    "platt": saved(PlattCalibrator()),
    "platt-3": saved(PlattCalibrator(), MULTI),
    "isotonic": saved(IsotonicCalibrator(warn_below=0)),
    "histogram": saved(HistogramBinningCalibrator()),
    "beta": saved(BetaCalibrator()),
    "temperature": saved(TemperatureCalibrator()),
    "dirichlet-3": saved(DirichletCalibrator(), MULTI),
    "batch": saved(BatchCalibrator()),
    "stacked": saved(StackedCalibrator(steps=[BatchCalibrator(), PlattCalibrator()])),
}


def write(tmp_path, data) -> str:
    path = tmp_path / "calibrator.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def edited(name: str, edit) -> dict:
    data = copy.deepcopy(SAVED[name])
    edit(data)
    return data


def assign(path: str, value):
    """An edit setting the value at ``"state.maps_.0.y.1"``-style ``path``."""
    def edit(data):
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value
    return edit


CORRUPTIONS = [
    # (method, edit, what the one line must say)
    ("isotonic", assign("state.maps_.0.y.1", 4.1), r"state.maps_\[0\].y\[1\] must be a finite number in \[0, 1\]; got 4.1"),
    ("isotonic", assign("state.maps_.0.y.0", -3.1), r"y\[0\] must be a finite number in \[0, 1\]; got -3.1"),
    ("isotonic", assign("state.maps_.0.x", [0.9, 0.1, 0.5]), r"maps_\[0\].x must be sorted \(non-decreasing\); .*x\[1\] = 0.1 < 0.9"),
    ("isotonic", assign("state.maps_.0.y", [0.9, 0.1]), r"maps_\[0\].y must hold \d+ numbers; got 2"),
    ("isotonic", assign("state.maps_.0.x.0", -0.5), r"x\[0\] must be a finite number in \[0, 1\]"),
    ("isotonic", assign("state.maps_.0.x.0", True), r"x\[0\] must be a finite number in \[0, 1\]; got True"),
    ("isotonic", assign("state.maps_", []), r"state.maps_ must be a list of 1 maps \(2 classes\); got \[\]"),
    ("histogram", assign("state.maps_.0.values.0", -0.1), r"values\[0\] must be a finite number in \[0, 1\]"),
    ("histogram", assign("state.maps_.0.edges", [0.5, 0.2]), r"edges must be strictly increasing"),
    ("histogram", assign("state.maps_.0.values", [0.5]), r"values must hold \d+ numbers; got 1"),
    ("platt", assign("state.maps_.0.a", True), r"state.maps_\[0\].a must be a finite number; got True"),
    ("platt", assign("state.maps_.0.b", "0.3"), r"maps_\[0\].b must be a finite number; got '0.3'"),
    ("platt", assign("state.maps_.0.a", float("nan")), r"maps_\[0\].a must be a finite number; got nan"),
    ("platt", assign("state.maps_.0", {"a": 1.0}), r"maps_\[0\] must have exactly the keys \['a', 'b'\]"),
    ("platt-3", assign("state.coef_", [1.0, 2.0]), r"state.coef_ must hold 3 numbers; got 2"),
    ("platt-3", assign("state.intercept_.2", float("inf")), r"intercept_\[2\] must be a finite number; got inf"),
    ("beta", assign("state.maps_.0.a", -1.0), r"maps_\[0\].a must be a finite number in \[0, inf\]; got -1.0"),
    ("temperature", assign("state.temperature_", 0), r"temperature_ must be a finite number > 0; got 0"),
    ("dirichlet-3", assign("state.coef_.1", [1.0, 0.0]), r"state.coef_\[1\] must hold 3 numbers; got 2"),
    ("dirichlet-3", assign("state.coef_", [[1.0, 0.0, 0.0]]), r"state.coef_ must be a list of 3 rows of 3 numbers"),
    ("dirichlet-3", assign("state.coef_.2.0", "0.1"), r"coef_\[2\]\[0\] must be a finite number; got '0.1'"),
    ("dirichlet-3", assign("state.intercept_.0", float("nan")), r"intercept_\[0\] must be a finite number; got nan"),
    ("temperature", assign("state.temperature_", False), r"temperature_ must be a finite number > 0; got False"),
    ("batch", assign("state.bias_", [0.5, 0.0]), r"bias_\[1\] must be a finite number in \[0 \(exclusive\), 1\]"),
    ("batch", assign("state.n_classes_", True), r"n_classes_ must be an int >= 2; got True"),
    ("batch", assign("state.n_samples_", 3.0), r"n_samples_ must be an int >= 1; got 3.0"),
    ("batch", assign("state.classes_", ["a", "a"]), r"classes_: classes must be distinct"),
    ("batch", assign("state.extra_", 1.0), r"state has unknown entries \['extra_'\]"),
    ("platt", assign("params.min_samples", True), r"bad parameters: .*min_samples must be int in \[2, inf\]; got True"),
    ("platt", assign("params.surprise", 1), r"bad parameters: .*unexpected keyword argument 'surprise'"),
    ("platt", assign("params", [1, 2]), r"params must be an object; got \[1, 2\]"),
    ("platt", assign("state", [1, 2]), r"state must be an object; got \[1, 2\]"),
    ("stacked", assign("state.steps_.1.state.maps_.0.a", None), r"maps_\[0\].a must be a finite number; got None"),
    ("stacked", assign("state.steps_", []), r"steps_ must be a non-empty list"),
    ("stacked", assign("state.steps_.1", SAVED["platt-3"]), r"steps_\[1\] was fitted on 3 classes, the stack on 2"),
    ("platt", assign("format_version", True), r"format_version True is not supported"),
]


@pytest.mark.parametrize("name, edit, message", CORRUPTIONS)
def test_a_corrupt_calibrator_is_refused_at_load_in_one_line_naming_the_file(name, edit, message, tmp_path):
    path = write(tmp_path, edited(name, edit))
    with pytest.raises(ArtifactError, match=message) as caught:
        load_calibrator(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    with pytest.raises(ArtifactError, match=message):  # the class's own loader names the file too
        type(calibrator_from_dict(SAVED[name])).load(path)


@pytest.mark.parametrize("document", ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000])
def test_json_nested_100k_deep_is_refused_without_recursion_error(document, tmp_path):
    path = write(tmp_path, document)
    with pytest.raises(ArtifactError, match="nested too deeply"):
        load_calibrator(path)


def test_a_calibrator_nested_deeper_than_any_real_one_is_refused(tmp_path):
    data = SAVED["batch"]
    for _ in range(60):  # a stack of a stack of ... : legal JSON depth, absurd calibrator
        data = {**SAVED["stacked"], "params": {"steps": [data], "classes": None}, "state": None}
    with pytest.raises(ArtifactError, match="nested more than 40 levels deep"):
        load_calibrator(write(tmp_path, data))


def test_a_file_saved_before_classes_existed_still_loads(tmp_path):
    old = edited("platt", lambda data: (data["state"].pop("classes_"), data["params"].pop("classes")))
    calibrator = load_calibrator(write(tmp_path, old))
    assert calibrator.classes_.tolist() == [0, 1]
    np.testing.assert_array_equal(calibrator.predict_proba(BINARY[0]), calibrator_from_dict(SAVED["platt"]).predict_proba(BINARY[0]))


def test_state_corrupted_after_load_fails_closed_instead_of_answering(tmp_path):
    calibrator = load_calibrator(write(tmp_path, SAVED["isotonic"]))
    calibrator.maps_[0]["y"] = np.array([-3.1] + [4.1] * (calibrator.maps_[0]["x"].size - 1))
    with pytest.raises(CalibrationError, match=r"produced values in \[-3.1, 4.1\], not probabilities: its fitted state is corrupt"):
        calibrator.predict_proba(BINARY[0])
    calibrator = load_calibrator(write(tmp_path, SAVED["platt-3"]))
    calibrator.coef_ = np.array([np.nan, 1.0, 1.0])
    with pytest.raises(CalibrationError, match="produced non-finite values"):
        calibrator.predict(MULTI[0])


# --- fuzzing ----------------------------------------------------------------------------------

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12)


def _paths(node, prefix=()):
    """Every location in a JSON document, as a tuple of keys and indices."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


@st.composite
def mutated_calibrators(draw):
    """A real saved calibrator with one to three random edits: replace, delete, perturb or add."""
    data = copy.deepcopy(SAVED[draw(st.sampled_from(sorted(SAVED)))])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(data))[1:]))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = draw(st.sampled_from(["replace", "delete", "perturb", "add"]))
        if action == "delete":
            del parent[key]
        elif action == "perturb" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = parent[key] * draw(st.sampled_from([-1, 0, 1e-300, 1e300, 2, 0.5])) + draw(
                st.sampled_from([0, 1, -1, 1e-9]))
        elif action == "add" and isinstance(parent[key], (dict, list)):
            if isinstance(parent[key], dict):
                parent[key][draw(st.text(max_size=6))] = draw(JSON_VALUES)
            else:
                parent[key].append(draw(JSON_VALUES))
        else:
            parent[key] = draw(JSON_VALUES)
    return data


@st.composite
def perturbed_numbers(draw):
    """A real saved calibrator with numbers of its state moved anywhere finite: mostly loadable, so
    the outputs of extreme but valid states are exercised too."""
    data = copy.deepcopy(SAVED[draw(st.sampled_from(sorted(SAVED)))])
    leaves = [p for p in _paths(data["state"]) if p and isinstance(_get(data["state"], p), float)]
    for path in draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=4)):
        parent = _get(data["state"], path[:-1])
        parent[path[-1]] = draw(st.floats(-1e300, 1e300, allow_nan=False) | st.sampled_from([0.0, 1.0, 1e-300]))
    return data


def _get(node, path):
    for key in path:
        node = node[key]
    return node


PROBES = {2: np.vstack([np.eye(2), BINARY[0][:50]]), 3: np.vstack([np.eye(3), MULTI[0][:50]])}


def holds_the_rule(data) -> None:
    try:
        calibrator = calibrator_from_dict(data)
    except ArtifactError as error:
        assert "\n" not in str(error)
        return
    if not calibrator.is_fitted:
        return
    out = calibrator.predict_proba(PROBES[calibrator.n_classes_])
    assert np.all(np.isfinite(out)) and np.all(out > 0) and np.all(out < 1)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-9)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_calibrators())
def test_fuzz_a_mutated_calibrator_is_refused_or_gives_probabilities(data):
    holds_the_rule(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(perturbed_numbers())
def test_fuzz_numbers_moved_anywhere_are_refused_or_give_probabilities(data):
    holds_the_rule(data)


@settings(max_examples=100, deadline=None)
@given(JSON_VALUES)
def test_fuzz_arbitrary_json_is_refused_as_an_artifact_error(data):
    with pytest.raises(ArtifactError):
        calibrator_from_dict(data)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["n_classes_", "n_samples_", "classes_", "maps_", "bias_", "temperature_",
                                        "coef_", "intercept_", "steps_"]), JSON_VALUES, max_size=6),
       st.sampled_from(sorted(SAVED)))
def test_fuzz_an_arbitrary_state_is_refused_or_gives_probabilities(state, name):
    holds_the_rule({**SAVED[name], "state": state})


def test_the_fuzz_rule_catches_a_loader_that_trusts_its_input(monkeypatch):
    """The rule can fail: with the table checks, the output check and the bound switched off, an
    isotonic table of 4.1 loads and its outputs break the rule."""
    import confidently.calibration.base as base

    monkeypatch.setattr(base, "bound_rows", lambda probs, floor: probs)
    monkeypatch.setattr(IsotonicCalibrator, "_read_map",
                        lambda self, value, where: {key: np.asarray(v, float) for key, v in value.items()})
    monkeypatch.setattr(IsotonicCalibrator, "_checked_output", lambda self, out, shape: out)
    data = edited("isotonic", lambda data: data["state"]["maps_"][0].update(y=[4.1] * len(data["state"]["maps_"][0]["y"])))
    with pytest.raises(AssertionError):
        holds_the_rule(data)
