"""PoolManager: owns the engine's six record pools and their orderly shutdown.

Every pool it registers shares one Recycler. ``shutdown`` stops new acquires, waits for the
slots still in flight to come back, and reports (and logs) exactly which slots never did, so a
leak is named by pool and slot instead of showing up as slow memory growth.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from .errors import ConfigError
from .pool import Pool, PoolStats
from .recycler import Recycler
from .schema import DTYPES

__all__ = ["DEFAULT_CAPACITIES", "PoolManager", "ShutdownReport"]

log = logging.getLogger("meltica_nb.pools")

#: Default slots per pool. CanonicalEvent covers every stream's reorder buffer (200 each)
#: plus in-flight batches; the Go original sized it below its reorder buffer and dropped frames.
DEFAULT_CAPACITIES: dict[str, int] = {
    "WsFrame": 4096,
    "ProviderRaw": 8192,
    "CanonicalEvent": 65536,
    "MergedEvent": 1024,
    "OrderRequest": 4096,
    "ExecReport": 4096,
}


@dataclass(frozen=True)
class ShutdownReport:
    """What shutdown found: the slots never returned, per pool."""

    clean: bool
    elapsed_s: float
    unreturned: dict[str, list[int]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Total number of slots never returned."""
        return sum(len(slots) for slots in self.unreturned.values())


class PoolManager:
    """The registry of pools, one per record type, sharing one Recycler.

    Parameters
    ----------
    capacities : slots per pool name, overriding DEFAULT_CAPACITIES.
    debug : poison released slots and record release sites in every pool.
    """

    def __init__(self, capacities: dict[str, int] | None = None, debug: bool = False):
        unknown = set(capacities or ()) - set(DTYPES)
        if unknown:
            raise ConfigError(f"unknown pool name(s) {sorted(unknown)}; known: {sorted(DTYPES)}")
        self.debug = debug
        self.recycler = Recycler(debug=debug)
        self.pools: dict[str, Pool] = {}
        sizes = {**DEFAULT_CAPACITIES, **(capacities or {})}
        for name, dtype in DTYPES.items():
            self.register(name, dtype, sizes[name])

    def register(self, name: str, dtype, capacity: int) -> Pool:
        """Create and register a pool under ``name`` (names are unique)."""
        if name in self.pools:
            raise ConfigError(f"pool {name} is already registered")
        pool = Pool(dtype, capacity, name=name, debug=self.debug, recycler=self.recycler)
        self.pools[name] = pool
        return pool

    def __getitem__(self, name: str) -> Pool:
        try:
            return self.pools[name]
        except KeyError:
            raise ConfigError(f"no pool named {name!r}; registered: {sorted(self.pools)}") from None

    def stats(self) -> dict[str, PoolStats]:
        """A snapshot of every pool's counters, by name."""
        return {name: pool.stats() for name, pool in self.pools.items()}

    def shutdown(self, timeout: float = 5.0) -> ShutdownReport:
        """Stop new acquires, wait up to ``timeout`` s for in-flight slots, report the rest."""
        start = time.monotonic()
        deadline = start + timeout
        for pool in self.pools.values():
            pool.close()
        for pool in self.pools.values():
            pool.wait_idle(deadline)
        unreturned = {name: pool.in_use_slots().tolist()
                      for name, pool in self.pools.items() if pool.in_use}
        report = ShutdownReport(not unreturned, time.monotonic() - start, unreturned)
        if unreturned:
            log.warning("pool shutdown: %d slot(s) never returned: %s", report.count,
                        {name: slots[:20] for name, slots in unreturned.items()})
        else:
            log.info("pool shutdown: every slot returned in %.3f s", report.elapsed_s)
        return report
