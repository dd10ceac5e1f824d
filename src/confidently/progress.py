"""Progress bars for long work (rich), shared by scoring, calibration and fine-tuning."""

from __future__ import annotations

import contextlib
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
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    # Progress goes to stderr so that stdout stays clean for results (--json, pipes).
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as progress:
        task_id = progress.add_task(description, total=total, info="")

        def advance(n: int = 1, **fields) -> None:
            info = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
            progress.update(task_id, advance=n, **({"info": info} if fields else {}))

        yield advance
