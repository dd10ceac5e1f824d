"""The embedded store: one SQLite file in WAL mode, safe for many threads and processes.

WAL lets readers run while one writer commits; ``synchronous=FULL`` makes a commit durable before
it returns, so an acknowledged label survives a killed process or a power cut. Every transaction
starts with ``BEGIN IMMEDIATE`` (it takes the write lock at once), so two reviewers claiming at the
same moment are serialised instead of both reading the same free item.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confidently.feedback.sql_store import Execute, SQLStore
from confidently.feedback.store import StoreError

#: How long a transaction waits for another connection's write lock before failing.
BUSY_TIMEOUT_MS = 30_000


class SQLiteStore(SQLStore):
    """The feedback store in the SQLite file ``path`` (created, with its folder, if missing).

    Each thread gets its own connection (sqlite3 connections must not be shared between threads).
    """

    DIALECT = {"seq": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL", "blob": "BLOB", "lock": ""}

    def __init__(self, path: Path):
        self.path = Path(path)
        self.location = f"sqlite:{self.path}"
        super().__init__()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"{self.path}: cannot create its folder: {error.strerror}") from None
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: no implicit transactions; ours begin and end explicitly.
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                         timeout=BUSY_TIMEOUT_MS / 1000)
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: not a usable SQLite database: {error}") from None
        if mode.lower() != "wal":
            connection.close()
            raise StoreError(f"{self.path}: SQLite could not switch to WAL mode (got {mode!r}); "
                             "use a local file system")
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[Execute]:
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: {error}") from None
        try:
            yield connection.execute
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
