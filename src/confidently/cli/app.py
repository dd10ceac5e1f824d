"""The typer application every command module registers on, and the error edge of the CLI."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from confidently.errors import ConfidentlyError

app = typer.Typer(
    name="confidently",
    help="Turn a language model into a classifier whose confidence numbers can be trusted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

console = Console()
err_console = Console(stderr=True)


def main() -> None:
    """Entry point: our own errors become one line on stderr and exit code 1, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except ConfidentlyError as error:
        err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished rows are kept; rerun with --resume to continue")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as error:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        raise
    if isinstance(code, int) and code != 0:
        if code == 130:
            err_console.print("interrupted: finished rows are kept; rerun with --resume to continue")
        sys.exit(code)
