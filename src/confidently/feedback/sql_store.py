"""The SQL both stores share: the versioned schema and every query, written once for SQLite and PostgreSQL.

A dialect subclass supplies a connection per thread, a transaction that takes the write lock, and
a few words of DDL (:attr:`SQLStore.DIALECT`). Queries use ``?`` placeholders; the PostgreSQL
store rewrites them.
"""

from __future__ import annotations

import json
import threading
from abc import abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from confidently.errors import DataError
from confidently.feedback.features import FeatureVector
from confidently.feedback.store import (BASE, Feedback, FeedbackStore, LabelConflictError, LabelledText, LoggedText,
                                        QueueItem, Reason, Source, StoreError, UnknownItemError, dumps, now)

#: ``execute(sql, params)`` inside a transaction; returns a cursor (``fetchone``/``fetchall``).
Execute = Callable[[str, Sequence[Any]], Any]

#: The schema, one step per version; a database records the steps applied in ``schema_migrations``.
#: ``{seq}`` is an auto-incrementing primary key, ``{real}`` a double, ``{blob}`` a byte string.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "decisions log, review queue, feedback labels", (
        """CREATE TABLE decisions (
            request_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            adapter TEXT NOT NULL,
            bundle_version TEXT,
            label TEXT NOT NULL,
            confidence {real} NOT NULL,
            decision TEXT,
            probs TEXT NOT NULL,
            created_at {real} NOT NULL,
            PRIMARY KEY (request_id, position))""",
        """CREATE TABLE queue (
            seq {seq},
            request_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            adapter TEXT NOT NULL,
            reason TEXT NOT NULL CHECK (reason IN ('review', 'audit')),
            text TEXT NOT NULL,
            claimed_by TEXT,
            claim_until {real},
            skips INTEGER NOT NULL DEFAULT 0,
            done INTEGER NOT NULL DEFAULT 0,
            UNIQUE (request_id, position),
            FOREIGN KEY (request_id, position) REFERENCES decisions (request_id, position))""",
        "CREATE INDEX queue_open ON queue (done, adapter, skips, seq)",
        """CREATE TABLE feedback (
            request_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            label TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('page', 'api')),
            created_at {real} NOT NULL,
            PRIMARY KEY (request_id, position),
            FOREIGN KEY (request_id, position) REFERENCES decisions (request_id, position))""",
        "CREATE INDEX decisions_adapter ON decisions (adapter, created_at)",
    )),
    # Null for texts decided by a calibrator that reads class probabilities, and in stores of older versions.
    (2, "features a hidden-state probe or prompt-ensemble combiner read, per decision", (
        "ALTER TABLE decisions ADD COLUMN features {blob}",
        "ALTER TABLE decisions ADD COLUMN features_dim INTEGER",
        "ALTER TABLE decisions ADD COLUMN features_space TEXT",
    )),
    # Rows logged before version 3 keep NULL in all three: whether they were calibrated was not stored.
    (3, "whether each decision was calibrated, its calibrated probabilities and review reason", (
        "ALTER TABLE decisions ADD COLUMN calibrated INTEGER",
        "ALTER TABLE decisions ADD COLUMN calibrated_probs TEXT",
        "ALTER TABLE decisions ADD COLUMN review_reason TEXT",
    )),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

_ITEM_COLUMNS = ("q.request_id, q.position, q.adapter, d.bundle_version, q.reason, q.text, d.label, d.confidence, "
                 "d.decision, d.probs, q.claimed_by, q.claim_until, d.created_at, d.calibrated, d.calibrated_probs, "
                 "d.review_reason")


class SQLStore(FeedbackStore):
    """:class:`FeedbackStore` over a SQL database; subclasses provide connections and transactions."""

    #: DDL words of the dialect: ``seq`` (auto-incrementing primary key), ``real`` (double), ``blob`` (bytes),
    #: and ``lock`` (appended to the claim's sub-select so concurrent claimers skip each other's rows).
    DIALECT: dict[str, str]

    def __init__(self) -> None:
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    @abstractmethod
    def _connect(self) -> Any:
        """A new, configured connection (called once per thread)."""

    def _is_open(self, connection: Any) -> bool:
        return True

    def _connection(self) -> Any:
        """This thread's connection, opened on first use (connections are never shared between threads)."""
        connection = getattr(self._local, "connection", None)
        if connection is None or not self._is_open(connection):
            connection = self._connect()
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Execute]:
        """A transaction holding the write lock from its start (commit on success, rollback on error)."""

    def _migrate(self) -> None:
        """Bring the schema up to :data:`SCHEMA_VERSION` in one transaction."""
        with self._transaction() as execute:
            self._migrate_in(execute)

    def _migrate_in(self, execute: Execute) -> None:
        execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at {real} NOT NULL)".format(**self.DIALECT), ())
        row = execute("SELECT MAX(version) FROM schema_migrations", ()).fetchone()
        current = row[0] or 0
        if current > SCHEMA_VERSION:
            raise StoreError(f"{self.location}: schema version {current} is newer than this confidently "
                             f"understands ({SCHEMA_VERSION}); upgrade confidently")
        for version, description, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                execute(statement.format(**self.DIALECT), ())
            execute("INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                    (version, description, now()))

    def schema_version(self) -> int:
        with self._transaction() as execute:
            return execute("SELECT MAX(version) FROM schema_migrations", ()).fetchone()[0]

    def record(self, request_id: str, adapter: str | None, bundle_version: str | None,
               texts: Sequence[LoggedText]) -> None:
        key, created = _key(adapter), now()
        with self._transaction() as execute:
            for text in texts:
                features = text.features
                execute("INSERT INTO decisions (request_id, position, adapter, bundle_version, label, confidence, "
                        "decision, probs, created_at, features, features_dim, features_space, calibrated, "
                        "calibrated_probs, review_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (request_id, text.position, key, bundle_version, text.label, float(text.confidence),
                         text.decision, dumps(text.probs), created,
                         *((None,) * 3 if features is None else (features.blob, features.dim, features.space)),
                         int(text.calibrated_probs is not None),
                         None if text.calibrated_probs is None else dumps(text.calibrated_probs), text.review_reason))
                if text.queue is not None:
                    execute("INSERT INTO queue (request_id, position, adapter, reason, text) VALUES (?, ?, ?, ?, ?)",
                            (request_id, text.position, key, text.queue, text.text))

    def claim(self, reviewer: str, *, adapter: str | None = None, any_adapter: bool = True,
              lease_s: float = 600.0) -> QueueItem | None:
        scope, scope_args = ("", ()) if any_adapter else (" AND adapter = ?", (_key(adapter),))
        moment = now()
        with self._transaction() as execute:
            mine = execute(f"SELECT seq FROM queue WHERE done = 0 AND claimed_by = ? AND claim_until > ?{scope} "
                           "ORDER BY seq LIMIT 1", (reviewer, moment, *scope_args)).fetchone()
            if mine is not None:
                seq = mine[0]
            else:
                claimed = execute(
                    "UPDATE queue SET claimed_by = ?, claim_until = ? WHERE seq = ("
                    f"SELECT seq FROM queue WHERE done = 0 AND (claim_until IS NULL OR claim_until <= ?){scope} "
                    f"ORDER BY skips, seq LIMIT 1{self.DIALECT['lock']}) RETURNING seq",
                    (reviewer, moment + lease_s, moment, *scope_args)).fetchone()
                if claimed is None:
                    return None
                seq = claimed[0]
            row = execute(f"SELECT {_ITEM_COLUMNS} FROM queue q JOIN decisions d ON d.request_id = q.request_id "
                          "AND d.position = q.position WHERE q.seq = ?", (seq,)).fetchone()
        return _queue_item(row)

    def release(self, reviewer: str, request_id: str, position: int) -> None:
        with self._transaction() as execute:
            # A skipped item goes behind the ones nobody skipped yet.
            execute("UPDATE queue SET claimed_by = NULL, claim_until = NULL, skips = skips + 1 WHERE request_id = ? "
                    "AND position = ? AND claimed_by = ? AND done = 0", (request_id, position, reviewer))

    def label(self, request_id: str, position: int, label: str, *, reviewer: str,
              source: Source = "api") -> Feedback:
        created = now()
        with self._transaction() as execute:
            row = execute("SELECT probs FROM decisions WHERE request_id = ? AND position = ?",
                          (request_id, position)).fetchone()
            if row is None:
                raise UnknownItemError(f"no text was logged as request {request_id!r}, position {position}")
            labels = list(json.loads(row[0]))
            if label not in labels:
                raise DataError(f"label: {label!r} is not one of this text's labels ({', '.join(labels)})")
            stored = execute("SELECT label, reviewer, source, created_at FROM feedback WHERE request_id = ? "
                             "AND position = ?", (request_id, position)).fetchone()
            if stored is not None:
                if stored[0] != label:
                    raise LabelConflictError(f"request {request_id!r}, position {position} is already labelled "
                                             f"{stored[0]!r} by {stored[1]}; the first label stands")
                return Feedback(request_id, position, stored[0], stored[1], stored[2], stored[3])
            execute("INSERT INTO feedback (request_id, position, label, reviewer, source, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (request_id, position, label, reviewer, source, created))
            execute("UPDATE queue SET done = 1 WHERE request_id = ? AND position = ?", (request_id, position))
        return Feedback(request_id, position, label, reviewer, source, created)

    def item(self, request_id: str, position: int) -> QueueItem | None:
        with self._transaction() as execute:
            row = execute(f"SELECT {_ITEM_COLUMNS} FROM queue q JOIN decisions d ON d.request_id = q.request_id "
                          "AND d.position = q.position WHERE q.request_id = ? AND q.position = ?",
                          (request_id, position)).fetchone()
        return None if row is None else _queue_item(row)

    def pending(self, adapter: str | None = None, *, any_adapter: bool = True) -> int:
        scope, args = ("", ()) if any_adapter else (" AND adapter = ?", (_key(adapter),))
        with self._transaction() as execute:
            return int(execute(f"SELECT COUNT(*) FROM queue WHERE done = 0{scope}", args).fetchone()[0])

    def labelled(self, adapter: str | None = None, *, any_adapter: bool = False,
                 reason: Reason | None = None) -> list[LabelledText]:
        where, args = [], []
        if not any_adapter:
            where.append("d.adapter = ?")
            args.append(_key(adapter))
        if reason is not None:
            where.append("q.reason = ?")
            args.append(reason)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self._transaction() as execute:
            rows = execute(
                "SELECT d.request_id, d.position, d.adapter, d.bundle_version, d.probs, d.label, f.label, d.decision, "
                "q.reason, d.created_at, d.features, d.features_dim, d.features_space, q.text FROM feedback f "
                "JOIN decisions d ON d.request_id = f.request_id AND d.position = f.position "
                "LEFT JOIN queue q ON q.request_id = f.request_id AND q.position = f.position"
                f"{clause} ORDER BY d.created_at, d.request_id, d.position", args).fetchall()
        return [LabelledText(r[0], r[1], _adapter(r[2]), r[3], json.loads(r[4]), r[5], r[6], r[7], r[8], r[9],
                             None if r[10] is None else FeatureVector(r[12], r[11], bytes(r[10])), r[13])
                for r in rows]

    def audit_counts(self, adapter: str | None, *, bundle_version: str | None = None) -> tuple[int, int]:
        version, args = ("", ()) if bundle_version is None else (" AND d.bundle_version = ?", (bundle_version,))
        with self._transaction() as execute:
            n, correct = execute(
                "SELECT COUNT(*), SUM(CASE WHEN f.label = d.label THEN 1 ELSE 0 END) FROM queue q "
                "JOIN feedback f ON f.request_id = q.request_id AND f.position = q.position "
                "JOIN decisions d ON d.request_id = q.request_id AND d.position = q.position "
                f"WHERE q.reason = 'audit' AND d.adapter = ?{version}", (_key(adapter), *args)).fetchone()
        return int(correct or 0), int(n)


def _key(adapter: str | None) -> str:
    return BASE if adapter is None else adapter


def _adapter(key: str) -> str | None:
    return None if key == BASE else key


def _queue_item(row: Sequence[Any]) -> QueueItem:
    return QueueItem(request_id=row[0], position=row[1], adapter=_adapter(row[2]), bundle_version=row[3],
                     reason=row[4], text=row[5], label=row[6], confidence=row[7], decision=row[8],
                     probs=json.loads(row[9]), claimed_by=row[10], claim_until=row[11], created_at=row[12],
                     calibrated=None if row[13] is None else bool(row[13]),
                     calibrated_probs=None if row[14] is None else json.loads(row[14]), review_reason=row[15])
