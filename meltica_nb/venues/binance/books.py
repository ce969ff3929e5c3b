"""Binance local order books: diff-depth stream + REST snapshot, per the venue's procedure.

:class:`BinanceBookSync` keeps the books of one Binance connection (spot, USD-M or COIN-M
futures) in an :class:`~meltica_nb.order_book.OrderBooks`, following "How to manage a local
order book correctly" (``reference/exchange-book-rules.md``) exactly, per instrument:

1. Diffs arriving without a valid book are buffered (a bounded ring per instrument); the first
   one raises the instrument's "needs snapshot" flag: the caller (the venue connection) fetches
   ``GET /api/v3/depth`` (spot) or ``/fapi/v1/depth`` (futures) and feeds the answer back as a
   DEPTH_UPDATE row with ``is_snapshot = 1`` and ``final_id = lastUpdateId``.
2. A snapshot whose ``lastUpdateId`` is below the ``U`` of the first buffered diff is too old:
   the flag is raised again.
3. Buffered diffs the snapshot contains are thrown away: spot ``u <= lastUpdateId``, futures
   ``u < lastUpdateId``.
4. The snapshot becomes the book (book id = ``lastUpdateId``) and the remaining diffs are
   applied, buffered then live. The first must satisfy spot ``U <= lastUpdateId + 1 <= u``
   (not ``U <= lastUpdateId <= u``: real starts have ``U == lastUpdateId + 1``), futures
   ``U <= lastUpdateId <= u``. After it, spot ignores ``u < id`` (stale) and treats
   ``U > id + 1`` as a gap; futures require ``pu == id``.
5. A gap, or a book crossed after a diff, drops the book and raises the flag; the diffs from the
   gap on stay buffered, so the procedure restarts at step 1 without losing any.

While live, the buffer keeps the latest applied diffs, so a refresh snapshot older than the book
(the usual case: the REST answer lags the stream) is loaded and brought forward exactly; one
older than that history is ignored (counted ``too_old``). Refreshes and staleness follow the
caller's clock: :meth:`BinanceBookSync.due_for_refresh`.

After every applied diff one BookSnapshot CanonicalEvent is written (top-K levels in a
:class:`~meltica_nb.book_table.BookTable` row: ``book_row`` = row, ``book_slot`` = generation,
``seq_provider`` = ``u``, ``seq_first`` = 0: book events are already in sequence, so the
dispatcher orders them as monotonic per stream), then a BBO event (same ``seq_provider``) when
the best bid or ask price or quantity changed. Loading a snapshot emits the same pair once, at
the book's id after the buffered diffs. A batch of rows is one kernel call
(:func:`meltica_nb.kernels.book_kernels.sync_batch`) writing at most two events per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meltica_nb.book_table import BookTable
from meltica_nb.errors import ConfigError
from meltica_nb.kernels import book_kernels as bk
from meltica_nb.order_book import OrderBooks
from meltica_nb.schema import BOOK_LEVEL, CANONICAL_EVENT, DEPTH_UPDATE

__all__ = ["BinanceBookSync", "InstrumentBookStats", "MARKETS", "STATE_NAMES"]

#: Continuity rule per Binance market.
MARKETS = {"spot": bk.RULE_RANGE, "usdm": bk.RULE_PREV, "coinm": bk.RULE_PREV}

#: Instrument state names, as stats() reports them.
STATE_NAMES = {bk.SYNCING: "syncing", bk.LIVE: "live", bk.RESYNC: "resync"}

_SECOND = 1_000_000_000


@dataclass(frozen=True)
class InstrumentBookStats:
    """One instrument's book sync state and counters."""

    instrument: int
    state: str                # "syncing", "live" or "resync"
    book_id: int              # update id of the book (lastUpdateId, then the last u)
    needs_snapshot: bool
    bid_levels: int
    ask_levels: int
    applied: int              # diffs applied for the first time
    replayed: int             # history diffs re-applied over refresh snapshots
    stale: int                # diffs ignored as stale
    discarded: int            # buffered diffs a snapshot already contained
    gaps: int
    resyncs: int              # books dropped for a new snapshot (gap or crossed)
    crossed: int
    truncated: int            # levels dropped to keep the book depth
    snapshots: int            # snapshots loaded
    too_old: int              # snapshots refused as older than the buffered diffs
    buffered: int             # diffs buffered while waiting for a snapshot
    buffer_high_water: int
    buffer_dropped: int       # waiting diffs evicted from a full buffer
    book_events: int
    bbo_events: int
    last_snapshot_ns: int
    last_update_ns: int


class BinanceBookSync:
    """Binance diff-depth book procedure over ``books``, publishing into ``table``.

    Parameters
    ----------
    books : the connection's OrderBooks (row = instrument id).
    table : the BookTable BookSnapshot events point into (``k <= table.k``).
    market : "spot" (``U``/``u`` ranges) or "usdm" / "coinm" (``pu`` chain).
    k : levels per side published in each BookSnapshot.
    buffer_diffs, buffer_levels : per-instrument buffer bounds (diffs, and their levels);
        when full the oldest diff is evicted, which can only make a snapshot "too old".
    """

    def __init__(self, books: OrderBooks, table: BookTable, market: str = "spot", k: int = 20,
                 buffer_diffs: int = 256, buffer_levels: int = 16384):
        if market not in MARKETS:
            raise ConfigError(f"unknown Binance market {market!r}: expected one of "
                              f"{sorted(MARKETS)}")
        if not 0 < k <= table.k:
            raise ConfigError(f"k={k} must be in 1..{table.k} (the book table's k)")
        if buffer_diffs <= 0 or buffer_levels <= 0:
            raise ConfigError("buffer_diffs and buffer_levels must be positive")
        self.books = books
        self.table = table
        self.market = market
        self.rule = MARKETS[market]
        self.k = k
        n = books.max_books
        self.state = np.zeros((n, bk.N_STATE), np.int64)
        self.counters = np.zeros((n, bk.N_COUNTERS), np.int64)
        self.ring_hdr = np.zeros((n, buffer_diffs, bk.N_HDR), np.int64)
        self.ring_levels = np.zeros((n, buffer_levels, 2), np.int64)
        self.rejected_rows = 0
        self._requested = np.zeros(n, np.uint8)
        self._blank = np.zeros(1, CANONICAL_EVENT)
        self._out = np.zeros(256, CANONICAL_EVENT)
        self._work = bk.level_work(256)  # grown by apply() when a row needs more
        self._arrays = ((self.state, self.counters), (self.ring_hdr, self.ring_levels),
                        *books.arrays, *table.arrays)

    def apply(self, depth_rows: np.ndarray, levels: np.ndarray, now_ns: int,
              out: np.ndarray | None = None) -> tuple[np.ndarray, list[int]]:
        """Run a batch of DEPTH_UPDATE rows (levels in the BOOK_LEVEL arena ``levels``).

        Returns ``(events, needs_snapshot)``: a view of the BookSnapshot/BBO CanonicalEvents
        written (into ``out`` if given, which needs ``2 * len(depth_rows)`` records, else into
        an internal buffer valid until the next call) and the instruments for which a snapshot
        must be fetched now. Rows naming an instrument outside the books or levels outside
        ``levels`` are skipped and counted in ``rejected_rows``. Each row writes at most one
        book-table row: keep batches below ``table.rows`` so every handle is still readable
        when the batch returns.
        """
        rows, lv = self._check(depth_rows, levels)
        out = self._out_for(len(rows), out)
        with self.books.lock, self.table.lock:
            n, rejected, need = self._sync(out, rows, lv, now_ns)
            if need:  # a row wider than any before: grow the work, run the batch now
                self._work = bk.level_work(2 * need)
                n, rejected, _ = self._sync(out, rows, lv, now_ns)
            self.rejected_rows += rejected
            if not bk.flagged(self._requested):  # usually none: no NumPy call
                return out[:n], []
            needs = np.flatnonzero(self._requested)
            self._requested[needs] = 0
        return out[:n], needs.tolist()

    def _sync(self, out, rows, lv, now_ns) -> tuple[int, int, int]:
        """One sync_batch call: (events written, rows rejected, level work needed)."""
        return bk.sync_batch(out, self._requested, self._blank, self._work, *self._arrays, rows,
                             lv, np.int64(now_ns), self.rule, self.k)

    @staticmethod
    def _check(depth_rows, levels) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(depth_rows, np.ndarray) or depth_rows.dtype != DEPTH_UPDATE:
            raise ConfigError("depth_rows must be a DEPTH_UPDATE array")
        if not isinstance(levels, np.ndarray) or levels.dtype != BOOK_LEVEL:
            raise ConfigError("levels must be a BOOK_LEVEL array")
        if not (depth_rows.flags.c_contiguous and levels.flags.c_contiguous):
            depth_rows = np.ascontiguousarray(depth_rows)
            levels = np.ascontiguousarray(levels)
        return depth_rows.reshape(-1), levels.reshape(-1).view(np.int64).reshape(-1, 2)

    def _out_for(self, n_rows: int, out: np.ndarray | None) -> np.ndarray:
        need = 2 * n_rows
        if out is not None:
            if out.dtype != CANONICAL_EVENT or out.ndim != 1 or len(out) < need:
                raise ConfigError(f"out must be a 1-d CANONICAL_EVENT array of at least {need} "
                                  f"records (2 per depth row)")
            return out
        if len(self._out) < need:
            self._out = np.zeros(max(need, 2 * len(self._out)), CANONICAL_EVENT)
        return self._out

    def needs_snapshot(self) -> list[int]:
        """Instruments waiting for a snapshot (requested and not yet loaded)."""
        return np.flatnonzero(self.state[:, bk.S_NEEDS_SNAPSHOT]).tolist()

    def due_for_refresh(self, now_ns: int, refresh_ns: int = 60 * _SECOND,
                        stale_ns: int = 30 * _SECOND) -> list[int]:
        """Instruments to fetch a snapshot for now, by the caller's clock.

        Live books whose last snapshot is ``refresh_ns`` old or that have not changed (no diff,
        no snapshot) for ``stale_ns``, and instruments whose snapshot request is ``stale_ns``
        old without an answer (a lost REST call).
        """
        st = self.state
        live = st[:, bk.S_STATE] == bk.LIVE
        last = np.maximum(st[:, bk.S_UPDATE_NS], st[:, bk.S_SNAPSHOT_NS])
        due = live & ((now_ns - st[:, bk.S_SNAPSHOT_NS] >= refresh_ns)
                      | (now_ns - last >= stale_ns))
        lost = ~live & (st[:, bk.S_NEEDS_SNAPSHOT] == 1) & (
            now_ns - st[:, bk.S_REQUESTED_NS] >= stale_ns)
        return np.flatnonzero((due | lost) & (st[:, bk.S_SEEN] == 1)).tolist()

    def reset(self, instruments=None) -> None:
        """Forget books and buffers (a reconnect restarts the stream): back to step 1.

        ``instruments``: ids to reset, all if None. Counters are kept.
        """
        ids = np.arange(self.books.max_books) if instruments is None else np.asarray(
            instruments, np.int64)
        with self.books.lock:
            st = self.state
            st[ids, bk.S_STATE] = bk.SYNCING
            st[ids, bk.S_NEEDS_SNAPSHOT] = 0
            st[ids, bk.S_FIRST_PENDING] = 0
            st[ids, bk.S_RING_TAIL] = st[ids, bk.S_RING_HEAD]
            st[ids, bk.S_BBO_BID_PX:bk.S_BBO_ASK_QTY + 1] = 0
            self.books.bid_n[ids] = 0
            self.books.ask_n[ids] = 0

    def resync_all(self) -> None:
        """:meth:`reset` every instrument: the connection's ``on_reconnect`` callback (a new
        websocket stream has a gap behind it)."""
        self.reset()

    def state_of(self, instrument: int) -> str:
        """``"syncing"``, ``"live"`` or ``"resync"``."""
        return STATE_NAMES[int(self.state[instrument, bk.S_STATE])]

    def stats(self, instrument: int | None = None):
        """Stats of one instrument, or ``{instrument: InstrumentBookStats}`` of every seen one."""
        if instrument is not None:
            return self._stats_of(int(instrument))
        seen = np.flatnonzero(self.state[:, bk.S_SEEN])
        return {int(i): self._stats_of(int(i)) for i in seen}

    def _stats_of(self, i: int) -> InstrumentBookStats:
        st = self.state[i]
        c = [int(v) for v in self.counters[i]]
        return InstrumentBookStats(
            i, STATE_NAMES[int(st[bk.S_STATE])], int(st[bk.S_BOOK_ID]),
            bool(st[bk.S_NEEDS_SNAPSHOT]), int(self.books.bid_n[i]), int(self.books.ask_n[i]),
            c[bk.C_APPLIED], c[bk.C_REPLAYED], c[bk.C_STALE], c[bk.C_DISCARDED], c[bk.C_GAPS],
            c[bk.C_RESYNCS], c[bk.C_CROSSED], c[bk.C_TRUNCATED], c[bk.C_SNAPSHOTS],
            c[bk.C_TOO_OLD], c[bk.C_BUFFERED], c[bk.C_BUFFER_HIGH_WATER],
            c[bk.C_BUFFER_DROPPED], c[bk.C_BOOK_EVENTS], c[bk.C_BBO_EVENTS],
            int(st[bk.S_SNAPSHOT_NS]), int(st[bk.S_UPDATE_NS]))

    def __repr__(self) -> str:
        return f"BinanceBookSync(market={self.market!r}, books={self.books.max_books})"
