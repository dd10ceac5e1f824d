"""Every CLI command documents itself with an example that names the command."""

import re

import pytest
import typer
from typer.testing import CliRunner

from confidently.cli.app import app


def _commands(group, path: tuple[str, ...] = (), *, groups: bool = False):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (typer ships its own click)
            if groups:
                yield path + (name,)
            yield from _commands(command, path + (name,), groups=groups)
        else:
            yield path + (name,)


COMMANDS = list(_commands(typer.main.get_command(app)))
#: with the command groups (`confidently data --help`, `confidently sagemaker --help`): a user reads those first
COMMANDS_AND_GROUPS = list(_commands(typer.main.get_command(app), groups=True))


def test_the_cli_has_its_commands():
    assert {("score",), ("finetune",), ("serve",), ("data", "split"), ("sagemaker", "deploy")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS_AND_GROUPS, ids=" ".join)
def test_help_shows_an_example_of_the_command(path):
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    # Markdown help: the example is plain text, never a leftover markup tag.
    assert f"Example: confidently {' '.join(path)}" in result.output
    assert "[bold]" not in result.output and "[/]" not in result.output


def _command(path):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_no_option_refers_to_an_option_its_command_lacks(path):
    # next-token's and evaluate's --adapter said "its own calibrator and policy apply unless --calibration is
    # given", though neither has --calibration (nor applies the adapter's calibrator)
    command = _command(path)
    names = {opt for param in command.params for opt in param.opts}
    for param in command.params:
        # "served with --calibration", "(serve --feedback-db)": another command's option, named as such
        text = re.sub(r"\bserved? (?:with )?--[\w-]+", "", getattr(param, "help", None) or "")
        for mentioned in ("--calibration", "--server", "--resume"):
            if mentioned in text and mentioned not in names:
                pytest.fail(f"{' '.join(path)} {param.opts[0]}: its help names {mentioned}, which it lacks")



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
