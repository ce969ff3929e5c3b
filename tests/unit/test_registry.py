"""Registry: venue and instrument ids, canonical symbols, exponents, limits, thread safety."""

import dataclasses

import numpy as np
import pytest

from meltica_nb import registry as reg
from meltica_nb.concurrency import TaskGroup
from meltica_nb.errors import ConfigError
from meltica_nb.registry import InstrumentInfo, Registry


def test_venue_ids_start_at_one_and_are_stable():
    r = Registry()
    assert (r.n_venues, r.n_instruments) == (0, 0)
    ids = [r.venue_id(n) for n in ("binance", "binance-futures", "okx", "custom")]
    assert ids == [1, 2, 3, 4]
    assert r.venue_id("okx") == 3
    assert r.venue_id("okx", create=False) == 3
    assert r.n_venues == 4
    assert [r.venue_name(i) for i in ids] == ["binance", "binance-futures", "okx", "custom"]


def test_unknown_venue_without_create_is_zero_and_not_registered():
    r = Registry()
    assert r.venue_id("kraken", create=False) == 0
    assert r.n_venues == 0


@pytest.mark.parametrize("bad", [0, -1, 2, True, "1"])
def test_venue_name_of_unknown_id_raises(bad):
    r = Registry()
    r.venue_id("binance")
    assert r.venue_name(np.uint16(1)) == "binance"
    with pytest.raises(ConfigError):
        r.venue_name(bad)


@pytest.mark.parametrize("bad", ["", "Binance", "bin ance", "-okx", "okx-", "a--b", "x" * 33, 7])
def test_bad_venue_names_raise(bad):
    with pytest.raises(ConfigError, match="venue name"):
        Registry().venue_id(bad)


def test_instrument_ids_and_info():
    r = Registry()
    btc = r.instrument_id("BTC-USDT")
    eth = r.instrument_id("ETH-USDT", price_exp=2, qty_exp=4)
    assert (btc, eth) == (1, 2)
    assert r.instrument_id("BTC-USDT") == btc
    assert r.n_instruments == 2
    assert r.instrument(btc) == InstrumentInfo(1, "BTC-USDT", "BTC", "USDT", 8, 8)
    assert r.instrument(eth) == InstrumentInfo(2, "ETH-USDT", "ETH", "USDT", 2, 4)
    assert r.instrument_ids(["ETH-USDT", "BTC-USDT", "1000PEPE-USDT"]) == [2, 1, 3]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.instrument(btc).price_exp = 3  # type: ignore[misc]


def test_unknown_instrument_without_create_is_zero():
    r = Registry()
    assert r.instrument_id("SOL-USDT", create=False) == 0
    assert r.instrument_ids(["SOL-USDT"], create=False) == [0]
    assert r.n_instruments == 0


@pytest.mark.parametrize(
    "bad", ["btcusdt", "BTCUSDT", "btc-usdt", "BTC/USDT", "BTC-USDT-SWAP", "-USDT", "BTC-",
            "BTC_USDT", "BTC- USDT", "", "A" * 20 + "-" + "B" * 20]
)
def test_non_canonical_symbols_raise_with_a_clear_message(bad):
    with pytest.raises(ConfigError, match="not canonical.*BASE-QUOTE"):
        Registry().instrument_id(bad)


def test_non_str_symbol_raises():
    with pytest.raises(ConfigError, match="must be a str"):
        Registry().instrument_id(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="list of symbols"):
        Registry().instrument_ids("BTC-USDT")


@pytest.mark.parametrize("bad", [-1, 19, 2.5, True, "8"])
def test_bad_exponents_raise(bad):
    with pytest.raises(ConfigError, match="price_exp"):
        Registry().instrument_id("BTC-USDT", price_exp=bad)
    with pytest.raises(ConfigError, match="qty_exp"):
        Registry().instrument_id("BTC-USDT", qty_exp=bad)


def test_exponents_of_a_known_instrument_never_change():
    r = Registry()
    i = r.instrument_id("BTC-USDT", price_exp=2, qty_exp=5)
    assert r.instrument_id("BTC-USDT") == i  # no exponents given: plain lookup
    assert r.instrument_id("BTC-USDT", price_exp=2, qty_exp=5) == i
    with pytest.raises(ConfigError, match="price_exp=2"):
        r.instrument_id("BTC-USDT", price_exp=8)
    with pytest.raises(ConfigError, match="qty_exp=5"):
        r.instrument_id("BTC-USDT", qty_exp=8)


@pytest.mark.parametrize("bad", [0, 2, -1, True])
def test_instrument_of_unknown_id_raises(bad):
    r = Registry()
    r.instrument_id("BTC-USDT")
    with pytest.raises(ConfigError):
        r.instrument(bad)


def test_exponents_array():
    r = Registry()
    price, qty = r.exponents_array()
    assert price.dtype == np.int8 and qty.dtype == np.int8
    assert price.tolist() == [8] and qty.tolist() == [8]
    r.instrument_id("BTC-USDT", price_exp=2, qty_exp=6)
    r.instrument_id("ETH-USDT")
    r.instrument_id("DOGE-USDT", price_exp=0, qty_exp=18)
    price, qty = r.exponents_array()
    assert price.tolist() == [8, 2, 8, 0]
    assert qty.tolist() == [8, 6, 8, 18]


def test_instrument_ids_are_capped_at_u2(monkeypatch):
    monkeypatch.setattr(reg, "MAX_ID", 3)
    r = Registry()
    assert r.instrument_ids(["A-B", "C-D", "E-F"]) == [1, 2, 3]
    with pytest.raises(ConfigError, match="all 3 instrument ids are taken"):
        r.instrument_id("G-H")
    assert r.n_instruments == 3
    assert r.instrument_id("A-B") == 1  # lookups still work when full


def test_venue_ids_fill_exactly_the_u2_range():
    r = Registry()
    for k in range(reg.MAX_ID):
        r.venue_id(f"v{k}")
    assert r.n_venues == 65535
    assert r.venue_name(65535) == "v65534"
    with pytest.raises(ConfigError, match="venue ids are taken"):
        r.venue_id("one-too-many")
    assert r.venue_id("one-too-many", create=False) == 0


def test_concurrent_creation_gives_one_id_per_name(no_thread_leak):
    r = Registry()
    symbols = [f"A{k}-USDT" for k in range(300)]
    venues = [f"venue{k}" for k in range(50)]
    results: dict[int, tuple[list[int], list[int]]] = {}

    def worker(token, k):
        order = symbols[k:] + symbols[:k] if k % 2 else symbols[::-1]
        inst = {s: r.instrument_id(s) for s in order}
        ven = {v: r.venue_id(v) for v in venues[::-1] if not token.cancelled}
        results[k] = ([inst[s] for s in symbols], [ven[v] for v in venues])

    with TaskGroup("registry") as tg:
        for k in range(8):
            tg.start(worker, k)
    assert tg.alive() == []
    assert len(results) == 8
    first = results[0]
    assert all(res == first for res in results.values())
    assert sorted(first[0]) == list(range(1, 301))
    assert sorted(first[1]) == list(range(1, 51))
    assert (r.n_instruments, r.n_venues) == (300, 50)
    assert [r.instrument(i).symbol for i in first[0]] == symbols
