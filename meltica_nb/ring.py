"""Per-subscriber rings: the dispatcher fans out into them, each consumer drains its own.

Two rings, because market data and critical events need opposite overload policies:

* :class:`MarketDataRing` never makes the producer wait. Coalescable market data (BBO, book
  snapshots, tickers, klines, merged events) is latest-wins per stream: a stalled consumer later
  receives only the newest record of each stream. Anything else (trades) is appended; when the
  ring is full the oldest unconsumed record is dropped into a dead-letter batch the caller hands
  to the DLQ.
* :class:`CriticalRing` (ExecReport, ControlAck, ControlResult) never drops, coalesces or
  reorders: when it is full the producer waits for the consumer.

Both are single-producer / single-consumer by contract (one dispatcher, one consumer thread);
every operation is one Numba kernel call, atomic under the GIL (see
:mod:`meltica_nb.kernels.ring_kernels`), so no lock guards the hot path. Consumers copy each
batch out of the ring (:meth:`drain`), which frees the slots at once (auto-release) and lets the
producer coalesce or drop while a handler still reads its batch.

Conservation, at any snapshot: ``published == delivered + coalesced + dropped + size``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

import numpy as np
from numba.core import config as numba_config

from meltica_nb.errors import ConfigError
from meltica_nb.kernels import ring_kernels as rk
from meltica_nb.ring_bank import RingBank
from meltica_nb.schema import CANONICAL_EVENT
from meltica_nb.wait_strategy import BlockingWait, WaitStrategy

__all__ = ["CriticalRing", "MarketDataRing", "RingStats"]


def _atomic(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """Return the kernel itself when jitted (a call holds the GIL, so it is atomic).

    With ``NUMBA_DISABLE_JIT=1`` the kernels run as Python bytecode and threads may switch
    inside them, so they are serialized by one lock to keep the same semantics.
    """
    if not numba_config.DISABLE_JIT:
        return kernel

    @wraps(kernel)
    def serialized(*args: Any) -> Any:
        with _INTERPRETED_LOCK:
            return kernel(*args)

    return serialized


_INTERPRETED_LOCK = threading.Lock()
_md_publish = _atomic(rk.md_publish)
#: md_publish's mask argument: a whole-batch publish selects every event.
_NO_MASK = np.zeros((1, 1), np.uint8)
_critical_publish = _atomic(rk.critical_publish)
_drain_into = _atomic(rk.drain_into)
_ring_size = _atomic(rk.ring_size)
_snapshot_into = _atomic(rk.snapshot_into)


@dataclass(frozen=True, slots=True)
class RingStats:
    """One consistent snapshot of a ring's counters (taken in a single kernel call)."""

    capacity: int
    size: int
    published: int
    delivered: int
    coalesced: int
    dropped: int
    high_water: int
    blocked: int


def _check_capacity(capacity: int) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, int | np.integer):
        raise ConfigError(f"ring capacity must be an int, got {capacity!r}")
    capacity = int(capacity)
    if capacity < 1 or capacity & (capacity - 1):
        raise ConfigError(f"ring capacity must be a power of two >= 1, got {capacity}")
    return capacity


def _check_events(events: np.ndarray, name: str) -> None:
    """Reject anything but a 1-d CanonicalEvent array before it reaches a kernel."""
    if not isinstance(events, np.ndarray) or events.ndim != 1 or (
        events.dtype is not CANONICAL_EVENT and events.dtype != CANONICAL_EVENT
    ):
        raise ConfigError(f"ring {name!r}: publish needs a 1-d CANONICAL_EVENT array")


def _read_only(view: np.ndarray) -> np.ndarray:
    view.flags.writeable = False
    return view


class _Ring:
    """State and consumer side shared by both rings."""

    def __init__(self, capacity: int, name: str, wait: WaitStrategy | None,
                 batch_size: int | None) -> None:
        self._capacity = _check_capacity(capacity)
        self.name = name
        size = self._capacity if batch_size is None else int(batch_size)
        if size < 1:
            raise ConfigError(f"ring {name!r}: batch_size must be >= 1, got {batch_size}")
        self._batch = np.zeros(size, CANONICAL_EVENT)
        self.wait_strategy: WaitStrategy = BlockingWait() if wait is None else wait

    @property
    def capacity(self) -> int:
        """Number of record slots (a power of two)."""
        return self._capacity

    def size(self) -> int:
        """Unconsumed records (HEAD - TAIL)."""
        return int(_ring_size(self.cursors))

    def __len__(self) -> int:
        return self.size()

    def _has_data(self) -> bool:
        return _ring_size(self.cursors) > 0

    def wait_for_data(self, timeout: float | None = None) -> bool:
        """Wait (per the ring's strategy) until a record is ready; False on timeout."""
        return self._has_data() or self.wait_strategy.wait_for(self._has_data, timeout)

    def drain_into(self, out: np.ndarray, max_n: int | None = None) -> int:
        """Copy up to ``max_n`` (default ``len(out)``) oldest records into ``out``; return n.

        The slots are free when this returns, so a waiting producer is signalled.
        """
        limit = out.shape[0] if max_n is None else max(0, int(max_n))
        n = int(_drain_into(out, self.cursors, self.counters, self.records, limit))
        if n:
            self.wait_strategy.signal()
        return n

    def drain(self, max_n: int | None = None) -> np.ndarray:
        """Copy out up to ``max_n`` (default: the batch size) records; return a read-only view.

        The view is the ring's own batch buffer: valid until the next drain, so a handler that
        keeps events must copy them.
        """
        n = self.drain_into(self._batch, max_n)
        return _read_only(self._batch[:n])

    def stats(self) -> RingStats:
        """A consistent snapshot: published == delivered + coalesced + dropped + size."""
        snap = np.empty(rk.SNAPSHOT_LEN, np.int64)  # per call: stats() may run on any thread
        _snapshot_into(snap, self.cursors, self.counters)
        return RingStats(
            capacity=self._capacity,
            size=int(snap[rk.SNAP_SIZE]),
            published=int(snap[rk.PUBLISHED]),
            delivered=int(snap[rk.DELIVERED]),
            coalesced=int(snap[rk.COALESCED]),
            dropped=int(snap[rk.DROPPED]),
            high_water=int(snap[rk.HIGH_WATER]),
            blocked=int(snap[rk.BLOCKED]),
        )

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, capacity={self._capacity}, "
                f"size={self.size()}, wait={self.wait_strategy!r})")


class MarketDataRing(_Ring):
    """Lossy ring for market data: coalesce latest-wins per stream, else drop the oldest.

    ``stream_keys`` / ``stream_seqs`` are the ring's stream table (stream key -> last sequence
    written), twice the capacity so it never fills (see the kernel module). The arrays are a
    row of a :class:`~meltica_nb.ring_bank.RingBank` (the dispatcher's, so one kernel call
    fans a batch out to every consumer; a private one-row bank when none is given).
    ``coalesce=False`` keeps every event (no latest-wins): for a consumer that drains after
    each publish, e.g. in a lossless replay.
    """

    def __init__(self, capacity: int, *, name: str = "market-data",
                 wait: WaitStrategy | None = None, batch_size: int | None = None,
                 bank: RingBank | None = None, coalesce: bool = True) -> None:
        super().__init__(capacity, name, wait, batch_size)
        self.coalesce = bool(coalesce)
        self.bank = RingBank() if bank is None else bank
        self.row = self.bank.add(self, self._capacity, self.coalesce)
        self._dlq = np.zeros(min(self._capacity, 64), CANONICAL_EVENT)
        self._n_dropped = 0

    def bind(self, bank: RingBank, row: int) -> None:
        """Point the ring at its row of ``bank`` (called by the bank whenever it regrows)."""
        (self.records, self.cursors, self.counters, self.stream_keys,
         self.stream_seqs) = bank.row_views(row)

    def publish(self, events: np.ndarray) -> int:
        """Publish a batch in one kernel call; return how many old records it dropped.

        The dropped records are :attr:`last_dropped` until the next publish.
        """
        _check_events(events, self.name)
        dlq = self._dlq_buffer(events.shape[0])
        n = int(_md_publish(dlq, self.records, self.cursors, self.counters,
                            self.stream_keys, self.stream_seqs, events, self.coalesce,
                            _NO_MASK))
        self._n_dropped = n
        self.wait_strategy.signal()
        return n

    def _dlq_buffer(self, n: int) -> np.ndarray:
        """The ring's dead-letter buffer, grown to hold ``n`` records (one drop per event)."""
        if n > self._dlq.shape[0]:
            self._dlq = np.zeros(1 << (n - 1).bit_length(), CANONICAL_EVENT)
        return self._dlq

    @property
    def last_dropped(self) -> np.ndarray:
        """Read-only view of the records the last publish dropped, oldest first (for the DLQ)."""
        return _read_only(self._dlq[: self._n_dropped])


class CriticalRing(_Ring):
    """Lossless ring for ExecReport / ControlAck / ControlResult: the producer waits instead."""

    def __init__(self, capacity: int, *, name: str = "critical",
                 wait: WaitStrategy | None = None, batch_size: int | None = None) -> None:
        super().__init__(capacity, name, wait, batch_size)
        self.records = np.zeros(self._capacity, CANONICAL_EVENT)
        self.cursors = np.zeros(rk.N_CURSORS, np.int64)
        self.counters = np.zeros(rk.N_COUNTERS, np.int64)

    def _has_space(self) -> bool:
        return _ring_size(self.cursors) < self._capacity

    def publish_nowait(self, events: np.ndarray, start: int = 0) -> int:
        """Write ``events[start:]`` in order as far as space allows; return how many."""
        _check_events(events, self.name)
        n = int(_critical_publish(self.records, self.cursors, self.counters, events, start))
        if n:
            self.wait_strategy.signal()
        return n

    def publish(self, events: np.ndarray, timeout: float | None = None) -> int:
        """Write every event in order, waiting for the consumer whenever the ring is full.

        Waits forever by default (lossless). With a ``timeout`` (seconds, total) that passes,
        raises ``TimeoutError`` whose ``written`` attribute says how many events did get in;
        the caller must republish only ``events[written:]``.
        """
        _check_events(events, self.name)
        total = events.shape[0]
        deadline = None if timeout is None else time.monotonic() + timeout
        written = self.publish_nowait(events)
        while written < total:
            self.counters[rk.BLOCKED] += 1
            if not self.wait_strategy.wait_for(self._has_space, _remaining(deadline)):
                raise _timeout(self.name, written, total, timeout)
            written += self.publish_nowait(events, written)
        return written


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _timeout(name: str, written: int, total: int, timeout: float | None) -> TimeoutError:
    err = TimeoutError(
        f"critical ring {name!r}: consumer made no room within {timeout} s; "
        f"{written} of {total} events written, republish the rest"
    )
    err.written = written  # type: ignore[attr-defined]
    return err
