"""The real Kraken v1 recording through our parser and books, and the published checksum vectors.

``tests/data/kraken/kraken_v1_cryptofeed_20210417.jsonl.gz`` holds 30 s of ``book-1000`` for ten
pairs (10 snapshots, 4269 updates, each update with Kraken's checksum), trades, tickers and
events. Every checksum must validate through the book kernels; the byte scanner and the orjson
reference path must give identical records for every message.

Runs jitted and under NUMBA_DISABLE_JIT=1; without the JIT the kernels run as Python, so the
recording is cut to its first :data:`NO_JIT_LINES` lines (still every pair's snapshot and
hundreds of checksummed updates).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import orjson
import pytest
from numba import config as numba_config

from meltica_nb.book_table import BookTable
from meltica_nb.registry import Registry
from meltica_nb.schema import BOOK_LEVEL, DEPTH_UPDATE, EventType
from meltica_nb.venues.kraken.books import KrakenBooks
from meltica_nb.venues.kraken.parsing import FrameStatus, KrakenParser
from meltica_nb.venues.kraken.symbols import KrakenSymbols

DATA = Path(__file__).parents[2] / "data" / "kraken"
RECORDING = DATA / "kraken_v1_cryptofeed_20210417.jsonl.gz"
#: Lines read under NUMBA_DISABLE_JIT=1 (pure Python kernels are slow).
NO_JIT_LINES = 450
FULL = not numba_config.DISABLE_JIT


def load() -> tuple[list[bytes], list[int]]:
    with gzip.open(RECORDING) as f:
        lines = [orjson.loads(line) for line in f]
    lines = lines if FULL else lines[:NO_JIT_LINES]
    return [x["raw"].encode() for x in lines], [x["recv_ns"] for x in lines]


def book_frames(frames: list[bytes]) -> tuple[int, int]:
    """(snapshots, updates with a checksum) among ``frames``, counted with orjson alone."""
    msgs = [m for m in map(orjson.loads, frames) if isinstance(m, list) and "book" in m[-2]]
    return sum("as" in m[1] for m in msgs), sum("c" in m[-3] for m in msgs)


def recorded_decimals(frames: list[bytes]) -> dict[str, tuple[int, int]]:
    """Each pair's decimals as its snapshot prints them (v1 prints every level of a pair
    with the same decimals; the 2021 AssetPairs answer was not recorded)."""
    out = {}
    for frame in frames:
        msg = orjson.loads(frame)
        if isinstance(msg, list) and isinstance(msg[1], dict) and "as" in msg[1]:
            price, qty = msg[1]["as"][0][:2]
            out[msg[-1]] = (len(price.partition(".")[2]), len(qty.partition(".")[2]))
    return out


@pytest.fixture(scope="module")
def recording():
    frames, recv = load()
    registry = Registry()
    symbols = KrakenSymbols(registry)
    for pair, (pd, ld) in recorded_decimals(frames).items():
        symbols.add(pair, pd, ld)
    return frames, recv, registry, symbols


def books_for(registry: Registry, symbols: KrakenSymbols, depth: int = 1000) -> KrakenBooks:
    books = KrakenBooks(registry.n_instruments + 1, depth, BookTable(64, 10), k=10)
    for pair in symbols.pairs():
        books.add_pair(pair)
    return books


def test_every_recorded_checksum_validates(recording):
    frames, recv, registry, symbols = recording
    parser = KrakenParser(symbols, registry.venue_id("kraken"))
    result = parser.parse_batch(frames, recv)
    snapshots, updates = book_frames(frames)
    assert (snapshots, updates) == ((10, 4269) if FULL else (snapshots, updates))
    assert updates > 300
    if FULL:
        assert result.count(FrameStatus.OK) == 10 + 4269 + 8 + 18
        assert result.count(FrameStatus.CONTROL) == 125
    books = books_for(registry, symbols)
    events, failed = books.apply(result.depth, result.levels, result.checksums)
    stats = books.stats()
    assert failed == [] and len(stats) == snapshots == 10
    assert sum(s.checksum_ok for s in stats.values()) == updates
    assert all(s.checksum_fail == 0 and s.resyncs == 0 and s.snapshots == 1
               for s in stats.values())
    books_events = events[events["event_type"] == EventType.BOOK_SNAPSHOT]
    assert books_events.shape[0] == snapshots + updates
    carried = result.checksums >= 0  # one BookSnapshot per row, with the verified checksum
    assert (books_events["checksum"][carried] == result.checksums[carried]).all()


def test_batches_of_any_size_give_the_same_books(recording):
    frames, recv, registry, symbols = recording
    whole = books_for(registry, symbols)
    pieces = books_for(registry, symbols)
    parser = KrakenParser(symbols, registry.venue_id("kraken"))
    r = parser.parse_batch(frames, recv)
    whole.apply(r.depth, r.levels, r.checksums)
    for start in range(0, len(frames), 37):
        r = parser.parse_batch(frames[start:start + 37], recv[start:start + 37])
        assert pieces.apply(r.depth, r.levels, r.checksums)[1] == []
    for inst in whole.stats():
        assert [a.tolist() for a in whole.books.levels(inst)] == [
            a.tolist() for a in pieces.books.levels(inst)]
        assert whole.checksum(inst) == pieces.checksum(inst)


def test_a_corrupted_level_fails_the_checksum_and_asks_for_a_snapshot(recording):
    frames, recv, registry, symbols = recording
    parser = KrakenParser(symbols, registry.venue_id("kraken"))
    r = parser.parse_batch(frames, recv)
    target = int(np.flatnonzero(~r.depth["is_snapshot"].astype(bool))[5])
    levels = r.levels.copy()
    levels[r.depth[target]["level_off"]]["quantity"] += 1
    books = books_for(registry, symbols)
    _, failed = books.apply(r.depth, levels, r.checksums)
    inst = int(r.depth[target]["instrument"])
    assert failed == [inst]
    s = books.stats(inst)
    assert s.checksum_fail == 1 and s.resyncs == 1 and s.state == "resync"
    assert s.skipped > 0  # later updates wait for the snapshot
    assert books.books.levels(inst)[0].shape[0] == 0


def test_scanner_and_reference_give_identical_records(recording):
    frames, recv, registry, symbols = recording
    parser = KrakenParser(symbols, registry.venue_id("kraken"))
    scanned = parser.scan(frames, recv)
    snapshots, updates = book_frames(frames)
    assert scanned.count(FrameStatus.OK) == snapshots + updates
    rows = 0
    for f in range(len(frames)):
        if scanned.status[f] != FrameStatus.OK:
            continue
        ref = parser.reference(frames[f], recv[f])
        assert ref.status == FrameStatus.OK and len(ref.rows) == 1
        snap, bids, asks, checksum, exchange_ns, inst, _ = ref.rows[0]
        row = scanned.depth[rows]
        lv = scanned.levels[row["level_off"]: row["level_off"] + row["n_bids"] + row["n_asks"]]
        assert bool(row["is_snapshot"]) == snap and int(row["instrument"]) == inst
        assert int(row["exchange_ns"]) == exchange_ns and int(row["ingest_ns"]) == recv[f]
        assert int(scanned.checksums[rows]) == checksum
        assert [tuple(x) for x in lv.tolist()] == bids + asks
        assert int(row["n_bids"]) == len(bids)
        rows += 1
    assert rows == snapshots + updates


def test_recorded_trades_and_tickers(recording):
    _, _, registry, symbols = recording
    with gzip.open(RECORDING) as f:
        lines = [x for x in map(orjson.loads, f) if x["stream"].startswith(("trade", "ticker"))]
    parser = KrakenParser(symbols, registry.venue_id("kraken"))
    r = parser.parse_batch([x["raw"].encode() for x in lines], [x["recv_ns"] for x in lines])
    assert r.count(FrameStatus.OK) == len(lines) == 8 + 18
    trades = r.events[r.events["event_type"] == EventType.TRADE]
    tickers = r.events[r.events["event_type"] == EventType.TICKER]
    assert trades.shape[0] >= 8 and tickers.shape[0] == 18
    assert (trades["price"] > 0).all() and (trades["quantity"] > 0).all()
    assert (trades["exchange_ns"] > 1_618_678_000 * 10**9).all()
    assert ((tickers["bid_price"] > 0) & (tickers["ask_price"] >= tickers["bid_price"])).all()


def vector_books(bids, asks, price_decimals, qty_decimals, depth=10) -> KrakenBooks:
    registry = Registry()
    symbols = KrakenSymbols(registry)
    pair = symbols.add("BTC-USD", price_decimals, qty_decimals)
    books = KrakenBooks(2, depth, BookTable(4, 10), k=10)
    books.add_pair(pair)
    levels = np.zeros(len(bids) + len(asks), BOOK_LEVEL)
    for j, (p, q) in enumerate([*bids, *asks]):
        levels[j] = (round(p * 10**price_decimals), round(q * 10**qty_decimals))
    row = np.zeros(1, DEPTH_UPDATE)
    row["instrument"], row["is_snapshot"] = pair.instrument, 1
    row["n_bids"], row["n_asks"] = len(bids), len(asks)
    books.apply(row, levels, np.array([-1]))
    return books


def test_published_v1_vector():
    asks = [(0.05005 + 0.00005 * j, 0.000005) for j in range(10)]
    bids = [(p, 0.000005) for p in (0.05, 0.04995, 0.0499, 0.0498, 0.04975, 0.0497, 0.04965,
                                    0.0496, 0.04955, 0.0495)]
    assert vector_books(bids, asks, 5, 8).checksum(1) == 974947235


def test_published_v2_vector():
    bids = [(45283.5, 0.1), (45283.4, 1.54582015), (45282.1, 0.1), (45281.0, 0.1),
            (45280.3, 1.54592586), (45279.0, 0.0799), (45277.6, 0.03310103), (45277.5, 0.3),
            (45277.3, 1.54602737), (45276.6, 0.15445238)]
    asks = [(45285.2, 0.001), (45286.4, 1.54571953), (45286.6, 1.54571109),
            (45289.6, 1.54560911), (45290.2, 0.1589066), (45291.8, 1.54553491),
            (45294.7, 0.04454749), (45296.1, 0.3538), (45297.5, 0.09945542),
            (45299.5, 0.18772827)]
    assert vector_books(bids, asks, 1, 8).checksum(1) == 3310070434


def test_checksum_uses_the_pair_decimals_when_the_instrument_has_more():
    """An instrument registered by another venue with more decimals prints Kraken's text."""
    registry = Registry()
    registry.instrument_id("BTC-USD", price_exp=4, qty_exp=10)
    pair = KrakenSymbols(registry).add("XBT/USD", 1, 8)
    assert (pair.price_shift, pair.qty_shift) == (3, 2)


@pytest.mark.parametrize(("name", "channel"), [("48", "trade"), ("49", "ticker")])
def test_our_v1_subscribe_requests_have_the_recorded_shape(name, channel):
    """cryptofeed's recorded client requests against the real Kraken are ours, but for reqid."""
    from meltica_nb.venues.kraken.config import KrakenConfig
    from meltica_nb.venues.kraken.connection import KrakenConnection

    with gzip.open(DATA / f"cryptofeed_legacy_KRAKEN.ws.{name}.0.gz", "rt") as f:
        sent = [line.split(": ", 1)[1] for line in f if " <- " in line]
    recorded = orjson.loads(sent[0])
    conn = KrakenConnection(KrakenConfig(version=1), lambda frames, recv: None)
    ours = conn._request("subscribe", channel, recorded["pair"], 7)
    assert ours.pop("reqid") == 7
    assert ours == recorded


def _kraken_crc(bids: list, asks: list) -> int:
    """Kraken's checksum of books given as mantissas at the pair's decimals (the oracle)."""
    return zlib.crc32("".join(f"{p}{q}" for p, q in (*asks[:10], *bids[:10])).encode())


def _rows(*messages):
    """DEPTH_UPDATE rows, levels and checksums of (is_snapshot, bids, asks) messages, each
    checksummed against the book it leaves (``book`` is kept here as dicts)."""
    book: dict[str, dict[int, int]] = {"b": {}, "a": {}}
    rows = np.zeros(len(messages), DEPTH_UPDATE)
    levels, sums = [], []
    for j, (snapshot, bids, asks) in enumerate(messages):
        if snapshot:
            book = {"b": {}, "a": {}}
        for side, entries in (("b", bids), ("a", asks)):
            book[side].update(entries)
            book[side] = {p: q for p, q in book[side].items() if q}
        row = rows[j]
        row["instrument"], row["is_snapshot"], row["level_off"] = 1, snapshot, len(levels)
        row["n_bids"], row["n_asks"] = len(bids), len(asks)
        levels.extend([*bids, *asks])
        sums.append(_kraken_crc(sorted(book["b"].items(), reverse=True), sorted(book["a"].items())))
    return rows, np.array(levels, np.int64).view(BOOK_LEVEL).reshape(-1), np.array(sums)


def test_each_checksum_follows_the_side_that_changed():
    """A side whose top 10 a message left alone is not hashed again; snapshots and reconnects
    forget every CRC kept."""
    pair = KrakenSymbols(Registry()).add("XBT/USD", 1, 8)
    books = KrakenBooks(2, 25, BookTable(8, 10), k=10)
    books.add_pair(pair)
    asks = [(452850 + j, 1000 + j) for j in range(12)]
    bids = [(452840 - j, 2000 + j) for j in range(12)]
    deep = [(0, [(452800, 4)], []), (0, [], [(452900, 4)]), (0, [(452800, 0)], [(452900, 0)])]
    rows, levels, sums = _rows((1, bids, asks), (0, [(452841, 7)], []), (0, [], [(452849, 5)]),
                               *deep, (0, [(452840, 0)], []), (1, bids[:3], []),
                               (0, [], [(452860, 9)]))
    _, failed = books.apply(rows, levels, sums)
    assert failed == [] and books.stats(1).checksum_ok == 9
    assert sums[3] == sums[4] == sums[5] == sums[2]  # deep levels: the text is the same
    books.reset()  # a reconnect: the next snapshot's asks are new
    rows, levels, sums = _rows((1, bids[2:], asks[4:]), (0, [(452830, 3)], []))
    assert books.apply(rows, levels, sums)[1] == [] and books.stats(1).checksum_ok == 11
    levels[-1]["quantity"] += 1  # the bid the update sets, corrupted: a fail, the asks kept
    assert books.apply(rows[1:], levels, sums[1:])[1] == [1]
