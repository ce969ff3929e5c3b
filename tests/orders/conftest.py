"""A trading simulator per test (seeded), stopped afterwards; no thread may outlive a test."""

import pytest

from meltica_nb.sim import MarketConfig


@pytest.fixture
def sim_defaults():
    return {"config": MarketConfig.fast(updates_per_s=30.0), "seed": 11}


@pytest.fixture
def sim(make_sim):
    return make_sim()
