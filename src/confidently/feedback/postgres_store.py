"""The shared store: PostgreSQL, so several server replicas use one queue.

Claims pick their row with ``FOR UPDATE SKIP LOCKED``: concurrent reviewers, on any replica, each
get a different item without waiting on one another. Migrations run under an advisory lock, so
replicas starting together apply each step once. Needs ``psycopg`` (``pip install "psycopg[binary]"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from confidently.feedback.sql_store import Execute, SQLStore
from confidently.feedback.store import StoreError

#: Key of the advisory lock that serialises schema migrations ("cfdn" in ASCII).
MIGRATION_LOCK = 0x6366646E


class PostgresStore(SQLStore):
    """The feedback store in the PostgreSQL database at ``url`` (``postgresql://user@host:port/db``)."""

    DIALECT = {"seq": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "real": "DOUBLE PRECISION",
               "blob": "BYTEA", "lock": " FOR UPDATE SKIP LOCKED"}

    def __init__(self, url: str):
        try:
            import psycopg
        except ImportError:
            raise StoreError("a postgresql:// store needs psycopg: pip install 'psycopg[binary]'") from None
        self._psycopg = psycopg
        self.url = url
        self.location = _without_password(url)
        super().__init__()
        self._migrate()

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(self.url, autocommit=True)
        except self._psycopg.Error as error:
            raise StoreError(f"{self.location}: cannot connect: {error}") from None

    def _is_open(self, connection: Any) -> bool:
        return not connection.closed

    @contextmanager
    def _transaction(self) -> Iterator[Execute]:
        connection = self._connection()
        with connection.transaction():
            cursor = connection.cursor()
            # Migrations take a transaction-scoped advisory lock; ordinary work never waits on it.
            yield lambda sql, params: cursor.execute(sql.replace("?", "%s"), params)

    def _migrate(self) -> None:
        with self._transaction() as execute:
            execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            self._migrate_in(execute)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
