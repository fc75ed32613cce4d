import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture
def repo():
    """The repository's root (fixtures, examples)."""
    return ROOT
