"""Kraken local order books: snapshot, updates in array order, depth truncation, checksum.

:class:`KrakenBooks` keeps the books of one Kraken connection in an
:class:`~meltica_nb.order_book.OrderBooks` and runs each batch of parsed book rows through one
kernel call (:func:`meltica_nb.kernels.kraken_book_kernels.apply_batch`), per Kraken's rules
(``reference/exchange-book-rules.md``): a snapshot replaces the book; an update's entries apply
in array order; after every message each side is cut to the subscribed depth; the message's
checksum must equal the CRC32 of the book's top 10 asks and bids as text. A mismatch drops the
book and is returned to the caller, who resubscribes for a fresh snapshot.

Every message applied and verified writes a BookSnapshot CanonicalEvent (top-K levels in a
:class:`~meltica_nb.book_table.BookTable` row, ``checksum`` = the verified CRC,
``seq_provider`` = the book's message count) and a BBO event when the best bid or ask changed.

The books hold ``2 * depth + 64`` levels per side: an update may insert above the depth before
the truncation, and levels beyond the depth are never needed again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meltica_nb.book_table import BookTable
from meltica_nb.errors import ConfigError
from meltica_nb.kernels import book_kernels as bk
from meltica_nb.kernels import kraken_book_kernels as kk
from meltica_nb.order_book import OrderBooks
from meltica_nb.schema import BOOK_LEVEL, CANONICAL_EVENT, DEPTH_UPDATE
from meltica_nb.venues.binance.books import STATE_NAMES
from meltica_nb.venues.kraken.symbols import KrakenPair

__all__ = ["InstrumentBookStats", "KrakenBooks"]

#: A BOOK_LEVEL record seen as its two int64 (price, quantity): one view, no reshape.
_LEVEL_ROW = np.dtype((np.int64, 2))


@dataclass(frozen=True)
class InstrumentBookStats:
    """One instrument's book state and counters."""

    instrument: int
    state: str            # "syncing" (no snapshot yet), "live", "resync" (after a mismatch)
    messages: int         # book messages applied and verified
    bid_levels: int
    ask_levels: int
    snapshots: int
    applied: int          # updates applied
    checksum_ok: int
    checksum_fail: int
    unchecked: int        # messages without a checksum (v1 snapshots)
    skipped: int          # updates that arrived while waiting for a snapshot
    resyncs: int          # books dropped after a checksum mismatch
    truncated: int        # levels cut to keep the subscribed depth
    book_events: int
    bbo_events: int


class KrakenBooks:
    """The books of one Kraken connection, ``depth`` levels per side after every message.

    ``max_books``: instrument ids are row indices, so 1 + the largest id. ``table``: where
    BookSnapshot levels go; ``k`` levels per side (at most ``table.k``).
    """

    def __init__(self, max_books: int, depth: int, table: BookTable, k: int = 20):
        if depth <= 0:
            raise ConfigError(f"depth must be positive, was {depth}")
        if not 0 < k <= table.k:
            raise ConfigError(f"k={k} must be in 1..{table.k} (the book table's k)")
        self.books = OrderBooks(max_books, 2 * depth + 64)
        self.table = table
        self.depth = depth
        self.k = k
        self.state = np.zeros((max_books, bk.N_STATE), np.int64)
        self.counters = np.zeros((max_books, bk.N_COUNTERS), np.int64)
        self.kraken = np.zeros((max_books, kk.N_KRAKEN), np.int64)
        self.kraken[:, kk.K_DEPTH] = depth
        self.kraken[:, kk.K_ASK_CRC] = self.kraken[:, kk.K_BOOK_CRC] = -1
        self.memo = np.zeros((max_books, kk.MEMO_SLOTS, 3), np.int64)
        self.rejected_rows = 0
        self._requested = np.zeros(max_books, np.uint8)
        self._blank = np.zeros(1, CANONICAL_EVENT)
        self._out = np.zeros(256, CANONICAL_EVENT)
        self._scratch = np.zeros(kk.SCRATCH_BYTES, np.uint8)
        self._work = bk.level_work(4096)
        (book, counts), (tb_lv, tb_meta) = self.books.arrays, table.arrays
        self._arrays = ((self.state, self.counters), book, counts, self.kraken, self.memo, tb_lv,
                        tb_meta)

    def add_pair(self, pair: KrakenPair) -> None:
        """Print ``pair``'s checksum text with its decimals (its shifts from the exponents)."""
        if not 0 < pair.instrument < self.books.max_books:
            raise ConfigError(f"instrument {pair.instrument} is outside the books")
        row = self.kraken[pair.instrument]
        row[kk.K_PX_SHIFT], row[kk.K_QTY_SHIFT] = pair.price_shift, pair.qty_shift
        row[kk.K_ASK_CRC] = row[kk.K_BOOK_CRC] = -1  # texts printed with the old decimals
        self.memo[pair.instrument] = 0

    def apply(self, depth_rows: np.ndarray, levels: np.ndarray, checksums: np.ndarray
              ) -> tuple[np.ndarray, list[int]]:
        """Run parsed book rows; return ``(events, instruments whose checksum failed)``.

        ``events`` is a view of an internal buffer, valid until the next call.
        """
        if depth_rows.dtype != DEPTH_UPDATE or levels.dtype != BOOK_LEVEL:
            raise ConfigError("apply takes DEPTH_UPDATE rows and BOOK_LEVEL levels")
        rows = np.ascontiguousarray(depth_rows)
        lv = np.ascontiguousarray(levels).view(_LEVEL_ROW)
        sums = np.ascontiguousarray(checksums, np.int64)
        if sums.shape[0] != rows.shape[0]:
            raise ConfigError("one checksum per depth row (-1: none)")
        need = 2 * rows.shape[0]
        if self._out.shape[0] < need:
            self._out = np.zeros(max(need, 2 * self._out.shape[0]), CANONICAL_EVENT)
        if self._work.shape[1] < lv.shape[0]:
            self._work = bk.level_work(max(lv.shape[0], 2 * self._work.shape[1]))
        with self.books.lock, self.table.lock:
            n, rejected, flagged = kk.apply_batch(
                self._out, self._requested, self._blank, *self._arrays, rows, lv, sums, self.k,
                self._scratch, self._work)
            self.rejected_rows += rejected
            if not flagged:
                return self._out[:n], []
            failed = np.flatnonzero(self._requested)
            self._requested[failed] = 0
        return self._out[:n], failed.tolist()

    def checksum(self, instrument: int) -> int:
        """The CRC32 of book ``instrument`` as it stands (what Kraken would send for it)."""
        with self.books.lock:
            (book, counts) = self.books.arrays
            p = self.kraken[instrument]
            return int(kk.book_checksum(book, counts, self.memo[instrument], instrument,
                                        p[kk.K_PX_SHIFT], p[kk.K_QTY_SHIFT], self._scratch))

    def reset(self) -> None:
        """Every book waits for a snapshot (a reconnect: the resubscription brings them)."""
        with self.books.lock:
            kk.drop_all((self.state, self.counters), self.books.arrays[1])

    def stats(self, instrument: int | None = None):
        """Stats of one instrument, or ``{instrument: InstrumentBookStats}`` of every seen one."""
        if instrument is not None:
            return self._stats_of(int(instrument))
        return {int(i): self._stats_of(int(i)) for i in np.flatnonzero(self.state[:, bk.S_SEEN])}

    def _stats_of(self, i: int) -> InstrumentBookStats:
        c, k = self.counters[i], self.kraken[i]
        return InstrumentBookStats(
            i, STATE_NAMES[int(self.state[i, bk.S_STATE])], int(self.state[i, bk.S_BOOK_ID]),
            int(self.books.bid_n[i]), int(self.books.ask_n[i]), int(c[bk.C_SNAPSHOTS]),
            int(c[bk.C_APPLIED]), int(k[kk.K_CHECKSUM_OK]), int(k[kk.K_CHECKSUM_FAIL]),
            int(k[kk.K_UNCHECKED]), int(k[kk.K_SKIPPED]), int(c[bk.C_RESYNCS]),
            int(c[bk.C_TRUNCATED]), int(c[bk.C_BOOK_EVENTS]), int(c[bk.C_BBO_EVENTS]))

    def __repr__(self) -> str:
        return f"KrakenBooks(books={self.books.max_books}, depth={self.depth})"
