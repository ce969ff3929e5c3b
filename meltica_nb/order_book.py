"""OrderBooks: the L2 books of one venue connection, one row per instrument id, in arrays.

Each book keeps up to ``depth`` levels per side: ``bid_px``/``bid_qty`` sorted by price
descending, ``ask_px``/``ask_qty`` ascending (best level at column 0), with ``bid_n`` and
``ask_n`` counting the levels in use. Prices and quantities are int64 mantissas at the
instrument's exponent (:mod:`meltica_nb.fixedpoint`). The arrays are what the kernels of
:mod:`meltica_nb.kernels.book_kernels` update; a venue's book procedure (for Binance,
:class:`meltica_nb.venues.binance.books.BinanceBookSync`) drives them, one kernel call per
batch of depth messages.

A full side keeps its best ``depth`` levels: a level worse than all of them is refused and an
insert above them drops the worst one, each counted in ``truncated``. Instrument ids are row
indices, so the books of two venues whose instrument ids overlap need two OrderBooks.

Readers in other threads take ``lock`` (as the venue's book sync does around each batch), so
``levels`` and ``best`` never see half of an update.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .kernels import book_kernels as bk
from .schema import BOOK_LEVEL

__all__ = ["OrderBooks", "OrderBooksStats"]

#: Levels per side kept by default (Binance spot snapshots go up to 5000).
DEFAULT_DEPTH = 5000


@dataclass(frozen=True)
class OrderBooksStats:
    """A snapshot of the books' occupancy."""

    max_books: int
    depth: int
    books_in_use: int      # books with at least one level
    levels: int            # levels held, both sides of every book
    max_side_levels: int   # fullest side of any book
    truncated: int         # levels dropped or refused to keep ``depth``


class OrderBooks:
    """``max_books`` L2 books of up to ``depth`` levels per side (row ``i`` = instrument id)."""

    def __init__(self, max_books: int, depth: int = DEFAULT_DEPTH):
        if max_books <= 0 or depth <= 0:
            raise ConfigError(f"OrderBooks needs max_books > 0 and depth > 0, got "
                              f"max_books={max_books}, depth={depth}")
        self.max_books = max_books
        self.depth = depth
        shape = (max_books, depth)
        self.bid_px = np.zeros(shape, np.int64)
        self.bid_qty = np.zeros(shape, np.int64)
        self.ask_px = np.zeros(shape, np.int64)
        self.ask_qty = np.zeros(shape, np.int64)
        self.bid_n = np.zeros(max_books, np.int64)
        self.ask_n = np.zeros(max_books, np.int64)
        self.truncated = np.zeros(max_books, np.int64)
        self.lock = threading.Lock()

    @property
    def arrays(self) -> tuple[tuple, tuple]:
        """``((bid_px, bid_qty, ask_px, ask_qty), (bid_n, ask_n, truncated))`` for kernels."""
        return ((self.bid_px, self.bid_qty, self.ask_px, self.ask_qty),
                (self.bid_n, self.ask_n, self.truncated))

    def _row(self, i: int) -> int:
        if not 0 <= i < self.max_books:
            raise ConfigError(f"book {i} out of range 0..{self.max_books - 1}")
        return int(i)

    def load(self, i: int, bids, asks) -> int:
        """Replace book ``i`` by BOOK_LEVEL ``bids`` and ``asks``; return truncations."""
        return self._apply(i, bids, asks, snapshot=True)

    def update(self, i: int, bids, asks) -> int:
        """Apply BOOK_LEVEL ``bids`` then ``asks`` (absolute quantities, 0 deletes)."""
        return self._apply(i, bids, asks, snapshot=False)

    def _apply(self, i: int, bids, asks, snapshot: bool) -> int:
        i = self._row(i)
        bids = np.asarray(bids, BOOK_LEVEL)
        asks = np.asarray(asks, BOOK_LEVEL)
        lv = np.concatenate([bids, asks]).view(np.int64).reshape(-1, 2)
        fn = bk.load_snapshot if snapshot else bk.apply_depth
        with self.lock:
            t = fn(self.bid_px, self.bid_qty, self.bid_n, self.ask_px, self.ask_qty, self.ask_n,
                   i, lv, 0, len(bids), len(asks))
            self.truncated[i] += t
        return int(t)

    def clear(self, i: int) -> None:
        """Empty book ``i``."""
        i = self._row(i)
        with self.lock:
            bk.clear_book(self.bid_n, self.ask_n, i)

    def levels(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of book ``i``'s levels as BOOK_LEVEL ``(bids, asks)``, best first."""
        i = self._row(i)
        with self.lock:
            nb, na = int(self.bid_n[i]), int(self.ask_n[i])
            bids = np.empty(nb, BOOK_LEVEL)
            asks = np.empty(na, BOOK_LEVEL)
            bids["price"], bids["quantity"] = self.bid_px[i, :nb], self.bid_qty[i, :nb]
            asks["price"], asks["quantity"] = self.ask_px[i, :na], self.ask_qty[i, :na]
        return bids, asks

    def best(self, i: int) -> tuple[int, int, int, int]:
        """``(bid_price, bid_qty, ask_price, ask_qty)`` of book ``i``; an empty side is 0, 0."""
        i = self._row(i)
        with self.lock:
            bp, bq, ap, aq = bk.best(self.bid_px, self.bid_qty, self.bid_n, self.ask_px,
                                     self.ask_qty, self.ask_n, i)
        return int(bp), int(bq), int(ap), int(aq)

    def is_crossed(self, i: int) -> bool:
        """True when book ``i``'s best bid is at or above its best ask."""
        i = self._row(i)
        with self.lock:
            return bool(bk.is_crossed(self.bid_px, self.bid_n, self.ask_px, self.ask_n, i))

    def stats(self) -> OrderBooksStats:
        """A frozen snapshot of the books' occupancy."""
        with self.lock:
            sizes = self.bid_n + self.ask_n
            return OrderBooksStats(
                self.max_books, self.depth, int(np.count_nonzero(sizes)), int(sizes.sum()),
                int(max(self.bid_n.max(), self.ask_n.max())), int(self.truncated.sum()))

    def __repr__(self) -> str:
        return f"OrderBooks(max_books={self.max_books}, depth={self.depth})"
