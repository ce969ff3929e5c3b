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
- backtest orders (paper venue, strategies in a replay): :mod:`meltica_nb.replay_trading`
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
from .replay_trading import OrderEntry, ReplayStrategy

__all__ = [
    "CancelToken",
    "ConfigError",
    "DecimalError",
    "DecimalOverflowError",
    "DecimalSyntaxError",
    "DoubleRelease",
    "MelticaError",
    "OrderEntry",
    "Pool",
    "PoolClosed",
    "PoolError",
    "PoolExhausted",
    "PoolManager",
    "PoolStats",
    "Recycler",
    "ReplayConsumer",
    "ReplayResult",
    "ReplayStrategy",
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
