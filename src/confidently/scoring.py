"""Scoring many texts: a checkpointed store of finished rows, so long runs resume and reruns are free.

Rows are stored in Parquet chunks keyed by the sha256 of their text, under a directory whose
manifest records the classifier's fingerprint (weights, precision, adapter, prompt, labels): a
store is never reused for another model or task. A killed run keeps every chunk it finished.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from confidently.classifier import Classifier
from confidently.errors import ArtifactError, ConfidentlyError
from confidently.files import atomic_path, atomic_write_json
from confidently.progress import announce, progress_bar
from confidently.types import Scores

if TYPE_CHECKING:
    from confidently.decisions import CalibratedClassifier


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ScoreStore:
    """Finished scores on disk, one Parquet chunk per checkpoint.

    Parameters
    ----------
    directory : where the chunks and ``manifest.json`` live.
    fingerprint : the classifier's :meth:`Classifier.fingerprint`; a mismatch is an error.
    labels : the task's labels (column order).
    """

    def __init__(self, directory: str | Path, fingerprint: str, labels: Sequence[str]):
        self.directory = Path(directory)
        self.fingerprint = fingerprint
        self.labels = tuple(labels)
        self.manifest_path = self.directory / "manifest.json"
        if self.manifest_path.exists():
            manifest = json.loads(self.manifest_path.read_text())
            if manifest.get("fingerprint") != fingerprint:
                raise ArtifactError(
                    f"{self.directory} holds scores from another model, adapter, precision or task; "
                    "delete it or choose another output"
                )
            self.chunks: list[str] = manifest["chunks"]
        else:
            self.chunks = []

    def load(self) -> dict[str, tuple]:
        """Text key → (mass row, other mass, truncated, uncovered)."""
        import pandas as pd

        rows: dict[str, tuple] = {}
        for name in self.chunks:
            frame = pd.read_parquet(self.directory / name)
            scores = Scores.from_frame(frame, self.labels)
            uncovered = scores.uncovered_mass
            for i, key in enumerate(frame["key"]):
                rows[key] = (scores.mass[i], scores.other_mass[i], scores.truncated[i],
                             None if uncovered is None else uncovered[i])
        return rows

    def append(self, keys: Sequence[str], scores: Scores) -> None:
        frame = scores.to_frame()
        frame.insert(0, "key", list(keys))
        name = f"chunk-{len(self.chunks):05d}.parquet"
        with atomic_path(self.directory / name) as tmp:
            frame.to_parquet(tmp, index=False)
        self.chunks.append(name)
        atomic_write_json(self.manifest_path, {"fingerprint": self.fingerprint, "labels": self.labels,
                                               "chunks": self.chunks})

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def score_with_store(classifier: Classifier, texts: Sequence[str], store: ScoreStore | None, *,
                     checkpoint_every: int = 256, progress: bool = True, description: str = "scoring") -> Scores:
    """Score ``texts``, reusing rows already in ``store`` and saving new ones every ``checkpoint_every``."""
    if checkpoint_every < 1:
        raise ConfidentlyError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
    keys = [text_key(t) for t in texts]
    done = store.load() if store is not None else {}
    todo: list[int] = []
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key not in done and key not in seen:
            todo.append(i)
            seen.add(key)
    reused = sum(key in done for key in set(keys))
    if reused and store is not None:
        announce(f"reusing {reused:,} rows already scored in {store.directory} (same model, adapter, precision "
                 f"and task); {len(todo):,} left to score", enabled=progress)
    with progress_bar(len(todo), description, enabled=progress and bool(todo)) as advance:
        for start in range(0, len(todo), checkpoint_every):
            chunk = todo[start:start + checkpoint_every]
            scores = classifier.score([texts[i] for i in chunk], progress=advance)
            chunk_keys = [keys[i] for i in chunk]
            if store is not None:
                store.append(chunk_keys, scores)
            for j, key in enumerate(chunk_keys):
                done[key] = (scores.mass[j], scores.other_mass[j], scores.truncated[j],
                             None if scores.uncovered_mass is None else scores.uncovered_mass[j])
    rows = [done[key] for key in keys]
    uncovered = None if classifier.backend.exact else np.array([r[3] for r in rows], dtype=float)
    if not rows:
        empty = np.zeros((0, len(classifier.labels)))
        return Scores(classifier.labels, empty, np.zeros(0), np.zeros(0, dtype=bool), uncovered)
    return Scores(classifier.labels, np.stack([r[0] for r in rows]), np.array([r[1] for r in rows]),
                  np.array([r[2] for r in rows], dtype=bool), uncovered)


def write_table(frame, path: str | Path) -> None:
    """Write a DataFrame atomically as Parquet, CSV, TSV or JSONL, chosen by the suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif suffix in {".csv", ".tsv"}:
            frame.to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")
        elif suffix == ".jsonl":
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            raise ConfidentlyError(f"{path}: unknown output format {suffix!r}: use .parquet, .csv, .tsv or .jsonl")


def score_file(classifier: Classifier | CalibratedClassifier, input_path: str | Path, out_path: str | Path, *,
               text_column: str = "text", label_column: str = "label", checkpoint_every: int = 256,
               resume: bool = False, progress: bool = True):
    """Score every row of a data file and write the scores beside its columns.

    Raw columns always (:meth:`Scores.to_frame`); with a :class:`CalibratedClassifier` that has a
    calibrator or policy, the calibrated columns and the decision too (:meth:`Decisions.to_frame`).
    Finished raw scores are checkpointed to ``<out>.partial/`` every ``checkpoint_every`` rows; with
    ``resume=True`` a killed run continues from there. Returns the written DataFrame.
    """
    from confidently.data import load_dataset
    from confidently.decisions import CalibratedClassifier

    calibrated = classifier if isinstance(classifier, CalibratedClassifier) else CalibratedClassifier(classifier)
    classifier = calibrated.classifier
    out_path = Path(out_path)
    dataset = load_dataset(input_path, text_column=text_column, label_column=label_column,
                           labels=classifier.labels)
    partial = out_path.with_name(out_path.name + ".partial")
    if partial.exists() and not resume:
        raise ConfidentlyError(
            f"{partial} holds rows from an earlier run: pass --resume to continue it, or delete it to start over"
        )
    store = ScoreStore(partial, classifier.fingerprint(), classifier.labels)
    scores = score_with_store(classifier, dataset.texts, store, checkpoint_every=checkpoint_every,
                              progress=progress)
    frame = dataset.to_frame()
    frame = frame.join(scores.to_frame().set_index(frame.index))
    frame = frame.join(calibrated.decide(scores.probs).to_frame().set_index(frame.index))
    write_table(frame, out_path)
    store.remove()
    return frame
