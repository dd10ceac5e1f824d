"""Every CLI command documents itself with an example that names the command."""

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
