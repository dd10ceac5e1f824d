"""The feedback store: decisions log, review queue and reviewers' labels (SQLite embedded, PostgreSQL shared)."""

from __future__ import annotations

from pathlib import Path

from confidently.feedback.store import (Feedback, FeedbackStore, LabelConflictError, LabelledText, LoggedText,
                                        QueueItem, StoreError, UnknownItemError)


def open_store(target: str | Path) -> FeedbackStore:
    """The store at ``target``: a ``postgresql://`` URL, or the path of an SQLite file (created if missing).

    Raises
    ------
    StoreError
        If the database cannot be opened, or was written by a newer confidently.
    """
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from confidently.feedback.postgres_store import PostgresStore

        return PostgresStore(text)
    from confidently.feedback.sqlite_store import SQLiteStore

    return SQLiteStore(Path(text))


__all__ = [
    "Feedback",
    "FeedbackStore",
    "LabelConflictError",
    "LabelledText",
    "LoggedText",
    "QueueItem",
    "StoreError",
    "UnknownItemError",
    "open_store",
]
