"""Progress bars for long work (rich), shared by scoring, calibration and fine-tuning."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.console import Console
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second, e.g. ``12.3 ex/s``."""

    def __init__(self, unit: str = "ex/s"):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("  -  " + self.unit if speed is None else f"{speed:5.1f} {self.unit}", style="cyan")


@contextlib.contextmanager
def progress_bar(total: int, description: str, *, enabled: bool = True, unit: str = "ex/s",
                 console=None) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1, **fields)``; shows a bar with count, rate and time left when enabled."""
    if not enabled:
        yield lambda n=1, **fields: None
        return
    console = console or Console(stderr=True)
    if not console.is_terminal:
        with _log_lines(total, description, unit, console) as advance:
            yield advance
        return
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    # Progress goes to stderr so that stdout stays clean for results (--json, pipes).
    with Progress(*columns, console=console, transient=False) as progress:
        task_id = progress.add_task(description, total=total, info="")

        def advance(n: int = 1, **fields) -> None:
            progress.update(task_id, advance=n, **({"info": _info(fields)} if fields else {}))

        yield advance


def _info(fields: dict) -> str:
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())


@contextlib.contextmanager
def _log_lines(total: int, description: str, unit: str, console: Console,
               every_s: float = 30.0) -> Iterator[Callable[..., None]]:
    """Plain progress lines for logs (nohup, CI, SageMaker), where a live bar would print nothing until the end.

    A line every ``every_s`` seconds with count, rate, elapsed and remaining time (at the rate so far),
    and one at the end unless the last periodic line already said the same count.
    """
    start = last = time.monotonic()
    done, printed, info = 0, -1, ""

    def line() -> None:
        nonlocal printed
        elapsed = time.monotonic() - start
        rate = done / elapsed if elapsed > 0 else 0.0
        left = f", {_duration((total - done) / rate)} left" if 0 < done < total and rate > 0 else ""
        console.print(f"{description}: {done:,}/{total:,} ({done / max(total, 1):.0%}), "
                      f"{rate:.1f} {unit}, {_duration(elapsed)} elapsed{left}  {info}".rstrip(),
                      markup=False, highlight=False, soft_wrap=True)
        printed = done

    def advance(n: int = 1, **fields) -> None:
        nonlocal done, info, last
        done += n
        if fields:
            info = _info(fields)
        if time.monotonic() - last >= every_s:
            last = time.monotonic()
            line()

    yield advance
    if printed != done:
        line()


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``1 h 02 min``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def announce(message: str, *, enabled: bool = True, console: Console | None = None) -> None:
    """One line on stderr saying which stage of a long job starts now (stdout stays clean for results)."""
    if enabled:
        (console or Console(stderr=True)).print(f"[bold]›[/] {message}", highlight=False, soft_wrap=True)
