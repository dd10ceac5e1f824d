"""The scoring commands, run as a user runs them (the installed entry point, in a subprocess)."""

import json
import subprocess
import sys

import pandas as pd
import pytest

CLI = [sys.executable, "-m", "confidently.cli.__main__"]


def run(*args, check=True):
    result = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_next_token_table(tiny_model_dir):
    out = run("next-token", "Knock knock.", "--model", tiny_model_dir, "--top-k", "5").stdout
    assert "rank" in out and "log-prob" in out and "top 5 tokens hold" in out


def test_next_token_json(tiny_model_dir):
    rows = json.loads(run("next-token", "Knock knock.", "--model", tiny_model_dir, "--json").stdout)
    assert [r["rank"] for r in rows] == list(range(1, 13)) and sum(r["prob"] for r in rows) <= 1


def test_classify_json(tiny_model_dir):
    result = json.loads(run("classify", "the movie was great", "--model", tiny_model_dir, "--json").stdout)
    assert result["label"] in ("positive", "negative")
    assert sum(result["mass"].values()) + result["other_mass"] == pytest.approx(1, abs=1e-5)
    assert set(result["variants"]) == {"negative", "positive"}


def test_score_writes_every_row(tiny_model_dir, tmp_path):
    data = tmp_path / "in.csv"
    pd.DataFrame({"review": ["great film", "awful", "I love it"], "stars": [1, 0, 1]}).to_csv(data, index=False)
    out = tmp_path / "out.jsonl"
    stdout = run("score", data, "--out", out, "--model", tiny_model_dir, "--text-column", "review",
                 "--label-column", "stars").stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # the file's own columns, names and values as they came, then the model's
    assert len(rows) == 3 and rows[0]["review"] == "great film" and rows[1]["stars"] == "0"  # CSV cells are text
    assert list(rows[0])[:3] == ["review", "stars", "raw_p_negative"] and "text" not in rows[0]
    assert "raw accuracy" in " ".join(stdout.split())


@pytest.mark.parametrize("content,expected", [
    ('{"text": "fine"}\n{"text": oops}\n', "in.jsonl:2"),
    ('{"text": "fine"}\n{"text": ""}\n', "in.jsonl:2"),
    ('{"words": "fine"}\n', "text"),
])
def test_bad_input_is_one_line_and_exit_1(tiny_model_dir, tmp_path, content, expected):
    data = tmp_path / "in.jsonl"
    data.write_text(content)
    result = run("score", data, "--out", tmp_path / "o.parquet", "--model", tiny_model_dir, check=False)
    assert result.returncode == 1
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o.parquet").exists()


def test_unknown_model_lists_the_registry():
    result = run("classify", "hello", "--model", "no-such-model", check=False)
    assert result.returncode == 1 and "qwen2.5-coder-0.5b-instruct" in result.stderr and "Traceback" not in result.stderr


def test_every_command_has_help_with_an_example():
    from confidently.cli import app

    import typer.main

    group = typer.main.get_command(app)
    names = []
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None)
        for sub_name, sub in (subcommands or {name: command}).items():
            names.append(sub_name)
            assert "Example" in (sub.help or ""), f"{name} {sub_name} --help has no example"
    assert {"next-token", "classify", "score", "evaluate", "demo", "models"} <= set(names)


def test_models_never_cuts_a_name_or_an_install_command():
    # piped output is 80 columns wide; names and package lists used to end in "…" there
    import importlib.util

    from confidently.models.registry import REGISTRY

    out = run("models").stdout
    assert "…" not in out
    for spec in REGISTRY.values():
        assert spec.name in out
        installed = all(importlib.util.find_spec(p.replace("-", "_")) is not None for p in spec.packages)
        assert (f"to install {spec.name}: {spec.install_hint}\n" in out) != installed


def test_a_text_is_echoed_as_data_never_as_markup_and_cut_when_long(tiny_model_dir):
    # "[/x]" raised rich's MarkupError (a traceback); "[red]...[/red]" vanished from the echo
    out = run("classify", "great [/x] movie [red]really[/red]", "--model", tiny_model_dir, "-k", "3").stdout
    assert "'great [/x] movie [red]really[/red]' →" in " ".join(out.split())
    out = run("next-token", "[/INST] hi", "--model", tiny_model_dir, "--top-k", "2").stdout
    assert "[/INST] hi" in out
    # a long document is echoed cut, with its length, so the answer stays on the screen
    text = "This film was great. " * 500
    out = run("classify", text, "--model", tiny_model_dir, "-k", "0").stdout
    assert f"… ({len(text):,} characters)" in " ".join(out.split()) and out.count("This film was great.") < 30
