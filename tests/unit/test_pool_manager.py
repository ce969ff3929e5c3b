"""PoolManager: the six pools, shared Recycler, and the shutdown report."""

import logging
import time

import pytest

import meltica_nb as mn
from meltica_nb.concurrency import TaskGroup
from meltica_nb.pool_manager import DEFAULT_CAPACITIES


def test_registers_the_six_pools_with_configured_capacities():
    pm = mn.PoolManager({"CanonicalEvent": 64})
    assert sorted(pm.pools) == sorted(mn.schema.DTYPES)
    assert pm["CanonicalEvent"].capacity == 64
    assert pm["WsFrame"].capacity == DEFAULT_CAPACITIES["WsFrame"]
    assert all(pool.recycler is pm.recycler for pool in pm.pools.values())


def test_unknown_names_are_config_errors():
    with pytest.raises(mn.ConfigError, match="Bogus"):
        mn.PoolManager({"Bogus": 1})
    pm = mn.PoolManager()
    with pytest.raises(mn.ConfigError, match="no pool named"):
        pm["Bogus"]
    with pytest.raises(mn.ConfigError, match="already registered"):
        pm.register("WsFrame", mn.schema.WS_FRAME, 4)


def test_shutdown_report_names_exactly_the_kept_slots(caplog):
    pm = mn.PoolManager({"CanonicalEvent": 16, "ExecReport": 8})
    events = pm["CanonicalEvent"].acquire_many(5)
    reports = pm["ExecReport"].acquire_many(2)
    pm["CanonicalEvent"].release_many(events[[0, 2, 4]])
    with caplog.at_level(logging.WARNING, logger="meltica_nb.pools"):
        report = pm.shutdown(timeout=0.1)
    assert not report.clean
    assert report.unreturned == {
        "CanonicalEvent": sorted(events[[1, 3]].tolist()),
        "ExecReport": sorted(reports.tolist()),
    }
    assert report.count == 4
    assert "4 slot(s) never returned" in caplog.text
    with pytest.raises(mn.PoolClosed):
        pm["CanonicalEvent"].acquire()


def test_shutdown_waits_for_in_flight_slots(no_thread_leak):
    pm = mn.PoolManager({"CanonicalEvent": 4})
    held = pm["CanonicalEvent"].acquire_many(2)

    def give_back(cancel):
        time.sleep(0.1)
        pm["CanonicalEvent"].release_many(held)

    with TaskGroup("drain") as tg:
        tg.start(give_back)
        report = pm.shutdown(timeout=5.0)
    assert report.clean and report.count == 0
    assert 0.05 <= report.elapsed_s < 5.0


def test_stats_by_pool_name():
    pm = mn.PoolManager({"OrderRequest": 8})
    pm["OrderRequest"].acquire_many(3)
    assert pm.stats()["OrderRequest"].in_use == 3
