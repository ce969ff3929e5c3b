"""RingBank: every consumer's market-data ring, stacked row by row in shared 2-D arrays.

Why stacked: the dispatcher fans each ready batch out to every subscribed consumer in ONE
kernel call (:func:`meltica_nb.kernels.dispatch_kernels.fan_out`). A Numba call costs ~65 ns
per array argument and a typed list of arrays ~1 us to unbox, so ten rings as ten sets of
arrays would cost more than copying the records. Stacked, the whole bank is seven arrays: row
``r`` of ``records``, ``cursors``, ``counters``, ``stream_keys``, ``stream_seqs`` is ring
``r``, whose capacity is ``capacities[r]`` and whose latest-wins switch is ``coalescing[r]``
(rows are as wide as the widest ring; a ring uses the first ``capacity`` records and
``table_size(capacity)`` stream-table entries of its row; spare rows wait for later rings).

Each :class:`~meltica_nb.ring.MarketDataRing` keeps views of its row, so its own kernels
(publish, drain, stats) work exactly as on private arrays. Rings join before traffic starts
(the engine adds consumers before ``start``); when a join widens the arrays, the rows are
copied and every ring is re-pointed at its new views, all under the bank's lock.
"""

from __future__ import annotations

import threading
from typing import Protocol

import numpy as np

from .kernels import ring_kernels as rk
from .schema import CANONICAL_EVENT

__all__ = ["RingBank", "table_size"]


def table_size(capacity: int) -> int:
    """Stream-table entries of a ring: twice its capacity (never fills), at least 8."""
    return max(8, 2 * int(capacity))


class _Member(Protocol):
    def bind(self, bank: RingBank, row: int) -> None: ...


class RingBank:
    """Stacked storage of market-data rings; row ``r`` belongs to the ``r``-th ring added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._members: list[_Member] = []
        self.capacities = np.zeros(0, np.int64)
        self.coalescing = np.zeros(0, np.uint8)
        self._allocate(0, 1)

    def __len__(self) -> int:
        return len(self._members)

    def add(self, ring: _Member, capacity: int, coalesce: bool = True) -> int:
        """Give ``ring`` the next row (``capacity`` records); return the row index.

        Rows are reserved two for one when the arrays regrow, so adding n rings copies the
        bank about log2(n) times, not n times.
        """
        with self._lock:
            row = len(self._members)
            rows, width = self.records.shape
            self.capacities = np.append(self.capacities, np.int64(capacity))
            self.coalescing = np.append(self.coalescing, np.uint8(coalesce))
            self._members.append(ring)
            if row < rows and capacity <= width:
                ring.bind(self, row)
                return row
            old = self._arrays()
            self._allocate(max(row + 1, 2 * rows), max(int(capacity), width))
            self._copy_rows(old, row)
            for r, member in enumerate(self._members):
                member.bind(self, r)
            return row

    def row_views(self, row: int) -> tuple[np.ndarray, ...]:
        """(records, cursors, counters, stream_keys, stream_seqs) of one ring, as views."""
        cap = int(self.capacities[row])
        table = table_size(cap)
        return (self.records[row, :cap], self.cursors[row], self.counters[row],
                self.stream_keys[row, :table], self.stream_seqs[row, :table])

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The bank arguments of the fan-out kernel, in its order."""
        return (self.records, self.cursors, self.counters, self.stream_keys,
                self.stream_seqs, self.capacities, self.coalescing)

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return self.arrays()[:5]

    def _allocate(self, rows: int, width: int) -> None:
        self.records = np.zeros((rows, width), CANONICAL_EVENT)
        self.cursors = np.zeros((rows, rk.N_CURSORS), np.int64)
        self.counters = np.zeros((rows, rk.N_COUNTERS), np.int64)
        self.stream_keys = np.full((rows, table_size(width)), rk.EMPTY_KEY, np.int64)
        self.stream_seqs = np.zeros((rows, table_size(width)), np.int64)

    def _copy_rows(self, old: tuple[np.ndarray, ...], n_rows: int) -> None:
        """Copy the first ``n_rows`` rows of the old arrays (their used width) into the new."""
        for new, prev in zip(self._arrays(), old, strict=True):
            if n_rows:
                new[:n_rows, :prev.shape[1]] = prev[:n_rows]
