"""Pool: a preallocated record array plus a free list, served in batches by Numba kernels.

The Python rebuild of the Go seeds' bounded ``sync.Pool``: capacity is fixed at construction,
``acquire`` waits at most its timeout and then raises :class:`PoolExhausted` (callers treat it
as backpressure), acquired slots are always zero, and handles are slot indices into
``pool.records``, never Python objects. Releases go through the pool's :class:`Recycler`, the
single return gateway; nothing else touches the free list.

Debug mode poisons released slots and checks the poison on the next acquire, so a write
through a handle kept after release is caught; generation counters catch a stale handle even
without debug mode (``pool.check(h, generation)``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, PoolClosed, PoolExhausted, UseAfterRelease
from .kernels import pool_kernels as pk
from .recycler import Recycler

__all__ = ["FreeList", "Pool", "PoolStats"]

_EMPTY = np.empty(0, np.int64)


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of one pool's use."""

    name: str
    capacity: int
    in_use: int
    high_water: int
    acquired: int
    released: int
    timeouts: int
    double_releases: int
    stale_handles: int
    poison_violations: int


class FreeList:
    """The arrays behind a pool's free list; touched only by Pool.acquire and the Recycler."""

    def __init__(self, capacity: int):
        self.stack = np.arange(capacity - 1, -1, -1, dtype=np.int64)  # slot 0 served first
        self.top = np.array([capacity], dtype=np.int64)
        self.state = np.full(capacity, pk.FREE, dtype=np.uint8)
        self.generation = np.zeros(capacity, dtype=np.int64)
        self.counts = np.zeros(pk.N_COUNTS, dtype=np.int64)  # acquired, released, high water

    @property
    def free(self) -> int:
        """Number of free slots."""
        return int(self.top[0])


class Pool:
    """``capacity`` records of ``dtype``, acquired and released in batches.

    Parameters
    ----------
    dtype : numpy structured dtype of the records (see :mod:`meltica_nb.schema`).
    capacity : fixed number of slots.
    name : the pool's name in errors, logs and stats.
    debug : poison released slots and check the poison on acquire.
    recycler : the release gateway shared by a PoolManager's pools; a private one if None.
    """

    def __init__(self, dtype, capacity: int, name: str = "pool", debug: bool = False,
                 recycler: Recycler | None = None):
        if capacity <= 0:
            raise ConfigError(f"pool {name}: capacity must be positive, got {capacity}")
        dtype = np.dtype(dtype)
        if dtype.itemsize % 8:
            raise ConfigError(f"pool {name}: record size {dtype.itemsize} is not a multiple of 8")
        self.name = name
        self.capacity = capacity
        self.debug = debug
        self.records = np.zeros(capacity, dtype=dtype)
        self.words = self.records.view(np.uint64).reshape(capacity, dtype.itemsize // 8)
        self.free_list = FreeList(capacity)
        self.condition = threading.Condition()
        self.waiters = 0  # threads in a condition wait (acquirers, wait_idle); lock held
        self.recycler = recycler if recycler is not None else Recycler(debug=debug)
        self.closed = False
        self.timeouts = 0
        self.poison_violations = 0
        self._one = np.empty(1, dtype=np.int64)
        if debug:
            pk.poison_slots(self.words, self.free_list.stack)

    @property
    def in_use(self) -> int:
        """Number of slots handed out and not yet released."""
        return self.capacity - self.free_list.free

    def acquire(self, timeout: float = 0.1) -> int:
        """Return one zero-filled slot, waiting at most ``timeout`` seconds for one."""
        with self.condition:  # re-entrant: guards the shared one-slot handle array
            return int(self.acquire_many(1, timeout, out=self._one)[0])

    def acquire_many(self, n: int, timeout: float = 0.1, out: np.ndarray | None = None):
        """Return ``n`` zero-filled slots as an int64 array (one kernel call, all or nothing).

        ``out`` lets a hot loop reuse its handle array instead of allocating one per call.
        """
        out = np.empty(n, dtype=np.int64) if out is None else out[:n]
        self.serve(n, timeout, lambda: self._try_acquire(out))
        return out

    def serve(self, n: int, timeout: float, attempt) -> None:
        """Call ``attempt()`` under the pool's lock until it returns True, waiting for releases.

        ``attempt`` takes ``n`` slots when that many are free (returning True) and returns
        False otherwise; acquire_many's attempt is one acquire kernel call, the dispatcher's
        is its whole fused kernel. Raises PoolExhausted after ``timeout`` s, PoolClosed once
        the pool is closed.
        """
        if not 0 < n <= self.capacity:
            raise ConfigError(f"pool {self.name}: cannot acquire {n} of {self.capacity} slots")
        with self.condition:
            if attempt():  # the usual case: no clock read, no waiting
                return
            deadline = time.monotonic() + timeout
            while not attempt():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.timeouts += 1
                    raise PoolExhausted(
                        f"pool {self.name}: no {n} free slot(s) within {timeout * 1000:.0f} ms "
                        f"(capacity {self.capacity}, in use {self.in_use})")
                self._wait(remaining)

    def _wait(self, timeout: float) -> None:
        """Wait on the condition (lock held), counted so releases notify only when needed."""
        self.waiters += 1
        try:
            self.condition.wait(timeout)
        finally:
            self.waiters -= 1

    def wake_waiters(self) -> None:
        """After slots came back (lock held): wake the acquirers waiting for them, if any.

        Cheaper than ``notify_all`` on every release: the dispatcher releases after each
        batch and almost never has anyone waiting.
        """
        if self.waiters:
            self.condition.notify_all()

    def _try_acquire(self, out: np.ndarray) -> bool:
        """One kernel attempt under the lock; raises on close or poison violation."""
        self.check_open()
        fl = self.free_list
        if self.debug:
            self._check_poison(out.shape[0])
        return pk.acquire_slots(out, fl.stack, fl.top, fl.state, self.words,
                                fl.counts) == pk.OK

    def check_open(self) -> None:
        """Raise PoolClosed once shutdown closed the pool (an attempt's first check)."""
        if self.closed:
            raise PoolClosed(f"pool {self.name}: closed by shutdown, no new acquires")

    @property
    def high_water(self) -> int:
        """Most slots ever handed out at once."""
        return int(self.free_list.counts[pk.HIGH_WATER])

    def _check_poison(self, n: int) -> None:
        """Debug: refuse to hand out a slot written after release, and re-poison it."""
        fl = self.free_list
        if fl.free < n:
            return
        slot = pk.find_poison_violation(self.words, fl.stack, fl.top, n)
        if slot >= 0:
            self.refuse_poisoned(slot)

    def refuse_poisoned(self, slot: int) -> None:
        """Debug: count the free ``slot`` found written after release, re-poison it, raise."""
        self.poison_violations += 1
        pk.poison_slots(self.words, np.array([slot], dtype=np.int64))
        where = self.recycler.release_site(self, slot)
        raise UseAfterRelease(
            f"pool {self.name}: slot {slot} was written after it was released{where}")

    def release(self, slot: int, generation: int | None = None) -> None:
        """Return one slot through the Recycler (``generation`` also checks for staleness)."""
        gens = _EMPTY if generation is None else np.array([generation], dtype=np.int64)
        with self.condition:  # re-entrant: guards the shared one-slot handle array
            self._one[0] = slot
            self.recycler.release(self, self._one, gens)

    def release_many(self, slots, generations=None) -> None:
        """Return a batch of slots through the Recycler in one kernel call."""
        slots = np.ascontiguousarray(slots, dtype=np.int64)
        gens = _EMPTY if generations is None else np.ascontiguousarray(generations, np.int64)
        self.recycler.release(self, slots, gens)

    def warm_up(self) -> None:
        """Compile the acquire and release kernels on an empty batch (no slot changes hands)."""
        fl = self.free_list
        with self.condition:
            pk.acquire_slots(_EMPTY, fl.stack, fl.top, fl.state, self.words, fl.counts)
        self.release_many(_EMPTY)

    def generation_of(self, slot: int) -> int:
        """The slot's current generation; keep it with a handle to detect staleness later."""
        return int(self.free_list.generation[slot])

    def check(self, slot: int, generation: int) -> None:
        """Raise StaleHandle unless ``slot`` is in use at ``generation``."""
        self.recycler.check(self, slot, generation)

    def in_use_slots(self) -> np.ndarray:
        """Slot ids currently handed out (for shutdown reports and tests)."""
        return np.flatnonzero(self.free_list.state == pk.IN_USE)

    def close(self) -> None:
        """Refuse new acquires from now on and wake every waiting acquirer."""
        with self.condition:
            self.closed = True
            self.condition.notify_all()

    def wait_idle(self, deadline: float) -> bool:
        """Wait until no slot is in use or ``deadline`` (time.monotonic) passes."""
        with self.condition:
            while self.in_use:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wait(remaining)
        return True

    def stats(self) -> PoolStats:
        """A frozen snapshot of this pool's counters."""
        counts = self.recycler.counts(self)
        acquired, released, high_water = self.free_list.counts.tolist()
        return PoolStats(self.name, self.capacity, self.in_use, high_water, acquired, released,
                         self.timeouts,
                         counts.double_releases, counts.stale_handles, self.poison_violations)

    def __repr__(self) -> str:
        return f"Pool({self.name!r}, capacity={self.capacity}, in_use={self.in_use})"
