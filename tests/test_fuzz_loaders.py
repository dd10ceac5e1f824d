"""Fuzz tests over every file format the library reads (hypothesis): arbitrary or mutated bytes and
structures either load to exactly what the file says, or raise the project's one-line error
(:class:`ArtifactError` for artifacts, :class:`DataError` for data files). Never a raw
KeyError / TypeError / RecursionError / UnicodeError, never a silently coerced value.

Covered: policy.json, the bundle's manifest.json, conformal.json, the scoring checkpoint (manifest
and Parquet chunks), the fine-tuning checkpoint's state.json, the de-quantized model cache's
manifest, and the JSONL / CSV dataset loaders. (Calibrator state files have their own fuzz tests in
tests/calibration/test_loading.py.)
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confidently.bundle.bundle import CONFORMAL_FILE, ModelIdentity, read_bundle, write_bundle
from confidently.decision.conformal import ConformalPredictor
from confidently.data import load_dataset
from confidently.errors import ArtifactError, DataError
from confidently.scoring.checkpointed import ScoreStore, text_key
from confidently.tasks.task import SENTIMENT
from confidently.decision.policy import DecisionPolicy
from confidently.types import Scores
from confidently.models.verified_cache import MANIFEST, cache_problem, ensure_cache

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)
#: Byte strings that break parsers in distinct ways: bad UTF-8, deep nesting, a 5000-digit integer, NaN.
HOSTILE = st.sampled_from([b"\xff\xfe{", b"[" * 50_000 + b"]" * 50_000, b'{"a": ' + b"9" * 5000 + b"}",
                           b'{"a": NaN}', b"", b"null", b"\x00" * 16, b'"\\ud800"'])


def _paths(value, prefix=()):
    """Every (path, container) position in a JSON document, the root first."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


@st.composite
def mutated(draw, original):
    """``original`` (a JSON document) with 1-3 random edits: replace, delete or add at any position."""
    data = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(data))))
        if not path:
            if draw(st.booleans()):
                return draw(JSON_VALUES)
            continue
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(JSON_VALUES)
        else:
            parent.append(draw(JSON_VALUES))
    return data


@st.composite
def flipped_bytes(draw, original: bytes):
    """``original`` with a few bytes overwritten, cut short, or with bytes inserted."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["set", "cut", "insert"]))
        if action == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


def one_line(error: Exception) -> None:
    assert "\n" not in str(error), str(error)


# -- policy.json ------------------------------------------------------------------------------------
POLICY = DecisionPolicy(threshold=0.8, target_accuracy=0.95, certified=True, method="test", level=0.95)


def _load_policy(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "policy.json"
        path.write_bytes(content)
        try:
            policy = DecisionPolicy.load(path)
        except ArtifactError as error:
            one_line(error)
            return
        data = json.loads(content)
        for key in ("threshold", "target_accuracy", "certified", "method"):
            assert getattr(policy, key) == data[key] and type(getattr(policy, key)) is type(data[key]), key
        assert policy.level == data.get("level")
        assert set(policy.decide([0.1, 0.99])) <= {"automate", "review"} and isinstance(policy.guarantee, str)


@FUZZ
@given(mutated(POLICY.to_dict()))
def test_fuzz_policy_structures(data):
    _load_policy(json.dumps(data).encode())


@FUZZ
@given(st.one_of(HOSTILE, flipped_bytes(json.dumps(POLICY.to_dict()).encode()), st.binary(max_size=64)))
def test_fuzz_policy_bytes(content):
    _load_policy(content)


# -- conformal.json ---------------------------------------------------------------------------------
def _fitted_sets(condition_on=None) -> ConformalPredictor:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=120)
    y = np.array([rng.choice(3, p=p) for p in probs])
    groups = rng.choice(["a", "b"], size=120)
    return ConformalPredictor(0.1, condition_on=condition_on, group_column="domain" if condition_on == "group"
                              else None).fit(probs, y, groups=groups if condition_on == "group" else None)


SETS = {name: _fitted_sets(name).to_dict() for name in (None, "class", "group")}
PROBS = np.random.default_rng(1).dirichlet(np.ones(3), size=5)


def _load_sets(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CONFORMAL_FILE
        path.write_bytes(content)
        try:
            predictor = ConformalPredictor.load(path)
        except ArtifactError as error:
            one_line(error)
            return
        data = json.loads(content)
        assert predictor.quantiles_ == {k: math.inf if q is None else q for k, q in data["quantiles"].items()}
        assert predictor.counts_ == data["counts"] and predictor.n_classes_ == data["n_classes"]
        groups = None
        if predictor.condition_on == "group":
            groups = [sorted(predictor.quantiles_)[0]] * len(PROBS)
        if predictor.n_classes_ == 3:
            sets = predictor.predict_set(PROBS, groups=groups)
            assert sets.shape == PROBS.shape and sets.dtype == bool


@FUZZ
@given(st.sampled_from(sorted(SETS, key=str)).flatmap(lambda name: mutated(SETS[name])))
def test_fuzz_conformal_structures(data):
    _load_sets(json.dumps(data).encode())


@FUZZ
@given(st.one_of(HOSTILE, flipped_bytes(json.dumps(SETS[None]).encode())))
def test_fuzz_conformal_bytes(content):
    _load_sets(content)


# -- the bundle's manifest.json ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bundle")
    two_class = PROBS[:, :2] / PROBS[:, :2].sum(axis=1, keepdims=True)
    write_bundle(folder, model=ModelIdentity("tiny", "transformers", "ab" * 32, "float32"), task=SENTIMENT, chat=None,
                 calibrator=None, policy=POLICY, fitted_on={"rows_sha256": "cd" * 32, "n_rows": 100},
                 extra_json={CONFORMAL_FILE: ConformalPredictor(0.1).fit(two_class, [0, 1, 0, 1, 0]).to_dict()})
    return folder


def _read_mutated_bundle(folder: Path, manifest: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        copy_ = Path(scratch) / "bundle"
        shutil.copytree(folder, copy_)
        (copy_ / "manifest.json").write_bytes(manifest)
        try:
            bundle = read_bundle(copy_)
        except ArtifactError as error:
            one_line(error)
            return
        data = json.loads(manifest)
        assert bundle.manifest == data and bundle.model.to_dict() == {**ModelIdentity.from_dict(
            data["model"], copy_).to_dict()}
        assert bundle.task.to_dict() == type(SENTIMENT).from_dict(data["task"]).to_dict()
        assert isinstance(bundle.fitted_on, dict) and bundle.decision_rule in ("threshold", "prediction_set")
        assert bundle.policy == POLICY


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_fuzz_bundle_manifest_structures(bundle_folder, data):
    original = json.loads((bundle_folder / "manifest.json").read_text())
    _read_mutated_bundle(bundle_folder, json.dumps(data.draw(mutated(original))).encode())


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_fuzz_bundle_manifest_bytes(bundle_folder, data):
    original = (bundle_folder / "manifest.json").read_bytes()
    _read_mutated_bundle(bundle_folder, data.draw(st.one_of(HOSTILE, flipped_bytes(original))))


# -- the scoring checkpoint (manifest.json + Parquet chunks) -------------------------------------------
LABELS = ("negative", "positive")


def _store_with_one_chunk(folder: Path) -> ScoreStore:
    store = ScoreStore(folder, "fingerprint", LABELS)
    mass = np.array([[0.2, 0.7], [0.5, 0.1]])
    store.append([text_key("a"), text_key("b")], Scores(LABELS, mass, np.array([0.1, 0.4]), np.array([False, True])))
    return store


def _open_store(folder: Path) -> None:
    try:
        keys, scores = ScoreStore(folder, "fingerprint", LABELS).load()
    except ArtifactError as error:
        one_line(error)
        return
    if scores is None:
        assert keys == []
        return
    assert len(keys) == len(scores)
    for i in range(len(scores)):
        mass, other, truncated = scores.mass[i], scores.other_mass[i], scores.truncated[i]
        uncovered = None if scores.uncovered_mass is None else scores.uncovered_mass[i]
        assert np.isfinite(mass).all() and (mass >= 0).all() and 0 <= other <= 1 and mass.sum() + other <= 1 + 1e-3
        assert isinstance(truncated, (bool, np.bool_)) and uncovered is None or 0 <= uncovered <= 1


@FUZZ
@given(st.one_of(mutated({"fingerprint": "fingerprint", "labels": list(LABELS), "chunks": ["chunk-00000.parquet"]})
                 .map(lambda d: json.dumps(d).encode()), HOSTILE))
def test_fuzz_scoring_checkpoint_manifest(content):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "store"
        _store_with_one_chunk(folder)
        (folder / "manifest.json").write_bytes(content)
        _open_store(folder)


FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)


@st.composite
def chunk_frames(draw):
    import pandas as pd

    n = draw(st.integers(1, 3))
    column = lambda: draw(st.lists(FLOATS, min_size=n, max_size=n))  # noqa: E731
    frame = pd.DataFrame({"key": draw(st.lists(st.sampled_from([text_key("a"), "x", "A" * 64]), min_size=n, max_size=n)),
                          "mass_negative": column(), "mass_positive": column(), "other_mass": column(),
                          "truncated": draw(st.sampled_from([[False] * n, [1] * n, ["no"] * n, [0.5] * n]))})
    if draw(st.booleans()):
        frame["uncovered_mass"] = column()
    if draw(st.booleans()):
        frame = frame.drop(columns=draw(st.sampled_from(list(frame.columns))))
    return frame


@FUZZ
@given(chunk_frames())
def test_fuzz_scoring_checkpoint_chunk_values(frame):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "store"
        _store_with_one_chunk(folder)
        frame.to_parquet(folder / "chunk-00000.parquet", index=False)
        _open_store(folder)


@FUZZ
@given(st.data())
def test_fuzz_scoring_checkpoint_chunk_bytes(data):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "store"
        _store_with_one_chunk(folder)
        chunk = folder / "chunk-00000.parquet"
        chunk.write_bytes(data.draw(flipped_bytes(chunk.read_bytes())))
        _open_store(folder)


# -- the fine-tuning checkpoint's state.json ------------------------------------------------------------
def _resume(folder: Path, state: bytes) -> None:
    import torch

    from confidently.finetune.checkpoint import STATE_FILE, Progress, load_checkpoint

    with tempfile.TemporaryDirectory() as scratch:
        copy_ = Path(scratch) / "run.checkpoint"
        shutil.copytree(folder, copy_)
        (copy_ / STATE_FILE).write_bytes(state)
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))], lr=0.1)
        try:
            _, _, rng, progress = load_checkpoint(copy_, optimizer=optimizer, identity={"data": "x"})
        except ArtifactError as error:
            one_line(error)
            return
        assert progress == Progress.from_dict(json.loads(state)["progress"]) and isinstance(progress.step, int)
        assert all(isinstance(value, torch.Tensor) for value in rng.values())


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_fuzz_training_checkpoint_state(training_checkpoint, data):
    original = json.loads((training_checkpoint / "state.json").read_text())
    content = data.draw(st.one_of(mutated(original).map(lambda d: json.dumps(d).encode()), HOSTILE))
    _resume(training_checkpoint, content)


# -- the de-quantized model cache's manifest ---------------------------------------------------------
@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cache") / "model"
    ensure_cache(folder, {"gguf_sha256": "ef" * 32}, lambda staging: (staging / "model.safetensors").write_bytes(
        b"weights" * 100), say=lambda message: None)
    return folder


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_fuzz_model_cache_manifest(model_cache, data):
    original = json.loads((model_cache / MANIFEST).read_text())
    content = data.draw(st.one_of(mutated(original).map(lambda d: json.dumps(d).encode()), HOSTILE,
                                  flipped_bytes(json.dumps(original).encode())))
    with tempfile.TemporaryDirectory() as scratch:
        copy_ = Path(scratch) / "model"
        shutil.copytree(model_cache, copy_)
        (copy_ / MANIFEST).write_bytes(content)
        problem = cache_problem(copy_, {"gguf_sha256": "ef" * 32})  # never raises: a damaged cache is rebuilt
        assert problem is None or (isinstance(problem, str) and "\n" not in problem)
        if problem is None:  # trusted only when every listed file is there with its recorded hash
            assert (copy_ / "model.safetensors").read_bytes() == b"weights" * 100
            assert json.loads(content)["gguf_sha256"] == "ef" * 32


# -- dataset loaders: JSONL and CSV ------------------------------------------------------------------
def _load_data(suffix: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"data{suffix}"
        path.write_bytes(content)
        try:
            dataset = load_dataset(path)
        except DataError as error:
            one_line(error)
            assert str(path) in str(error)
            return
        assert all(isinstance(text, str) and text.strip() for text in dataset.texts)
        assert dataset.labels is None or set(dataset.labels) <= {"negative", "positive"}


RECORD = {"text": "a fine film", "label": "positive", "domain": "films"}


@FUZZ
@given(st.lists(st.one_of(mutated(RECORD).map(json.dumps), st.text(max_size=20)), min_size=1, max_size=4))
def test_fuzz_jsonl_records(lines):
    _load_data(".jsonl", "\n".join(lines).encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.one_of(HOSTILE, flipped_bytes((json.dumps(RECORD) + "\n" + json.dumps(RECORD) + "\n").encode())))
def test_fuzz_jsonl_bytes(content):
    _load_data(".jsonl", content)


CSV_CELLS = st.text(alphabet=st.sampled_from('ab ,"\n\r\t-1éx'), max_size=8)


@FUZZ
@given(st.one_of(st.lists(st.lists(CSV_CELLS, min_size=1, max_size=3), min_size=1, max_size=4).map(
    lambda rows: ("text,label\n" + "\n".join(",".join(row) for row in rows)).encode()),
    flipped_bytes(b"text,label\na fine film,positive\nawful,negative\n"), HOSTILE))
def test_fuzz_csv(content):
    _load_data(".csv", content)
