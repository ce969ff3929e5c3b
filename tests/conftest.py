"""Shared test fixtures: every test that starts threads proves they all stopped; simulators."""

import threading

import pytest

from meltica_nb.sim import BinanceLimits, ExchangeSimulator, MarketConfig


@pytest.fixture
def no_thread_leak():
    """Fail the test if it leaves any thread running that was not there before it."""
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads still running after the test: {leaked}"


@pytest.fixture
def sim_defaults():
    """Options of the simulators ``make_sim`` starts (a folder's conftest may override)."""
    return {"config": MarketConfig.fast()}


@pytest.fixture
def make_sim(no_thread_leak, sim_defaults):
    """Start simulators (fast market, no server pings); all are stopped after the test."""
    started = []

    def make(**kwargs):
        options = {"limits": BinanceLimits(ping_interval=None), **sim_defaults, **kwargs}
        sim = ExchangeSimulator(**options).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("sim:")]
