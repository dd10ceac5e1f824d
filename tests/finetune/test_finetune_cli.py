"""The finetune and compare commands, run as a user runs them (the entry point, in a subprocess)."""

import json
import re
import subprocess
import sys

import pytest

from confidently.cli.scoring import rule_text
from confidently.data import save_dataset
from confidently.decision.exact_share import ExactShare

CLI = [sys.executable, "-m", "confidently.cli.__main__"]
TINY = ["--target-modules", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "--lr", "3e-3",
        "--batch-size", "8", "--grad-accum", "1", "--patience", "0"]


def run(*args, check=True):
    result = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.parametrize("command", ["finetune", "compare"])
def test_help_has_an_example(command):
    text = " ".join(run(command, "--help").stdout.split())
    assert f"Example: confidently {command} --data" in text


def test_finetune_then_compare(tiny_model_dir, separable, tmp_path):
    full = separable(300, seed=0)
    save_dataset(full, tmp_path / "full.jsonl")
    adapter = tmp_path / "adapters" / "tiny"
    out = run("finetune", "--data", tmp_path / "full.jsonl", "--split-seed", 3, "--model", tiny_model_dir,
              "--out", adapter, "--max-steps", 20, *TINY).stdout
    assert "adapter:" in out and "trained 20/20 steps" in " ".join(out.split())
    manifest = json.loads((adapter / "manifest.json").read_text())
    assert manifest["hyperparameters"]["max_steps"] == 20 and manifest["splits"]["calibration_source"] == "given"
    # the small calibration and validation parts' figures say how they were computed and carry intervals
    calibration = manifest["calibration"]
    ece = calibration["ece_intervals"]["raw"]
    assert ece["low"] <= ece["value"] <= ece["high"] and ece["sample_value"] == pytest.approx(calibration["ece_raw"])
    flat = " ".join(out.split())
    assert f"ECE raw {ece['value']:.4f} [{ece['low']:.4f}, {ece['high']:.4f}]" in flat
    validation = manifest["validation"]
    assert "20 equal-width bins" in flat
    assert f"accuracy {ExactShare.of(validation['accuracy'], validation['n']).text()}" in flat  # exact 95% CI
    policy = json.loads((adapter / "policy.json").read_text())
    assert f"decision rule: {rule_text('threshold', policy['threshold'])}; guarantee: {policy['guarantee']}" in (
        " ".join(out.split()))
    out = run("compare", "--data", tmp_path / "full.jsonl", "--split-seed", 3, "--adapter", adapter,
              "--out", tmp_path / "run", "--n-resamples", 50).stdout
    assert "report:" in out
    line = " ".join(out.split())
    assert re.search(r"automated certified at 95% \(Platt\): [\d.]+% → [\d.]+% \(Δ [+-][\d.]+% \[[+-][\d.]+%, "
                     r"[+-][\d.]+%\]\)", line), line
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # the console's headline says n, how the calibrators were fitted, and gives each figure its interval
    flat = " ".join(out.split())
    accuracy = metrics["metrics"]["base"]["raw"]["metrics"]["accuracy"]
    assert "accuracy base → fine-tuned (n=45 test rows):" in flat and "ECE after Platt (20 equal-width bins):" in flat
    assert f"{accuracy['value']:.3f} [{accuracy['ci_low']:.3f}, {accuracy['ci_high']:.3f}] →" in flat
    assert f"calibration: {metrics['calibration']}" in flat and "calibration rows per model" in flat
    assert "intervals: 95% paired bootstrap" in flat
    assert metrics["n_test"] == 45  # the test part of the same split: 15% of 300
    assert (tmp_path / "run" / "report.html").exists()
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "| category=weak |" in summary and "| domain=sports |" in summary  # the slices table
    assert "| workplace |" in summary  # neutral texts by domain
    assert "no threshold is certified without calibration rows" not in line
    # without calibration rows nothing can be certified: the output says so and what to give
    from confidently.data import split_dataset

    save_dataset(split_dataset(full, seed=3).test, tmp_path / "test.jsonl")
    out = run("compare", "--data", tmp_path / "test.jsonl", "--adapter", adapter, "--out", tmp_path / "run2",
              "--n-resamples", 20).stdout
    line = " ".join(out.split())
    assert "cross-fitted on the test rows" in line
    assert "no threshold is certified without calibration rows: give --calibration-data" in line


def test_bad_labels_are_one_line_and_exit_1(tiny_model_dir, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "fine", "label": "positive"}\n{"text": "meh", "label": "so-so"}\n')
    result = run("finetune", "--data", data, "--model", tiny_model_dir, "--out", tmp_path / "a", check=False)
    assert result.returncode == 1 and "so-so" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "a").exists()


def test_bad_setting_is_one_line_and_exit_2(tiny_model_dir, tmp_path):
    # an out-of-range setting is a usage error (exit 2), reported before any data is read
    data = tmp_path / "x.jsonl"
    data.write_text('{"text": "fine", "label": "positive"}\n')
    result = run("finetune", "--data", data, "--out", tmp_path / "a", "--validation-fraction", 0.7, check=False)
    assert result.returncode == 2 and "validation_fraction" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_task_with_a_prompt_ensemble_is_no_longer_refused_the_data_is_checked_first(tmp_path):
    # Was refused (an adapter trained one prompt); now it trains every prompt. The data here (an unknown label)
    # is still checked before the model (no such model) loads: one line naming it.
    from dataclasses import replace

    from confidently.tasks.task import SENTIMENT

    task = tmp_path / "ensemble.json"
    other = replace(SENTIMENT, name="review", template="Movie review: {text}\nIs it positive?")
    task.write_text(json.dumps(replace(SENTIMENT, ensemble=(other,)).to_dict()))
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "fine", "label": "positive"}\n{"text": "meh", "label": "so-so"}\n')
    result = run("finetune", "--data", data, "--task", task, "--model", "no-such-model", "--out", tmp_path / "a",
                 check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "prompt ensemble" not in result.stderr
    assert "so-so" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "a").exists()


def test_too_little_data_is_found_before_the_model_loads(tmp_path):
    # 31 labelled rows leave 5 for calibration: the split is checked first, so a model that does not exist
    # is never looked up (before, the model loaded, then "only 5 calibration rows")
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"text": f"text number {i}", "label": ("positive", "negative")[i % 2]}) + "\n"
                            for i in range(31)))
    result = run("finetune", "--data", data, "--model", "no-such-model", "--out", tmp_path / "a", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "calibration rows after splitting 31 rows; need at least 30" in result.stderr, result.stderr


def test_compare_warns_before_loading_when_test_rows_are_ones_the_adapter_was_trained_on(trained, separable,
                                                                                       tmp_path):
    from confidently.data import Dataset

    train, fresh = trained.splits.train, separable(40, seed=7)
    mixed = Dataset(texts=[*train.texts[:10], *fresh.texts], labels=[*train.labels[:10], *fresh.labels])
    save_dataset(mixed, tmp_path / "mixed.jsonl")
    result = run("compare", "--data", tmp_path / "mixed.jsonl", "--adapter", trained.path, "--out", tmp_path / "run",
                 "--n-resamples", 20)
    warning = " ".join(result.stderr.split())
    assert "warning: 10 of 50 labelled rows have texts the bundle" in warning and "(10 as training)" in warning
    assert warning.index("warning:") < warning.index("loading")  # said before the model loads
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "10 of 50 labelled rows" in metrics["metadata"]["test rows the adapter saw"]
    # score's figures again on the 40 rows the adapter never saw, each with n and its exact interval
    unseen = metrics["unseen_by_adapter"]
    assert unseen["base"]["rows"] == 40 and unseen["fine-tuned"]["calibrated_accuracy"]["n"] == 40
    share = {model: {name: ExactShare(f["k"], f["n"]).text() for name, f in figures.items() if name != "rows"}
             for model, figures in unseen.items()}
    said = " ".join(result.stdout.split())
    assert (f"on the 40 rows it never saw: base raw accuracy {share['base']['raw_accuracy']}; fine-tuned raw accuracy "
            f"{share['fine-tuned']['raw_accuracy']}, calibrated accuracy {share['fine-tuned']['calibrated_accuracy']}"
            ) in said
    save_dataset(fresh, tmp_path / "fresh.jsonl")
    clean = run("compare", "--data", tmp_path / "fresh.jsonl", "--adapter", trained.path, "--out", tmp_path / "run2",
                "--n-resamples", 20)
    assert "warning:" not in clean.stderr
