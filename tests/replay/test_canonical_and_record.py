"""Canonical record files and ``meltica record``: round trips that must give the same events.

A replay that writes a canonical file and the replay of that file have the same digest. A
simulator session recorded to JSON Lines (and, at the same time, to a canonical file of
what its feed published) replays to the same events: per stream (instrument, event type) the
same records in the same order, and the same final books.
"""

from __future__ import annotations

import gzip
import time
from collections import defaultdict

import numpy as np
import orjson
import pytest

from meltica_nb.canonical_file import (
    MAGIC,
    CanonicalReader,
    CanonicalWriter,
    is_canonical,
    join_events,
)
from meltica_nb.engine import Engine
from meltica_nb.errors import ConfigError, RecordingFormatError
from meltica_nb.recorder import CanonicalRecording, LineRecording, Recorder, Rotation
from meltica_nb.replay import replay
from meltica_nb.replay_venue import venue_named
from meltica_nb.schema import EventType
from meltica_nb.sim.binance import BinanceLimits
from meltica_nb.sim.market import MarketConfig
from meltica_nb.sim.server import ExchangeSimulator

from .conftest import SMALL

#: Header fields compared between live and replayed records (all but trace/routing stamps
#: and the BookTable handle, which depend on the engine, and flags, which mark a replay).
FIELDS = ("ingest_ns", "exchange_ns", "seq_provider", "instrument", "venue", "event_type",
          "side", "seq_first", "price", "quantity", "bid_price", "bid_qty", "ask_price",
          "ask_qty", "n_bids", "n_asks")


@pytest.mark.parametrize("suffix", [".canon", ".canon.zst", ".canon.gz"])
def test_a_canonical_file_replays_to_the_same_digest(tmp_path, suffix):
    out = tmp_path / f"x{suffix}"
    first = replay([SMALL[2]], canonical_out=out, levels=5)
    assert is_canonical(out) and not is_canonical(SMALL[2])
    again = replay([out], levels=5)
    assert again.digest == first.digest and again.events == first.events
    assert again.parse_errors == 0 and again.frames == 0
    for key, book in first.instruments.items():  # the last book event of each instrument
        assert again.instruments[key].bids == book.bids[:5]
        assert again.instruments[key].update_id == book.update_id


def _first_events_block(data: bytes) -> tuple[int, int, int]:
    """(offset of its levels, n_book, k) of a plain canonical file's first EVENTS block."""
    k = int(np.frombuffer(data[len(MAGIC) + 24:len(MAGIC) + 32], np.int64)[0])
    at = len(MAGIC) + 32
    while True:
        kind, n, n_book, size = np.frombuffer(data[at:at + 32], np.int64).tolist()
        if kind == 2:
            return at + 32 + n * 128, n_book, k
        at += 32 + size


def test_levels_beyond_a_books_counts_do_not_reach_the_digest(tmp_path):
    """The tape digests a canonical block's levels as the table holds them: pairs beyond a
    book's counts (zero in files we write) are cleared when restored, counts beyond the
    table's ``k`` clipped, not folded as read."""
    good = tmp_path / "g.canon"
    replay([SMALL[0]], canonical_out=good)
    data = good.read_bytes()
    off, n_book, k = _first_events_block(data)
    levels = np.frombuffer(data, np.int64, n_book * (1 + 2 * k) * 2, off).reshape(n_book, -1, 2)

    def digest_of(name: str, edit) -> str:
        lv = levels.copy()
        edit(lv)
        path = tmp_path / name
        path.write_bytes(data[:off] + lv.tobytes() + data[off + lv.nbytes:])
        result = replay([path])
        assert result.parse_errors == 0
        return result.digest

    def fewer_bids(lv) -> None:
        lv[0, 0, 0] -= 1  # the last bid pair is now beyond the count

    def fewer_bids_clean(lv) -> None:
        fewer_bids(lv)
        lv[0, 1 + lv[0, 0, 0]] = 0

    def more_asks(lv) -> None:
        lv[0, 0, 1] = k + 5  # more than the table keeps

    assert levels[0, 0, 0] == k and levels[0, 0, 1] == k  # a full book to cut
    assert digest_of("a.canon", fewer_bids) == digest_of("b.canon", fewer_bids_clean)
    assert digest_of("c.canon", more_asks) == replay([good]).digest


def test_canonical_ids_are_remapped_to_the_reading_registry(tmp_path):
    out = tmp_path / "x.canon"
    replay([SMALL[0]], canonical_out=out)
    blocks = list(CanonicalReader(out).blocks())
    names = blocks[0].names
    assert names["venues"] == ["binance"] and len(names["instruments"]) == 4
    assert sum(b.events.shape[0] for b in blocks) == sum(replay([SMALL[0]]).events.values())


def test_canonical_files_of_other_sessions_are_remapped_to_one_registry(tmp_path):
    spot, usdm = tmp_path / "spot.canon", tmp_path / "usdm.canon"
    first = replay([SMALL[0]], canonical_out=spot)
    second = replay([SMALL[2]], canonical_out=usdm)  # its venue and instruments are id 1..
    both = replay([spot, usdm])
    assert both.instruments.keys() == first.instruments.keys() | second.instruments.keys()
    key = "binance-futures:SUSHI-USDT"
    assert both.instruments[key].bids == second.instruments[key].bids
    assert both.events["trade"] == first.events["trade"] + second.events["trade"]


def test_broken_canonical_files_are_format_errors(tmp_path):
    good = tmp_path / "g.canon"
    replay([SMALL[0]], canonical_out=good)
    data = good.read_bytes()
    cut = tmp_path / "cut.canon"
    cut.write_bytes(data[: len(data) - 100])
    result = replay([cut])
    assert result.errors_by_kind == {"canonical file": 1}
    assert "truncated" in result.errors[0]
    with pytest.raises(RecordingFormatError):
        replay([cut], strict=True)
    zipped = tmp_path / "g.canon.gz"
    replay([SMALL[0]], canonical_out=zipped)
    data = zipped.read_bytes()
    zipped.write_bytes(data[: len(data) // 2])  # the gzip stream ends early
    assert replay([zipped]).errors_by_kind == {"canonical file": 1}
    other = tmp_path / "v2.canon"
    other.write_bytes(MAGIC + np.array([9, 1, 128, 20], np.int64).tobytes())
    with pytest.raises(RecordingFormatError, match="format 9"):
        list(CanonicalReader(other).blocks())
    sizes = tmp_path / "sizes.canon"  # a block whose size does not fit its counts
    head = good.read_bytes()[:len(MAGIC) + 32]
    sizes.write_bytes(head + np.array([2, 1, 0, 100], np.int64).tobytes() + bytes(100))
    with pytest.raises(RecordingFormatError, match="events block of 100 bytes for 1 records"):
        list(CanonicalReader(sizes).blocks())
    with pytest.raises(ConfigError):
        replay([good, SMALL[0]])  # mixed kinds
    with pytest.raises(ConfigError):
        CanonicalWriter(tmp_path / "z.canon", Engine().registry, k=0)


def test_rotation_policy():
    assert Rotation(100, 0).due(100, 0.0, 1e9)
    assert not Rotation(100, 0).due(99, 0.0, 1e9)
    assert Rotation(0, 5.0).due(0, 10.0, 15.0) and not Rotation(0, 5.0).due(0, 10.0, 14.0)
    with pytest.raises(ConfigError):
        LineRecording("/tmp", compression="lz4")


# -- recording a live session -----------------------------------------------------------------


def record_session(tmp_path, seconds: float = 1.2, rotate_bytes: int = 0):
    """A simulator session recorded twice: JSON Lines (feed hooks) and canonical (publish)."""
    venue = venue_named("binance")
    sim = ExchangeSimulator("spot", config=MarketConfig.fast(levels=50), seed=5,
                            limits=BinanceLimits(ping_interval=None)).start()
    try:
        engine = Engine()
        lines = LineRecording(tmp_path / "jsonl", compression="gz",
                              rotation=Rotation(rotate_bytes, 0))
        canon = CanonicalRecording(tmp_path / "canon", engine, compression="zst",
                                   rotation=Rotation(0, 0))
        line_rec, canon_rec = Recorder(lines), Recorder(canon)
        feed = venue.live_feed(engine, ["BTC-USDT", "ETH-USDT"],
                               ["depth@100ms", "bookTicker", "trade"], sim.ws_url, sim.rest_url)
        line_rec.attach_feed(feed, venue)
        canon_rec.attach_engine(engine)
        engine.add_feed(feed)
        engine.start()
        try:
            time.sleep(seconds)
        finally:
            report = engine.stop(5.0)
            line_rec.close()
            canon_rec.close()
        assert report.clean
    finally:
        sim.stop()
    return feed, engine, lines, canon


def by_stream(events: np.ndarray) -> dict:
    """Records per (instrument, event type), in order; BBOs sorted: a batch publishes the
    parsed bookTicker BBOs before the book's BBOs, so their interleaving follows batching."""
    out = defaultdict(list)
    for rec in events[list(FIELDS)].tolist():
        out[rec[3], rec[5]].append(rec)
    for key in out:
        if key[1] == EventType.BBO:
            out[key].sort()
    return out


def test_a_recorded_simulator_session_replays_to_the_same_events(tmp_path, no_thread_leak):
    feed, engine, lines, canon = record_session(tmp_path, rotate_bytes=16 * 1024)
    assert len(lines.paths) >= 2  # rotated by size; the parts continue one another
    first = gzip.decompress(lines.paths[1].read_bytes()).split(b"\n")[0]
    assert orjson.loads(first)["stream"].endswith("/api/v3/exchangeInfo")  # every part
    live = join_events([b.events for p in canon.paths for b in CanonicalReader(p).blocks()])
    assert live.shape[0] == feed.stats().events > 0
    replayed = replay(lines.paths, keep_events=True, levels=1000)
    assert replayed.parse_errors == 0 and replayed.frames == feed.stats().frames
    assert by_stream(replayed.kept) == by_stream(live)
    canonical = replay(canon.paths)
    assert canonical.events == replayed.events
    for inst, stats in feed.books.stats().items():
        info = engine.registry.instrument(inst)
        book = replayed.instruments[f"binance:{info.symbol}"]
        assert (book.update_id, book.applied, book.resyncs) == (stats.book_id, stats.applied,
                                                                stats.resyncs)
        bids, _ = feed.books.books.levels(inst)
        assert len(book.bids) == len(bids)
    trades = replayed.kept[replayed.kept["event_type"] == EventType.TRADE]
    assert trades.shape[0] == replayed.events["trade"] > 0


def test_meltica_record_cli_against_the_simulator(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "meltica_nb.cli", "record", "--sim", "--out",
                           str(tmp_path), "--duration", "1", "--json", "--compress", "zst",
                           "--canonical"], cwd=root, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stdout)
    assert summary["unreturned_slots"] == 0 and summary["files"]
    assert all(p.endswith(".canon.zst") for p in summary["files"])
    result = replay(summary["files"])
    assert sum(result.events.values()) == summary["recorded"]
