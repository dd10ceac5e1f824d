"""Smaller input edge cases of the command line: each is one clear line, found before the model works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from confidently.scoring.classifier import Classifier
from confidently.data import load_dataset
from confidently.errors import ArtifactError, ConfigError, DataError
from confidently.workflows.score_file import score_file
from confidently.decision.policy import DecisionPolicy

EXECUTABLE = Path(sys.executable).with_name("confidently")


def confidently(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXECUTABLE), *map(str, args)], capture_output=True, text=True, timeout=300)


def test_a_lone_surrogate_names_file_and_line(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "fine"}\n{"text": "bad \\ud800 escape"}\n')
    with pytest.raises(DataError, match=r"in.jsonl:2: the JSON escape \\ud800 is a lone surrogate"):
        load_dataset(data)


def test_a_surrogate_pair_is_a_character(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "smile \\ud83d\\ude00"}\n')
    assert load_dataset(data).texts == ("smile \U0001F600",)


def test_score_cli_refuses_a_lone_surrogate_in_one_line(tiny_model_dir, tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "fine"}\n{"text": "x", "note": "\\udc00"}\n')
    result = confidently("score", data, "--out", tmp_path / "o.jsonl", "--model", tiny_model_dir)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"error: {data}:2: the JSON escape \\udc00 is a lone surrogate")


def test_an_unterminated_string_is_reported_once(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "never closed}\n')
    with pytest.raises(DataError) as error:
        load_dataset(data)
    assert "Unterminated string starting at column 10" in str(error.value) and "at at" not in str(error.value)


def test_label_column_can_be_another_column_than_label(tmp_path):
    data = tmp_path / "in.csv"
    pd.DataFrame({"text": ["great", "awful"], "label": ["draft", "draft"], "stars": [1, 0]}).to_csv(data, index=False)
    dataset = load_dataset(data, label_column="stars")
    assert dataset.labels == ("positive", "negative") and list(dataset.columns["label_original"]) == ["draft", "draft"]
    frame = dataset.to_frame()
    assert list(frame["label"]) == ["positive", "negative"] and list(frame["label_original"]) == ["draft", "draft"]


def test_a_renamed_column_that_would_clash_is_refused(tmp_path):
    data = tmp_path / "in.csv"
    pd.DataFrame({"text": ["great"], "label": ["x"], "label_original": ["y"], "stars": [1]}).to_csv(data, index=False)
    with pytest.raises(DataError, match="label_original"):
        load_dataset(data, label_column="stars")


def test_score_cli_maps_another_label_column(tiny_model_dir, tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in [{"text": "great film", "label": "?", "stars": 1},
                                                           {"text": "awful", "label": "?", "stars": 0}]))
    out = tmp_path / "out.jsonl"
    result = confidently("score", data, "--out", out, "--model", tiny_model_dir, "--label-column", "stars")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = pd.read_json(out, lines=True)
    # the file's columns as they came (score keeps them); the mapped label column decides the accuracy
    assert list(rows.columns[:3]) == ["text", "label", "stars"] and "label_original" not in rows
    assert list(rows["label"]) == ["?", "?"] and list(rows["stars"]) == [1, 0]
    assert "raw accuracy" in " ".join(result.stdout.split())


def test_a_device_this_build_lacks_is_one_line(tiny_model_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = confidently("classify", "hello", "--model", tiny_model_dir, "--device", "cuda")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: device 'cuda': this torch build")
    result = confidently("classify", "hello", "--model", tiny_model_dir, "--device", "gpu")
    assert result.stderr.splitlines()[-1] == "error: unknown device 'gpu': use auto, cpu, cuda or cuda:N"


def test_the_output_format_is_checked_before_any_row_is_scored(tiny_backend, tmp_path):
    clf = Classifier(backend=tiny_backend)
    clf.score = lambda *a, **k: pytest.fail("scored before the output format was checked")
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "fine"}\n')
    with pytest.raises(ConfigError, match="unknown output format '.xlsx'"):
        score_file(clf, data, tmp_path / "out.xlsx", progress=False)


@pytest.mark.parametrize("field,value", [("threshold", True), ("threshold", False), ("target_accuracy", True)])
def test_a_boolean_is_not_a_probability_in_a_policy(field, value):
    data = {**DecisionPolicy(0.9, 0.95, True, "test").to_dict(), field: value}
    with pytest.raises(ArtifactError, match=field):
        DecisionPolicy.from_dict(data)
