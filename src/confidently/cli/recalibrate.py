"""``confidently recalibrate DIR --feedback DB``: refit calibrator and policy with reviewers' labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from confidently.cli.app import app, console
from confidently.cli.options import JsonOpt
from confidently.errors import ArtifactError, ConfigError


@app.command()
def recalibrate(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                           help="Calibration bundle: an evaluate run folder (served with --calibration) or a finetune adapter "
                                                "folder.")],
    feedback: Annotated[str, typer.Option("--feedback", help="The server's feedback store: SQLite file or "
                                          "postgresql:// URL (serve --feedback-db).")],
    adapter: Annotated[Optional[str], typer.Option(
        help="The adapter name the folder is served under (default: an adapter folder's name).")] = None,
    base: Annotated[bool, typer.Option("--base", help="The folder calibrates the base model (served without an "
                                                      "adapter; the default for an evaluate run folder).")] = False,
    holdout: Annotated[float, typer.Option(min=0.05, max=0.9, help="Share of the reviewed labels held out to "
                                           "compare old and new.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of the hold-out split and the bootstrap.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Refit calibrator and policy on the calibration rows plus the labels reviewers gave, and keep the new
    ones only if they are better on held-out labels.

    A better calibrator is written as a new version (FOLDER/versions/vN, a complete calibration bundle;
    nothing is overwritten), which a running `confidently serve` picks up within seconds. Either way a
    short report says what was compared.
    A hidden-state probe or a prompt ensemble's combiner is refitted on what it reads (hidden states,
    every prompt's class masses), which the bundle keeps for its calibration rows and the server logs
    for each text; reviewed texts logged without them (by an older server) are left out and counted,
    and features logged for another model, adapter or prompt set are refused.

    Example: confidently recalibrate adapters/support --feedback confidently-feedback.db
    """
    from confidently.bundle.bundle import read_bundle
    from confidently.feedback import open_store
    from confidently.feedback.recalibration import recalibrate as run

    if base and adapter is not None:
        raise ConfigError("give --adapter NAME or --base, not both")
    if "://" not in feedback and not Path(feedback).is_file():
        raise ArtifactError(f"{feedback}: no such feedback store (the file `serve --feedback-db` writes)")
    is_adapter = read_bundle(folder).is_adapter
    name = None if base or (adapter is None and not is_adapter) else (adapter or folder.name)
    with open_store(feedback) as store:
        result = run(folder, store, adapter=name, holdout=holdout, seed=seed)
    if as_json:
        console.print_json(json.dumps({"adopted": result.adopted, "version": result.version,
                                       "folder": None if result.folder is None else str(result.folder),
                                       **result.report}))
    else:
        console.print(result.describe(), highlight=False)
