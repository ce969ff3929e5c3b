"""OKX books: published checksum vectors, every recorded checksum, seqId rules, corruption."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from meltica_nb.kernels import checksum_kernels as ck
from meltica_nb.schema import EventType
from tests.venues.okx.helpers import book_frame, parser_and_books, recorded_frames

VECTORS = [  # exchange-book-rules.md, "Published checksum test vectors"
    ([["3366.1", "7"], ["3366", "6"]], [["3366.8", "9"], ["3368", "8"]],
     "3366.1:7:3366.8:9:3366:6:3368:8", -1881014294),
    ([["3366.1", "7"]], [["3366.8", "9"], ["3368", "8"], ["3372", "8"]],
     "3366.1:7:3366.8:9:3368:8:3372:8", 831078360),
]


def _run(parser, books, frames):
    result = parser.parse_batch(frames, list(range(1, len(frames) + 1)))
    return books.apply(result.depth, result.levels, result.texts, result.checksums)


@pytest.mark.parametrize(("bids", "asks", "text", "checksum"), VECTORS)
def test_published_vectors(bids, asks, text, checksum):
    parser, books, symbols = parser_and_books(["ACOIN-USDT"])
    inst = symbols["ACOIN-USDT"].instrument
    events, resync = _run(parser, books, [book_frame("ACOIN-USDT", bids, asks,
                                                     action="snapshot", checksum=checksum)])
    assert resync == []
    assert books.checksum_text(inst) == text
    assert zlib.crc32(text.encode()) - (1 << 32 if checksum < 0 else 0) == checksum
    stats = books.stats(inst)
    assert (stats.checksum_ok, stats.checksum_fail) == (1, 0)
    assert events[0]["event_type"] == EventType.BOOK_SNAPSHOT
    assert events[0]["checksum"] == checksum


def test_every_recorded_checksum_validates():
    parser, books, _ = parser_and_books()
    frames, recv = recorded_frames()
    result = parser.parse_batch(frames, recv)
    events, resync = books.apply(result.depth, result.levels, result.texts, result.checksums)
    stats = books.stats()
    assert resync == []
    assert sum(s.checksum_fail for s in stats.values()) == 0
    assert sum(s.checksum_ok for s in stats.values()) == 290  # 3 snapshots + 287 updates
    assert sum(s.resyncs + s.gaps + s.truncated for s in stats.values()) == 0
    assert [s.bid_levels for s in stats.values()][0] == 400  # BTC-USDT stays at 400/400
    kinds = np.bincount(events["event_type"], minlength=4)
    assert kinds[EventType.BOOK_SNAPSHOT] == 290 and kinds[EventType.BBO] > 100


def test_recorded_checksums_match_zlib_over_the_received_text():
    """The rebuilt string equals the one made from the raw JSON strings, as cryptofeed does."""
    parser, books, symbols = parser_and_books()
    frames, recv = recorded_frames()
    inst = symbols["UNI-USD-SWAP"].instrument
    _run(parser, books, [f for f in frames if b'"channel":"books","instId":"UNI-USD-SWAP"' in f])
    text = books.checksum_text(inst)
    assert zlib.crc32(text.encode()) == books.stats(inst).checksum & 0xFFFFFFFF
    assert ":" in text and text.count(":") == 4 * 25 - 1


def test_a_corrupted_level_fails_the_checksum_and_asks_for_a_resubscribe():
    parser, books, symbols = parser_and_books()
    frames, recv = recorded_frames()
    spot = [f for f in frames if f.startswith(b'{"arg":{"channel":"books","instId":"BTC-USDT"}')]
    corrupted = spot[5].replace(b'"0.0112"', b'"0.0113"', 1)
    assert corrupted != spot[5]
    events, resync = _run(parser, books, spot[:5] + [corrupted] + spot[6:10])
    inst = symbols["BTC-USDT"].instrument
    stats = books.stats(inst)
    assert resync == [inst]
    assert (stats.checksum_ok, stats.checksum_fail, stats.resyncs) == (5, 1, 1)
    assert stats.ignored == 4 and stats.state == "waiting"  # until the next snapshot
    _, resync = _run(parser, books, spot[:3])  # the resubscribe's snapshot: live again
    assert resync == [] and books.stats(inst).state == "live"


def _seq_frames(inst_id):
    bid, ask = [["100.1", "1"]], [["100.2", "2"]]
    return {
        "snapshot": book_frame(inst_id, bid, ask, action="snapshot", seq=10, prev=-1),
        "next": book_frame(inst_id, [["100.0", "3"]], [], seq=11, prev=10),
        "keepalive": book_frame(inst_id, [], [], seq=11, prev=11),
        "reset": book_frame(inst_id, [], [["100.3", "1"]], seq=3, prev=11),
        "after_reset": book_frame(inst_id, [["100.1", "0"]], [], seq=4, prev=3),
        "gap": book_frame(inst_id, [["99", "1"]], [], seq=9, prev=7),
    }


def test_seq_chain_keepalive_reset_duplicate_and_gap():
    parser, books, symbols = parser_and_books(["BTC-USDT"])
    inst = symbols["BTC-USDT"].instrument
    f = _seq_frames("BTC-USDT")
    _, resync = _run(parser, books, [f["snapshot"], f["next"], f["keepalive"], f["reset"],
                                     f["after_reset"], f["after_reset"]])
    stats = books.stats(inst)
    assert resync == []
    assert (stats.applied, stats.duplicates, stats.seq_id) == (4, 1, 4)
    assert stats.checksum_absent == 5  # no checksum sent: seqId continuity only
    bids, asks = books.levels(inst)
    assert bids["price"].tolist() == [100_00000000] and asks.shape[0] == 2
    _, resync = _run(parser, books, [f["gap"]])
    assert resync == [inst]
    assert (books.stats(inst).gaps, books.stats(inst).state) == (1, "waiting")


def test_update_before_any_snapshot_is_ignored():
    parser, books, symbols = parser_and_books(["BTC-USDT"])
    f = _seq_frames("BTC-USDT")
    events, resync = _run(parser, books, [f["next"]])
    assert events.shape[0] == 0 and resync == []
    assert books.stats(symbols["BTC-USDT"].instrument).ignored == 1


def test_books5_rows_are_snapshots():
    parser, books, symbols = parser_and_books(["BTC-USDT"])
    frame = book_frame("BTC-USDT", [["1.5", "2"]], [["1.6", "3"]], action=None,
                       channel="books5", seq=5)
    result = parser.parse_batch([frame], [1])
    assert result.depth["is_snapshot"].tolist() == [1] and result.kinds.tolist() == [1]


def test_reset_forgets_books():
    parser, books, symbols = parser_and_books(["BTC-USDT"])
    f = _seq_frames("BTC-USDT")
    _run(parser, books, [f["snapshot"]])
    books.reset()
    inst = symbols["BTC-USDT"].instrument
    assert not books.is_live(inst) and books.levels(inst)[0].shape[0] == 0


def test_a_sorted_run_merges_to_the_same_book_as_levels_one_by_one():
    """The one-pass merge (a sorted run) and set_level (any order) keep identical books; a
    full side keeps its best levels and counts the rest."""
    import random

    rng = random.Random(4)
    runs = []
    for _ in range(60):
        bids = {rng.randrange(900, 1000): rng.choice(["0", "1", "2.5", "0.125"])
                for _ in range(rng.randrange(1, 12))}
        asks = {rng.randrange(1001, 1100): rng.choice(["0", "3", "0.5"])
                for _ in range(rng.randrange(1, 12))}
        runs.append((sorted(bids.items(), reverse=True), sorted(asks.items())))
    results = []
    for shuffle, depth in ((False, 128), (True, 128), (False, 24)):
        parser, books, symbols = parser_and_books(["BTC-USDT"], depth=depth)
        frames = [book_frame("BTC-USDT", [[str(p), "1"] for p in range(999, 960, -3)],
                             [[str(p), "1"] for p in range(1001, 1040, 3)], action="snapshot")]
        for bids, asks in runs:
            bids, asks = list(bids), list(asks)
            if shuffle:
                rng.shuffle(bids)
                rng.shuffle(asks)
            frames.append(book_frame("BTC-USDT", [[str(p), q] for p, q in bids],
                                     [[str(p), q] for p, q in asks]))
        _run(parser, books, frames)
        inst = symbols["BTC-USDT"].instrument
        results.append((books.levels(inst)[0].tolist(), books.levels(inst)[1].tolist(),
                        books.checksum_text(inst), books.stats(inst).truncated))
    assert results[0] == results[1] and results[0][3] == 0
    full = results[2]
    assert full[3] > 0 and len(full[0]) == 24  # the side filled up, the worst fell off
    assert full[0][0] == results[0][0][0]  # the best bid is the same


def test_a_level_changed_after_a_checksum_is_hashed_afresh():
    """The piece cached when a checksum read a level is dropped when the level is written."""
    parser, books, symbols = parser_and_books(["ACOIN-USDT"])
    inst = symbols["ACOIN-USDT"].instrument
    bids, asks, _, checksum = VECTORS[0]
    _run(parser, books, [book_frame("ACOIN-USDT", bids, asks, action="snapshot",
                                    checksum=checksum)])
    text = "3366.1:7.5:3366.8:9:3366:6:3368:8"  # the best bid's size changes, same price
    crc = zlib.crc32(text.encode())
    _, resync = _run(parser, books, [book_frame("ACOIN-USDT", [["3366.1", "7.5"]], [],
                                                checksum=crc - (1 << 32 if crc >= 1 << 31 else 0))])
    assert resync == [] and books.checksum_text(inst) == text
    assert books.stats(inst).checksum_ok == 2


def test_a_piece_too_long_for_the_shift_tables_is_hashed_as_printed():
    """Received texts make pieces of at most 42 bytes, but a caller's text form may ask for
    more decimals: such a piece is CRC'd as printed (not cached), still zlib's checksum."""
    parser, books, symbols = parser_and_books(["ACOIN-USDT"])
    inst = symbols["ACOIN-USDT"].instrument
    bids, asks, _, _ = VECTORS[0]
    result = parser.parse_batch([book_frame("ACOIN-USDT", bids, asks, action="snapshot")], [1])
    texts = result.texts.copy()
    texts[:2] = 18 << 8 | 18  # both bids printed with 18 decimals: pieces of 42+ bytes
    books.apply(result.depth, result.levels, texts, result.checksums)  # no checksum sent
    text = books.checksum_text(inst)
    f = text.split(":")
    assert min(len(f[0]) + len(f[1]), len(f[4]) + len(f[5])) + 2 > ck.MAX_PIECE  # ":px:sz"
    crc = zlib.crc32(text.encode())
    signed = np.array([crc - (1 << 32 if crc >= 1 << 31 else 0)])
    _, resync = books.apply(result.depth, result.levels, texts, signed)
    assert resync == [] and books.stats(inst).checksum_ok == 1
