"""OKX and Kraken recordings through replay(), ``meltica backtest`` and ``meltica record``.

Every OKX and Kraken JSON Lines recording in tests/data replays through its venue's live feed
with every checksum validated, and ends with the books the venue's own book code builds from
the same frames offline. With NUMBA_DISABLE_JIT=1 the Kraken recording (4430 lines) is cut to
its first :data:`NO_JIT_LINES` lines (every pair's snapshot and hundreds of updates).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from meltica_nb.book_table import BookTable
from meltica_nb.engine import Engine
from meltica_nb.errors import ConfigError, RecordingError
from meltica_nb.fixedpoint import from_mantissa
from meltica_nb.recorder import LineRecording, Recorder, Rotation
from meltica_nb.recording_source import RecordingSource
from meltica_nb.registry import Registry
from meltica_nb.replay import replay
from meltica_nb.replay_venue import detect_venue, venue_named
from meltica_nb.sim.market import MarketConfig
from meltica_nb.sim.server import ExchangeSimulator
from meltica_nb.venues.kraken.books import KrakenBooks
from meltica_nb.venues.kraken.parsing import KrakenParser
from meltica_nb.venues.kraken.symbols import KrakenSymbols
from tests.replay.conftest import DATA, RECORDINGS, SLOW, line, lines_of, write_lines
from tests.venues.okx.helpers import parser_and_books

ROOT = Path(__file__).resolve().parents[2]
OKX = sorted((DATA / "okx").glob("*.jsonl.gz"))
KRAKEN = sorted((DATA / "kraken").glob("*.jsonl.gz"))
#: Lines of a Kraken recording kept when kernels run as Python.
NO_JIT_LINES = 450
LEVELS = 10


@pytest.fixture
def cut(tmp_path):
    """``cut(path)``: the recording itself, or its first NO_JIT_LINES lines when JIT is off."""
    def get(path: Path) -> Path:
        if not SLOW or len(lines_of(path)) <= NO_JIT_LINES:
            return path
        return write_lines(tmp_path / f"cut-{path.name}", lines_of(path)[:NO_JIT_LINES], "gz")
    return get


def frames_of(path: Path) -> tuple[list[bytes], list[int]]:
    recorded = [orjson.loads(x) for x in lines_of(path)]
    return [x["raw"].encode() for x in recorded], [x["recv_ns"] for x in recorded]


def text(levels, registry: Registry, inst: int) -> list:
    info = registry.instrument(inst)
    return [[from_mantissa(p, info.price_exp), from_mantissa(q, info.qty_exp)]
            for p, q in zip(levels["price"].tolist(), levels["quantity"].tolist(), strict=True)]


def okx_offline(path: Path) -> dict:
    """{key: (bids, asks, counters)} from the OKX parser and books alone."""
    parser, books, symbols = parser_and_books()
    result = parser.parse_batch(*frames_of(path))
    books.apply(result.depth, result.levels, result.texts, result.checksums)
    out = {}
    for inst, s in books.stats().items():
        bids, asks = books.levels(inst)
        out[f"okx:{symbols.registry.instrument(inst).symbol}"] = (
            text(bids[:LEVELS], symbols.registry, inst), text(asks[:LEVELS], symbols.registry,
                                                               inst),
            (s.applied, s.checksum_ok, s.checksum_fail, s.resyncs))
    return out


def kraken_offline(path: Path) -> dict:
    """The same from the Kraken parser and books, pairs at the decimals their snapshot prints."""
    frames, recv = frames_of(path)
    registry = Registry()
    symbols = KrakenSymbols(registry)
    for msg in map(orjson.loads, frames):
        if isinstance(msg, list) and isinstance(msg[1], dict) and "as" in msg[1]:
            price, qty = msg[1]["as"][0][:2]
            symbols.add(msg[-1], len(price.partition(".")[2]), len(qty.partition(".")[2]))
    books = KrakenBooks(registry.n_instruments + 1, 1000, BookTable(64, 10), k=10)
    for pair in symbols.pairs():
        books.add_pair(pair)
    result = KrakenParser(symbols, registry.venue_id("kraken")).parse_batch(frames, recv)
    books.apply(result.depth, result.levels, result.checksums)
    out = {}
    for inst, s in books.stats().items():
        bids, asks = books.books.levels(inst)
        out[f"kraken:{registry.instrument(inst).symbol}"] = (
            text(bids[:LEVELS], registry, inst), text(asks[:LEVELS], registry, inst),
            (s.applied, s.checksum_ok, s.checksum_fail, s.resyncs))
    return out


CASES = [(p, "okx", okx_offline) for p in OKX] + [(p, "kraken", kraken_offline) for p in KRAKEN]


@pytest.mark.parametrize(("path", "venue", "offline"), CASES, ids=[c[0].name for c in CASES])
def test_every_recording_replays_to_the_books_of_its_venue_book_code(cut, path, venue, offline):
    path = cut(path)
    result = replay(path, levels=LEVELS)
    assert result.parse_errors == 0 and result.snapshots == 0
    assert all(key.startswith(f"{venue}:") for key in result.instruments)  # detected
    books = result.instruments
    assert sum(b.checksum_fail + b.resyncs for b in books.values()) == 0
    assert sum(b.checksum_ok for b in books.values()) > 250
    expected = offline(path)
    assert sorted(books) == sorted(expected)
    for key, (bids, asks, counters) in expected.items():
        book = books[key]
        assert (book.bids, book.asks) == (bids, asks) and len(bids) == LEVELS
        assert (book.applied, book.checksum_ok, book.checksum_fail, book.resyncs) == counters
    assert replay(path, levels=LEVELS).digest == result.digest
    assert replay(path, levels=LEVELS, batch_frames=7).instruments == books


def test_the_okx_recording_in_full():
    books = replay(OKX[0]).instruments
    assert {k: (b.applied, b.checksum_ok, b.update_id) for k, b in books.items()} == {
        "okx:BTC-USD": (98, 99, 0), "okx:BTC-USDT": (97, 98, 0), "okx:UNI-USD": (92, 93, 0)}


@pytest.mark.skipif(SLOW, reason="all 4430 lines: too slow with kernels as Python")
def test_the_kraken_recording_in_full():
    result = replay(KRAKEN[0])
    assert result.frames == 4305 and len(result.instruments) == 10
    assert sum(b.checksum_ok for b in result.instruments.values()) == 4269
    assert result.events == {"trade": 10, "bbo": 810, "book_snapshot": 4279, "ticker": 18}


def test_venues_are_detected_from_the_first_lines(tmp_path):
    for path, name in [(p, "okx") for p in OKX] + [(p, "kraken") for p in KRAKEN] + [
            (p, "binance") for p in RECORDINGS]:
        preview = RecordingSource([path]).preview(0, 500)
        assert detect_venue(preview, str(path)).name.startswith(name), path
    events_only = write_lines(tmp_path / "events.jsonl", lines_of(KRAKEN[0])[:20])
    with pytest.raises(ConfigError, match="cannot tell the venue"):
        replay(events_only)


@pytest.mark.parametrize("path", OKX + KRAKEN, ids=lambda p: p.name)
def test_the_recorder_labels_frames_as_the_recordings_do(path):
    venue = venue_named("okx" if "okx" in path.name else "kraken")
    for recorded in map(orjson.loads, lines_of(path)):
        assert venue.stream_label(recorded["raw"].encode()) == recorded["stream"]


OKX_BAD = [
    b'{"recv_ns":1,"stream":"x",raw:}',
    line(1652459226000000000, "books:BTC-USDT",
         b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"upd'),
    line(1652459226000000000, "candle1m:BTC-USDT",
         b'{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[]}'),
    line(1652459226000000000, "books:ETH-USDT",
         b'{"arg":{"channel":"books","instId":"ETH-USDT"},"action":"update","data":[{"asks":'
         b'[],"bids":[],"ts":"1","checksum":0}]}'),
]
KRAKEN_BAD = [
    b'{"recv_ns":1,"stream":"x",raw:}',
    line(1618678133700000000, "book-1000:XMR/USD", b'[992,{"a":[["353.1"'),
    line(1618678133700000000, "ohlc-1:XMR/USD", b'{"channel":"nonsense","data":[]}'),
    line(1618678133700000000, "book-1000:DOT/USD",
         b'[7,{"a":[["1.0","2.0","1618678133.1"]],"c":"1"},"book-1000","DOT/USD"]'),
]
BAD_KINDS = {"invalid JSON": 1, "malformed message": 1, "unknown message": 1,
             "unknown symbol": 1}


@pytest.mark.parametrize(("path", "bad"), [(OKX[0], OKX_BAD), (KRAKEN[0], KRAKEN_BAD)],
                         ids=["okx", "kraken"])
def test_bad_lines_are_counted_named_and_skipped(tmp_path, path, bad):
    """After the first 60 lines (every snapshot), which name the symbols of the replay."""
    lines = lines_of(path)[:NO_JIT_LINES]
    good = replay(write_lines(tmp_path / "good.jsonl", lines), preview_lines=60)
    spoiled = write_lines(tmp_path / "bad.jsonl", lines[:60] + bad + lines[60:])
    result = replay(spoiled, preview_lines=60)
    assert result.errors_by_kind == BAD_KINDS
    assert all(str(spoiled) in e for e in result.errors)
    assert result.instruments == good.instruments  # nothing it accepted was lost
    assert sum(b.checksum_fail for b in result.instruments.values()) == 0
    with pytest.raises(RecordingError, match="bad.jsonl:61: invalid JSON"):
        replay(spoiled, strict=True, preview_lines=60)


@pytest.mark.parametrize(("path", "keys"), [
    (OKX[0], ["okx:BTC-USD", "okx:BTC-USDT", "okx:UNI-USD"]),
    (KRAKEN[0], ["kraken:ADA-BTC", "kraken:BTC-CHF", "kraken:ETH-CHF", "kraken:GRT-ETH",
                 "kraken:KSM-BTC", "kraken:OCEAN-BTC", "kraken:OMG-USD", "kraken:SC-EUR",
                 "kraken:WAVES-EUR", "kraken:XMR-USD"])], ids=["okx", "kraken"])
def test_backtest_cli_json_names_instruments_by_venue(cut, path, keys):
    path = cut(path)
    proc = subprocess.run([sys.executable, "-m", "meltica_nb.cli", "backtest", str(path),
                           "--json", "--no-progress"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stdout)
    assert sorted(summary["instruments"]) == keys and summary["parse_errors"] == 0
    books = summary["instruments"].values()
    assert sum(b["checksum_fail"] for b in books) == 0 < sum(b["checksum_ok"] for b in books)
    assert summary["digest"] == replay(path).digest


@pytest.mark.parametrize(("venue", "symbol", "channels"), [
    ("okx", "BTC-USDT", "books,trades"), ("kraken", "BTC-USD", "book,trade")])
def test_meltica_record_then_backtest_against_the_simulator(tmp_path, venue, symbol, channels):
    proc = subprocess.run([sys.executable, "-m", "meltica_nb.cli", "record", "--sim", "--venue",
                           venue, "--symbols", symbol, "--channels", channels, "--out",
                           str(tmp_path), "--duration", "1", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stdout)
    result = replay(summary["files"])
    assert result.frames == summary["recorded"] > 0 and result.parse_errors == 0
    book = result.instruments[f"{venue}:{symbol}"]
    assert book.checksum_ok > 0 and book.checksum_fail == 0 and book.resyncs == 0


def test_a_recorded_kraken_v2_session_replays_to_the_live_books(tmp_path, no_thread_leak):
    venue = venue_named("kraken")
    sim = ExchangeSimulator("spot", config=MarketConfig.fast(levels=50), seed=5,
                            venue="kraken").start()
    try:
        engine = Engine()
        recording = LineRecording(tmp_path, compression="gz", rotation=Rotation(0, 0))
        recorder = Recorder(recording)
        feed = venue.live_feed(engine, ["BTC-USD", "ETH-USD"], ["book", "trade"],
                               sim.ws_url + "/v2", sim.rest_url)
        recorder.attach_feed(feed, venue)
        engine.add_feed(feed)
        engine.start()
        try:
            time.sleep(1.0)
        finally:
            assert engine.stop(5.0).clean
            recorder.close()
    finally:
        sim.stop()
    assert feed.config.version == 2
    result = replay(recording.paths, levels=LEVELS)
    assert result.frames == feed.stats().frames and result.parse_errors == 0
    for inst, stats in feed.books.stats().items():
        book = result.instruments[f"kraken:{engine.registry.instrument(inst).symbol}"]
        assert (book.applied, book.checksum_ok, book.checksum_fail) == (
            stats.applied, stats.checksum_ok, stats.checksum_fail)
        bids, asks = feed.books.books.levels(inst)
        assert book.bids == text(bids[:LEVELS], engine.registry, inst)
        assert book.asks == text(asks[:LEVELS], engine.registry, inst)
    assert all(b.checksum_ok > 0 for b in result.instruments.values())
