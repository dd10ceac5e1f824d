"""Scoring a data file end to end: raw scores checkpointed as they finish, then the calibrated
columns, prediction sets and decisions of the bundle, written beside the file's own columns (their
names and values as the file gave them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from confidently.data import Dataset, load_dataset
from confidently.decision.calibrated import CalibratedClassifier
from confidently.errors import DataError, UnfinishedRunError
from confidently.files import remove_stale_temporaries
from confidently.output_lock import hold_output
from confidently.scoring.checkpointed import ScoreStore, check_output_format, score_with_store, write_table
from confidently.scoring.classifier import Classifier
from confidently.types import Scores


def score_file(classifier: Classifier | CalibratedClassifier, input_path: str | Path, out_path: str | Path, *,
               text_column: str = "text", label_column: str = "label", checkpoint_every: int = 256,
               resume: bool = False, progress: bool = True, dataset: Dataset | None = None):
    """Score every row of a data file and write the scores beside its columns, kept as the file gave them
    (``--text-column`` and ``--label-column`` under their own names, labels as spelled there).

    Raw columns always (:meth:`Scores.to_frame`); with a :class:`CalibratedClassifier` that has a
    calibrator, policy or prediction sets, the calibrated columns, ``prediction_set`` and the decision
    too (:meth:`Decisions.to_frame`). Sets fitted per slice take each row's value from the data
    column they name; a file without that column gets no sets.
    Finished raw scores are checkpointed to ``<out>.partial/`` every ``checkpoint_every`` rows; with
    ``resume=True`` a killed run continues from there. The run holds ``<out>.lock`` throughout: another
    run for the same output raises :class:`~confidently.errors.OutputBusyError` naming this one. A file
    column named like one of the model's (an earlier output's) is refused before any row is scored.
    ``dataset``: the file's rows, when the caller has already loaded them (with the classifier's labels).
    Returns the written DataFrame.
    """
    calibrated = classifier if isinstance(classifier, CalibratedClassifier) else CalibratedClassifier(classifier)
    classifier = calibrated.classifier
    out_path = Path(out_path)
    check_output_format(out_path)  # before any row is scored
    if dataset is None:
        dataset = load_dataset(input_path, text_column=text_column, label_column=label_column,
                               labels=classifier.labels)
    sets = calibrated.prediction_sets
    column = None if sets is None or sets.condition_on != "group" else sets.group_column or "group"
    if column and calibrated.decision_rule == "prediction_set" and column not in dataset.columns:
        raise DataError(f"the bundle decides by prediction sets fitted per {column}, but the file has no "
                        f"{column!r} column", path=input_path)
    expected = [*_empty_scores(classifier.labels).to_frame().columns, *calibrated.rule.to_frame().columns]
    _check_no_clash(dataset, expected)  # before any row is scored
    with hold_output(out_path):  # a second run for the same output fails here, naming this one
        return _score_into(calibrated, dataset, out_path, column, checkpoint_every=checkpoint_every,
                           resume=resume, progress=progress)


def check_unfinished(out_path: str | Path, resume: bool) -> Path:
    """The checkpoint folder of ``out_path``, after refusing one with rows when ``resume`` is off.

    Called again before the model loads (``confidently score``), so that mistake costs no load; only
    while holding the output's lock (:func:`~confidently.output_lock.hold_output`).
    """
    out_path = Path(out_path)
    partial = out_path.with_name(out_path.name + ".partial")
    remove_stale_temporaries(out_path)  # a run killed while writing the output
    if partial.is_dir() and not (partial / "manifest.json").exists():
        shutil.rmtree(partial)  # killed before its first checkpoint or during clean-up: it holds no rows
    if partial.exists() and not resume:
        raise UnfinishedRunError(
            f"{partial} holds rows from an earlier run: pass --resume to continue it, or delete it to start over"
        )
    return partial


def _score_into(calibrated: CalibratedClassifier, dataset: Dataset, out_path: Path, column: str | None, *,
                checkpoint_every: int, resume: bool, progress: bool):
    """Score ``dataset`` into ``out_path`` through its checkpoint folder (only while holding its lock)."""
    classifier = calibrated.classifier
    partial = check_unfinished(out_path, resume)
    store = ScoreStore(partial, classifier.fingerprint(), classifier.labels)
    scores = score_with_store(classifier, dataset.texts, store, checkpoint_every=checkpoint_every,
                              progress=progress, hidden=calibrated.reads_hidden)
    groups = dataset.columns.get(column) if column else None
    model = scores.to_frame().join(calibrated.decide_scores(scores, groups=groups).to_frame())
    _check_no_clash(dataset, model.columns)  # columns only some backends give (uncovered_mass...)
    frame = dataset.to_given_frame()
    frame = frame.join(model.set_index(frame.index))
    write_table(frame, out_path)
    store.remove()
    return frame


def _empty_scores(labels: tuple[str, ...]) -> Scores:
    """No rows: what every scorer's columns are (:meth:`Scores.to_frame`), known before scoring."""
    return Scores(labels, np.zeros((0, len(labels))), np.zeros(0), np.zeros(0, dtype=bool))


def _check_no_clash(dataset: Dataset, model_columns) -> None:
    """Refuse a file column that a column of the model's would overwrite (an earlier score output, say)."""
    given = set(dataset.given_names)
    if clash := [name for name in model_columns if name in given]:
        raise DataError(f"the file's column {clash[0]!r} has the name of a column score writes; rename it (is the "
                        "file an earlier score output? score the file it came from)", path=dataset.source)

