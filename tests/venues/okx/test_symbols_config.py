"""OKX instrument names, exponents from the instruments answer, and the feed config."""

from __future__ import annotations

import orjson
import pytest

from meltica_nb.errors import ConfigError
from meltica_nb.registry import Registry
from meltica_nb.venues.okx.config import OkxConfig, subscription, venue_name
from meltica_nb.venues.okx.symbols import OkxSymbols, canonical_of, decimals_of

ANSWER = orjson.dumps({"code": "0", "msg": "", "data": [
    {"instType": "SPOT", "instId": "BTC-USDT", "tickSz": "0.1", "lotSz": "0.00000001"},
    {"instType": "SPOT", "instId": "SHIB-USDT", "tickSz": "0.000000001", "lotSz": "1"},
    {"instType": "SPOT", "instId": "ETH-USDT", "tickSz": "0.01", "lotSz": "0.000001"},
]})


def test_canonical_names_and_decimals():
    assert canonical_of("BTC-USDT") == "BTC-USDT"
    assert canonical_of("BTC-USDT-SWAP") == "BTC-USDT"
    assert canonical_of("BTC-USD-220527") == "BTC-USD"
    for bad in ("btc-usdt", "BTCUSDT", "BTC-USDT-SWAP-X", 5):
        with pytest.raises(ConfigError):
            canonical_of(bad)
    assert (decimals_of("0.1"), decimals_of("1"), decimals_of("0.00000001")) == (1, 0, 8)
    with pytest.raises(ConfigError):
        decimals_of("1e-8")


def test_exponents_from_the_instruments_answer():
    registry = Registry()
    symbols = OkxSymbols(registry)
    added = symbols.add_instruments(ANSWER, wanted=["BTC-USDT", "SHIB-USDT"])
    assert [a.symbol for a in added] == ["BTC-USDT", "SHIB-USDT"]
    assert (symbols["BTC-USDT"].price_exp, symbols["BTC-USDT"].qty_exp) == (8, 8)
    assert symbols["SHIB-USDT"].price_exp == 9  # finer than 8: raised, never rounded
    assert symbols.get("ETH-USDT") is None
    table = symbols.table()
    assert table.instruments == {"BTC-USDT": 1, "SHIB-USDT": 2}


def test_an_instrument_registered_too_coarse_is_refused():
    registry = Registry()
    registry.instrument_id("SHIB-USDT", price_exp=8, qty_exp=8)
    with pytest.raises(ConfigError, match="needs 9 decimals"):
        OkxSymbols(registry).add_instruments(ANSWER, wanted=["SHIB-USDT"])
    with pytest.raises(ConfigError, match="without data"):
        OkxSymbols(registry).add_instruments(b'{"code":"51000","msg":"bad","data":[]}')


def test_config_names_and_validation():
    swap = OkxConfig(market="swap", symbols=("BTC-USDT", "BTC-USD-220527"),
                     channels=("books", "trades"))
    assert swap.inst_ids() == ("BTC-USDT-SWAP", "BTC-USD-220527")
    assert swap.streams()[:2] == ("books:BTC-USDT-SWAP", "trades:BTC-USDT-SWAP")
    assert (swap.inst_type, venue_name("swap"), venue_name("spot")) == ("SWAP", "okx-swap", "okx")
    assert subscription("bbo-tbt:BTC-USDT") == {"channel": "bbo-tbt", "instId": "BTC-USDT"}
    for bad in ({"market": "margin"}, {"channels": ("candle1m",)},
                {"ws_url": "http://x"}, {"batch_size": 0}):
        with pytest.raises(ConfigError):
            OkxConfig(symbols=("BTC-USDT",), **bad)


def test_two_inst_ids_of_one_canonical_name_are_refused():
    symbols = OkxSymbols(Registry(), ["BTC-USD-220527"])
    with pytest.raises(ConfigError, match="both BTC-USD"):
        symbols.add("BTC-USD-220624")
