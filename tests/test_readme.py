"""The README's code runs as written: its Python snippets in order (one namespace, like a notebook)
on the real gemma-3-270m, and its task file is a valid task for that model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_readme_task_file_is_a_task():
    from confidently.tasks.task import Task

    [task_json] = blocks("json")
    task = Task.from_dict(json.loads(task_json))
    assert task.label_names == ("routine", "urgent") and task.template.count("{text}") == 1


def test_the_readme_shows_the_calibrated_commands():
    commands = "\n".join(blocks("bash"))
    assert "--calibration runs/tickets" in commands and "--task support-urgency.json" in commands
    assert "DEMO_COST" not in README


@pytest.mark.model
def test_every_python_snippet_runs_as_written(tmp_path, monkeypatch, capsys):
    snippets = blocks("python")
    assert len(snippets) >= 2
    monkeypatch.chdir(tmp_path)  # snippets may save files
    namespace: dict = {"__name__": "__readme__"}
    for number, snippet in enumerate(snippets, 1):
        exec(compile(snippet, f"README.md python snippet {number}", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "platt.json").exists()
    printed = capsys.readouterr().out
    assert namespace["calibrated"].policy.guarantee in printed and namespace["policy"].guarantee in printed
    assert (tmp_path / "conformal.json").exists()

    from confidently.scoring.classifier import Classifier
    from confidently.tasks.task import Task

    task = Task.from_dict(json.loads(blocks("json")[0]))
    result = Classifier(backend=namespace["calibrated"].classifier.backend, task=task).classify("The site is down for every customer")
    assert result.label in task.label_names and not result.calibrated
