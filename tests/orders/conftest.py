"""A trading simulator per test (seeded), stopped afterwards; no thread may outlive a test."""

import threading

import pytest

from meltica_nb.sim import BinanceLimits, ExchangeSimulator, MarketConfig


@pytest.fixture
def make_sim(no_thread_leak):
    started = []

    def make(**kwargs):
        kwargs.setdefault("config", MarketConfig.fast(updates_per_s=30.0))
        kwargs.setdefault("limits", BinanceLimits(ping_interval=None))
        kwargs.setdefault("seed", 11)
        sim = ExchangeSimulator(**kwargs).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("sim:")]


@pytest.fixture
def sim(make_sim):
    return make_sim()
