"""The typer application every command module registers on, and the error edge of the CLI.

Exit codes: 0 success; 1 a run-time error raised on purpose (bad data, missing model, corrupt
artifact: :class:`~confidently.errors.ConfidentlyError`) or refused by the file system; 2 a usage error (unknown command or
option, missing or invalid argument); 130 interrupted. Each failure is one line on stderr.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.text import Text

from confidently.errors import ConfidentlyError

app = typer.Typer(
    name="confidently",
    help="Turn a language model into a classifier whose confidence numbers can be trusted.",
    no_args_is_help=False,  # no command is a usage error: one line, exit 2 (see main)
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

console = Console()
err_console = Console(stderr=True)

USAGE_ERROR = 2
RUNTIME_ERROR = 1
INTERRUPTED = 130


def print_error(message: str) -> None:
    """One line on stderr; the message is printed as-is (never read as rich markup)."""
    line = " ".join(str(message).split())  # a message is one line, whatever it quotes
    err_console.print(Text.assemble(("error: ", "bold red"), line), soft_wrap=True, highlight=False)


def _click_exception_types() -> tuple[type[BaseException], ...]:
    """The ClickException classes the installed typer raises: its vendored click's, or click's own."""
    types: list[type[BaseException]] = []
    if hasattr(typer, "TyperException"):  # typer >= 0.22 vendors click under typer._click
        types.append(typer.TyperException)
    for cls in type.mro(typer.BadParameter):
        if cls.__name__ == "ClickException":
            types.append(cls)
    return tuple(types)


def usage_error_line(error) -> str:
    """What was wrong with the command line and how to fix it, as one line.

    ``error`` is a click usage error (vendored by typer or not); the line names the command, the
    problem, the choices or what a missing parameter is for, and the help to read.
    """
    ctx = getattr(error, "ctx", None)
    command = ctx.command_path if ctx is not None else "confidently"
    list_commands = getattr(getattr(ctx, "command", None), "list_commands", None)
    choices = ", ".join(list_commands(ctx)) if list_commands is not None else ""
    message = error.format_message().strip()
    param = getattr(error, "param", None)
    if message.startswith("Missing command") or type(error).__name__ == "NoArgsIsHelpError":
        message = f"no command given; choose one of {choices}"
    elif message.startswith("No such command") and choices:
        message = f"{message.rstrip('.')}; the commands are {choices}"
    elif type(error).__name__ == "MissingParameter" and getattr(param, "help", None):
        message = f"{message.rstrip('.')}: {param.help}"
    return f"{command}: {message.rstrip('.')}. Run '{command} --help' for usage."


def main() -> None:
    """Entry point: every failure is one line on stderr and an exit code (see the module docstring)."""
    click_errors = _click_exception_types()
    try:
        code = app(standalone_mode=False)
    except ConfidentlyError as error:
        print_error(str(error))
        sys.exit(RUNTIME_ERROR)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(INTERRUPTED)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished rows are kept; rerun with --resume to continue")
        sys.exit(INTERRUPTED)
    except click_errors as error:
        exit_code = getattr(error, "exit_code", RUNTIME_ERROR)
        if exit_code == USAGE_ERROR:
            print_error(usage_error_line(error))
        else:
            print_error(error.format_message())
        sys.exit(exit_code)
    except OSError as error:  # the file system refused (permissions, a full disk, a file where a folder goes)
        where = " -> ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
        print_error(f"{where}: {error.strerror}" if where and error.strerror else str(error))
        sys.exit(RUNTIME_ERROR)
    if isinstance(code, int) and code != 0:
        if code == INTERRUPTED:
            err_console.print("interrupted: finished rows are kept; rerun with --resume to continue")
        sys.exit(code)
