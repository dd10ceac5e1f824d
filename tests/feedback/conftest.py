"""Stores to test against: a fresh SQLite file, and a fresh database on the throwaway PostgreSQL server
(``postgres_server`` in the root conftest)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """Where a fresh, empty store lives: an SQLite path, or a new PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "feedback.db")
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture()
def store(store_url):
    from confidently.feedback import open_store

    with open_store(store_url) as opened:
        yield opened
