"""meltica_nb: a market-data and trading event engine over preallocated NumPy record pools.

Glossary (one term, one module):

- record, dtype: :mod:`meltica_nb.schema` (every layout and enum)
- pool, free list: :mod:`meltica_nb.pool`; kernels in :mod:`meltica_nb.kernels.pool_kernels`
- recycler (the single release gateway): :mod:`meltica_nb.recycler`
- pool manager (the six pools, shutdown report): :mod:`meltica_nb.pool_manager`
- task group (the owner of every thread): :mod:`meltica_nb.concurrency`
- fixed-point decimal (exact prices): :mod:`meltica_nb.fixedpoint`
- errors (one tree rooted at MelticaError): :mod:`meltica_nb.errors`
- replay, backtest (recordings through the live chain): :mod:`meltica_nb.replay`
"""

from . import fixedpoint, schema
from .concurrency import CancelToken, TaskGroup, TaskGroupStats
from .errors import (
    ConfigError,
    DecimalError,
    DecimalOverflowError,
    DecimalSyntaxError,
    DoubleRelease,
    MelticaError,
    PoolClosed,
    PoolError,
    PoolExhausted,
    StaleHandle,
    TaskGroupError,
    UseAfterRelease,
)
from .pool import Pool, PoolStats
from .pool_manager import PoolManager, ShutdownReport
from .recycler import Recycler
from .replay import ReplayConsumer, replay
from .replay_result import ReplayResult

__all__ = [
    "CancelToken",
    "ConfigError",
    "DecimalError",
    "DecimalOverflowError",
    "DecimalSyntaxError",
    "DoubleRelease",
    "MelticaError",
    "Pool",
    "PoolClosed",
    "PoolError",
    "PoolExhausted",
    "PoolManager",
    "PoolStats",
    "Recycler",
    "ReplayConsumer",
    "ReplayResult",
    "ShutdownReport",
    "StaleHandle",
    "TaskGroup",
    "TaskGroupError",
    "TaskGroupStats",
    "UseAfterRelease",
    "fixedpoint",
    "replay",
    "schema",
]
