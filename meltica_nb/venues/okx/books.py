"""OKX local order books: snapshot then updates, seqId chains, CRC32 checksums over the text.

:class:`OkxBooks` keeps the ``books`` channel's books of one OKX connection, one row per
instrument id, in arrays the kernels of :mod:`meltica_nb.kernels.okx_book_kernels` update:
per level the price and size mantissas and the number of decimals their text had, so the
checksum string (``bid1px:bid1sz:ask1px:ask1sz:...``, top 25) is rebuilt exactly as received.
:meth:`OkxBooks.apply` runs a batch of parsed DEPTH_UPDATE rows in one kernel call and returns
the BookSnapshot/BBO events it wrote and the instruments whose channel must be resubscribed
(sequence gap or checksum mismatch): the feed resubscribes, and the fresh snapshot restarts the
book. The procedure is in the kernel module's docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meltica_nb.book_table import BookTable
from meltica_nb.errors import ConfigError
from meltica_nb.kernels import okx_book_kernels as ok
from meltica_nb.schema import BOOK_LEVEL, CANONICAL_EVENT, DEPTH_UPDATE

__all__ = ["DEFAULT_DEPTH", "InstrumentBookStats", "OkxBooks"]

#: Levels kept per side: OKX's ``books`` channel holds 400 and manages the window itself, but
#: an update lists its inserts and deletes in price order, so a side passes 400 for a moment.
DEFAULT_DEPTH = 1024

_STATES = {ok.WAITING: "waiting", ok.LIVE: "live"}
#: A BOOK_LEVEL as two int64 words (the kernels' ``[m, 2]`` levels; frombuffer is the cheapest
#: way to that view of a structured array).
_PAIR = np.dtype((np.int64, (2,)))


@dataclass(frozen=True)
class InstrumentBookStats:
    """One instrument's book state and counters."""

    instrument: int
    state: str              # "waiting" (for a snapshot) or "live"
    seq_id: int             # last OKX seqId, -1 when none
    checksum: int           # our checksum after the last message (0: none sent to check)
    bid_levels: int
    ask_levels: int
    applied: int            # updates applied
    snapshots: int
    checksum_ok: int
    checksum_fail: int
    checksum_absent: int    # messages whose checksum was 0 (not provided)
    gaps: int
    duplicates: int
    ignored: int            # updates while waiting for a snapshot
    resyncs: int            # books dropped for a resubscribe
    truncated: int
    book_events: int
    bbo_events: int


class OkxBooks:
    """The OKX books of one connection, publishing top-``k`` rows into ``table``.

    Parameters
    ----------
    max_books : rows (instrument ids ``1 .. max_books - 1``).
    table : the BookTable BookSnapshot events point into.
    price_exp, qty_exp : int arrays indexed by instrument id (the registry's exponents).
    depth : levels kept per side.
    k : levels per side published in each BookSnapshot (``<= table.k``).
    """

    def __init__(self, max_books: int, table: BookTable, price_exp, qty_exp, *,
                 depth: int = DEFAULT_DEPTH, k: int = 20):
        if max_books <= 1 or depth <= 0:
            raise ConfigError(f"OkxBooks needs max_books > 1 and depth > 0, got {max_books}, "
                              f"{depth}")
        if not 0 < k <= table.k:
            raise ConfigError(f"k={k} must be in 1..{table.k} (the book table's k)")
        self.exps = np.zeros((2, max_books), np.int64)  # price, quantity
        for out, given in zip(self.exps, (price_exp, qty_exp), strict=True):
            given = np.asarray(given, np.int64)[:max_books]
            out[: given.shape[0]] = given
        self.max_books, self.depth, self.table, self.k = max_books, depth, table, k
        # bids, asks: rows of (price, size, txt) levels twice the depth wide, and each side's
        # level count and best level's position (see okx_book_kernels)
        self.book = np.zeros((2, max_books, ok.LEVEL * 2 * depth), np.int64)
        self.extent = np.zeros((2, 2, max_books), np.int64)
        self.extent[:, ok.LO] = depth // 2
        self._top = np.zeros((4, max_books, k), np.int64)  # best levels for the emitter
        self._top_n = np.zeros((2, max_books), np.int64)
        self.state = np.zeros((max_books, ok.N_STATE), np.int64)
        self.state[:, ok.S_SEQ] = -1
        self.counters = np.zeros((max_books, ok.N_COUNTERS), np.int64)
        self.rejected_rows = 0
        self._resync = np.zeros(max_books, np.uint8)
        self._text_buf = np.zeros(ok.CHECKSUM_BUFFER, np.uint8)
        self._plan = np.zeros((4096, 3), np.int64)
        self._blank = np.zeros(1, CANONICAL_EVENT)
        self._out = np.zeros(256, CANONICAL_EVENT)
        (bids, asks), meta = table.arrays
        self._table_arrays = (bids, asks, *meta)

    def apply(self, rows: np.ndarray, levels: np.ndarray, texts: np.ndarray,
              checksums: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Run DEPTH_UPDATE ``rows`` (BOOK_LEVEL ``levels`` with their ``texts``, one venue
        ``checksums`` entry per row, 0 = none) through the books.

        Returns ``(events, resubscribe)``: a view of the BookSnapshot/BBO events written (valid
        until the next call) and the instruments whose book was dropped. Keep batches below
        ``table.rows`` rows so every handle is still readable when the batch returns.
        """
        if rows.dtype != DEPTH_UPDATE or levels.dtype != BOOK_LEVEL:
            raise ConfigError("rows must be DEPTH_UPDATE and levels BOOK_LEVEL arrays")
        lv = np.frombuffer(np.ascontiguousarray(levels), _PAIR)  # [m, 2] int64, no copy
        if self._out.shape[0] < 2 * rows.shape[0]:
            self._out = np.zeros(max(2 * rows.shape[0], 2 * self._out.shape[0]), CANONICAL_EVENT)
        if self._plan.shape[0] < lv.shape[0]:  # the merge plan: one row per level
            self._plan = np.zeros((2 * lv.shape[0], 3), np.int64)
        with self.table.lock:
            n, rejected, flagged = ok.apply_batch(
                self._out, self._resync, self._blank, self._text_buf, self._plan, self._top,
                self._top_n, self.state, self.counters, self.book, self.extent, self.exps,
                *self._table_arrays,
                np.ascontiguousarray(rows), lv, np.ascontiguousarray(texts, np.int64),
                np.ascontiguousarray(checksums, np.int64), self.k)
        self.rejected_rows += rejected
        if not flagged:
            return self._out[:n], []
        dropped = np.flatnonzero(self._resync)
        self._resync[dropped] = 0
        return self._out[:n], dropped.tolist()

    def reset(self) -> None:
        """Forget every book (a new connection starts with snapshots); counters are kept."""
        self.state[:, ok.S_STATE] = ok.WAITING
        self.state[:, ok.S_SEQ] = -1
        self.state[:, ok.S_BBO_BID_PX:ok.S_BBO_ASK_QTY + 1] = 0
        self.extent[:, ok.N] = 0

    def levels(self, instrument: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of a book's levels as BOOK_LEVEL ``(bids, asks)``, best first."""
        out = []
        for words in self._sides(int(instrument)):
            side = np.zeros(words.shape[0], BOOK_LEVEL)
            side["price"], side["quantity"] = words[:, 0], words[:, 1]
            out.append(side)
        return out[0], out[1]

    def best(self, instrument: int) -> tuple[int, int, int, int]:
        """``(bid_price, bid_qty, ask_price, ask_qty)`` of a book; an empty side reads 0, 0."""
        bid, ask = (words[0, :2].tolist() if words.shape[0] else [0, 0]
                    for words in self._sides(int(instrument)))
        return bid[0], bid[1], ask[0], ask[1]

    def _sides(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Views of book ``i``'s bid and ask levels as ``[n, 3]`` (price, size, txt), best
        first."""
        views = []
        for s in (0, 1):
            n, lo = (int(v) for v in self.extent[s, :, i])
            views.append(self.book[s, i, ok.LEVEL * lo: ok.LEVEL * (lo + n)].reshape(n, ok.LEVEL))
        return views[0], views[1]

    def checksum_text(self, instrument: int) -> str:
        """The checksum string of a book, as rebuilt from the received text (for tests)."""
        i = int(instrument)
        n = ok.checksum_text(self._text_buf, self.book, self.extent, i, self.exps[0][i],
                             self.exps[1][i])
        return self._text_buf[:n].tobytes().decode("ascii")

    def is_live(self, instrument: int) -> bool:
        return int(self.state[int(instrument), ok.S_STATE]) == ok.LIVE

    def stats(self, instrument: int | None = None):
        """Stats of one instrument, or ``{instrument: InstrumentBookStats}`` of every seen one."""
        if instrument is not None:
            return self._stats_of(int(instrument))
        return {int(i): self._stats_of(int(i)) for i in np.flatnonzero(self.state[:, ok.S_SEEN])}

    def _stats_of(self, i: int) -> InstrumentBookStats:
        st = self.state[i]
        c = [int(v) for v in self.counters[i]]
        return InstrumentBookStats(
            i, _STATES[int(st[ok.S_STATE])], int(st[ok.S_SEQ]), int(st[ok.S_CHECKSUM]),
            int(self.extent[0, ok.N, i]), int(self.extent[1, ok.N, i]), c[ok.C_APPLIED],
            c[ok.C_SNAPSHOTS],
            c[ok.C_CHECKSUM_OK], c[ok.C_CHECKSUM_FAIL], c[ok.C_CHECKSUM_ABSENT], c[ok.C_GAPS],
            c[ok.C_DUPLICATES], c[ok.C_IGNORED], c[ok.C_RESYNCS], c[ok.C_TRUNCATED],
            c[ok.C_BOOK_EVENTS], c[ok.C_BBO_EVENTS])

    def __repr__(self) -> str:
        return f"OkxBooks(max_books={self.max_books}, depth={self.depth}, k={self.k})"
