"""``confidently data generate`` and ``confidently data split`` through typer's runner and as a real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import confidently.cli  # noqa: F401  (registers the commands on the app)
from confidently.cli.app import app
from confidently.data import load_dataset
from confidently.errors import DataError
from confidently.files import sha256_file

runner = CliRunner()


def flat(output: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(output.split())


def test_generate_writes_the_file_and_prints_the_table(tmp_path):
    out = tmp_path / "sentiment.jsonl"
    result = runner.invoke(app, ["data", "generate", "--n", "400", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Generated examples per category and domain" in result.output
    for word in ("strong", "medium", "weak", "neutral", "sports", "workplace", "other", "400"):
        assert word in result.output
    # Quotas are rounded per category, so 400 rows land within a point of the setting.
    assert re.search(r"positive in sports: 6[67]\.\d%, negative in the workplace: 6[67]\.\d%", flat(result.output))
    ds = load_dataset(out)
    assert len(ds) == 400 and list(ds.columns) == ["category", "sentiment", "domain"]


def test_generate_with_sizes_bias_and_parquet(tmp_path):
    out = tmp_path / "s.parquet"
    result = runner.invoke(app, ["data", "generate", "--sizes", "weak=20,strong_negative=4", "--domain-bias", "0.5",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(load_dataset(out)) == 44


@pytest.mark.parametrize("args", [["--sizes", "weak:20"], ["--n", "10", "--sizes", "weak=2"], ["--domain-bias", "2"]])
def test_generate_rejects_bad_options(tmp_path, args):
    result = runner.invoke(app, ["data", "generate", "--out", str(tmp_path / "x.jsonl"), *args])
    assert result.exit_code == 2
    assert not (tmp_path / "x.jsonl").exists()


def test_split_writes_three_files_and_a_manifest(tmp_path):
    data = tmp_path / "s.jsonl"
    assert runner.invoke(app, ["data", "generate", "--n", "800", "--out", str(data)]).exit_code == 0
    out = tmp_path / "splits"
    result = runner.invoke(app, ["data", "split", str(data), "--out", str(out), "--fractions", "0.6,0.2,0.2"])
    assert result.exit_code == 0, result.output
    assert "Rows per split and label" in result.output and "Rows per split and category" in result.output
    assert "texts shared between splits: 0" in flat(result.output)
    sizes = {name: len(load_dataset(out / f"{name}.jsonl")) for name in ("train", "calibration", "test")}
    assert sizes == {"train": 480, "calibration": 160, "test": 160}
    manifest = json.loads((out / "split.json").read_text())
    assert manifest["fractions"] == [0.6, 0.2, 0.2] and manifest["seed"] == 42
    assert manifest["input"]["sha256"] == sha256_file(data)
    assert manifest["outputs"]["test"]["sha256"] == sha256_file(out / "test.jsonl")
    assert manifest["counts"]["train"] == {"negative": 240, "positive": 240}


def test_split_a_bad_file_fails_with_the_message(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "positive"}\n{"text": "hm", "label": "maybe"}\n')
    result = runner.invoke(app, ["data", "split", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    # Under CliRunner our error propagates; `main()` turns it into one line (tested below).
    assert isinstance(result.exception, DataError)
    assert str(result.exception).startswith(f"{bad}:2: unknown label 'maybe'")
    assert not (tmp_path / "o").exists()


def test_error_is_one_line_on_stderr_from_the_installed_command(tmp_path):
    executable = Path(sys.executable).with_name("confidently")
    if not executable.exists():
        pytest.skip("the confidently entry point is not installed in this environment")
    bad = tmp_path / "bad.csv"
    bad.write_text("review,label\nnice,positive\n")
    proc = subprocess.run([str(executable), "data", "split", str(bad), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {bad}: no text column 'text' (columns present: review, label); "
        "choose one with text_column / --text-column"
    ]


@pytest.mark.parametrize("command", ["generate", "split"])
def test_help_has_an_example(command):
    result = runner.invoke(app, ["data", command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and f"confidently data {command}" in result.output
