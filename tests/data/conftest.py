"""Fixtures for the datasets stage: the default generated set (made once; it takes a fraction of a second)."""

from __future__ import annotations

import pytest

from confidently.data import Dataset, generate_sentiment


@pytest.fixture(scope="session")
def generated() -> Dataset:
    return generate_sentiment(10000, seed=42)
