"""Binance local books: the documented procedure rule by rule, then every real recording.

Hand-made DEPTH_UPDATE rows check each rule (buffering, discard, first-event rules of spot and
futures, stale, gap, too-old snapshot, buffered diffs replayed after a resync, crossed book);
the real recordings in ``tests/data`` are replayed with a test-local converter and every
bookTicker that names the final ``u`` of a diff must equal the book's best bid and ask.

Runs both jitted and under NUMBA_DISABLE_JIT=1 (kernels as plain Python; the recordings are
then cut to their first lines).
"""

from __future__ import annotations

import gzip
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba.core import config as numba_config

from meltica_nb.book_table import BookTable
from meltica_nb.errors import ConfigError
from meltica_nb.fixedpoint import to_mantissa_array
from meltica_nb.order_book import OrderBooks
from meltica_nb.schema import (
    BOOK_LEVEL,
    CANONICAL_EVENT,
    DEPTH_UPDATE,
    SCHEMA_VERSION,
    EventType,
    Kind,
)
from meltica_nb.venues.binance.books import BinanceBookSync, InstrumentBookStats

VENUE = 7
INST = 1  # the instrument of single-instrument tests


# --------------------------------------------------------------------------------------------
# hand-made messages


def diff(U, u, bids=(), asks=(), pu=-1, inst=INST, ingest_ns=0, exchange_ns=0):
    return dict(first=U, final=u, prev=pu, snap=0, bids=list(bids), asks=list(asks), inst=inst,
                ingest=ingest_ns, exchange=exchange_ns)


def snap(last_update_id, bids=(), asks=(), inst=INST, ingest_ns=0):
    return dict(first=last_update_id, final=last_update_id, prev=-1, snap=1, bids=list(bids),
                asks=list(asks), inst=inst, ingest=ingest_ns, exchange=0)


def encode(msgs) -> tuple[np.ndarray, np.ndarray]:
    """DEPTH_UPDATE rows and their BOOK_LEVEL arena."""
    rows = np.zeros(len(msgs), DEPTH_UPDATE)
    arena: list[tuple[int, int]] = []
    for row, m in zip(rows, msgs, strict=True):
        row["first_id"], row["final_id"], row["prev_final_id"] = m["first"], m["final"], m["prev"]
        row["is_snapshot"], row["instrument"], row["venue"] = m["snap"], m["inst"], VENUE
        row["ingest_ns"], row["exchange_ns"] = m["ingest"], m["exchange"]
        row["level_off"], row["n_bids"], row["n_asks"] = len(arena), len(m["bids"]), len(m["asks"])
        arena += m["bids"] + m["asks"]
    return rows, np.array(arena, BOOK_LEVEL).reshape(-1)


def make(market="spot", max_books=4, depth=50, **kw) -> BinanceBookSync:
    return BinanceBookSync(OrderBooks(max_books, depth), BookTable(rows=64, k=5), market, k=5,
                           **kw)


def run(sync, *msgs, now_ns=0):
    events, needs = sync.apply(*encode(msgs), now_ns)
    return events.copy(), needs


def book(sync, inst=INST):
    bids, asks = sync.books.levels(inst)
    return bids.tolist(), asks.tolist()


def book_events(events):
    return events[events["event_type"] == EventType.BOOK_SNAPSHOT]


# --------------------------------------------------------------------------------------------
# buffering and the first snapshot


def test_diffs_without_a_book_are_buffered_and_the_first_asks_for_a_snapshot():
    sync = make()
    events, needs = run(sync, diff(5, 7, [(100, 1)]))
    assert events.size == 0 and needs == [INST]
    assert sync.state_of(INST) == "syncing"
    events, needs = run(sync, diff(8, 9, [(100, 2)]), diff(10, 10))
    assert events.size == 0 and needs == []  # already asked
    assert sync.needs_snapshot() == [INST]
    s = sync.stats(INST)
    assert (s.buffered, s.buffer_high_water, s.applied, s.bid_levels) == (3, 3, 0, 0)


def test_spot_snapshot_discards_u_up_to_L_and_accepts_U_equal_to_L_plus_1():
    # the NKNUSDT start seen on real data: snapshot 12, next usable event U = 13
    sync = make()
    run(sync, diff(10, 12, [(100, 1)]), diff(13, 14, [(101, 2)]))
    events, needs = run(sync, snap(12, [(100, 5), (99, 1)], [(105, 1)]))
    assert needs == [] and sync.state_of(INST) == "live"
    assert book(sync) == ([(101, 2), (100, 5), (99, 1)], [(105, 1)])
    s = sync.stats(INST)
    assert (s.discarded, s.applied, s.book_id, s.snapshots, s.needs_snapshot) == (
        1, 1, 14, 1, False)
    assert book_events(events)["seq_provider"].tolist() == [14]


def test_spot_first_event_may_straddle_L_but_one_ending_at_L_is_discarded():
    sync = make()
    run(sync, snap(12, [(100, 5)], [(105, 1)]))  # no buffer: loaded at once
    assert sync.stats(INST).book_id == 12
    run(sync, diff(11, 12, [(100, 9)]))  # u == L: already in the snapshot
    assert book(sync)[0] == [(100, 5)]
    assert sync.stats(INST).stale == 1
    run(sync, diff(10, 15, [(100, 7)]))  # U <= L + 1 <= u
    assert book(sync)[0] == [(100, 7)] and sync.stats(INST).book_id == 15


def test_spot_first_event_after_a_hole_is_a_gap_and_the_diffs_after_it_are_kept():
    sync = make()
    run(sync, diff(10, 12, [(100, 1)]), diff(15, 16, [(101, 1)]), diff(17, 18, [(102, 1)]))
    events, needs = run(sync, snap(12, [(99, 1)], [(110, 1)]))  # 13..14 are missing
    assert events.size == 0 and needs == [INST]
    s = sync.stats(INST)
    assert (s.state, s.gaps, s.resyncs, s.bid_levels) == ("resync", 1, 1, 0)
    events, needs = run(sync, snap(15, [(100, 2), (99, 1)], [(110, 1)]))
    assert needs == [] and sync.state_of(INST) == "live"
    # 15..16 straddles L = 15 and 17..18 follows: both reused from the buffer
    assert book(sync)[0] == [(102, 1), (101, 1), (100, 2), (99, 1)]
    assert book_events(events)["seq_provider"].tolist() == [18]


def test_spot_live_stale_overlap_and_gap():
    sync = make()
    run(sync, snap(20, [(100, 1)], [(110, 1)]))
    run(sync, diff(21, 22, [(101, 1)]))
    events, _ = run(sync, diff(19, 21, [(101, 9)]))  # u < id: stale, ignored
    assert events.size == 0 and sync.stats(INST).stale == 1
    run(sync, diff(22, 23, [(102, 1)]))  # U <= id + 1 < u: applied
    assert book(sync)[0] == [(102, 1), (101, 1), (100, 1)]
    events, needs = run(sync, diff(25, 26, [(103, 1)]), diff(27, 28, [(104, 1)]))  # 24 missing
    assert events.size == 0 and needs == [INST]
    s = sync.stats(INST)
    assert (s.state, s.gaps, s.resyncs, s.applied, s.buffered) == ("resync", 1, 1, 2, 2)
    # the venue answers with a snapshot that includes 24..26: the buffered 27..28 is reused
    events, needs = run(sync, snap(26, [(103, 1), (100, 1)], [(110, 1)]))
    assert needs == [] and book(sync)[0] == [(104, 1), (103, 1), (100, 1)]
    assert sync.stats(INST).book_id == 28


def test_a_snapshot_older_than_the_first_buffered_diff_is_too_old():
    sync = make()
    run(sync, diff(25, 26, [(103, 1)]), diff(27, 28, [(104, 1)]))
    events, needs = run(sync, snap(24, [(100, 1)], [(110, 1)]))
    assert events.size == 0 and needs == [INST]  # fetch again
    s = sync.stats(INST)
    assert (s.state, s.too_old, s.snapshots, s.buffered, s.discarded) == (
        "syncing", 1, 0, 2, 0)
    run(sync, snap(25, [(100, 1)], [(110, 1)]))  # L >= U of the first buffered diff
    assert sync.state_of(INST) == "live"
    assert book(sync)[0] == [(104, 1), (103, 1), (100, 1)]


def test_futures_first_event_rule_U_le_L_le_u_then_the_pu_chain():
    # AKRO: the first applied event ends at L (u == L), which spot would discard
    sync = make("usdm")
    run(sync, diff(100, 110, [(50, 1)], pu=90), diff(115, 120, [(51, 1)], pu=110))
    run(sync, snap(110, [(49, 1)], [(60, 1)]))
    s = sync.stats(INST)
    assert (s.state, s.discarded, s.applied, s.book_id) == ("live", 0, 2, 120)
    assert book(sync)[0] == [(51, 1), (50, 1), (49, 1)]
    run(sync, diff(121, 130, [(52, 1)], pu=120))
    events, needs = run(sync, diff(121, 130, [(52, 9)], pu=120))  # the same diff again
    assert events.size == 0 and needs == [] and sync.stats(INST).stale == 1  # not a gap
    assert book(sync)[0][0] == (52, 1)
    events, needs = run(sync, diff(131, 140, [(53, 1)], pu=125))  # pu != previous u
    assert events.size == 0 and needs == [INST]
    assert (sync.stats(INST).gaps, sync.state_of(INST)) == (1, "resync")


def test_futures_first_event_may_start_at_L_and_drops_u_below_L():
    # SUSHI: the first applied event has U == L
    sync = make("usdm")
    run(sync, diff(100, 110, [(50, 1)], pu=90), diff(115, 120, [(51, 1)], pu=110))
    run(sync, snap(115, [(49, 1)], [(60, 1)]))
    s = sync.stats(INST)
    assert (s.state, s.discarded, s.applied) == ("live", 1, 1)
    assert book(sync)[0] == [(51, 1), (49, 1)]


def test_futures_does_not_accept_the_spot_start_U_equal_L_plus_1():
    sync = make("usdm")
    run(sync, diff(100, 110, pu=90), diff(115, 120, [(51, 1)], pu=110))
    events, needs = run(sync, snap(114, [(49, 1)], [(60, 1)]))
    assert events.size == 0 and needs == [INST]
    assert (sync.stats(INST).gaps, sync.state_of(INST)) == (1, "resync")
    spot = make("spot")
    run(spot, diff(100, 110), diff(115, 120, [(51, 1)]))
    run(spot, snap(114, [(49, 1)], [(60, 1)]))
    assert spot.state_of(INST) == "live" and book(spot)[0] == [(51, 1), (49, 1)]


def test_a_crossed_book_resyncs_and_keeps_the_diffs_after_it():
    sync = make()
    run(sync, snap(10, [(100, 1)], [(101, 1)]))
    events, needs = run(sync, diff(11, 11, [(102, 1)]), diff(12, 13, [(99, 3)]))
    assert needs == [INST]
    s = sync.stats(INST)
    assert (s.state, s.crossed, s.resyncs, s.gaps, s.bid_levels) == ("resync", 1, 1, 0, 0)
    assert book_events(events).size == 0
    run(sync, snap(12, [(100, 1)], [(102, 1)]))
    assert sync.state_of(INST) == "live"
    assert book(sync) == ([(100, 1), (99, 3)], [(102, 1)])


def test_a_crossed_snapshot_is_refused():
    sync = make()
    _, needs = run(sync, snap(10, [(101, 1)], [(100, 1)]))
    assert needs == [INST] and sync.stats(INST).crossed == 1 and sync.state_of(INST) == "resync"


# --------------------------------------------------------------------------------------------
# events


def test_each_applied_diff_emits_a_book_snapshot_and_a_bbo_when_the_top_changes():
    sync = make()
    ev, _ = run(sync, snap(10, [(100, 1), (99, 2)], [(101, 3)], ingest_ns=5))
    assert ev["event_type"].tolist() == [EventType.BOOK_SNAPSHOT, EventType.BBO]
    ev, _ = run(sync, diff(11, 12, [(98, 1)], ingest_ns=111, exchange_ns=222))  # deep level
    assert ev["event_type"].tolist() == [EventType.BOOK_SNAPSHOT]
    b = ev[0]
    assert (b["seq_provider"], b["seq_first"], b["instrument"], b["venue"]) == (12, 0, INST, VENUE)
    assert (b["kind"], b["schema_version"], b["ingest_ns"], b["exchange_ns"]) == (
        Kind.MARKET_DATA, SCHEMA_VERSION, 111, 222)
    assert (b["n_bids"], b["n_asks"], b["checksum"]) == (3, 1, 0)
    bids, asks = sync.table.read(int(b["book_row"]), int(b["book_slot"]))
    assert bids.tolist() == [(100, 1), (99, 2), (98, 1)] and asks.tolist() == [(101, 3)]
    ev, _ = run(sync, diff(13, 13, asks=[(101, 4)]))
    assert ev["event_type"].tolist() == [EventType.BOOK_SNAPSHOT, EventType.BBO]
    bbo = ev[1]
    assert (bbo["seq_provider"], bbo["seq_first"]) == (13, 0)
    assert (bbo["bid_price"], bbo["bid_qty"], bbo["ask_price"], bbo["ask_qty"]) == (100, 1, 101, 4)
    s = sync.stats(INST)
    assert (s.book_events, s.bbo_events) == (3, 2)


def test_book_snapshots_carry_the_top_k_only():
    sync = make()
    ev, _ = run(sync, snap(1, [(100 - j, 1) for j in range(8)], [(200 + j, 1) for j in range(2)]))
    assert (ev[0]["n_bids"], ev[0]["n_asks"]) == (5, 2)
    bids, _ = sync.table.read_event(ev[0])
    assert bids["price"].tolist() == [100, 99, 98, 97, 96]


def test_explicit_out_array_and_batches_of_several_instruments():
    sync = make()
    out = np.zeros(8, CANONICAL_EVENT)
    msgs = [snap(10, [(100, 1)], [(101, 1)], inst=1), snap(50, [(10, 1)], [(11, 1)], inst=2),
            diff(11, 11, [(100, 2)], inst=1), diff(60, 61, [(10, 2)], inst=2)]
    events, needs = sync.apply(*encode(msgs), 0, out=out)
    assert np.shares_memory(events, out)
    assert needs == [2] and sync.state_of(1) == "live" and sync.state_of(2) == "resync"
    assert sorted(sync.stats()) == [1, 2]
    assert isinstance(sync.stats()[1], InstrumentBookStats)


# --------------------------------------------------------------------------------------------
# refresh, bounds, reset, errors


def test_rows_wider_than_the_level_work_grow_it():
    """The procedure runs without allocating: a row with more levels on a side than its work
    array holds grows it first, buffered or applied, and the batch runs as any other."""
    sync = BinanceBookSync(OrderBooks(4, 1000), BookTable(rows=64, k=5), "spot", k=5)
    width = sync._work.shape[1] + 44
    wide = [(10_000 - p, 1) for p in range(width)]
    run(sync, diff(20, 21, wide, [(20_000, 1)]))  # buffered: no book yet
    assert sync._work.shape[1] >= width
    events, needs = run(sync, snap(20, [(5_000, 1)], [(20_000, 2)]))
    assert needs == [] and book(sync)[0][:2] == [(10_000, 1), (9_999, 1)]
    assert len(book(sync)[0]) == width + 1 and book_events(events)["seq_provider"].tolist() == [21]
    wider = [(30_000 + p, 2) for p in range(2 * width)]
    run(sync, diff(22, 22, (), wider))
    assert len(book(sync)[1]) == 2 * width + 1 and sync._work.shape[1] >= 2 * width


def test_a_refresh_snapshot_older_than_the_book_is_brought_forward_from_history():
    sync = make()
    run(sync, snap(20, [(100, 1), (90, 1)], [(110, 1)]))
    for u in range(21, 31):
        run(sync, diff(u, u, [(100, u)]))
    # the venue's book differs deep down (a level our diffs never showed): 90 -> 91
    events, needs = run(sync, snap(25, [(100, 25), (91, 1)], [(110, 1)]))
    assert needs == [] and events.size == 0  # nothing newer than what was published
    assert book(sync)[0] == [(100, 30), (91, 1)]
    s = sync.stats(INST)
    assert (s.state, s.snapshots, s.replayed, s.applied, s.book_id) == ("live", 2, 5, 10, 30)
    # a refresh newer than the book replaces it; diffs it contains are then stale
    events, _ = run(sync, snap(40, [(100, 40)], [(110, 1)]))
    assert book_events(events)["seq_provider"].tolist() == [40]
    run(sync, diff(31, 40, [(100, 1)]), diff(41, 41, [(100, 41)]))
    assert book(sync)[0] == [(100, 41)]


def test_a_refresh_older_than_the_history_is_ignored_while_live():
    sync = make(buffer_diffs=2)
    run(sync, snap(20, [(100, 1)], [(110, 1)]))
    for u in range(21, 25):
        run(sync, diff(u, u, [(100, u)]))
    _, needs = run(sync, snap(21, [(100, 99)], [(110, 1)]))
    s = sync.stats(INST)
    assert needs == [] and (s.state, s.too_old, s.buffer_dropped) == ("live", 1, 0)
    assert book(sync)[0] == [(100, 24)]


def test_a_refresh_older_than_a_book_without_history_is_ignored():
    sync = make()
    run(sync, snap(20, [(100, 1)], [(110, 1)]))
    _, needs = run(sync, snap(15, [(100, 7)], [(110, 1)]))
    assert needs == [] and sync.stats(INST).too_old == 1 and book(sync)[0] == [(100, 1)]


def test_the_buffer_is_bounded_and_evicts_the_oldest_diffs():
    sync = make(buffer_diffs=3)
    run(sync, *[diff(u, u, [(100, u)]) for u in range(1, 6)])
    s = sync.stats(INST)
    assert (s.buffered, s.buffer_high_water, s.buffer_dropped) == (5, 3, 2)
    _, needs = run(sync, snap(2, [(100, 1)], [(110, 1)]))  # diffs 1..2 are gone: too old
    assert needs == [INST] and sync.stats(INST).too_old == 1
    run(sync, snap(3, [(100, 1)], [(110, 1)]))
    assert book(sync)[0] == [(100, 5)] and sync.stats(INST).book_id == 5


def test_a_diff_larger_than_the_level_buffer_empties_the_buffer():
    sync = make(buffer_levels=4)
    run(sync, diff(1, 1, [(100, 1)]), diff(2, 2, [(100 + j, 1) for j in range(5)]))
    s = sync.stats(INST)
    assert s.buffer_dropped == 2
    _, needs = run(sync, snap(1, [(100, 1)], [(200, 1)]), diff(3, 3, [(99, 1)]))
    assert needs == [INST]  # nothing buffered: the live diff 3 after L = 1 is a gap
    run(sync, diff(4, 4, [(98, 1)]), snap(3, [(100, 1)], [(200, 1)]))
    assert book(sync)[0] == [(100, 1), (98, 1)]


def test_level_ring_wraps_keep_each_diff_contiguous():
    sync = make(buffer_diffs=64, buffer_levels=7)
    msgs = [diff(u, u, [(100 + u, 1), (50, u)], asks=[(300, u)]) for u in range(1, 9)]
    run(sync, *msgs)  # 3 levels each in a 7-level ring: wraps, evicting the oldest
    assert sync.stats(INST).buffer_dropped == 6
    _, needs = run(sync, snap(6, [(50, 1)], [(300, 1)]))
    assert needs == [INST]  # only diffs 7..8 are left: too old
    run(sync, snap(7, [(107, 1), (50, 7)], [(300, 7)]))
    bids, asks = book(sync)
    assert bids == [(108, 1), (107, 1), (50, 8)] and asks == [(300, 8)]


def test_due_for_refresh_follows_the_callers_clock():
    s = 1_000_000_000
    sync = make(max_books=4)
    run(sync, snap(10, [(100, 1)], [(110, 1)], inst=1), now_ns=0)
    run(sync, diff(11, 11, [(100, 2)], inst=1), now_ns=40 * s)
    run(sync, diff(5, 5, inst=2), now_ns=0)  # syncing, snapshot requested at t=0
    assert sync.due_for_refresh(20 * s) == []
    assert sync.due_for_refresh(31 * s) == [2]  # the request looks lost
    assert sync.due_for_refresh(60 * s) == [1, 2]  # snapshot 60 s old
    assert sync.due_for_refresh(50 * s, refresh_ns=100 * s, stale_ns=10 * s) == [1, 2]
    assert sync.due_for_refresh(45 * s, refresh_ns=100 * s, stale_ns=10 * s) == [2]


def test_reset_restarts_the_procedure():
    sync = make()
    run(sync, snap(10, [(100, 1)], [(110, 1)]), diff(11, 11, [(100, 2)]))
    sync.reset([INST])
    assert sync.state_of(INST) == "syncing" and book(sync) == ([], [])
    _, needs = run(sync, diff(50, 51, [(100, 3)]))
    assert needs == [INST]
    ev, _ = run(sync, snap(50, [(100, 1)], [(110, 1)]))
    assert book(sync)[0] == [(100, 3)] and ev.size == 2  # top changed: snapshot + bbo
    sync.resync_all()
    assert sync.needs_snapshot() == [] and sync.state_of(INST) == "syncing"


def test_bad_arguments_and_rows_are_refused_or_counted():
    books, table = OrderBooks(2, 10), BookTable(8, 5)
    with pytest.raises(ConfigError, match="unknown Binance market"):
        BinanceBookSync(books, table, "margin")
    with pytest.raises(ConfigError, match="k=6"):
        BinanceBookSync(books, table, k=6)
    with pytest.raises(ConfigError):
        BinanceBookSync(books, table, k=5, buffer_diffs=0)
    sync = BinanceBookSync(books, table, k=5)
    rows, arena = encode([snap(10, [(100, 1)], [(110, 1)])])
    with pytest.raises(ConfigError, match="DEPTH_UPDATE"):
        sync.apply(np.zeros(1, CANONICAL_EVENT), arena, 0)
    with pytest.raises(ConfigError, match="BOOK_LEVEL"):
        sync.apply(rows, np.zeros((1, 2), np.int64), 0)
    with pytest.raises(ConfigError, match="at least 2"):
        sync.apply(rows, arena, 0, out=np.zeros(1, CANONICAL_EVENT))
    bad = np.concatenate([rows, rows, rows])
    bad[0]["instrument"] = 2  # outside the books
    bad[1]["n_asks"] = 5      # levels outside the arena
    events, _ = sync.apply(bad, arena, 0)
    assert sync.rejected_rows == 2 and events.size == 2 and sync.state_of(INST) == "live"
    assert "spot" in repr(sync)


# --------------------------------------------------------------------------------------------
# random streams against a reference book

BID_PRICES = (1, 30)
ASK_PRICES = (31, 60)  # never crossed


def random_stream(rnd: random.Random, market: str, n: int):
    """Diffs over contiguous (spot) or chained (futures) ids and the reference state after
    each: ``diffs[k] = (U, u, pu, bids, asks)``, ``states[id] = {price: qty}``."""
    u = rnd.randint(10, 20)
    ref = {p: rnd.randint(1, 3) for p in rnd.sample(range(1, 61), 10)}
    states = {u: dict(ref)}
    ids = [u]
    diffs = []
    for _ in range(n):
        first = u + 1 if market == "spot" else u + rnd.randint(1, 3)
        final = first + rnd.randint(0, 2)
        levels = [(rnd.randint(1, 60), rnd.choice([0, 1, 2, 3])) for _ in range(rnd.randint(0, 4))]
        levels = sorted(dict(levels).items())
        for price, qty in levels:
            if qty:
                ref[price] = qty
            else:
                ref.pop(price, None)
        bids = [lv for lv in reversed(levels) if lv[0] <= BID_PRICES[1]]
        asks = [lv for lv in levels if lv[0] >= ASK_PRICES[0]]
        diffs.append((first, final, u, bids, asks))
        u = final
        states[u] = dict(ref)
        ids.append(u)
    return diffs, states, ids


def split(state: dict) -> tuple[list, list]:
    bids = sorted(((p, q) for p, q in state.items() if p <= BID_PRICES[1]), reverse=True)
    asks = sorted((p, q) for p, q in state.items() if p >= ASK_PRICES[0])
    return bids, asks


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), market=st.sampled_from(["spot", "usdm"]),
       drop=st.sampled_from([0.0, 0.1]))
def test_random_streams_keep_the_book_equal_to_the_reference_whenever_live(seed, market, drop):
    rnd = random.Random(seed)
    n = rnd.randint(1, 30)
    diffs, states, ids = random_stream(rnd, market, n)
    msgs, dropped = [], 0
    for k, (first, final, pu, bids, asks) in enumerate(diffs, start=1):
        if rnd.random() < 0.25:  # a snapshot somewhere around the stream position
            j = min(max(k + rnd.randint(-3, 3), 1 if market == "usdm" else 0), n)
            msgs.append(snap(ids[j], *split(states[ids[j]])))
        if rnd.random() < drop:
            dropped += 1
            continue
        msgs.append(diff(first, final, bids, asks, pu=pu))
    msgs.append(snap(ids[-1], *split(states[ids[-1]])))
    sync = make(market, depth=64)
    start = 0
    while start < len(msgs):
        stop = start + rnd.randint(1, 4)
        events, _ = run(sync, *msgs[start:stop])
        start = stop
        for ev in book_events(events):  # every published state is a reference state
            top = [lv.tolist() for lv in sync.table.read_event(ev)]
            bids, asks = split(states[int(ev["seq_provider"])])
            assert top == [bids[:5], asks[:5]]
        s = sync.stats(INST)
        if s.state == "live":
            assert book(sync) == split(states[s.book_id])
    s = sync.stats(INST)
    if not dropped:
        assert (s.gaps, s.resyncs, s.crossed) == (0, 0, 0)
        assert s.state == "live" and s.book_id == ids[-1]


# --------------------------------------------------------------------------------------------
# real recordings

DATA = Path(__file__).resolve().parents[2] / "data"
MARKET_DIRS = {"binance": "spot", "binance-futures": "usdm"}
EXPONENT = 8
#: Lines read per recording under NUMBA_DISABLE_JIT=1 (pure Python kernels are slow).
NO_JIT_LINES = 3000
BATCH_ROWS = 256


@dataclass
class Recording:
    """A recording as arrays: depth rows (diffs and REST snapshots) and bookTickers."""

    lines: int
    rows: np.ndarray      # DEPTH_UPDATE, receive order
    levels: np.ndarray    # BOOK_LEVEL arena
    tickers: np.ndarray   # int64 [n, 6]: instrument, u, bid px, bid qty, ask px, ask qty
    symbols: dict


def _kind(stream: str) -> str:
    if stream.startswith("rest:"):
        return "snapshot" if "/depth" in stream else ""
    channel = stream.split("@", 1)[1] if "@" in stream else ""
    return "diff" if channel.startswith("depth") else channel


class _Converter:
    """Test-local stand-in for the venue parser: JSON to DEPTH_UPDATE / BOOK_LEVEL arrays."""

    def __init__(self):
        self.symbols: dict[str, int] = {}
        self.heads: list[tuple] = []
        self.texts: list[str] = []
        self.tick_heads: list[tuple[int, int]] = []
        self.tick_texts: list[str] = []

    def add(self, msg: dict) -> None:
        stream = msg["stream"] or ""
        kind = _kind(stream)
        if kind not in ("snapshot", "diff", "bookTicker"):
            return
        raw = orjson.loads(msg["raw"])
        data = raw.get("data", raw)
        symbol = stream.split("symbol=")[1].split("&")[0] if kind == "snapshot" else data["s"]
        inst = self.symbols.setdefault(symbol.upper(), len(self.symbols) + 1)
        if kind == "bookTicker":
            self.tick_heads.append((inst, data["u"]))
            self.tick_texts += [data["b"], data["B"], data["a"], data["A"]]
            return
        if kind == "snapshot":
            bids, asks, first, final, prev = (data["bids"], data["asks"], data["lastUpdateId"],
                                              data["lastUpdateId"], -1)
        else:
            bids, asks, first, final, prev = data["b"], data["a"], data["U"], data["u"], data.get(
                "pu", -1)
        self.heads.append((inst, first, final, prev, kind == "snapshot", data.get("E", 0),
                           msg["recv_ns"] or 0, len(bids), len(asks)))
        for price, qty in bids + asks:
            self.texts += (price, qty)

    def arrays(self):
        h = np.array(self.heads, np.int64).reshape(-1, 9)
        rows = np.zeros(len(h), DEPTH_UPDATE)
        for col, name in enumerate(("instrument", "first_id", "final_id", "prev_final_id",
                                    "is_snapshot", "exchange_ns", "ingest_ns", "n_bids",
                                    "n_asks")):
            rows[name] = h[:, col]
        rows["exchange_ns"] *= 1_000_000
        n = h[:, 7] + h[:, 8]
        rows["level_off"] = np.cumsum(n) - n
        rows["venue"] = VENUE
        mantissas = to_mantissa_array(self.texts, EXPONENT)
        levels = np.zeros(len(self.texts) // 2, BOOK_LEVEL)
        levels["price"], levels["quantity"] = mantissas[0::2], mantissas[1::2]
        tickers = np.zeros((len(self.tick_heads), 6), np.int64)
        if self.tick_heads:
            tickers[:, :2] = self.tick_heads
            tickers[:, 2:] = to_mantissa_array(self.tick_texts, EXPONENT).reshape(-1, 4)
        return rows, levels, tickers


def read_recording(path: Path, max_lines: int | None) -> Recording:
    conv = _Converter()
    lines = 0
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for line in fh:
            if max_lines is not None and lines >= max_lines:
                break
            lines += 1
            conv.add(orjson.loads(line))
    rows, levels, tickers = conv.arrays()
    return Recording(lines, rows, levels, tickers, conv.symbols)


#: The next day's first lines: they continue the 0808 book and hold no snapshot of their own
#: (tests/replay replays the two days in sequence).
CONTINUATIONS = {"binance_spot_btcusdt_20240809_hftbacktest.first3000.jsonl.gz"}


def recordings() -> list:
    found = [pytest.param(path, market, id=path.name)
             for folder, market in MARKET_DIRS.items()
             for path in sorted((DATA / folder).glob("*.jsonl*"))
             if path.name not in CONTINUATIONS]
    return found or [pytest.param(None, None, marks=pytest.mark.skip(reason="no recordings"))]


def replay(rec: Recording, market: str):
    """Feed the rows in batches; return the sync and the top of book after each event."""
    books = OrderBooks(len(rec.symbols) + 1)
    table = BookTable()
    sync = BinanceBookSync(books, table, market)
    tops: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    for start in range(0, len(rec.rows), BATCH_ROWS):
        rows = rec.rows[start:start + BATCH_ROWS]
        events, _ = sync.apply(rows, rec.levels, int(rows["ingest_ns"][-1]))
        for ev in book_events(events):  # read every handle before the table wraps
            bids, asks = table.read_event(ev)
            tops[int(ev["instrument"]), int(ev["seq_provider"])] = (
                int(bids[0]["price"]), int(bids[0]["quantity"]), int(asks[0]["price"]),
                int(asks[0]["quantity"]))
    return sync, tops


def comparable_ids(rec: Recording) -> dict[int, set[int]]:
    """Per instrument, the final u of diffs that arrived after its first snapshot row and
    end at or after that snapshot (diffs applied live: their book state is published)."""
    out: dict[int, set[int]] = {}
    snapshot_id: dict[int, int] = {}
    for row in rec.rows:
        i = int(row["instrument"])
        if row["is_snapshot"]:
            snapshot_id.setdefault(i, int(row["final_id"]))
        elif i in snapshot_id and row["final_id"] >= snapshot_id[i]:
            out.setdefault(i, set()).add(int(row["final_id"]))
    return out


@pytest.mark.parametrize(("path", "market"), recordings())
def test_real_recordings_sync_without_resync_and_match_every_comparable_book_ticker(path,
                                                                                      market):
    max_lines = NO_JIT_LINES if numba_config.DISABLE_JIT else None
    rec = read_recording(path, max_lines)
    if not rec.rows["is_snapshot"].any():
        pytest.skip(f"{path.name}: no REST snapshot in the lines read")
    sync, tops = replay(rec, market)
    stats = sync.stats()
    for s in stats.values():
        assert (s.gaps, s.resyncs, s.crossed, s.too_old) == (0, 0, 0, 0), s
        assert s.state == "live", s
    ids = comparable_ids(rec)
    compared = 0
    for inst, u, *expected in rec.tickers.tolist():
        if u not in ids.get(inst, ()):
            continue  # not the end of an applied diff (e.g. strictly inside a diff's [U, u])
        assert tops.get((inst, u)) == tuple(expected), (path.name, inst, u)
        compared += 1
    assert compared > 0
    diffs = int((rec.rows["is_snapshot"] == 0).sum())
    applied = sum(s.applied for s in stats.values())
    print(f"\n{path.name}: lines {rec.lines}, diffs {diffs}, applied {applied}, "
          f"bookTickers {len(rec.tickers)}, compared {compared}, resyncs 0")
