"""The feedback store: decisions log, review queue and reviewers' labels (SQLite embedded, PostgreSQL shared)."""

from confidently.feedback.store import (Feedback, FeedbackStore, LabelConflictError, LabelledText, LoggedText,
                                        QueueItem, StoreError, UnknownItemError, open_store)

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
