"""Scoring many texts: a checkpointed store of finished rows, so long runs resume and reruns are free.

Rows are stored in Parquet chunks keyed by the sha256 of their text, under a directory whose
manifest records the classifier's fingerprint (weights, precision, adapter, prompt, labels): a
store is never reused for another model or task. A killed run keeps every chunk it finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from confidently.scoring.classifier import Classifier
from confidently.data import Dataset
from confidently.errors import ArtifactError, ConfigError
from confidently.files import atomic_path, atomic_write_json, remove_stale_temporaries
from confidently.progress import announce, progress_bar
from confidently.types import Scores


_CHUNK_NAME = re.compile(r"chunk-\d{5,}\.parquet")
_TEXT_KEY = re.compile(r"[0-9a-f]{64}")
#: Column of a chunk holding each row's final hidden state (only when the run kept them).
HIDDEN_COLUMN = "hidden_state"


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
        if self.directory.is_dir():
            remove_stale_temporaries(self.directory, in_folder=True)  # left by a run killed mid-write
        self.chunks: list[str] = self._read_manifest() if self.manifest_path.exists() else []

    def _corrupt(self, what: str) -> ArtifactError:
        return ArtifactError(f"{what}: the checkpoint in {self.directory} is damaged; delete that folder to start "
                             "over (its rows are scored again)")

    def _read_manifest(self) -> list[str]:
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as error:  # ValueError: bad UTF-8 or JSON, a 5000-digit int
            raise self._corrupt(f"{self.manifest_path}: unreadable ({type(error).__name__})") from None
        chunks = manifest.get("chunks") if isinstance(manifest, dict) else None
        if not (isinstance(chunks, list) and all(isinstance(c, str) and _CHUNK_NAME.fullmatch(c) for c in chunks)
                and isinstance(manifest.get("fingerprint"), str)):
            raise self._corrupt(f"{self.manifest_path}: expected a fingerprint and a list of chunk-NNNNN.parquet "
                                "names")
        if manifest["fingerprint"] != self.fingerprint:
            raise ArtifactError(
                f"{self.directory} holds scores from another model, adapter, precision or task; "
                "delete it or choose another output"
            )
        return chunks

    def load(self, *, hidden: bool = False) -> tuple[list[str], Scores | None]:
        """The text key of every stored row and their scores, in one :class:`Scores` (None when empty).

        With ``hidden`` only the chunks that stored hidden states are read (a chunk stores them for
        all its rows or for none), and the scores carry them.
        """
        import pandas as pd

        keys: list[str] = []
        parts: list[Scores] = []
        for name in self.chunks:
            path = self.directory / name
            try:
                frame = pd.read_parquet(path)
                scores = Scores.from_frame(frame, self.labels)
                chunk_keys = frame["key"].tolist()
                flags = frame["truncated"]
            except Exception as error:  # pyarrow and pandas raise many types for a damaged file
                raise self._corrupt(f"{path}: unreadable ({type(error).__name__}: {error})") from None
            problem = _chunk_problem(scores, chunk_keys, flags)
            if problem:
                raise self._corrupt(f"{path}: {problem}")
            states = _read_hidden(frame, path, self._corrupt)
            if hidden and states is None:
                continue
            keys += chunk_keys
            parts.append(dataclasses.replace(scores, hidden=states))
        return keys, Scores.concat(parts) if parts else None

    def append(self, keys: Sequence[str], scores: Scores) -> None:
        frame = scores.to_frame()
        frame.insert(0, "key", list(keys))
        if scores.hidden is not None:  # one float32 list per row (Parquet list<float>)
            frame[HIDDEN_COLUMN] = list(scores.hidden.astype(np.float32))
        name = f"chunk-{len(self.chunks):05d}.parquet"
        with atomic_path(self.directory / name) as tmp:
            frame.to_parquet(tmp, index=False)
        self.chunks.append(name)
        atomic_write_json(self.manifest_path, {"fingerprint": self.fingerprint, "labels": self.labels,
                                               "chunks": self.chunks})

    def remove(self) -> None:
        """Delete the store, manifest first: a run killed half-way leaves a folder with no rows, never
        a manifest listing chunks that are gone."""
        with contextlib.suppress(FileNotFoundError):
            self.manifest_path.unlink()
        shutil.rmtree(self.directory, ignore_errors=True)


def _probabilities(values: np.ndarray) -> bool:
    return bool(np.isfinite(values).all() and ((values >= 0) & (values <= 1)).all())


def _chunk_problem(scores: Scores, keys: list, truncated) -> str | None:
    """What makes a checkpoint chunk's rows unusable (None: every value is one scoring could produce)."""
    if not all(isinstance(key, str) and _TEXT_KEY.fullmatch(key) for key in keys):
        return "row keys are not sha256 hex digests"
    if truncated.dtype != bool:
        return f"the truncated column holds {truncated.dtype}, not true/false"
    if not (_probabilities(scores.mass) and _probabilities(scores.other_mass)):
        return "class masses or other mass outside [0, 1]"
    if (scores.mass.sum(axis=1) + scores.other_mass > 1 + 1e-3).any():  # rounding of low precisions
        return "class masses and other mass add up to more than 1"
    if scores.uncovered_mass is not None and not _probabilities(scores.uncovered_mass):
        return "uncovered mass outside [0, 1]"
    return None


def score_with_store(classifier: Classifier, texts: Sequence[str], store: ScoreStore | None, *,
                     checkpoint_every: int = 256, progress: bool = True, description: str = "scoring",
                     hidden: bool = False) -> Scores:
    """Score ``texts``, reusing rows already in ``store`` and saving new ones every ``checkpoint_every``.

    With ``hidden`` the final hidden states are kept and stored too; a stored row without one is
    scored again.
    """
    if checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
    keys = [text_key(t) for t in texts]
    # Every finished row lives in ``parts`` (scores loaded from the store, then each new chunk);
    # ``where`` maps a text key to its part and row there. With ``hidden`` a stored row without its
    # hidden state is not reused (the store does not load it).
    parts: list[Scores] = []
    where: dict[str, tuple[int, int]] = {}
    if store is not None:
        stored_keys, stored = store.load(hidden=hidden)
        if stored is not None:
            parts.append(stored)
            where.update((key, (0, row)) for row, key in enumerate(stored_keys))
    todo: list[int] = []
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key not in where and key not in seen:
            todo.append(i)
            seen.add(key)
    reused = sum(key in where for key in set(keys))
    if reused and store is not None:
        announce(f"reusing {reused:,} rows already scored in {store.directory} (same model, adapter, precision, "
                 f"task and scorer); {len(todo):,} left to score", enabled=progress)
    with progress_bar(len(todo), description, enabled=progress and bool(todo)) as advance:
        for start in range(0, len(todo), checkpoint_every):
            chunk = todo[start:start + checkpoint_every]
            scores = classifier.score([texts[i] for i in chunk], progress=advance, hidden=hidden)
            chunk_keys = [keys[i] for i in chunk]
            if store is not None:
                store.append(chunk_keys, scores)
            where.update((key, (len(parts), row)) for row, key in enumerate(chunk_keys))
            parts.append(scores)
    if not keys:
        empty = np.zeros((0, len(classifier.labels)))
        uncovered = None if classifier.backend.exact else np.zeros(0)
        return Scores(classifier.labels, empty, np.zeros(0), np.zeros(0, dtype=bool), uncovered)
    offsets = np.cumsum([0] + [len(part) for part in parts])
    pool = Scores.concat(parts)
    if not hidden:  # rows stored with hidden states give them only when asked for
        pool = dataclasses.replace(pool, hidden=None)
    return pool.subset([offsets[where[key][0]] + where[key][1] for key in keys])


def _read_hidden(frame, path: Path, corrupt) -> np.ndarray | None:
    """The chunk's hidden states (n, d) float32, or None when it stored none; damaged ones are refused."""
    if HIDDEN_COLUMN not in frame:
        return None
    try:
        hidden = np.stack([np.asarray(row, dtype=np.float32) for row in frame[HIDDEN_COLUMN]])
    except (TypeError, ValueError) as error:
        raise corrupt(f"{path}: hidden states unreadable ({error})") from None
    if hidden.ndim != 2 or not np.isfinite(hidden).all():
        raise corrupt(f"{path}: hidden states are not finite rows of one width")
    return hidden


OUTPUT_FORMATS = (".parquet", ".csv", ".tsv", ".jsonl")


def check_output_format(path: str | Path) -> str:
    """The suffix of an output table path, or :class:`ConfigError` when no writer handles it."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ConfigError(f"{path}: unknown output format {suffix or '(no suffix)'!r}: "
                          f"use {', '.join(OUTPUT_FORMATS[:-1])} or {OUTPUT_FORMATS[-1]}")
    return suffix


def write_table(frame, path: str | Path) -> None:
    """Write a DataFrame atomically as Parquet, CSV, TSV or JSONL, chosen by the suffix."""
    path = Path(path)
    suffix = check_output_format(path)
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif suffix in {".csv", ".tsv"}:
            # list cells (prediction_set) as JSON arrays, which read back unambiguously
            lists = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, list)).any()]
            frame = frame.assign(**{c: frame[c].map(lambda v: json.dumps(v, ensure_ascii=False)) for c in lists})
            frame.to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")
        else:
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)


def score_datasets(clf: Classifier, datasets: dict[str, Dataset], cache_dir: str | Path, *,
                   progress: bool = True, hidden: bool = False) -> dict[str, Scores]:
    """Score several datasets through one checkpointed store (reruns and killed runs reuse finished rows).

    With ``hidden`` the final hidden states are kept and cached too (for the probe).
    """
    store = ScoreStore(cache_dir, clf.fingerprint(), clf.labels)
    texts = [t for ds in datasets.values() for t in ds.texts]
    scores = score_with_store(clf, texts, store, progress=progress, description="scoring", hidden=hidden)
    out, start = {}, 0
    for name, ds in datasets.items():
        out[name] = scores.subset(np.arange(start, start + len(ds)))
        start += len(ds)
    return out
