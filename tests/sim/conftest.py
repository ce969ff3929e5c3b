"""Fixtures: the simulator of a test (``make_sim`` and its defaults are in tests/conftest.py)."""

import pytest


@pytest.fixture
def sim(make_sim):
    return make_sim(seed=7)
