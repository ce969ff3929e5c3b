"""Recycler: the single gateway through which every stage returns pool slots.

Ordering drops, fan-out originals, consumer deliveries and merge partials all release here, so
double releases and stale handles are caught in one place, counted per pool, and (in debug
mode) reported with the place the slot was first released.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import DoubleRelease, StaleHandle
from .kernels import pool_kernels as pk

if TYPE_CHECKING:
    from .pool import Pool

__all__ = ["RecycleCounts", "Recycler"]


@dataclass
class RecycleCounts:
    """Per-pool counters of refused releases kept by the Recycler (releases themselves are
    counted by the release kernel in the pool's free list)."""

    double_releases: int = 0
    stale_handles: int = 0


class Recycler:
    """Release slots back to their pools in batches; raise on double release or stale handle.

    Parameters
    ----------
    debug : remember where each slot was last released, for error messages.
    """

    def __init__(self, debug: bool = False):
        self.debug = debug
        self._counts: dict[str, RecycleCounts] = {}
        self._sites: dict[tuple[str, int], str] = {}
        self._bad_index = np.empty(0, dtype=np.int64)
        self._bad_code = np.empty(0, dtype=np.int64)

    def counts(self, pool: Pool) -> RecycleCounts:
        """The counters of ``pool`` (created on first use)."""
        counts = self._counts.get(pool.name)
        if counts is None:
            counts = self._counts[pool.name] = RecycleCounts()
        return counts

    def release(self, pool: Pool, slots: np.ndarray, generations: np.ndarray) -> None:
        """Return ``slots`` in one kernel call; valid ones are freed even if others are bad."""
        with pool.condition:
            bad_index, bad_code = self._scratch(slots.shape[0])
            fl = pool.free_list
            n_bad = pk.release_slots(bad_index, bad_code, slots, generations, fl.stack, fl.top,
                                     fl.state, fl.generation, pool.words, pool.debug, fl.counts)
            pool.wake_waiters()
            if n_bad:
                self._raise_bad(pool, slots, bad_index[:n_bad].copy(), bad_code[:n_bad].copy())
        if self.debug:
            self._remember_sites(pool, slots)

    def note_released(self, pool: Pool, slots: np.ndarray) -> None:
        """Account for ``slots`` a fused kernel released with :func:`release_slots` itself.

        The dispatcher's one-call path (:func:`~meltica_nb.kernels.dispatch_kernels.
        dispatch_batch`) releases under the pool's lock with this module's kernel (which
        counts them); it reports here so waiting acquirers and debug release sites are served.
        """
        pool.wake_waiters()
        if self.debug:
            self._remember_sites(pool, slots)

    def check(self, pool: Pool, slot: int, generation: int) -> None:
        """Raise StaleHandle unless ``slot`` of ``pool`` is in use at ``generation``."""
        fl = pool.free_list
        if fl.state[slot] != pk.IN_USE or fl.generation[slot] != generation:
            self.counts(pool).stale_handles += 1
            raise StaleHandle(
                f"pool {pool.name}: handle (slot {slot}, generation {generation}) is stale; "
                f"the slot is at generation {int(fl.generation[slot])}"
                f"{self.release_site(pool, slot)}")

    def release_site(self, pool: Pool, slot: int) -> str:
        """Where ``slot`` was last released (debug mode), as a message suffix."""
        site = self._sites.get((pool.name, slot))
        return f"; last released at:\n{site}" if site else ""

    def _scratch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Reusable arrays for the kernel's list of bad handles."""
        if self._bad_index.shape[0] < n:
            self._bad_index = np.empty(n, dtype=np.int64)
            self._bad_code = np.empty(n, dtype=np.int64)
        return self._bad_index, self._bad_code

    def _raise_bad(self, pool: Pool, slots, bad_index, bad_code) -> None:
        """Count every bad handle, then raise for the first one, naming pool and slot."""
        counts = self.counts(pool)
        counts.double_releases += int(np.count_nonzero(bad_code == pk.DOUBLE_RELEASE))
        counts.stale_handles += int(np.count_nonzero(bad_code == pk.STALE))
        slot = int(slots[bad_index[0]])
        extra = len(bad_index) - 1
        others = f" ({extra} more bad handle(s) in the batch)" if extra else ""
        site = self.release_site(pool, slot)
        if bad_code[0] == pk.STALE:
            raise StaleHandle(f"pool {pool.name}: stale handle for slot {slot}{others}{site}")
        raise DoubleRelease(f"pool {pool.name}: slot {slot} released twice{others}{site}")

    def _remember_sites(self, pool: Pool, slots: np.ndarray) -> None:
        """Debug: record the caller's stack for each released slot."""
        site = "".join(traceback.format_stack(limit=8)[:-2])
        for slot in slots.tolist():
            self._sites[(pool.name, slot)] = site
