"""Start, stop, restart: no thread outlives the simulator, even with clients still connected."""

import threading
import time

import pytest

from meltica_nb.errors import ConfigError
from meltica_nb.sim import BinanceLimits, ExchangeSimulator, MarketConfig

from .helpers import close, connect, get


def test_stop_with_connected_clients_leaves_no_thread():
    before = set(threading.enumerate())
    sim = ExchangeSimulator(config=MarketConfig.fast(), limits=BinanceLimits(ping_interval=1.0))
    with sim:
        idle = connect(sim, "/stream?streams=btcusdt@depth@100ms")  # never reads, never closes
        reader = connect(sim, "/ws/btcusdt@trade")
        reader.recv()
        assert sim.stats()["connections"]["open"] == 2
        started = time.monotonic()
    assert time.monotonic() - started < 5
    close(idle)
    close(reader)
    assert [t for t in threading.enumerate() if t not in before] == []
    assert sim.stats()["running"] is False


def test_start_twice_is_refused_and_stop_is_idempotent(no_thread_leak):
    sim = ExchangeSimulator(config=MarketConfig.fast()).start()
    try:
        with pytest.raises(ConfigError):
            sim.start()
    finally:
        sim.stop()
    sim.stop()


def test_restart_on_the_same_ports(no_thread_leak):
    with ExchangeSimulator(config=MarketConfig.fast()) as first:
        ports = first.ws_port, first.rest_port
    with ExchangeSimulator(config=MarketConfig.fast(), port=ports[0], rest_port=ports[1]) as sim:
        assert sim.ws_url == f"ws://127.0.0.1:{ports[0]}"
        assert get(sim.rest_url + "/api/v3/ping")[0] == 200


def test_a_port_in_use_fails_start_with_the_error(no_thread_leak):
    with ExchangeSimulator(config=MarketConfig.fast()) as busy:
        sim = ExchangeSimulator(config=MarketConfig.fast(), port=busy.ws_port)
        with pytest.raises(OSError):
            sim.start()
