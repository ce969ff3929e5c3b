"""Fixtures: a fast simulator per test, and a proof that stopping it leaves no thread."""

import threading

import pytest

from meltica_nb.sim import BinanceLimits, ExchangeSimulator, MarketConfig


@pytest.fixture
def make_sim(no_thread_leak):
    """Start simulators with fast market timings; all are stopped after the test."""
    started = []

    def make(**kwargs):
        kwargs.setdefault("config", MarketConfig.fast())
        kwargs.setdefault("limits", BinanceLimits(ping_interval=None))
        sim = ExchangeSimulator(**kwargs).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("sim:")]


@pytest.fixture
def sim(make_sim):
    return make_sim(seed=7)
