"""Fixtures: a binary and a 3-class train/test split of synthetic over-confident scores."""

from __future__ import annotations

import pytest

from synthetic import Split, make_split


@pytest.fixture(scope="session")
def binary() -> Split:
    return make_split(2)


@pytest.fixture(scope="session")
def multiclass() -> Split:
    return make_split(3, seed=1)
