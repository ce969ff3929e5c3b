"""KrakenParser on hand-made v1/v2 frames: statuses, records, scanner == reference."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_nb.kernels import kraken_scan_kernels as scan
from meltica_nb.kernels.kraken_scan_kernels import iso8601_ns
from meltica_nb.registry import Registry
from meltica_nb.schema import EventType, Side
from meltica_nb.venues.kraken.parsing import FrameStatus, KrakenParser
from meltica_nb.venues.kraken.symbols import KrakenSymbols, canonical, v1_name, v2_name

V2_BOOK = (b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":'
           b'45283.5,"qty":0.1},{"price":45283.4,"qty":0}],"asks":[{"price":45285.2,"qty":'
           b'1e-05}],"checksum":3310070434,"timestamp":"2023-10-06T17:35:55.440295Z"}]}')
V1_BOTH = (b'[336,{"a":[["45285.2","0.00100000","1696613755.440295"]]},{"b":[["45283.5",'
           b'"0.10000000","1696613755.440296","r"]],"c":"123"},"book-10","XBT/USD"]')
#: Compact v1 frames as Kraken prints them (the scanner's fast path): a snapshot, and an
#: update with both sides in one object, asks first, a delete and a republished level.
V1_SNAPSHOT = (b'[1840,{"as":[["0.0500500","136.91309120","1618678131.169956"],["0.0500600",'
               b'"50.00000000","1618678121.2"]],"bs":[["0.0500000","1.00000000","1618678132"]]},'
               b'"book-1000","XDG/USD"]')
V1_UPDATE = (b'[336,{"a":[["45285.2","0.00100000","1696613755.440295"],["45285.3","0.00000000",'
             b'"1696613755.440299","r"]],"b":[["45283.5","0.10000000","1696613755.440296"]],'
             b'"c":"974947235"},"book-10","XBT/USD"]')


def make_parser() -> KrakenParser:
    registry = Registry()
    symbols = KrakenSymbols(registry)
    symbols.add("BTC-USD", 1, 8)
    symbols.add("DOGE-USD", 7, 8)
    return KrakenParser(symbols, registry.venue_id("kraken"))


@pytest.fixture
def parser():
    return make_parser()


#: One parser for the property test: parsing keeps no state between frames.
SHARED = make_parser()


def one(parser, frame: bytes):
    return parser.parse_batch([frame], [123])


def test_names_map_both_ways():
    assert v1_name("BTC-USD") == "XBT/USD" and v2_name("XBT/USD") == "BTC/USD"
    assert v1_name("DOGE-USD") == "XDG/USD" and canonical("XDG/USD") == "DOGE-USD"
    assert canonical("ETH/EUR") == "ETH-EUR"


def test_v2_book_update_by_the_scanner(parser):
    r = parser.scan([V2_BOOK], [5])
    assert r.status.tolist() == [FrameStatus.OK]
    row = r.depth[0]
    assert (row["n_bids"], row["n_asks"], row["is_snapshot"]) == (2, 1, 0)
    assert r.levels.tolist() == [(452835, 10_000_000), (452834, 0), (452852, 1000)]
    assert int(r.checksums[0]) == 3310070434
    assert int(row["exchange_ns"]) == int(datetime(2023, 10, 6, 17, 35, 55, tzinfo=UTC)
                                          .timestamp()) * 10**9 + 440_295_000


@pytest.mark.parametrize("frame", [V2_BOOK, V1_BOTH, V2_BOOK.replace(b'"update"', b'"snapshot"'),
                                   b' [1, {"as": [], "bs": [["0.5000000", "1.00000000", "1.5"]]}'
                                   b', "book-25", "XDG/USD"] ', V1_SNAPSHOT, V1_UPDATE])
def test_scanner_equals_the_reference(parser, frame):
    scanned = parser.scan([frame], [7])
    ref = parser.reference(frame, 7)
    assert scanned.status.tolist() == [FrameStatus.OK] and ref.status == FrameStatus.OK
    snap, bids, asks, checksum, exchange_ns, inst, _ = ref.rows[0]
    row = scanned.depth[0]
    assert [tuple(x) for x in scanned.levels.tolist()] == bids + asks
    assert (bool(row["is_snapshot"]), int(row["instrument"]), int(row["exchange_ns"]),
            int(scanned.checksums[0])) == (snap, inst, exchange_ns, checksum)


def _fast(frame: bytes) -> bool:
    """Whether the scanner's fast path reads ``frame`` whole."""
    st = np.zeros(scan.STATE_SIZE, np.int64)
    scan._reset(st)
    spans = np.zeros((16, scan.SPAN_FIELDS), np.int64)
    return bool(scan._fast_v1(np.frombuffer(frame, np.uint8), 0, len(frame), spans, st))


#: v1 book frames off the compact print: the general path reads them (same records).
GENERAL_V1 = [
    V1_UPDATE.replace(b'"a":', b'"a" :'),  # whitespace
    V1_UPDATE.replace(b'"c":"974947235"', b'"c":"1","c":"2"'),  # two checksums
    V1_UPDATE.replace(b"[336,", b"[0,"),
    V1_UPDATE.replace(b'"0.00100000"', b'"1e-3"'),
    V1_UPDATE.replace(b'"1696613755.440295"', b'"1696613755.4402950000"'),  # 10 decimals
]


def test_compact_v1_frames_take_the_fast_path():
    assert _fast(V1_SNAPSHOT) and _fast(V1_UPDATE) and _fast(V1_BOTH)


@pytest.mark.parametrize("frame", [V1_SNAPSHOT, V1_UPDATE])
def test_every_cut_of_a_compact_frame_is_refused(parser, frame):
    """The fast path reads digits up to the frame's closing bracket, never past a cut."""
    cuts = [frame[:n] for n in range(len(frame))]
    assert not any(_fast(cut) for cut in cuts)
    r = parser.parse_batch(cuts, list(range(len(cuts))))
    assert r.depth.shape[0] == 0 and r.count(FrameStatus.OK) == 0


@pytest.mark.parametrize("frame", GENERAL_V1)
def test_other_v1_shapes_are_read_by_the_general_path(parser, frame):
    assert not _fast(frame)
    mine, theirs = _records(parser, frame)
    assert mine is not None and mine == theirs


@pytest.mark.parametrize("frame", [
    V1_UPDATE.replace(b'"b":[', b'"a":['),  # in one object: the last "a" counts
    V1_BOTH.replace(b'{"b":[', b'{"a":['),  # in two objects: both apply
    V2_BOOK.replace(b'"asks":', b'"bids":'),
])
def test_a_side_named_twice_is_left_to_orjson(parser, frame):
    mine, theirs = _records(parser, frame)
    assert mine is None and theirs is not None
    assert one(parser, frame).status.tolist() == [FrameStatus.OK]


def test_decimals_beyond_the_exponent_are_left_to_orjson(parser):
    """45285.20 has more decimals than BTC-USD keeps (1): exact, but not Kraken's print."""
    frame = V1_UPDATE.replace(b'"45283.5"', b'"45283.50"')
    assert _fast(frame) and parser.scan([frame], [9]).status.tolist() == [FrameStatus.FALLBACK]
    r = one(parser, frame)
    assert r.status.tolist() == [FrameStatus.OK]
    assert r.levels.tolist() == one(parser, V1_UPDATE).levels.tolist()


def test_v1_both_sides_in_one_frame(parser):
    r = one(parser, V1_BOTH)
    assert r.count(FrameStatus.OK) == 1 and r.depth.shape[0] == 1
    assert (int(r.depth[0]["n_bids"]), int(r.depth[0]["n_asks"])) == (1, 1)
    assert int(r.checksums[0]) == 123
    assert int(r.depth[0]["exchange_ns"]) == 1696613755_440296000


@pytest.mark.parametrize(("frame", "status"), [
    (b'{"event":"heartbeat"}', FrameStatus.CONTROL),
    (b'{"channel":"heartbeat"}', FrameStatus.CONTROL),
    (b'{"method":"pong","req_id":3}', FrameStatus.CONTROL),
    (b'{"channel":"status","type":"update","data":[]}', FrameStatus.CONTROL),
    (b'[1,{"a":[["1.0","1.0","1.0"]],"c":"1"},"book-10"', FrameStatus.MALFORMED),
    (b'{"channel":"book","type":"upd', FrameStatus.MALFORMED),
    (b'[1,[["1.0","1.0","1.0","b","m",""]],"spread","XBT/USD"]', FrameStatus.UNKNOWN),
    (b'{"channel":"ohlc","type":"update","data":[]}', FrameStatus.UNKNOWN),
    (b'[1,{"a":[["1.0","1.0","1.0"]],"c":"1"},"book-10","LTC/USD"]', FrameStatus.UNKNOWN_SYMBOL),
    (b'[1,{"a":[["1.05","1.0","1.0"]],"c":"1"},"book-10","XBT/USD"]', FrameStatus.BAD_VALUE),
    (b'[1,{"a":[["1.0","1.0","1.0"]],"c":"x"},"book-10","XBT/USD"]', FrameStatus.BAD_VALUE),
    (b'[1,{"a":[["1.0","1.0","1.0","q"]],"c":"1"},"book-10","XBT/USD"]', FrameStatus.BAD_VALUE),
    (b'[1,{"as":[],"a":[]},"book-10","XBT/USD"]', FrameStatus.BAD_VALUE),
    (b'42', FrameStatus.UNKNOWN),
])
def test_frame_statuses(parser, frame, status):
    r = one(parser, frame)
    assert r.status.tolist() == [status]
    assert r.depth.shape[0] == 0 and r.events.shape[0] == 0
    assert parser.scan([frame], [1]).status.tolist() in ([FrameStatus.FALLBACK], [status])


def test_trades_and_tickers_v1_and_v2(parser):
    frames = [
        b'[2,[["45283.5","0.50000000","1696613755.440295","s","m",""],'
        b'["45283.6","0.25000000","1696613755.5","b","l",""]],"trade","XBT/USD"]',
        b'{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy",'
        b'"price":45284.1,"qty":0.001,"ord_type":"market","trade_id":77,'
        b'"timestamp":"2023-10-06T17:35:55.000001Z"}]}',
        b'{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":45283.5,'
        b'"bid_qty":0.1,"ask":45285.2,"ask_qty":0.001,"last":45284.1,"volume":12.5,'
        b'"vwap":45000.0,"low":44000.0,"high":46000.0,"change":84.1,"change_pct":0.19}]}',
    ]
    r = parser.parse_batch(frames, [1, 2, 3])
    assert r.count(FrameStatus.OK) == 3
    ev = r.events
    assert ev["event_type"].tolist() == [EventType.TRADE] * 3 + [EventType.TICKER]
    assert ev["side"][:3].tolist() == [Side.SELL, Side.BUY, Side.BUY]
    assert ev["price"][:3].tolist() == [452835, 452836, 452841]
    assert int(ev[2]["trade_id"]) == 77 and int(ev[0]["exchange_ns"]) == 1696613755_440295000
    assert ev["seq_provider"][:2].tolist() == [1696613755_440295000, 1696613755_500000000]
    assert int(ev[2]["seq_provider"]) == int(ev[2]["seq_first"]) == 77
    t = ev[3]
    assert (int(t["bid_price"]), int(t["ask_qty"]), int(t["last_price"]),
            int(t["open_price"])) == (452835, 100_000, 452841, 452000)


def test_fallback_rows_keep_frame_order(parser):
    """A book frame the scanner leaves to orjson (an escape) still lands in frame order."""
    escaped = V1_BOTH.replace(b'"book-10"', b'"book\\u002d10"')
    frames = [V1_BOTH, escaped, V2_BOOK]
    r = parser.parse_batch(frames, [1, 2, 3])
    assert r.count(FrameStatus.OK) == 3 and parser.stats().fallback == 1
    assert r.depth["ingest_ns"].tolist() == [1, 2, 3]
    second = r.depth[1]
    assert r.levels[second["level_off"]].tolist() == (452835, 10_000_000)


def test_stats_count_every_frame(parser):
    parser.parse_batch([V2_BOOK, b'{"event":"heartbeat"}', b"[1,"], [1, 2, 3])
    s = parser.stats()
    assert (s.frames, s.scanned, s.book_rows, s.control, s.malformed) == (3, 1, 1, 1, 1)


@pytest.mark.parametrize("text", ["2023-10-06T17:35:55.440295Z", "1970-01-01T00:00:00Z",
                                  "2024-02-29T23:59:59.123456789Z", "2000-03-01T00:00:00.5Z"])
def test_iso8601_kernel_matches_datetime(text):
    buf = np.frombuffer(text.encode(), np.uint8)
    day, _, rest = text[:-1].partition("T")
    whole, _, frac = rest.partition(".")
    base = int(datetime.fromisoformat(f"{day}T{whole}+00:00").timestamp())
    assert iso8601_ns(buf, 0, len(buf)) == base * 10**9 + int(frac.ljust(9, "0") or 0)


@pytest.mark.parametrize("text", ["2023-10-06 17:35:55Z", "2023-10-06T17:35:55", "x" * 25,
                                  "2023-13-06T17:35:55Z", "2023-10-06T17:35:55.Z"])
def test_iso8601_kernel_refuses_other_text(text):
    buf = np.frombuffer(text.encode(), np.uint8)
    assert iso8601_ns(buf, 0, len(buf)) == -1


def test_asset_pairs_register_decimals():
    body = orjson.dumps({"error": [], "result": {"XXBTZUSD": {
        "wsname": "XBT/USD", "pair_decimals": 1, "lot_decimals": 8}}})
    registry = Registry()
    pairs = KrakenSymbols(registry).add_asset_pairs(body, ["BTC-USD"])
    info = registry.instrument(pairs[0].instrument)
    assert (info.symbol, info.price_exp, info.qty_exp) == ("BTC-USD", 1, 8)


@pytest.mark.parametrize(("values", "match"), [
    ({"version": 3}, "version"), ({"book_depth": 7}, "book_depth"),
    ({"channels": ("spread",)}, "channel"), ({"symbols": ("BTCUSD",)}, "BASE/QUOTE"),
])
def test_config_refuses_what_kraken_does_not_offer(values, match):
    from meltica_nb.errors import ConfigError
    from meltica_nb.venues.kraken.config import KrakenConfig

    with pytest.raises(ConfigError, match=match):
        KrakenConfig(**values)


def test_config_defaults_and_stream_names():
    from meltica_nb.venues.kraken.config import KrakenConfig

    v1 = KrakenConfig(version=1, symbols=("BTC-USD",), channels=("book", "trade"))
    assert v1.ws_url == "wss://ws.kraken.com" and v1.rest_url == "https://api.kraken.com"
    assert v1.streams() == ("book@XBT/USD", "trade@XBT/USD")
    v2 = KrakenConfig(symbols=("DOGE-USD",))
    assert v2.ws_url == "wss://ws.kraken.com/v2" and v2.stream_of("book", "DOGE-USD") == (
        "book@DOGE/USD")


def test_asset_pairs_errors():
    from meltica_nb.errors import ProtocolError

    symbols = KrakenSymbols(Registry())
    for body in (b"not json", b'{"error":["EGeneral:Internal error"],"result":{}}', b"[]",
                 orjson.dumps({"error": [], "result": {"X": {"wsname": "XBT/USD"}}})):
        with pytest.raises(ProtocolError):
            symbols.add_asset_pairs(body, ["BTC-USD"])


def _records(parser, frame: bytes):
    """(status, row fields + levels + checksum) by the scanner and by the reference path."""
    scanned = parser.scan([frame], [9])
    ref = parser.reference(frame, 9)
    mine = None
    if scanned.status[0] == FrameStatus.OK:
        row = scanned.depth[0]
        mine = (bool(row["is_snapshot"]), [tuple(x) for x in scanned.levels.tolist()],
                int(scanned.checksums[0]), int(row["exchange_ns"]), int(row["instrument"]))
    theirs = None
    if ref.status == FrameStatus.OK and len(ref.rows) == 1:
        snap, bids, asks, checksum, ns, inst, _ = ref.rows[0]
        theirs = (snap, bids + asks, checksum, ns, inst)
    return mine, theirs


@settings(deadline=None, max_examples=300)
@given(st.sampled_from([V2_BOOK, V1_BOTH, V2_BOOK.replace(b'"update"', b'"snapshot"'),
                        V1_SNAPSHOT, V1_UPDATE]),
       st.integers(min_value=0, max_value=400), st.sampled_from(
           [b"", b" ", b"\n", b",", b'"', b"]", b"}", b"0", b"-", b".", b"e5", b"\\u0041", b"x"]),
       st.booleans())
def test_scanner_never_disagrees_with_the_reference_on_mutated_frames(frame, at, insert,
                                                                      replace):
    """Anything the scanner accepts, orjson accepts with the same records."""
    at = min(at, len(frame))
    mutated = frame[:at] + insert + frame[at + (1 if replace else 0):]
    mine, theirs = _records(SHARED, mutated)
    if mine is not None:
        assert theirs == mine, mutated
