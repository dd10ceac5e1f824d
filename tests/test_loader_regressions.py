"""Regression tests for the loader bugs the fuzz tests (tests/test_fuzz_loaders.py) found: each case
used to escape as a raw Python error or load a silently wrong value."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from confidently.bundle.bundle import ModelIdentity, read_bundle, write_bundle
from confidently.decision.conformal import ConformalPredictor
from confidently.data import load_dataset
from confidently.errors import ArtifactError, DataError, TaskError
from confidently.files import sha256_file
from confidently.scoring.checkpointed import ScoreStore, text_key
from confidently.tasks.task import SENTIMENT, Task, get_task
from confidently.decision.policy import DecisionPolicy
from confidently.types import Scores
from confidently.models.verified_cache import MANIFEST, cache_problem, ensure_cache

HUGE_INT = '{"a": ' + "9" * 5000 + "}"  # json raises a plain ValueError past 4300 digits
DEEP = "[" * 100_000 + "]" * 100_000  # json raises RecursionError
POLICY = DecisionPolicy(threshold=0.8, target_accuracy=0.95, certified=True, method="test", level=0.95)


@pytest.mark.parametrize("content", [HUGE_INT, DEEP])
def test_json_artifacts_with_a_huge_integer_or_deep_nesting_are_one_artifact_error(content, tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(content)
    with pytest.raises(ArtifactError, match="policy.json: not a (readable|usable) JSON file"):
        DecisionPolicy.load(path)


def _bundle(folder: Path) -> Path:
    write_bundle(folder, model=ModelIdentity("tiny", "transformers", "ab" * 32), task=SENTIMENT, chat=None,
                 calibrator=None, policy=POLICY, fitted_on={"rows_sha256": "cd" * 32, "n_rows": 10})
    return folder


def _edit(folder: Path, change) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("change,message", [
    (lambda m: m["task"]["labels"][0].update(words=[None]), "words must be strings"),
    (lambda m: m["task"]["labels"][0].update(words="no"), "words must be a list of strings"),
    (lambda m: m["task"].update(labels=["negative", "positive"]), "labels must be a list of"),
    (lambda m: m["task"].update(template=7), "task field 'template' must be str"),
    (lambda m: m["task"].update(multi_token="yes"), "task field 'multi_token' must be bool"),
    (lambda m: m.update(fitted_on=[1]), "fitted_on must be an object"),
    (lambda m: m["fitted_on"].update(n_rows="10"), "fitted_on must be an object"),
])
def test_a_manifest_with_wrongly_typed_fields_is_one_artifact_error(change, message, tmp_path):
    folder = _bundle(tmp_path)
    _edit(folder, change)
    with pytest.raises(ArtifactError, match=message) as caught:
        read_bundle(folder)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("content", [HUGE_INT, DEEP])
def test_a_manifest_with_a_huge_integer_or_deep_nesting_is_one_artifact_error(content, tmp_path):
    folder = _bundle(tmp_path)
    (folder / "manifest.json").write_text(content)
    with pytest.raises(ArtifactError, match="manifest.json: not a usable JSON file"):
        read_bundle(folder)


@pytest.mark.parametrize("content", [HUGE_INT, DEEP, b"\xff{"])
def test_a_task_file_that_json_cannot_read_is_one_task_error(content, tmp_path):
    path = tmp_path / "task.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(TaskError, match="not a readable task file"):
        get_task(str(path))


def test_a_task_with_non_string_words_is_a_task_error():
    with pytest.raises(TaskError, match="words must be strings"):
        Task.from_dict({**SENTIMENT.to_dict(), "labels": [{"name": "a", "words": [1]}, {"name": "b", "words": ["b"]}]})


@pytest.mark.parametrize("change,message", [
    (lambda d: d["quantiles"].update(all=True), r"quantiles\['all'\] must be a number in \[0, 1\]"),
    (lambda d: d["counts"].update(all=12.7), r"counts\['all'\] must be a whole number"),
    (lambda d: d.update(n_classes=True), "n_classes must be a whole number >= 2"),
    (lambda d: d.update(alpha=True), r"alpha must be in \(0, 1\); got True"),
])
def test_prediction_sets_are_never_coerced(change, message):
    rng = np.random.default_rng(0)
    data = ConformalPredictor(0.1).fit(rng.dirichlet([1, 1], 50), rng.integers(0, 2, 50)).to_dict()
    change(data)
    with pytest.raises(ArtifactError, match=message):
        ConformalPredictor.from_dict(data)


LABELS = ("negative", "positive")


def _store(folder: Path) -> Path:
    ScoreStore(folder, "fp", LABELS).append([text_key("a")], Scores(LABELS, np.array([[0.2, 0.7]]), np.array([0.1]),
                                                                    np.array([False])))
    return folder


@pytest.mark.parametrize("column,values,message", [
    ("truncated", ["no"], "the truncated column holds (object|str)"),
    ("truncated", [0.5], "the truncated column holds float64"),
    ("other_mass", [float("nan")], "other mass outside"),
    ("other_mass", [0.5], "add up to more than 1"),
    ("key", ["not-a-key"], "row keys are not sha256"),
])
def test_a_checkpoint_chunk_with_impossible_values_is_refused_not_reused(column, values, message, tmp_path):
    folder = _store(tmp_path / "store")
    frame = pd.read_parquet(folder / "chunk-00000.parquet")
    frame[column] = values
    frame.to_parquet(folder / "chunk-00000.parquet", index=False)
    with pytest.raises(ArtifactError, match=message):
        ScoreStore(folder, "fp", LABELS).load()


@pytest.mark.parametrize("content", [HUGE_INT, DEEP])
def test_a_checkpoint_manifest_json_cannot_read_is_one_artifact_error(content, tmp_path):
    folder = _store(tmp_path / "store")
    (folder / "manifest.json").write_text(content)
    with pytest.raises(ArtifactError, match="manifest.json: unreadable"):
        ScoreStore(folder, "fp", LABELS)


def test_a_library_message_spanning_lines_becomes_one_line(tmp_path):
    folder = _store(tmp_path / "store")
    (folder / "chunk-00000.parquet").write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    with pytest.raises(ArtifactError) as caught:
        ScoreStore(folder, "fp", LABELS).load()
    assert "\n" not in str(caught.value) and "is damaged" in str(caught.value)


def test_a_model_cache_manifest_nested_too_deep_is_a_problem_not_a_crash(tmp_path):
    folder = tmp_path / "cache"
    ensure_cache(folder, {"id": "x"}, lambda staging: (staging / "w.bin").write_bytes(b"w"), say=lambda _: None)
    (folder / MANIFEST).write_text(DEEP)
    assert "is unreadable (RecursionError" in cache_problem(folder, {"id": "x"})
    assert sha256_file(folder / "w.bin")  # the folder is left for ensure_cache to rebuild


@pytest.mark.parametrize("line,message", [(HUGE_INT, "in.jsonl:2: malformed JSON"),
                                          ('{"text": ' + DEEP + "}", "in.jsonl:2: malformed JSON \\(nested too deeply")])
def test_jsonl_that_json_cannot_read_is_a_data_error_naming_the_line(line, message, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "fine", "label": "positive"}\n' + line + "\n")
    with pytest.raises(DataError, match=message):
        load_dataset(path)


@pytest.mark.parametrize("change,message", [
    (lambda s: s.pop("identity"), "state.json is damaged: expected identity"),
    (lambda s: s.update(rng="cpu"), "state.json is damaged: expected identity"),
    (lambda s: s["progress"].update(step="3"), "progress.step must be a whole number"),
    (lambda s: s["progress"].update(extra=1), "progress must hold exactly"),
    (lambda s: s["optimizer"].update(scalars=[1]), "state.json is damaged \\(AttributeError"),
    (lambda s: s["optimizer"].update(param_groups=[]), "state.json is damaged \\(ValueError"),
    (lambda s: s.update(rng=["gpu"]), "state.json is damaged \\(KeyError"),
])
def test_a_damaged_training_checkpoint_is_one_artifact_error(training_checkpoint, change, message, tmp_path):
    import shutil

    import torch

    from confidently.finetune.checkpoint import STATE_FILE, load_checkpoint

    folder = tmp_path / "run.checkpoint"
    shutil.copytree(training_checkpoint, folder)
    state = json.loads((folder / STATE_FILE).read_text())
    change(state)
    (folder / STATE_FILE).write_text(json.dumps(state))
    with pytest.raises(ArtifactError, match=message) as caught:
        load_checkpoint(folder, optimizer=torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))]),
                        identity={"data": "x"})
    assert "\n" not in str(caught.value)
