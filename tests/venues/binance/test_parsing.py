"""Binance parsing: the byte scanner agrees with the orjson reference on every message.

The reference (``BinanceParser.parse_reference``: orjson + ``fixedpoint.to_mantissa``) defines
the records. ``parse_batch`` (one scanner call per batch, orjson for what the scanner hands
back) must produce byte-identical records and identical statuses on every recorded message,
and on generated variants the scanner alone must either agree or fall back, never disagree.

Runs jitted and under NUMBA_DISABLE_JIT=1; without the JIT the kernels run as Python, so the
full-recording test then reads a sample (the first 2000 messages of each file).
"""

from __future__ import annotations

import functools
import gzip
import random
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba.core import config as numba_config

from meltica_nb.errors import ConfigError
from meltica_nb.fixedpoint import to_mantissa
from meltica_nb.kernels import binance_scan_kernels as scan
from meltica_nb.registry import Registry
from meltica_nb.schema import (
    BOOK_LEVEL,
    CANONICAL_EVENT,
    DEPTH_UPDATE,
    SCHEMA_VERSION,
    EventType,
    Flag,
    Kind,
    Side,
)
from meltica_nb.venues.binance.parsing import (
    BinanceParser,
    FrameStatus,
    ParserStats,
    concat_events,
)
from meltica_nb.venues.binance.symbols import (
    QUOTE_ASSETS,
    BinanceSymbols,
    fnv1a64,
    split_by_quote,
)
from meltica_nb.venues.frame_arena import FrameArena

DATA = Path(__file__).resolve().parents[2] / "data"
NO_JIT = bool(numba_config.DISABLE_JIT)
SAMPLE = 2000 if NO_JIT else None
EXAMPLES = 40 if NO_JIT else 400
RECV = 1_723_161_255_000_000_123

RECORDINGS = {
    "binance/binance_spot_btcusdt_20240808_hftbacktest.jsonl.gz": "spot",
    "binance/binance_spot_ethusdt_20240808_hftbacktest.jsonl.gz": "spot",
    "binance/binance_spot_cryptofeed_20211012.jsonl.gz": "spot",
    "binance/binanceus_spot_cryptofeed_20211012.jsonl.gz": "spot",
    "binance-futures/binance_usdm_cryptofeed_20210722.jsonl.gz": "usdm",
    "binance-futures/binance_usdm_btcusdt_20240808_hftbacktest.first20000.jsonl.gz": "usdm",
}
SYMBOLS = ["BTCUSDT", "ETHUSDT", "NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR", "COMPUSDT", "OMGBUSD",
           "CRVUSDT", "ZRXUSDT", "SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"]
HOT_STREAM = re.compile(r"@(trade|aggTrade|bookTicker|depth(@\d+ms)?)$")

TRADE = (b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT",'
         b'"t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,'
         b'"M":true}}')
AGG = (b'{"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10",'
       b'"f":23961322,"l":23961322,"T":1626992741421,"m":false}')
BBO = (b'{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT",'
       b'"b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}')
BBO_USDM = (b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,'
            b'"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510",'
            b'"T":1723161256313,"E":1723161256313}}')
DEPTH = (b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,'
         b'"s":"BTCUSDT","U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"],'
         b'["61730.17000000","1.25000000"]],"a":[["61837.64000000","1.54698000"]]}}')
DEPTH_USDM = (b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161256299,'
              b'"T":1723161256298,"s":"BTCUSDT","U":5123107832006,"u":5123107837557,'
              b'"pu":5123107831937,"b":[["58710.20","0.014"]],"a":[]}}')
TICKER = (b'{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1723161255343,"s":"BTCUSDT",'
          b'"p":"-1.20000000","P":"-0.002","w":"61000.12345678","x":"61838.83000000",'
          b'"c":"61837.63000000","Q":"0.02000000","b":"61837.63000000","B":"3.78826000",'
          b'"a":"61837.64000000","A":"1.54698000","o":"61838.83000000","h":"62100.00000000",'
          b'"l":"60000.00000000","v":"25877.12345000","q":"1578536789.12345670","O":1723074855343,'
          b'"C":1723161255343,"F":3735000000,"L":3735683259,"n":683260}}')
TICKER_USDM = (b'{"e":"24hrTicker","E":1723161255343,"s":"BTCUSDT","p":"-1.20","P":"-0.002",'
               b'"w":"61000.12","c":"61800.30","Q":"0.006","o":"61801.50","h":"62100.00",'
               b'"l":"60000.00","v":"250000.123","q":"15449999999.12","O":1723074855343,'
               b'"C":1723161255343,"F":5266000000,"L":5266583935,"n":583936}')
KLINE = (b'{"stream":"nknusdt@kline_1m","data":{"e":"kline","E":1633998523963,"s":"NKNUSDT",'
         b'"k":{"t":1633998480000,"T":1633998539999,"s":"NKNUSDT","i":"1m","f":19862761,'
         b'"L":19862790,"o":"0.35270000","c":"0.35280000","h":"0.35280000","l":"0.35220000",'
         b'"v":"25877.00000000","n":30,"x":true,"q":"9116.04600000","V":"10000.00000000",'
         b'"Q":"3528.00000000","B":"0"}}}')
SNAPSHOT = (b'{"lastUpdateId":600859605926,"E":1626992741264,"T":1626992741261,'
            b'"bids":[["7.6110","6"],["7.6080","161"]],"asks":[["7.6150","1563"]]}')


# -- fixtures and helpers ------------------------------------------------------------------

def make_parser(market: str = "spot", symbols=SYMBOLS) -> BinanceParser:
    registry = Registry()
    venue = registry.venue_id("binance" if market == "spot" else "binance-futures")
    return BinanceParser(BinanceSymbols(registry, symbols), venue, market)


@pytest.fixture(scope="module")
def parser() -> BinanceParser:
    return make_parser()


@functools.cache
def recording(name: str) -> list[tuple[int, str, bytes]]:
    """(recv_ns, stream label, raw frame) of every line (a sample without the JIT)."""
    with gzip.open(DATA / name, "rb") as fh:
        lines = fh.readlines()[:SAMPLE]
    rows = [orjson.loads(line) for line in lines]
    return [(r["recv_ns"], r["stream"] or "", r["raw"].encode()) for r in rows]


def expected(parser: BinanceParser, frames, recv) -> SimpleNamespace:
    """What parse_batch must return: the reference records of each frame, concatenated."""
    refs = [parser.parse_reference(f, r) for f, r in zip(frames, recv, strict=True)]
    depth = np.concatenate([np.zeros(0, DEPTH_UPDATE)] + [r.depth for r in refs])
    sizes = depth["n_bids"].astype(np.int64) + depth["n_asks"]
    depth["level_off"] = np.cumsum(sizes) - sizes
    return SimpleNamespace(
        status=np.concatenate([np.zeros(0, np.int8)] + [r.status for r in refs]),
        events=concat_events([r.events for r in refs]),
        depth=depth,
        levels=np.concatenate([np.zeros(0, BOOK_LEVEL)] + [r.levels for r in refs]))


def assert_same(got, want, frames=None) -> None:
    """Statuses equal and every record byte-identical (naming the first differing frame)."""
    if not np.array_equal(got.status, want.status):
        f = int(np.flatnonzero(got.status != want.status)[0])
        shown = frames[f][:300] if frames is not None else f
        raise AssertionError(f"frame {f}: status {got.status[f]} != reference "
                             f"{want.status[f]}: {shown!r}")
    for name in ("events", "depth", "levels"):
        a, b = getattr(got, name), getattr(want, name)
        if a.tobytes() != b.tobytes():
            k = next((i for i in range(min(len(a), len(b))) if a[i].tobytes() != b[i].tobytes()),
                     min(len(a), len(b)))
            raise AssertionError(f"{name}[{k}] differs ({len(a)} vs {len(b)} records): "
                                 f"{a[k:k + 1]} != {b[k:k + 1]}")


def check_frames(parser: BinanceParser, frames, recv=None) -> None:
    recv = [RECV + i for i in range(len(frames))] if recv is None else recv
    got = parser.parse_batch(frames, recv)
    assert_same(got, expected(parser, frames, recv), frames)


def check_scanner(parser: BinanceParser, frame: bytes) -> int:
    """The scanner alone agrees with the reference or falls back; returns its verdict."""
    raw = parser.scan([frame], [RECV])
    verdict = int(raw.status[0])
    ref = parser.parse_reference(frame, RECV)
    if verdict == FrameStatus.OK:
        assert_same(raw, expected(parser, [frame], [RECV]), [frame])
    elif verdict == FrameStatus.MALFORMED:
        assert ref.status[0] == FrameStatus.MALFORMED, frame
    else:
        assert verdict == FrameStatus.FALLBACK
    return verdict


# -- every recorded message ----------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_every_recorded_message_matches_the_reference(name):
    rows = recording(name)
    p = make_parser(RECORDINGS[name])
    for start in range(0, len(rows), 256):
        batch = rows[start:start + 256]
        recv = [r for r, _, _ in batch]
        frames = [f for _, _, f in batch]
        got = p.parse_batch(frames, recv)
        assert_same(got, expected(p, frames, recv), frames)
        hot = sum(1 for _, stream, _ in batch if HOT_STREAM.search(stream))
        assert got.n_fallback == len(batch) - hot, "a hot-stream frame was not scanned"
    stats = p.stats()
    assert stats.frames == len(rows)
    assert stats.malformed == stats.bad_value == stats.unknown_symbol == 0


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_recorded_rest_snapshots_match_the_reference(name):
    p = make_parser(RECORDINGS[name])
    rest = [(r, s, f) for r, s, f in recording(name) if s.startswith("rest:")]
    for recv, stream, body in rest:
        symbol = re.search(r"symbol=(\w+)", stream).group(1)
        got = p.parse_snapshot(body, symbol, recv)
        want = p.parse_snapshot_reference(body, symbol, recv)
        assert got.status[0] == FrameStatus.OK and got.n_fallback == 0
        assert_same(got, want)
        row = got.depth[0]
        last = orjson.loads(body)["lastUpdateId"]
        assert row["is_snapshot"] == 1 and row["first_id"] == row["final_id"] == last
        assert row["n_bids"] + row["n_asks"] == got.levels.shape[0]
    assert p.stats().snapshots == len(rest)


def test_hot_messages_use_the_scanner_and_others_fall_back(parser):
    for frame in (TRADE, AGG, BBO, BBO_USDM, DEPTH, DEPTH_USDM):
        assert check_scanner(parser, frame) == FrameStatus.OK
    for frame in (TICKER, TICKER_USDM, KLINE, b'{"result":null,"id":1}', SNAPSHOT):
        assert check_scanner(parser, frame) == FrameStatus.FALLBACK


# -- exact records ---------------------------------------------------------------------------

def test_trade_record_is_exact(parser):
    got = parser.parse_batch([TRADE], [RECV])
    e = got.events[0]
    assert got.status[0] == FrameStatus.OK and got.frame_event[0] == 0
    assert e["event_type"] == EventType.TRADE and e["kind"] == Kind.MARKET_DATA
    assert e["schema_version"] == SCHEMA_VERSION
    assert e["price"] == to_mantissa("61837.63000000", 8)
    assert e["quantity"] == to_mantissa("0.02000000", 8)
    assert e["seq_provider"] == e["seq_first"] == e["trade_id"] == 3735683259
    assert e["side"] == Side.SELL and e["flags"] == Flag.BUYER_MAKER
    assert e["exchange_ns"] == 1723161255342 * 1_000_000 and e["ingest_ns"] == RECV
    assert e["instrument"] == parser.symbols["BTCUSDT"].instrument
    assert e["venue"] == parser.venue_id and e["trace_id"] == 0


def test_agg_trade_record_is_exact(parser):
    e = parser.parse_batch([AGG], [RECV]).events[0]
    assert e["trade_id"] == e["seq_provider"] == e["seq_first"] == 16599292
    assert e["price"] == to_mantissa("1.01100", 8) and e["quantity"] == to_mantissa("10", 8)
    assert e["side"] == Side.BUY and e["flags"] == 0
    assert e["instrument"] == parser.symbols["CTK-USDT"].instrument


def test_bbo_records_are_exact(parser):
    spot, usdm = parser.parse_batch([BBO, BBO_USDM], [RECV, RECV]).events.copy()
    assert spot["event_type"] == EventType.BBO and spot["seq_provider"] == 50093239212
    assert spot["seq_first"] == 0 and spot["exchange_ns"] == 0
    assert spot["bid_price"] == to_mantissa("61837.63000000", 8)
    assert spot["bid_qty"] == to_mantissa("3.78826000", 8)
    assert spot["ask_price"] == to_mantissa("61837.64000000", 8)
    assert spot["ask_qty"] == to_mantissa("1.54698000", 8)
    assert usdm["exchange_ns"] == 1723161256313 * 1_000_000
    assert usdm["ask_qty"] == to_mantissa("2.510", 8)


def test_depth_records_are_exact(parser):
    got = parser.parse_batch([DEPTH, DEPTH_USDM], [RECV, RECV + 1])
    spot, usdm = got.depth
    assert (spot["first_id"], spot["final_id"], spot["prev_final_id"]) == (
        50093239189, 50093239202, -1)
    assert spot["exchange_ns"] == 1723161255208 * 1_000_000 and spot["is_snapshot"] == 0
    assert (spot["n_bids"], spot["n_asks"], spot["level_off"]) == (2, 1, 0)
    assert usdm["prev_final_id"] == 5123107831937 and usdm["level_off"] == 3
    assert (usdm["n_bids"], usdm["n_asks"]) == (1, 0)
    want = [("61737.63000000", "0.00000000"), ("61730.17000000", "1.25000000"),
            ("61837.64000000", "1.54698000"), ("58710.20", "0.014")]
    assert got.levels.tolist() == [(to_mantissa(p, 8), to_mantissa(q, 8)) for p, q in want]


def test_ticker_and_kline_records_are_exact(parser):
    got = parser.parse_batch([TICKER, TICKER_USDM, KLINE], [RECV, RECV, RECV])
    spot, usdm, kline = got.events.copy()
    assert spot["event_type"] == EventType.TICKER and spot["seq_provider"] == 1723161255343
    assert spot["exchange_ns"] == 1723161255343 * 1_000_000
    assert spot["last_price"] == to_mantissa("61837.63000000", 8)
    assert spot["open_price"] == to_mantissa("61838.83000000", 8)
    assert spot["volume"] == to_mantissa("25877.12345000", 8)
    assert spot["quote_volume"] == to_mantissa("1578536789.12345670", 8)
    assert spot["bid_qty"] == to_mantissa("3.78826000", 8)
    assert usdm["bid_price"] == usdm["ask_price"] == 0
    assert usdm["last_price"] == to_mantissa("61800.30", 8)
    assert kline["event_type"] == EventType.KLINE and kline["flags"] == Flag.KLINE_CLOSED
    assert kline["kline_open_ns"] == 1633998480000 * 1_000_000
    assert kline["kline_trades"] == 30 and kline["seq_provider"] == 1633998523963
    assert kline["kline_low"] == to_mantissa("0.35220000", 8)
    assert kline["volume"] == to_mantissa("25877.00000000", 8)


def test_recorded_mantissas_equal_to_mantissa_of_the_text():
    """The first messages of the BTCUSDT recording, checked field by field against
    fixedpoint.to_mantissa of the decoded text (independently of the reference path)."""
    rows = recording("binance/binance_spot_btcusdt_20240808_hftbacktest.jsonl.gz")[:60]
    rows = [r for r in rows if HOT_STREAM.search(r[1])]
    p = make_parser()
    got = p.parse_batch([f for _, _, f in rows], [r for r, _, _ in rows])
    assert got.count(FrameStatus.OK) == len(rows) and got.n_fallback == 0
    for k, (_, _, frame) in enumerate(rows):
        msg = orjson.loads(frame)["data"]
        if "U" in msg:
            row = got.depth[got.frame_depth[k]]
            levels = got.levels[row["level_off"]:][: row["n_bids"] + row["n_asks"]]
            want = [(to_mantissa(px, 8), to_mantissa(q, 8)) for px, q in msg["b"] + msg["a"]]
            assert levels.tolist() == want
            assert (row["first_id"], row["final_id"]) == (msg["U"], msg["u"])
            continue
        e = got.events[got.frame_event[k]]
        if "t" in msg:
            assert (e["price"], e["quantity"]) == (to_mantissa(msg["p"], 8),
                                                   to_mantissa(msg["q"], 8))
            assert e["side"] == (Side.SELL if msg["m"] else Side.BUY)
        else:
            assert (e["bid_price"], e["bid_qty"], e["ask_price"], e["ask_qty"]) == tuple(
                to_mantissa(msg[key], 8) for key in "bBaA")


EXCHANGE_INFO = orjson.dumps({"timezone": "UTC", "symbols": [
    {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
     "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01000000",
                  "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
                 {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
                  "stepSize": "0.00001000"},
                 {"filterType": "NOTIONAL", "minNotional": "5.00000000"}, "junk"]},
    {"symbol": "ETHBTC", "baseAsset": "ETH", "quoteAsset": "BTC",
     "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.00001000"},
                 {"filterType": "LOT_SIZE", "stepSize": "0.00010000"}]},
    {"symbol": "SHIBUSDT", "baseAsset": "SHIB", "quoteAsset": "USDT",
     "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.00000001"},
                 {"filterType": "LOT_SIZE", "stepSize": "1.00", "maxQty": "900000000000.00"}]},
    {"symbol": "BTCUSDT_240927", "baseAsset": "BTC", "quoteAsset": "USDT", "filters": []},
    {"symbol": "NOFILTERS", "baseAsset": "NOFILT", "quoteAsset": "ERS"},
]})


def test_exchange_info_exponents_give_exact_mantissas():
    registry = Registry()
    symbols = BinanceSymbols.from_exchange_info(registry, EXCHANGE_INFO)
    assert [s.symbol for s in symbols] == ["BTCUSDT", "ETHBTC", "SHIBUSDT", "NOFILTERS"]
    # at least 8 decimals where the filter's maximum allows: Binance sends values finer
    # than its current tick/step; SHIB's 9e11 maximum quantity leaves room for 7 only
    assert (symbols["BTCUSDT"].price_exp, symbols["BTCUSDT"].qty_exp) == (8, 8)
    assert (symbols["ETHBTC"].price_exp, symbols["ETHBTC"].qty_exp) == (8, 8)
    assert (symbols["SHIBUSDT"].price_exp, symbols["SHIBUSDT"].qty_exp) == (8, 7)
    assert (symbols["NOFILTERS"].price_exp, symbols["NOFILTERS"].qty_exp) == (8, 8)
    p = BinanceParser(symbols, registry.venue_id("binance"))
    got = p.parse_batch([TRADE, DEPTH, TICKER], [RECV] * 3)
    assert got.status.tolist() == [FrameStatus.OK] * 3
    trade, ticker = got.events
    assert trade["price"] == 6183763000000 == to_mantissa("61837.63000000", 8)
    assert trade["quantity"] == 2000000 == to_mantissa("0.02000000", 8)
    assert got.levels[1].tolist() == (6173017000000, 125000000)
    assert ticker["quote_volume"] == to_mantissa("1578536789.1234567", 8)  # min(8 + 8, 8)
    assert p.scan([TRADE], [RECV]).status[0] == FrameStatus.OK
    # 9 decimals do not fit exponent 8: the scanner falls back, the reference refuses
    inexact = TRADE.replace(b'"61837.63000000"', b'"61837.630000001"')
    assert check_scanner(p, inexact) == FrameStatus.FALLBACK
    assert p.parse_batch([inexact], [RECV]).status[0] == FrameStatus.BAD_VALUE


# -- statuses and counters -------------------------------------------------------------------

def _trade(**changes) -> bytes:
    msg = orjson.loads(TRADE)["data"]
    msg.update(changes)
    return orjson.dumps({k: v for k, v in msg.items() if v is not None})


CASES = [
    (TRADE, FrameStatus.OK), (AGG, FrameStatus.OK), (BBO, FrameStatus.OK),
    (DEPTH, FrameStatus.OK), (TICKER, FrameStatus.OK), (KLINE, FrameStatus.OK),
    (b'{"result":null,"id":1}', FrameStatus.CONTROL),
    (b'{"error":{"code":2,"msg":"Invalid request: unknown variable"},"id":3}',
     FrameStatus.CONTROL),
    (b'{"e":"24hrMiniTicker","E":1,"s":"BTCUSDT","c":"1"}', FrameStatus.UNKNOWN),
    (b'[1,2,3]', FrameStatus.UNKNOWN), (b'"text"', FrameStatus.UNKNOWN),
    (b'{"foo":1}', FrameStatus.UNKNOWN), (b'{"e":5,"s":"BTCUSDT"}', FrameStatus.UNKNOWN),
    (SNAPSHOT, FrameStatus.UNKNOWN),
    (b'{"stream":"x@trade","data":{}}', FrameStatus.UNKNOWN),
    (TRADE.replace(b'"BTCUSDT"', b'"NOPEUSDT"'), FrameStatus.UNKNOWN_SYMBOL),
    (TRADE.replace(b'"BTCUSDT"', b'"btcusdt"'), FrameStatus.UNKNOWN_SYMBOL),
    (_trade(q=None), FrameStatus.BAD_VALUE),
    (_trade(s=None), FrameStatus.BAD_VALUE),
    (_trade(s=7), FrameStatus.BAD_VALUE),
    (_trade(p="1.123456789"), FrameStatus.BAD_VALUE),
    (_trade(p="12x"), FrameStatus.BAD_VALUE),
    (_trade(p=61837.63), FrameStatus.BAD_VALUE),
    (_trade(t=2**63), FrameStatus.BAD_VALUE),
    (_trade(t=True), FrameStatus.BAD_VALUE),
    (_trade(T=9_223_372_036_855), FrameStatus.BAD_VALUE),
    (_trade(m="yes"), FrameStatus.BAD_VALUE),
    (_trade(q="92233720368.54775808"), FrameStatus.BAD_VALUE),
    (DEPTH.replace(b'["61837.64000000","1.54698000"]', b'["61837.64000000","1.5","x"]'),
     FrameStatus.BAD_VALUE),
    (DEPTH.replace(b'"a":[[', b'"a":[1,['), FrameStatus.BAD_VALUE),
    (DEPTH.replace(b'"a":[[', b'"a":[[1,'), FrameStatus.BAD_VALUE),
    (DEPTH.replace(b'"U":50093239189,', b''), FrameStatus.BAD_VALUE),
    (DEPTH.replace(b'"b":[[', b'"b":{"x":[['), FrameStatus.MALFORMED),
    (DEPTH.replace(b'"b":[', b'"b":"x","c":[', 1), FrameStatus.BAD_VALUE),
    (BBO.replace(b'"61837.63000000"', b'61837.63'), FrameStatus.BAD_VALUE),
    (KLINE.replace(b'"k":{', b'"k":[],"kk":{'), FrameStatus.BAD_VALUE),
    (KLINE.replace(b'"n":30', b'"n":"30"'), FrameStatus.BAD_VALUE),
    (TICKER.replace(b'"c":"61837.63000000",', b''), FrameStatus.BAD_VALUE),
    (TRADE[:-7], FrameStatus.MALFORMED), (b"", FrameStatus.MALFORMED),
    (b"   ", FrameStatus.MALFORMED), (b"\xff", FrameStatus.MALFORMED),
    (b'{"e":"trade",}', FrameStatus.MALFORMED), (TRADE + b"x", FrameStatus.MALFORMED),
    (TRADE.replace(b"BTCUSDT", b"BTC\xffUSDT"), FrameStatus.MALFORMED),
    (b"\xef\xbb\xbf" + TRADE, FrameStatus.MALFORMED),
]


@pytest.mark.parametrize(("frame", "status"), CASES)
def test_each_status(parser, frame, status):
    got = parser.parse_batch([frame], [RECV])
    assert got.status[0] == status, frame
    assert got.count(status) == 1
    assert (got.frame_event[0] >= 0 or got.frame_depth[0] >= 0) == (status == FrameStatus.OK)
    check_frames(parser, [frame])
    check_scanner(parser, frame)


def with_x(value: bytes, close: bool = True) -> bytes:
    """TRADE with an unknown member ``"x": value`` (left unterminated unless ``close``)."""
    return TRADE[:-2] + b',"x":' + value + (b"}}" if close else b"")


OK_, FB_, MAL_ = FrameStatus.OK, FrameStatus.FALLBACK, FrameStatus.MALFORMED
TRADE_DATA = orjson.dumps(orjson.loads(TRADE)["data"])
#: (frame, scanner verdict, final status): each lexical and structural path of the scanner.
EDGES = [
    (with_x(b'"\\u12', close=False), MAL_, MAL_),
    (with_x(b'"\\u12G4"'), FB_, MAL_),
    (with_x(b'"\\ud800\\udc00"'), FB_, OK_),
    (with_x(b'"abc\\', close=False), MAL_, MAL_),
    (with_x(b'"\\q"'), FB_, MAL_),
    (with_x(b'"\\n\\"\\\\\\/\\b\\f\\r\\t\\u0041\\u00e9"'), OK_, OK_),
    (with_x(b'"tab\tin string"'), FB_, MAL_),
    (with_x(b"1."), MAL_, MAL_), (with_x(b"-"), MAL_, MAL_), (with_x(b"01"), MAL_, MAL_),
    (with_x(b"tru", close=False), MAL_, MAL_), (with_x(b"trux"), MAL_, MAL_),
    (with_x(b"+1"), MAL_, MAL_), (with_x(b"NaN"), MAL_, MAL_),
    (with_x(b"[" * 40 + b"]" * 40), FB_, OK_),
    (with_x(b"[", close=False), MAL_, MAL_), (with_x(b"{1:2}"), MAL_, MAL_),
    (with_x(b'{"a" 1}'), MAL_, MAL_), (with_x(b"[1 2]"), MAL_, MAL_),
    (with_x(b"[1,", close=False), MAL_, MAL_), (with_x(b"[1,]"), MAL_, MAL_),
    (with_x(b'[{"a":[1,{"b":null}],"c":{}},[],"s",-0.5,0,true,false,{ }]'), OK_, OK_),
    (with_x(b"1.5e3"), FB_, OK_), (with_x(b"12345678901234567890"), FB_, OK_),
    (TRADE.replace(b'"t":3735683259', b'"t":-'), MAL_, MAL_),
    (TRADE.replace(b'"t":3735683259', b'"t":3735683259.0'), FB_, FrameStatus.BAD_VALUE),
    (TRADE.replace(b'"m":true', b'"m":null'), FB_, FrameStatus.BAD_VALUE),
    (TRADE.replace(b'"m":true', b'"m":nul'), FB_, MAL_),
    (TRADE.replace(b'"m":true', b'"m":fals'), MAL_, MAL_),
    (TRADE.replace(b'"E":', b'"E" :', 1)[:-1], MAL_, MAL_),
    (TRADE.replace(b'"E":', b'"E" '), MAL_, MAL_),
    (TRADE.replace(b'"s":', b'"s":  ')[: TRADE.index(b'"s":') + 6], MAL_, MAL_),
    (DEPTH[: DEPTH.index(b'"b":[[') + 6], MAL_, MAL_),
    (DEPTH[: DEPTH.index(b'"b":[[') + 5], MAL_, MAL_),
    (DEPTH[: DEPTH.index(b'"b":[[') + 21], MAL_, MAL_),
    (DEPTH.replace(b'"b":[[', b'"b":["1",['), FB_, FrameStatus.BAD_VALUE),
    (DEPTH.replace(b'"0.00000000"],', b'"0.00000000"]x', 1), MAL_, MAL_),
    (DEPTH[: DEPTH.index(b'],["61730') + 2], MAL_, MAL_),
    (DEPTH.replace(b'"61737.63000000"', b'"61737\\u002e63"'), FB_, OK_),
    (DEPTH.replace(b'"61737.63000000"', b"61737.63"), FB_, FrameStatus.BAD_VALUE),
    (DEPTH.replace(b'"61730.17000000"', b'"61730.171234567"'), FB_, FrameStatus.BAD_VALUE),
    (DEPTH.replace(b'"1.25000000"', b'"1.2.3"'), FB_, FrameStatus.BAD_VALUE),
    (DEPTH.replace(b'"E":1723161255208', b'"E":9223372036855'), FB_, FrameStatus.BAD_VALUE),
    (DEPTH.replace(b'"b":[', b'"b": [ ', 1).replace(b'"a":[', b'"a":[\n\t', 1), OK_, OK_),
    (BBO.replace(b'"u":50093239212', b'"u":50093239212,"E":9223372036855'), FB_,
     FrameStatus.BAD_VALUE),
    (BBO.replace(b',"B":"3.78826000"', b""), FB_, FrameStatus.BAD_VALUE),
    (BBO.replace(b'"61837.64000000"', b'"61837.6400000001"'), FB_, FrameStatus.BAD_VALUE),
    (b'{"stream":"a","data":5}', FB_, FrameStatus.UNKNOWN),
    (b'{"data":{"e":"trade"},"data":' + TRADE_DATA + b"}", FB_, OK_),
    (b'{"data":{', MAL_, MAL_), (b"{ \n", MAL_, MAL_), (b"{}", FB_, FrameStatus.UNKNOWN),
    (b'{"stream":"x","data":{}}', FB_, FrameStatus.UNKNOWN),
    (b'{"stream":"x","da\\u0074a":' + TRADE_DATA + b"}", FB_, OK_),
    (b'{"a":1,5:2}', MAL_, MAL_), (b'{"a":1 "b":2}', MAL_, MAL_),
    (b'{"e":"trade","data":' + TRADE_DATA + b"}", FB_, OK_),
    (b'{"pu":1,"data":' + TRADE_DATA + b"}", FB_, OK_),
    (with_x(b'"abc', close=False), MAL_, MAL_), (with_x(b'{"\\q":1}'), FB_, MAL_),
    (b'{"stream":"x","data":' + TRADE_DATA + b',"z":1}', OK_, OK_),
    (b'{"stream":"x","data":' + TRADE_DATA + b"} ]", MAL_, MAL_),
    (b' \r\n\t' + TRADE + b" \n", OK_, OK_),
]


@pytest.mark.parametrize(("frame", "verdict", "status"), EDGES)
def test_scanner_edges(parser, frame, verdict, status):
    assert check_scanner(parser, frame) == verdict, frame
    assert parser.parse_batch([frame], [RECV]).status[0] == status, frame
    check_frames(parser, [frame])


def test_stats_count_every_path():
    p = make_parser()
    frames = [frame for frame, _ in CASES]
    got = p.parse_batch(frames, [RECV] * len(frames))
    p.parse_snapshot(SNAPSHOT, "SUSHIUSDT", RECV)
    p.parse_snapshot(b'{"code":-1121,"msg":"Invalid symbol."}', "SUSHIUSDT", RECV)
    want = {s: sum(1 for _, st_ in CASES if st_ == s) for s in FrameStatus}
    assert {s: got.count(s) for s in FrameStatus} == want
    stats = p.stats()
    assert isinstance(stats, ParserStats)
    assert stats == ParserStats(
        frames=len(frames) + 2, fallback=got.n_fallback + 1, trades=2, bbo=1, tickers=1,
        klines=1, depth_updates=1, snapshots=1, levels=3 + 3, control=2,
        unknown=want[FrameStatus.UNKNOWN] + 1, unknown_symbol=2,
        bad_value=want[FrameStatus.BAD_VALUE], malformed=want[FrameStatus.MALFORMED])
    with pytest.raises(AttributeError):
        stats.frames = 0  # frozen


def test_snapshot_statuses(parser):
    good = parser.parse_snapshot(SNAPSHOT, "sushiusdt", RECV)
    assert good.status[0] == FrameStatus.OK and good.n_fallback == 0
    assert good.depth[0]["exchange_ns"] == 1626992741264 * 1_000_000
    assert good.depth[0]["first_id"] == 600859605926 and good.depth[0]["prev_final_id"] == -1
    assert good.levels.tolist() == [(761100000, 600000000), (760800000, 16100000000),
                                    (761500000, 156300000000)]
    escaped = SNAPSHOT.replace(b'"7.6110"', b'"7.611\\u0030"')
    again = parser.parse_snapshot(escaped, "SUSHI-USDT", RECV)
    assert again.n_fallback == 1
    assert_same(again, good)
    for body, status in ((SNAPSHOT[:-3], FrameStatus.MALFORMED),
                         (b'{"code":-1121,"msg":"Invalid symbol."}', FrameStatus.UNKNOWN),
                         (b'[1]', FrameStatus.UNKNOWN),
                         (SNAPSHOT.replace(b'"6"', b'6'), FrameStatus.BAD_VALUE),
                         (SNAPSHOT.replace(b'"asks":[', b'"asks":"x","zz":['),
                          FrameStatus.BAD_VALUE),
                         (SNAPSHOT.replace(b'"E":1626992741264', b'"E":1e12'),
                          FrameStatus.BAD_VALUE)):
        got = parser.parse_snapshot(body, "SUSHIUSDT", RECV)
        assert got.status[0] == status, body
        assert got.depth.shape[0] == 0
        assert_same(got, parser.parse_snapshot_reference(body, "SUSHIUSDT", RECV))
    with pytest.raises(ConfigError, match="unknown Binance symbol"):
        parser.parse_snapshot(SNAPSHOT, "NOPEUSDT", RECV)


# -- generated variants ----------------------------------------------------------------------

class Raw(str):
    """JSON text emitted verbatim (numbers orjson would not write, duplicate members)."""


class Dup(list):
    """An object written with these (key, value) members, duplicates included."""


def dump(obj, rnd: random.Random, opts: dict) -> str:
    """JSON text of ``obj`` with the variant's whitespace, member order and escapes."""
    def ws() -> str:
        if not opts["ws"]:
            return ""
        return "".join(rnd.choice(" \t\r\n") for _ in range(rnd.randint(0, 2)))

    if isinstance(obj, Raw):
        return str(obj)
    if isinstance(obj, dict | Dup):
        items = list(obj.items() if isinstance(obj, dict) else obj)
        if opts["shuffle"]:
            rnd.shuffle(items)
        body = ",".join(f"{ws()}{string(k, rnd, opts)}{ws()}:{ws()}{dump(v, rnd, opts)}{ws()}"
                        for k, v in items)
        return "{" + (body or ws()) + "}"
    if isinstance(obj, list):
        return "[" + (",".join(ws() + dump(v, rnd, opts) + ws() for v in obj) or ws()) + "]"
    if isinstance(obj, str):
        return string(obj, rnd, opts)
    if type(obj) is int:
        return str(obj)  # orjson.dumps refuses ints beyond 64 bits
    return orjson.dumps(obj).decode()


def string(text: str, rnd: random.Random, opts: dict) -> str:
    out = []
    for ch in text:
        if rnd.random() < opts["escape"]:
            out.append(rnd.choice([f"\\u{ord(ch):04x}", f"\\u{ord(ch):04X}"]))
        else:
            out.append(orjson.dumps(ch).decode()[1:-1])
    return '"' + "".join(out) + '"'


def random_value(rnd: random.Random, depth: int = 0):
    """Any JSON value, nested a little (and sometimes very deep)."""
    kind = rnd.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rnd.choice([True, False, None])
    if kind == 1:
        return rnd.randint(-(10**20), 10**20) if rnd.random() < 0.3 else rnd.randint(-9, 10**6)
    if kind == 2:
        return Raw(rnd.choice(["1e400", "-0.5E-3", "1E+2", "0.000001", "-0",
                               "123456789012345678901234567890", "3.25", "1.5e10"]))
    if kind in (3, 4):
        return rnd.choice(["", "x", "é€😀", 'q"uo\\te', "tab\tnew\nline", "\u0000\u001f",
                           "@trade", "\ud7ff"])
    if kind == 5:
        return Raw("[" * 40 + "]" * 40) if rnd.random() < 0.2 else []
    if kind in (6, 7):
        return {rnd.choice(["x", "data", "e", "s", "k", "id", "result", "Ü"]):
                random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 3))}
    return [random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]


def _extra_keys(top: dict, msg: dict, rnd: random.Random) -> None:
    for _ in range(rnd.randint(1, 3)):
        msg[rnd.choice(["x", "M", "X", "zz", "ñ", "lastUpdateId", "bids", "error",
                        "stream"])] = random_value(rnd)


def _escape_unrelated(top: dict, msg: dict, rnd: random.Random) -> None:
    msg["note"] = rnd.choice(['a\\b"c', "\n\t/", "caf\u00e9", "\u2028", "\\u0041"])
    if isinstance(top.get("stream"), str):
        top["stream"] = Raw(string(top["stream"], rnd, {"escape": 0.5}))


def _numbers(top: dict, msg: dict, rnd: random.Random) -> None:
    key = rnd.choice([k for k in msg if k in "EUuTtapu"] or ["E"])
    msg[key] = rnd.choice([Raw("1.7e12"), Raw("1723161255343.0"), 2**63, -1, 0, Raw("-0"),
                           10**19, 9_223_372_036_854, Raw("12345678901234567890"), True, None,
                           "1723161255343", Raw("01")])


def _decimals(top: dict, msg: dict, rnd: random.Random) -> None:
    keys = [k for k in msg if isinstance(msg[k], str) and k in "pqbBaA"]
    if not keys:
        return
    key = rnd.choice(keys)
    value = msg[key]
    msg[key] = rnd.choice([
        value.rstrip("0") + "e0", value.replace(".", "") + f"e-{len(value.split('.')[-1])}",
        "+" + value, value + "1", value + "00000000000", "." + value.split(".")[-1],
        value.replace(".", ","), " " + value, "", "-" + value, "1E-8", "9" * 25, value + "x"])


def _levels(top: dict, msg: dict, rnd: random.Random) -> None:
    for key in ("b", "a", "bids", "asks"):
        if isinstance(msg.get(key), list) and rnd.random() < 0.5:
            msg[key] = [_level_variant(lv, rnd) for lv in msg[key]]


def _level_variant(lv, rnd: random.Random):
    if not (isinstance(lv, list) and len(lv) == 2):
        return lv
    return rnd.choice([lv, lv + ["x"], lv[:1], [lv[0], Raw("1.5")], [lv[1], lv[0]],
                       {"p": lv[0]}])


def _symbol(top: dict, msg: dict, rnd: random.Random) -> None:
    msg["s"] = rnd.choice(["NOPEUSDT", "btcusdt", "", "BTCUSD", "ETHUSDT", 5, "BTCUSDTX"])


def _drop(top: dict, msg: dict, rnd: random.Random) -> None:
    if msg:
        del msg[rnd.choice(sorted(msg))]


_MESSAGE_MUTATORS = {"extra_keys": _extra_keys, "escape_unrelated": _escape_unrelated,
                     "numbers": _numbers, "decimals": _decimals, "levels": _levels,
                     "symbol": _symbol, "drop": _drop}


def _reshape(top: dict, msg: dict, rnd: random.Random, mutations: frozenset):
    """Wrap a bare message (or unwrap a wrapped one); repeat one member."""
    if "wrap" in mutations:
        top = {"data": msg} if top is msg else msg
    if "duplicate" in mutations and msg:
        key = rnd.choice(sorted(msg))
        items = Dup(list(msg.items()) + [(key, msg[key])])
        top = items if top is msg else {**top, "data": items}
    return top


def _damage(text: bytes, rnd: random.Random, mutations: frozenset) -> bytes:
    if "truncate" in mutations:
        text = text[: rnd.randrange(len(text))]
    if "flip" in mutations and text:
        pos = rnd.randrange(len(text))
        text = text[:pos] + bytes([rnd.randrange(256)]) + text[pos + 1:]
    return text


def variant(base: bytes, seed: int, mutations: frozenset) -> bytes:
    """A generated relative of a real message (see MUTATIONS)."""
    rnd = random.Random(seed)
    top = orjson.loads(base)
    msg = top.get("data", top)
    opts = {"ws": "ws" in mutations, "shuffle": "shuffle" in mutations,
            "escape": rnd.choice([0.05, 0.3]) if "escape_any" in mutations else 0.0}
    for name, mutate in _MESSAGE_MUTATORS.items():
        if name in mutations:
            mutate(top, msg, rnd)
    top = _reshape(top, msg, rnd, mutations)
    return _damage(dump(top, rnd, opts).encode(), rnd, mutations)


MUTATIONS = ["shuffle", "ws", "escape_unrelated", "escape_any", "extra_keys", "numbers",
             "decimals", "levels", "symbol", "drop", "wrap", "duplicate", "truncate", "flip"]
BASES = [TRADE, AGG, BBO, BBO_USDM, DEPTH, DEPTH_USDM, TICKER, TICKER_USDM, KLINE, SNAPSHOT]
variants = st.builds(variant, st.sampled_from(BASES), st.integers(0, 2**32 - 1),
                     st.frozensets(st.sampled_from(MUTATIONS), max_size=4))
hot_layout = st.builds(variant, st.sampled_from(BASES[:6]), st.integers(0, 2**32 - 1),
                       st.frozensets(st.sampled_from(["shuffle", "ws", "escape_unrelated",
                                                      "extra_keys", "wrap"]), min_size=1))
#: The compact layouts the scanner's fast paths read, with only their values changed (numbers,
#: decimals, levels, symbol) or their bytes damaged: each step of a fast path must decline or
#: agree with the reference.
compact_layout = st.builds(variant, st.sampled_from([TRADE, BBO, DEPTH]),
                           st.integers(0, 2**32 - 1),
                           st.frozensets(st.sampled_from(["numbers", "decimals", "levels",
                                                          "symbol", "drop", "truncate",
                                                          "flip"]), min_size=1, max_size=2))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(frame=variants)
def test_variants_scanner_agrees_or_falls_back(parser, frame):
    check_scanner(parser, frame)
    check_frames(parser, [frame])


@SETTINGS
@given(frame=hot_layout)
def test_layout_only_variants_are_scanned(parser, frame):
    """Field order, whitespace, unknown keys and escapes elsewhere do not stop the scanner,
    unless an unknown value holds something only orjson may judge."""
    if check_scanner(parser, frame) != FrameStatus.OK:
        assert ONLY_ORJSON.search(frame), frame


@SETTINGS
@given(frame=compact_layout)
def test_compact_layout_variants_agree_or_fall_back(parser, frame):
    check_scanner(parser, frame)
    check_frames(parser, [frame])


def test_compact_layouts_take_the_fast_path(parser):
    """The hot messages as Binance sends them are read by the fast paths; any other layout of
    the same message by the general reader, to the same record."""
    t = parser.symbols.table()
    syms = (t.slots, t.sym_bytes, t.sym_len, t.sym_inst, t.price_exp, t.qty_exp)
    outs = (np.zeros(1, CANONICAL_EVENT), np.zeros(1, DEPTH_UPDATE), np.zeros(8, BOOK_LEVEL))
    for frame, what in ((TRADE, 1), (BBO, 1), (DEPTH, 2), (TRADE.replace(b',"M"', b', "M"'), 0),
                        (BBO.replace(b'"}}', b'"} }'), 0), (DEPTH.replace(b'"a":[[', b'"a":[ ['),
                                                            0)):
        buf = np.frombuffer(frame, np.uint8)
        got = scan._fast_frame(*outs, 0, 0, 0, buf, 0, buf.shape[0], RECV, 1, syms)
        assert got[0] == what, frame
        assert check_scanner(parser, frame) == FrameStatus.OK


#: Why a well-formed hot message may still fall back: non-ASCII bytes, an exponent or 19+
#: digit number, nesting deeper than the scanner's stack, a surrogate escape, a reply key
#: ("result"/"error") at the top of a bare message.
ONLY_ORJSON = re.compile(rb'[\x80-\xff]|\d[eE]|\d{19}|\[{32}|\\u[dD][89a-fA-F]'
                         rb'|"(error|result)"\s*:')


@SETTINGS
@given(frames=st.lists(st.one_of(variants, st.sampled_from(BASES)), max_size=12))
def test_mixed_batches_keep_frame_order(parser, frames):
    check_frames(parser, frames)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["e", "s", "data", "u", "b", "a", "x", "result", "id"])
                      | st.text(max_size=3), children, max_size=4),
    max_leaves=12)


@SETTINGS
@given(value=json_values)
def test_arbitrary_json_never_raises_and_agrees(parser, value):
    frame = orjson.dumps(value)
    check_scanner(parser, frame)
    check_frames(parser, [frame])


@SETTINGS
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_never_raise_and_agree(parser, data):
    check_scanner(parser, data)
    check_frames(parser, [data])


# -- batches, arenas and buffers --------------------------------------------------------------

def test_parse_arena_reads_frames_in_place(parser):
    frames = [TRADE, KLINE, DEPTH, b'{"result":null,"id":1}', BBO,
              DEPTH.replace(b"BTCUSDT", b"BTC\\u0055SDT")]
    arena = bytearray(b"#" * 7)
    offsets, lengths = [], []
    for f in frames:
        offsets.append(len(arena))
        lengths.append(len(f))
        arena += f + b"~~~"
    recv = np.arange(len(frames), dtype=np.int64) + RECV
    got = parser.parse_arena(np.frombuffer(bytes(arena), np.uint8), np.array(offsets),
                             np.array(lengths), recv)
    assert_same(got, expected(parser, frames, recv), frames)
    assert_same(parser.parse_arena(arena, offsets, lengths, recv), expected(parser, frames, recv))
    assert got.n_fallback == 3 and got.frame_depth.tolist() == [-1, -1, 0, -1, -1, 1]


def test_a_connections_frame_arena_is_parsed_in_place(parser):
    frames = [TRADE, KLINE, DEPTH, b'{"result":null,"id":1}', BBO]
    arena = FrameArena(frames=2, nbytes=16)
    for f in frames:
        arena.add(f, RECV)
    recv = arena.recv()
    assert_same(parser.parse_batch(arena, recv), expected(parser, frames, recv), frames)


def test_large_batches_grow_the_buffers():
    p = make_parser()
    frames = [TRADE, BBO, DEPTH, KLINE] * 150
    check_frames(p, frames)
    assert p.stats().frames == len(frames)


def test_str_and_bytearray_frames_are_accepted(parser):
    got = parser.parse_batch([TRADE.decode(), bytearray(BBO), memoryview(DEPTH)], [1, 2, 3])
    assert got.status.tolist() == [FrameStatus.OK] * 3
    assert got.events["ingest_ns"].tolist() == [1, 2]


def test_bad_arguments_are_config_errors():
    registry = Registry()
    symbols = BinanceSymbols(registry, ["BTCUSDT"])
    with pytest.raises(ConfigError, match="market"):
        BinanceParser(symbols, 1, "coinm")
    for venue in (0, 70000, True, "1"):
        with pytest.raises(ConfigError, match="venue_id"):
            BinanceParser(symbols, venue)
    p = BinanceParser(symbols, 1, "usdm")
    with pytest.raises(ConfigError, match="one time per frame"):
        p.parse_batch([TRADE], [1, 2])
    assert "usdm" in repr(p)
    assert p.parse_batch([], []).n_frames == 0


def test_symbols_added_later_are_picked_up():
    p = make_parser(symbols=["ETHUSDT"])
    assert p.parse_batch([TRADE], [RECV]).status[0] == FrameStatus.UNKNOWN_SYMBOL
    p.symbols.add("BTCUSDT")
    assert p.parse_batch([TRADE], [RECV]).status[0] == FrameStatus.OK
    assert p.parse_reference(TRADE).status[0] == FrameStatus.OK


# -- the kernel directly ---------------------------------------------------------------------

def _kernel_call(parser, frames, n_out=4, n_levels=64, n_spans=64, offsets=None):
    buf = np.frombuffer(b"".join(frames), np.uint8)
    lengths = np.array([len(f) for f in frames], np.int64)
    offs = np.cumsum(lengths) - lengths if offsets is None else np.asarray(offsets, np.int64)
    n = len(frames)
    outs = (np.zeros(n_out, CANONICAL_EVENT), np.zeros(n_out, DEPTH_UPDATE),
            np.zeros(n_levels, BOOK_LEVEL), np.zeros(n, np.int8), np.zeros(n, np.int32),
            np.zeros(n, np.int32))
    t = parser.symbols.table()
    counts = scan.scan_batch(*outs, buf, offs, lengths, np.zeros(n, np.int64), 1,
                             scan.MODE_STREAM, 0, t.slots, t.sym_bytes, t.sym_len, t.sym_inst,
                             t.price_exp, t.qty_exp, np.zeros(scan.STATE_SIZE, np.int64),
                             np.zeros((n_spans, scan.SPAN_FIELDS), np.int64),
                             np.zeros(scan.MAX_DEPTH, np.uint8))
    return counts, outs[3]


def test_kernel_falls_back_when_outputs_are_full(parser):
    counts, status = _kernel_call(parser, [TRADE, BBO, DEPTH, DEPTH], n_out=1, n_levels=4)
    assert counts == (1, 1, 3) and status.tolist() == [0, 1, 0, 1]
    spaced = DEPTH.replace(b'"b":', b'"b": ')  # not the compact layout: the general reader
    _, status = _kernel_call(parser, [spaced, DEPTH], n_spans=1)
    assert status.tolist() == [FrameStatus.FALLBACK, FrameStatus.OK]  # it needs span scratch


def test_kernel_refuses_frames_outside_the_buffer(parser):
    _, status = _kernel_call(parser, [TRADE], offsets=[5])
    assert status.tolist() == [FrameStatus.MALFORMED]


# -- symbols ---------------------------------------------------------------------------------

def test_quote_suffix_fallback():
    assert split_by_quote("BTCUSDT") == ("BTC", "USDT")
    assert split_by_quote("BTCTUSD") == ("BTC", "TUSD")
    assert split_by_quote("BNBFDUSD") == ("BNB", "FDUSD")
    assert split_by_quote("USDCUSDT") == ("USDC", "USDT")
    assert split_by_quote("ETHBTC") == ("ETH", "BTC")
    assert split_by_quote("BTCUSD") == ("BTC", "USD")
    assert list(QUOTE_ASSETS) == sorted(QUOTE_ASSETS, key=lambda q: (-len(q), q))
    with pytest.raises(ConfigError, match="exchangeInfo"):
        split_by_quote("FOOBAR")


def test_symbol_lookups_and_spellings():
    registry = Registry()
    symbols = BinanceSymbols(registry, ["BTCUSDT", "ETHBTC"])
    btc = symbols.add("BTCUSDT")
    assert btc.canonical == "BTC-USDT" and btc.stream_prefix == "btcusdt"
    assert (btc.price_exp, btc.qty_exp) == (8, 8)
    assert btc.instrument == registry.instrument_id("BTC-USDT", create=False)
    for name in ("BTCUSDT", "btcusdt", "btcusdt@depth@100ms", "BTC-USDT"):
        assert symbols[name] is btc and symbols.canonical(name) == "BTC-USDT"
    assert symbols.instrument_of("BTCUSDT") == btc.instrument
    assert symbols.instrument_of("btcusdt") == 0 and symbols.get(5) is None
    assert len(symbols) == 2
    for bad in ("btcusdt", "BTC-USDT", "X", 7, "A" * 33):
        with pytest.raises(ConfigError):
            symbols.add(bad)
    with pytest.raises(ConfigError, match="is not"):
        symbols.add("BTCUSDT", "ETH", "USDT")
    with pytest.raises(ConfigError, match="unknown Binance symbol"):
        symbols["DOGEUSDT"]


def test_registered_exponents_must_cover_the_venue():
    registry = Registry()
    registry.instrument_id("BTC-USDT", price_exp=1, qty_exp=8)
    with pytest.raises(ConfigError, match="price exponent 1"):
        BinanceSymbols.from_exchange_info(registry, EXCHANGE_INFO)
    registry = Registry()
    registry.instrument_id("BTC-USDT", price_exp=8, qty_exp=8)
    symbols = BinanceSymbols.from_exchange_info(registry, orjson.loads(EXCHANGE_INFO))
    assert (symbols["BTCUSDT"].price_exp, symbols["BTCUSDT"].qty_exp) == (8, 8)


@pytest.mark.parametrize("info", [b'{"symbols": 5}', b'[]', b'{"symbols": [1]}',
                                  b'{"symbols": [{"symbol": "BTCUSDT", "baseAsset": "BTC", '
                                  b'"quoteAsset": "USDT", "filters": [{"filterType": '
                                  b'"PRICE_FILTER", "tickSize": 0.01}]}]}',
                                  b'{"symbols": [{"symbol": "BTCUSDT", "baseAsset": "BTC", '
                                  b'"quoteAsset": "USDT", "filters": [{"filterType": '
                                  b'"LOT_SIZE", "stepSize": "1e-5"}]}]}'])
def test_bad_exchange_info_is_a_config_error(info):
    with pytest.raises(ConfigError):
        BinanceSymbols.from_exchange_info(Registry(), info)


def test_fnv1a64_vectors_and_kernel_limbs():
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8
    for text in (b"", b"a", b"foobar", b"BTCUSDT", bytes(range(256))):
        hi, lo = scan.fnv1a64_limbs(np.frombuffer(text, np.uint8), 0, len(text))
        assert (int(hi) << 32) | int(lo) == fnv1a64(text)


def test_symbol_table_finds_every_symbol_and_nothing_else():
    rnd = random.Random(7)
    registry = Registry()
    names = sorted({"".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                            for _ in range(rnd.randint(1, 8))) + rnd.choice(QUOTE_ASSETS)
                    for _ in range(300)})
    symbols = BinanceSymbols(registry, names)
    t = symbols.table()
    assert symbols.table() is t and t.slots.shape[0] >= 2 * len(names)
    for name in names + ["NOPE", "BTCUSD", "", "A" * 40]:
        raw = np.frombuffer(name.encode(), np.uint8)
        got = scan.lookup_symbol(raw, 0, len(raw), t.slots, t.sym_bytes, t.sym_len, t.sym_inst)
        assert got == (symbols[name].instrument if name in names else 0), name
        assert t.instruments.get(name, 0) == got
    empty = BinanceSymbols(Registry()).table()
    raw = np.frombuffer(b"BTCUSDT", np.uint8)
    assert scan.lookup_symbol(raw, 0, 7, empty.slots, empty.sym_bytes, empty.sym_len,
                              empty.sym_inst) == 0


def test_symbol_table_confirms_a_hash_hit_with_the_bytes():
    symbols = BinanceSymbols(Registry(), ["BTCUSDT", "ETHUSDT"])
    t = symbols.table()
    raw = np.frombuffer(b"BTCUSDT", np.uint8)
    row = int(np.flatnonzero(t.sym_inst == symbols["BTCUSDT"].instrument)[0])
    other_bytes, other_len = t.sym_bytes.copy(), t.sym_len.copy()
    other_bytes[row, 6] = ord("X")  # same hash slot, different spelling
    other_len[row] = 6
    for sym_bytes, sym_len in ((other_bytes, t.sym_len), (t.sym_bytes, other_len)):
        assert scan.lookup_symbol(raw, 0, 7, t.slots, sym_bytes, sym_len, t.sym_inst) == 0
