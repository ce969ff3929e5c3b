"""The generated market on its own (no sockets): books, diffs, trades, determinism."""

from decimal import Decimal

import pytest

from meltica_nb.errors import ConfigError
from meltica_nb.sim.market import GeneratedMarket, MarketConfig

from .helpers import ClientBook

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


def run(market: GeneratedMarket, polls: int, step_ms: int = 10):
    market.start(T0)
    events = []
    for i in range(1, polls + 1):
        events += market.poll(T0 + i * step_ms * MS)[0]
    return events


def of(events, stream):
    return [payload for name, payload in events if name == stream]


def test_default_instruments_and_a_deep_book_with_fixed_decimals():
    market = GeneratedMarket(MarketConfig.fast(), seed=1)
    assert [(i.symbol, i.venue_symbol, i.tick_size, i.step_size) for i in market.instruments] == [
        ("BTC-USDT", "BTCUSDT", "0.01", "0.00001"), ("ETH-USDT", "ETHUSDT", "0.01", "0.0001")]
    run(market, 50)
    book = market.book("BTC-USDT", 10_000)
    assert book == market.book("btcusdt", 10_000)
    assert len(book["bids"]) >= 200 and len(book["asks"]) >= 200
    for price, qty in book["bids"] + book["asks"]:
        assert len(price.split(".")[1]) == 8 and len(qty.split(".")[1]) == 8
        assert Decimal(price) % Decimal("0.01") == 0 and Decimal(qty) % Decimal("0.00001") == 0
        assert Decimal(qty) > 0
    bids = [Decimal(p) for p, _ in book["bids"]]
    asks = [Decimal(p) for p, _ in book["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0] < asks[0]
    assert market.book("XRPUSDT") is None


def test_diffs_are_contiguous_and_rebuild_the_book_from_a_snapshot():
    market = GeneratedMarket(MarketConfig.fast(), seed=2)
    market.start(T0)
    snapshot = market.depth_snapshot("BTCUSDT", 5000)
    book = ClientBook(snapshot)
    prev_u = snapshot["lastUpdateId"]
    for i in range(1, 200):
        for stream, payload in market.poll(T0 + i * 10 * MS)[0]:
            if stream == "btcusdt@depth@100ms":
                assert payload["U"] == prev_u + 1
                prev_u = payload["u"]
                book.apply(payload)
    assert book.update_id == market.book("BTCUSDT")["lastUpdateId"]
    assert book.top(5000) == {k: market.book("BTCUSDT", 5000)[k] for k in ("bids", "asks")}


def test_slow_depth_aggregates_the_fast_one_and_book_ticker_matches_the_top():
    market = GeneratedMarket(MarketConfig.fast(), seed=3)
    events = run(market, 300)
    fast, slow = of(events, "btcusdt@depth@100ms"), of(events, "btcusdt@depth")
    assert len(slow) < len(fast)
    assert slow[0]["U"] == fast[0]["U"]
    assert all(b["U"] == a["u"] + 1 for a, b in zip(slow, slow[1:], strict=False))
    finals = {e["u"] for e in fast}
    tickers = [t for t in of(events, "btcusdt@bookTicker") if t["u"] in finals]
    assert tickers, "some bookTicker shares the final id of a diff"
    assert set(tickers[0]) == {"u", "s", "b", "B", "a", "A"}


def test_trades_have_contiguous_ids_and_agg_trades_cover_them():
    market = GeneratedMarket(MarketConfig.fast(), seed=4)
    events = run(market, 200)
    trades, aggs = of(events, "btcusdt@trade"), of(events, "btcusdt@aggTrade")
    ids = [t["t"] for t in trades]
    assert len(ids) > 20 and ids == list(range(ids[0], ids[0] + len(ids)))
    assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + len(aggs)))
    assert aggs[0]["f"] == ids[0] and aggs[-1]["l"] == ids[-1]
    assert all(b["f"] == a["l"] + 1 for a, b in zip(aggs, aggs[1:], strict=False))
    ticker = of(events, "btcusdt@ticker")[-1]
    assert ticker["e"] == "24hrTicker" and ticker["L"] == ids[-1] and ticker["n"] == len(ids)
    kline = of(events, "btcusdt@kline_1m")[-1]
    assert kline["k"]["i"] == "1m" and kline["k"]["L"] == ids[-1]


def test_the_same_seed_gives_the_same_market():
    a = run(GeneratedMarket(MarketConfig.fast(), seed=5), 100)
    b = run(GeneratedMarket(MarketConfig.fast(), seed=5), 100)
    c = run(GeneratedMarket(MarketConfig.fast(), seed=6), 100)
    assert a == b
    assert of(a, "btcusdt@depth@100ms") != of(c, "btcusdt@depth@100ms")


def test_usdm_depth_carries_pu_and_depth_0ms_is_sent():
    market = GeneratedMarket(MarketConfig.fast(), market="usdm", seed=8)
    events = run(market, 300, step_ms=2)
    assert market.instruments[0].tick_size == "0.10"
    zero = of(events, "btcusdt@depth@0ms")
    hundred = of(events, "btcusdt@depth@100ms")
    assert len(zero) > len(hundred) > 0
    for stream in (zero, hundred):
        assert all(b["pu"] == a["u"] for a, b in zip(stream, stream[1:], strict=False))
        assert {"E", "T", "pu"} <= set(stream[0])
    price, qty = zero[0]["b"][0] if zero[0]["b"] else zero[0]["a"][0]
    assert len(price.split(".")[1]) == 2 and len(qty.split(".")[1]) == 3
    assert of(events, "btcusdt@bookTicker")[0]["e"] == "bookTicker"


def test_pause_stops_changes_but_windows_still_close():
    market = GeneratedMarket(MarketConfig.fast(), seed=9)
    run(market, 10)
    market.pause()
    frozen = market.book("BTCUSDT")["lastUpdateId"]
    events = market.poll(T0 + 500 * MS)[0]
    assert market.book("BTCUSDT")["lastUpdateId"] == frozen
    diffs = of(events, "btcusdt@depth@100ms")
    assert not diffs or diffs[-1]["u"] == frozen
    market.resume()
    market.poll(T0 + 520 * MS)
    assert market.book("BTCUSDT")["lastUpdateId"] > frozen


def test_bad_configuration_is_refused():
    with pytest.raises(ConfigError):
        GeneratedMarket(market="coinm")
    with pytest.raises(ConfigError):
        MarketConfig(levels=3)
