"""`classify`, `score` and `serve` with a calibration bundle, run as a user runs them (a subprocess).

With a bundle the answer is calibrated and decided; without one every name says "uncalibrated". A
bundle for another model or task, a tampered file or a missing policy is one line on stderr, exit
code 1, and nothing written.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from confidently.scoring.classifier import Classifier
from confidently.decision.calibrated import CalibratedClassifier
from confidently.tasks.task import Label, Task

from test_bundle import make_bundle

CLI = [sys.executable, "-m", "confidently"]
TEXTS = ["the movie was great", "I hate it", "awful and boring"]


def run(*args, check=True):
    result = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("bundle")
    make_bundle(folder, Classifier(model=str(tiny_model_dir), dtype="float32"))
    return folder


@pytest.fixture(scope="module")
def expected(bundle_dir):
    """What the Python API answers for TEXTS with the bundle (its model and task are the bundle's)."""
    return CalibratedClassifier.load(bundle_dir, dtype="float32").classify_many(TEXTS)


def test_python_dash_m_confidently_runs_the_cli():
    assert "classify" in run("--help").stdout


def test_classify_with_a_bundle_is_calibrated_and_decided(bundle_dir, expected):
    # --model and --task come from the bundle
    result = json.loads(run("classify", TEXTS[0], "--calibration", bundle_dir, "--json", "-k", "0").stdout)
    assert result["calibrated"] and result["label"] == expected[0].label
    assert result["confidence"] == pytest.approx(expected[0].confidence, abs=1e-6)
    assert result["decision"] == expected[0].decision and result["threshold"] == 0.7
    human = " ".join(run("classify", TEXTS[0], "--calibration", bundle_dir, "-k", "0").stdout.split())
    assert f"confidence {expected[0].confidence:.4f} (calibrated)" in human
    assert f"decision: {expected[0].decision} (automate at confidence >= 0.70)" in human
    assert f"guarantee: {expected[0].guarantee}" in human
    assert f"raw answer: {expected[0].raw_label} {expected[0].raw_confidence:.4f}" in human


def test_classify_without_a_bundle_says_uncalibrated(tiny_model_dir):
    human = " ".join(run("classify", TEXTS[0], "--model", tiny_model_dir, "-k", "0").stdout.split())
    assert "(uncalibrated: share of label mass)" in human and "pass --calibration DIR" in human
    result = json.loads(run("classify", TEXTS[0], "--model", tiny_model_dir, "--json", "-k", "0").stdout)
    assert not result["calibrated"] and result["calibrated_probs"] is None and result["decision"] is None
    assert result["label"] == result["raw_label"]


def test_score_writes_calibrated_columns_beside_the_raw_ones(bundle_dir, expected, tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n"
                            for t, lab in zip(TEXTS, ["positive", "negative", "negative"])))
    out = tmp_path / "out.parquet"
    summary = " ".join(run("score", data, "--out", out, "--calibration", bundle_dir).stdout.split())
    frame = pd.read_parquet(out)
    assert {"raw_p_positive", "raw_prediction", "raw_confidence", "calibrated_p_positive", "calibrated_prediction",
            "calibrated_confidence", "decision"} <= set(frame.columns)
    assert list(frame["calibrated_prediction"]) == [p.label for p in expected]
    assert list(frame["decision"]) == [p.decision for p in expected]
    assert frame["calibrated_confidence"].tolist() == pytest.approx([p.confidence for p in expected], abs=1e-6)
    assert "raw accuracy" in summary and "calibrated accuracy" in summary and "automated" in summary


def tamper(folder) -> None:
    (folder / "policy.json").write_text((folder / "policy.json").read_text().replace("0.7", "0.1"))


@pytest.mark.parametrize("case,message", [
    ("other model", "was fitted on"),
    ("other task", "was fitted for task 'sentiment'"),
    ("tampered", "policy.json changed since the bundle was written"),
    ("no policy", "policy.json is missing"),
])
@pytest.mark.parametrize("command", ["classify", "score"])
def test_a_bad_bundle_is_one_line_and_nothing_is_written(tiny_model_dir, other_tiny_model_dir, tmp_path, case,
                                                         message, command):
    folder = tmp_path / "bundle"
    make_bundle(folder, Classifier(model=str(tiny_model_dir), dtype="float32"))
    extra = []
    if case == "other model":
        extra = ["--model", other_tiny_model_dir]
    elif case == "other task":
        task = tmp_path / "triage.json"
        task.write_text(json.dumps(Task("triage", "Good? {text}", (Label("bad", ("no",)),
                                                                    Label("good", ("yes",)))).to_dict()))
        extra = ["--task", task]
    elif case == "tampered":
        tamper(folder)
    else:
        (folder / "policy.json").unlink()
    data, out = tmp_path / "in.jsonl", tmp_path / "out.parquet"
    data.write_text(json.dumps({"text": TEXTS[0]}) + "\n")
    args = [TEXTS[0]] if command == "classify" else [data, "--out", out]
    result = run(command, *args, "--calibration", folder, *extra, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert message in lines[-1] and "Traceback" not in result.stderr
    assert lines[-1].startswith("error:") and str(folder) in lines[-1]
    assert result.stdout == "" and not out.exists() and not (tmp_path / "out.parquet.partial").exists()


def test_a_bundle_for_another_task_is_refused_before_the_model_loads(bundle_dir, tmp_path):
    task = tmp_path / "triage.json"
    task.write_text(json.dumps(Task("triage", "Good? {text}", (Label("bad", ("no",)), Label("good", ("yes",)))).to_dict()))
    # a model that does not exist: reaching the model would name it instead of the task
    result = run("classify", TEXTS[0], "--calibration", bundle_dir, "--task", task, "--model", "no-such-model",
                 check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error:") and "was fitted for task 'sentiment'" in line and "triage" in line
    assert "no-such-model" not in result.stderr


@pytest.mark.parametrize("breakage,message", [
    (lambda f: (f / "adapter_model.safetensors").write_bytes((f / "adapter_model.safetensors").read_bytes()[:-8]
                                                            + b"\0" * 8), "adapter_model.safetensors changed since"),
    (lambda f: (f / "manifest.json").write_text(json.dumps({k: v for k, v in json.loads(
        (f / "manifest.json").read_text()).items() if k != "files"})), "has no 'files' list"),
])
def test_classify_adapter_checks_every_hash_before_loading(tiny_model_dir, tmp_path, breakage, message):
    from confidently.backends.transformers_backend import TransformersBackend
    from server.conftest import make_adapter

    weights_id = TransformersBackend(str(tiny_model_dir), dtype="float32").weights_id
    folder = make_adapter(tiny_model_dir, tmp_path / "adapter", seed=5, weights_id=weights_id,
                          model_name=str(tiny_model_dir))
    assert run("classify", TEXTS[0], "--adapter", folder, "--json", "-k", "0").returncode == 0
    breakage(folder)
    result = run("classify", TEXTS[0], "--adapter", folder, check=False)
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_demo_ends_by_classifying_with_the_bundle_it_wrote(tiny_model_dir, tmp_path):
    out = tmp_path / "demo"
    result = run("demo", "--out", out, "--model", tiny_model_dir, "--n", 400, "--eval-size", 50, "--methods",
                 "platt", "--budget-repeats", 1)
    stdout, stderr = " ".join(result.stdout.split()), " ".join(result.stderr.split())
    for stage in ("› generating 400 sentiment rows", "› scoring", "› fitting 1 calibration methods",
                  "› writing the calibration bundle"):
        assert stage in stderr
    assert "classified with the calibration bundle just written" in stdout
    assert f"calibration bundle: {out.resolve()}" in stdout
    expected = CalibratedClassifier.load(out, dtype="float32").classify_many(["I love this movie!"])[0]
    assert f"{expected.label} {expected.confidence:.4f}" in stdout and "guarantee:" in stdout


def test_score_states_each_share_with_its_n_and_exact_interval(bundle_dir, tmp_path):
    from confidently.decision.exact_share import ExactShare

    assert ExactShare(2, 3).text() == "66.7% (2/3, exact 95% CI 9.4%–99.2%)"
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n"
                            for t, lab in zip(TEXTS, ["positive", "negative", "negative"])))
    summary = " ".join(run("score", data, "--out", tmp_path / "out.jsonl", "--calibration", bundle_dir).stdout.split())
    frame = pd.read_json(tmp_path / "out.jsonl", lines=True)
    right = int((frame["calibrated_prediction"] == ["positive", "negative", "negative"]).sum())
    assert f"calibrated accuracy {ExactShare(right, 3).text()}" in summary


def test_a_folder_is_applied_at_its_newest_version_by_the_cli_and_the_api_as_serve_applies_it(bundle_dir, tmp_path):
    import shutil

    from confidently.bundle.bundle import read_bundle
    from confidently.bundle.versions import write_version
    from confidently.decision.policy import DecisionPolicy

    folder = tmp_path / "run"
    shutil.copytree(bundle_dir, folder)
    root = read_bundle(folder)
    review_all = DecisionPolicy(threshold=None, target_accuracy=0.99, certified=False, method="test", level=0.95)
    write_version(root, 2, calibrator=root.calibrator, policy=review_all, fitted_on=root.fitted_on)
    done = run("classify", TEXTS[0], "--calibration", folder, "--json", "-k", "0")
    shown = json.loads(done.stdout)
    assert shown["decision"] == "review" and shown["review_reason"] == "no_threshold"
    assert "applying version 2" in " ".join(done.stderr.split())
    api = CalibratedClassifier.load(folder, dtype="float32")
    assert api.policy == review_all and api.classify(TEXTS[0], top_k=0).decision == "review"
    assert CalibratedClassifier(api.classifier, bundle=folder).policy == review_all
