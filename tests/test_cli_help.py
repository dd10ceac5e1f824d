"""Every CLI command documents itself with an example that names the command."""

import pytest
import typer
from typer.testing import CliRunner

from confidently.cli.app import app


def _commands(group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (typer ships its own click)
            yield from _commands(command, path + (name,))
        else:
            yield path + (name,)


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_the_cli_has_its_commands():
    assert {("score",), ("finetune",), ("serve",), ("data", "split"), ("sagemaker", "deploy")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_shows_an_example_of_the_command(path):
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    # Markdown help: the example is plain text, never a leftover markup tag.
    assert f"Example: confidently {' '.join(path)}" in result.output
    assert "[bold]" not in result.output and "[/]" not in result.output


@pytest.mark.parametrize(("path", "option", "says"), [
    (("evaluate",), "--target-accuracy", "with 95% confidence over the calibration sample"),
    (("compare",), "--target-accuracy", "with 95% confidence over the calibration rows"),
    (("finetune",), "--target-accuracy", "at --level confidence"),
    (("score",), "--decision-rule", "at most alpha of all items, on average over calibration samples"),
])
def test_help_states_a_guarantee_as_it_holds(path, option, says):
    """A certified threshold holds at a confidence level, and the set rule's bound on average: never plainly."""
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=400)
    text = " ".join(result.output.replace("│", " ").split())
    assert option in text and says in text
