"""BookTable: the side table BookSnapshot events point into (top-K levels, never inlined).

A BookSnapshot CanonicalEvent stays 128 bytes however deep the book: its levels sit in a row of
this table, a ring of ``rows`` rows of up to ``k`` bids and ``k`` asks (BOOK_LEVEL, best
first). The event carries the handle: ``book_row`` = the row, ``book_slot`` = the row's
generation when it was written, and ``n_bids``/``n_asks``.

Writers (a venue's book sync, inside its batch kernel) take rows round the ring; each write's
generation is the table's write count after it, so it is unique and a handle is stale exactly
when its row was written again. :meth:`BookTable.read` copies the levels and raises
:class:`meltica_nb.errors.StaleHandle` for a stale handle. A consumer that reads within
``rows`` writes of the event never sees one; size the table from the write rate times the
longest consumer delay (the default 4096 rows of 20 levels cost 2.6 MB).

``bids``/``asks`` are BOOK_LEVEL ``[rows, k]`` arrays; ``bids_raw``/``asks_raw`` are the same
memory as int64 ``[rows, k, 2]`` for kernels, with ``n_bids``, ``n_asks``, ``generation`` and
``head`` (int64[1], the write count). Writes and reads hold ``lock``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, StaleHandle
from .kernels import book_kernels as bk
from .schema import BOOK_LEVEL

__all__ = ["BookTable", "BookTableStats"]


@dataclass(frozen=True)
class BookTableStats:
    """A snapshot of one book table's use."""

    rows: int
    k: int
    written: int        # rows written since creation (the current generation)
    reads: int
    stale_reads: int    # reads refused with StaleHandle


class BookTable:
    """A ring of ``rows`` top-``k`` book rows with per-row generations."""

    def __init__(self, rows: int = 4096, k: int = 20):
        if rows <= 0 or k <= 0:
            raise ConfigError(f"BookTable needs rows > 0 and k > 0, got rows={rows}, k={k}")
        self.rows = rows
        self.k = k
        self.bids = np.zeros((rows, k), BOOK_LEVEL)
        self.asks = np.zeros((rows, k), BOOK_LEVEL)
        self.bids_raw = self.bids.view(np.int64).reshape(rows, k, 2)
        self.asks_raw = self.asks.view(np.int64).reshape(rows, k, 2)
        self.n_bids = np.zeros(rows, np.int64)
        self.n_asks = np.zeros(rows, np.int64)
        self.generation = np.zeros(rows, np.int64)
        self.head = np.zeros(1, np.int64)
        self.lock = threading.Lock()
        self.reads = 0
        self.stale_reads = 0

    @property
    def arrays(self) -> tuple[tuple, tuple]:
        """``((bids_raw, asks_raw), (n_bids, n_asks, generation, head))`` for kernels."""
        return ((self.bids_raw, self.asks_raw),
                (self.n_bids, self.n_asks, self.generation, self.head))

    def write(self, bids, asks) -> tuple[int, int]:
        """Write BOOK_LEVEL ``bids`` and ``asks`` (best first, at most ``k`` each kept) into
        the next row; return the handle ``(row, generation)``."""
        bids = np.ascontiguousarray(bids, BOOK_LEVEL)
        asks = np.ascontiguousarray(asks, BOOK_LEVEL)
        b = bids.view(np.int64).reshape(-1, 2)
        a = asks.view(np.int64).reshape(-1, 2)
        with self.lock:
            row, gen = bk.table_write(self.bids_raw, self.asks_raw, self.n_bids, self.n_asks,
                                      self.generation, self.head, b, a, len(bids), len(asks))
        return int(row), int(gen)

    def is_current(self, row: int, generation: int) -> bool:
        """True while ``row`` still holds the write of ``generation``."""
        return 0 <= row < self.rows and generation > 0 and int(self.generation[row]) == generation

    def read(self, row: int, generation: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies ``(bids, asks)`` of the handle's row; StaleHandle if it was overwritten."""
        with self.lock:
            self.reads += 1
            if not self.is_current(row, generation):
                self.stale_reads += 1
                now = int(self.generation[row]) if 0 <= row < self.rows else None
                raise StaleHandle(
                    f"book table row {row}: handle generation {generation} was overwritten "
                    f"(row generation now {now}, {self.rows} rows); read book events sooner "
                    f"or give the table more rows")
            nb, na = int(self.n_bids[row]), int(self.n_asks[row])
            return self.bids[row, :nb].copy(), self.asks[row, :na].copy()

    def read_event(self, event) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`read` with the handle of a BookSnapshot CanonicalEvent record."""
        return self.read(int(event["book_row"]), int(event["book_slot"]))

    def stats(self) -> BookTableStats:
        """A frozen snapshot of this table's counters."""
        return BookTableStats(self.rows, self.k, int(self.head[0]), self.reads, self.stale_reads)

    def __repr__(self) -> str:
        return f"BookTable(rows={self.rows}, k={self.k}, written={int(self.head[0])})"
