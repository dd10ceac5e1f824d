"""Usage errors, as a user meets them: the installed ``confidently`` executable run in a subprocess.

Each must print exactly one line on stderr naming the command, the problem and the help to read,
exit with code 2 and never show a traceback; run-time errors keep exit code 1 and one line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from confidently.cli.app import app

EXECUTABLE = Path(sys.executable).with_name("confidently")


def confidently(*args, cwd=None) -> subprocess.CompletedProcess:
    assert EXECUTABLE.exists(), f"the package's console script is not installed at {EXECUTABLE}"
    return subprocess.run([str(EXECUTABLE), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd)


def assert_usage_error(result: subprocess.CompletedProcess, *expected: str) -> str:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    line = lines[0]
    assert line.startswith("error: confidently") and "--help' for usage." in line
    for text in expected:
        assert text in line, line
    return line


def _leaf_commands(group, path=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _leaf_commands(command, (*path, name))
        else:
            yield (*path, name)


COMMANDS = list(_leaf_commands(typer.main.get_command(app)))


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_an_unknown_option_is_one_line_and_exit_2_for_every_command(path):
    assert_usage_error(confidently(*path, "--no-such-option"), f"confidently {' '.join(path)}",
                       "No such option: --no-such-option")


@pytest.mark.parametrize("group", [(), ("data",), ("sagemaker",)], ids=lambda g: " ".join(("confidently", *g)))
def test_no_command_lists_the_commands(group):
    line = assert_usage_error(confidently(*group), "no command given; choose one of")
    assert ("score" in line) if not group else ("split" in line or "deploy" in line)


def test_unknown_command_lists_the_commands():
    assert_usage_error(confidently("scroe"), "No such command 'scroe'", "score")


def test_missing_argument_says_what_it_is_for():
    assert_usage_error(confidently("score"), "Missing argument", "JSONL, CSV/TSV or Parquet")


def test_missing_input_file(tmp_path):
    assert_usage_error(confidently("score", tmp_path / "nope.jsonl", "--out", tmp_path / "o.parquet"),
                       "nope.jsonl", "does not exist")
    assert_usage_error(confidently("finetune", "--data", tmp_path / "nope.jsonl", "--out", tmp_path / "a"),
                       "--data", "does not exist")
    assert_usage_error(confidently("data", "split", tmp_path / "nope.jsonl", "--out", tmp_path / "s"),
                       "does not exist")


def test_missing_required_option(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "fine"}\n')
    assert_usage_error(confidently("score", data), "Missing option '--out'")
    assert_usage_error(confidently("finetune"), "Missing option '--data'")


def test_out_of_range_and_malformed_values(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "fine"}\n')
    assert_usage_error(confidently("score", data, "--out", tmp_path / "o.csv", "--batch-size", "0"), "--batch-size")
    assert_usage_error(confidently("evaluate", "--target-accuracy", "2"), "--target-accuracy")
    assert_usage_error(confidently("next-token", "hi", "--top-k", "many"), "--top-k")
    assert_usage_error(confidently("classify", "hi", "--max-text-tokens", "4"), "--max-text-tokens")
    # FinetuneConfig's own range checks are usage errors too, found before any data is read
    assert_usage_error(confidently("finetune", "--data", data, "--out", tmp_path / "a", "--lora-dropout", "2"),
                       "lora_dropout")


def test_option_combinations_and_formats_are_checked_before_the_model_loads(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "fine"}\n')
    # a model name that does not exist: reaching the model would be exit 1, not 2
    line = assert_usage_error(confidently("score", data, "--out", tmp_path / "o.xlsx", "--model", "no-such-model"),
                              "unknown output format '.xlsx'", ".parquet")
    assert "no-such-model" not in line
    assert_usage_error(confidently("evaluate", "--model", "no-such-model"), "give --data, or both")
    # --data with a split file used to ignore the split file (or both of them) silently
    assert_usage_error(confidently("evaluate", "--data", data, "--calibration-data", data, "--model", "no-such-model"),
                       "give --data (split here), or --calibration-data and --test-data, not both")
    assert_usage_error(confidently("evaluate", "--data", data, "--calibration-data", data, "--test-data", data,
                                   "--model", "no-such-model"), "not both")
    assert_usage_error(confidently("classify", "hi", "--adapter", tmp_path / "none", "--model", "no-such-model"),
                       "--adapter", "not a folder")
    assert not list(tmp_path.glob("o.*"))


def test_an_unknown_calibration_method_is_refused_before_anything_is_scored(tmp_path):
    # it used to be skipped silently after scoring, with a note only in report.html
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "fine", "label": "positive"}\n')
    run = tmp_path / "run"
    assert_usage_error(confidently("evaluate", "--data", data, "--out", run, "--methods", "platt,isotonc",
                                   "--model", "no-such-model"), "--methods", "unknown calibration method 'isotonc'",
                       "platt, isotonic")
    assert_usage_error(confidently("evaluate", "--data", data, "--out", run, "--methods", "batch+plat"),
                       "'plat' in 'batch+plat'")
    assert_usage_error(confidently("evaluate", "--data", data, "--out", run, "--methods", ","),
                       "at least one calibration method")
    assert not run.exists()


def test_runtime_errors_stay_exit_1_and_one_line(tmp_path):
    result = confidently("classify", "hello", "--model", "no-such-model")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: unknown model 'no-such-model'")


def test_a_model_name_in_brackets_is_one_line_not_a_markup_traceback():
    result = confidently("classify", "hi", "--model", "[/x]")
    assert result.returncode == 1 and "Traceback" not in result.stderr and "MarkupError" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: cannot load model '[/x]'")


def test_help_still_exits_0():
    result = confidently("--help")
    assert result.returncode == 0 and "score" in result.stdout and result.stderr == ""


def test_a_file_system_refusal_is_one_line_and_exit_1(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    result = confidently("data", "generate", "--n", "200", "--out", blocker / "data.jsonl")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {blocker}: ")  # the path and the system's reason (File exists)



@pytest.mark.parametrize("command", [["score", "{data}", "--out", "{out}"],
                                     ["evaluate", "--data", "{data}", "--out", "{out}"],
                                     ["compare-scorers", "--data", "{data}", "--out", "{out}"]], ids=lambda c: c[0])
def test_a_bad_data_file_is_found_before_the_model_loads(tmp_path, command):
    # the commonest first mistake: the user's file names its columns differently (review, sentiment)
    data = tmp_path / "reviews.csv"
    data.write_text('review,sentiment\n"Loved it, ""really""",pos\nDull,neg\n')
    out = tmp_path / ("o.csv" if command[0] == "score" else "run")
    # a model that does not exist: reaching the model would name it instead of the file
    result = confidently(*[part.format(data=data, out=out) for part in command], "--model", "no-such-model")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = result.stderr.splitlines()[-1]
    assert line.startswith("error: ") and "reviews.csv" in line and "no text column 'text'" in line, result.stderr
    assert "columns present: review, sentiment" in line and "no-such-model" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("command", [["classify", "Great value."], ["serve"]])
def test_a_bundle_fitted_through_an_engine_used_locally_says_to_score_through_the_engine(tmp_path, command):
    # Before, the engine's model name was looked up as a local model: "unknown model 'fake'".
    import numpy as np

    from confidently.bundle.bundle import ModelIdentity, write_bundle
    from confidently.calibration import TemperatureCalibrator
    from confidently.decision.policy import DecisionPolicy
    from confidently.tasks.task import SENTIMENT

    probs = np.random.default_rng(0).dirichlet(np.ones(2), size=50)
    url = "http://127.0.0.1:9/v1"
    write_bundle(tmp_path / "run", model=ModelIdentity("fake", "openai", f"server:{url}#fake"), task=SENTIMENT,
                 chat=None, calibrator=TemperatureCalibrator().fit(probs, probs.argmax(axis=1)),
                 policy=DecisionPolicy(0.8, 0.9, True, "test"), fitted_on={"rows_sha256": "0" * 64, "n_rows": 50})
    assert_usage_error(confidently(*command, "--calibration", tmp_path / "run"),
                       "fitted through an OpenAI-compatible engine (model 'fake' at http://127.0.0.1:9/v1)",
                       f"--backend openai --base-url {url}")


@pytest.mark.parametrize("args, expected", [
    # before: the URL was ignored and 'fake' looked up as a local model ("unknown model 'fake'")
    (["classify", "hi", "--base-url", "http://127.0.0.1:9/v1", "--model", "fake"],
     ("--base-url", "applies to --backend openai")),
    # before: five connection attempts, then "cannot reach the server"
    (["classify", "hi", "--backend", "openai", "--base-url", "127.0.0.1:9/v1", "--model", "fake"],
     ("--base-url", "is not an http:// or https:// URL")),
    (["classify", "hi", "--server", "localhost:9"], ("--server", "is not an http:// or https:// URL")),
    # before: a model load first, then exit 1
    (["next-token", "hi", "--backend", "vllm"], ("--backend", "unknown backend 'vllm'")),
])
def test_server_options_are_checked_before_anything_loads_or_connects(args, expected):
    assert_usage_error(confidently(*args), *expected)


@pytest.mark.parametrize("args, expected", [
    (["--calibration-fraction", "0.99"], "the test split has no rows (--calibration-fraction 0.99 of the 40 rows of"),
    (["--calibration-fraction", "0.02"], "the calibration split has 1 row (--calibration-fraction 0.02 of the 40 rows"),
], ids=["no test rows", "one calibration row"])
def test_splits_evaluate_cannot_use_are_refused_before_the_model_loads(tmp_path, args, expected):
    # they used to be scored first, then fail with "probs has no rows" or a message about class-conditional sets
    data = tmp_path / "in.jsonl"
    data.write_text("".join(f'{{"text": "text {i}", "label": "{("negative", "positive")[i % 2]}"}}\n'
                            for i in range(40)))
    result = confidently("evaluate", "--data", data, *args, "--model", "no-such-model", "--out", tmp_path / "run")
    assert result.returncode == 1 and "Traceback" not in result.stderr and "no-such-model" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {expected}"), line
    assert "--calibration-fraction or label more data" in line and not (tmp_path / "run").exists()
