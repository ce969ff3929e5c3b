"""The TOML configuration of ``meltica run``: engine, venue feeds and consumers.

::

    [engine]                      # EngineConfig keys: pools, dispatcher, max_consumers, ...
    dlq_capacity = 4096

    [[binance]]                   # one feed per table; BinanceConfig fields
    market = "spot"
    symbols = ["BTC-USDT", "ETH-USDT"]
    channels = ["depth@100ms", "bookTicker", "trade"]

    [[kraken]]                    # one feed per table; KrakenConfig fields
    version = 2
    symbols = ["BTC-USD"]
    channels = ["book", "trade", "ticker"]

    [consumers.tape]              # one consumer per table
    target = "mystrategy.tape:on_trades"   # module:function
    events = ["trade"]
    mode = "batch"                # batch | njit | python
    state_size = 0                # njit: int64 state array length

API keys come from the environment (``MELTICA_BINANCE_API_KEY`` / ``_SECRET``, or ``*_FILE``),
never from this file.
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import numpy as np

from .engine import Engine
from .errors import ConfigError
from .venues.binance.config import BinanceConfig
from .venues.binance.feed import BinanceFeed
from .venues.kraken.config import KrakenConfig
from .venues.kraken.feed import KrakenFeed

__all__ = ["engine_from_toml", "load_target"]

_CONSUMER_KEYS = {"target", "events", "instruments", "venues", "mode", "wait", "state_size",
                  "ring_capacity", "critical_capacity", "batch_size"}
_SECRET_KEYS = {"api_key", "api_secret"}


def engine_from_toml(path: str | Path) -> Engine:
    """Build an engine with its feeds and consumers from a TOML file."""
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    unknown = set(raw) - {"engine", "binance", "kraken", "consumers"}
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {sorted(unknown)}")
    engine = Engine(raw.get("engine"))
    for name, table in (raw.get("consumers") or {}).items():
        _add_consumer(engine, name, table)
    for table in raw.get("binance") or []:
        if _SECRET_KEYS & set(table):
            raise ConfigError(f"{path}: API keys belong in the environment, not in the file")
        engine.add_feed(BinanceFeed(engine, _binance_config(table)))
    for table in raw.get("kraken") or []:
        engine.add_feed(KrakenFeed(engine, _venue_config(KrakenConfig, "kraken", table)))
    return engine


def _venue_config(cls, name: str, table: dict):
    """``cls(**table)`` with lists as tuples; a wrong key is a ConfigError naming the table."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"[[{name}]]: {exc}") from None


def _binance_config(table: dict) -> BinanceConfig:
    return _venue_config(BinanceConfig.from_env, "binance", table)


def _add_consumer(engine: Engine, name: str, table: dict) -> None:
    unknown = set(table) - _CONSUMER_KEYS
    if unknown:
        raise ConfigError(f"[consumers.{name}]: unknown key(s) {sorted(unknown)}")
    options = {k: v for k, v in table.items() if k not in ("target", "state_size")}
    size = int(table.get("state_size", 0))
    state = np.zeros(size, np.int64) if size else None
    engine.add_consumer(name, load_target(table.get("target", "")), state=state, **options)


def load_target(spec: str):
    """Import ``"package.module:function"`` and return the function."""
    module, _, attr = str(spec).partition(":")
    if not module or not attr:
        raise ConfigError(f"consumer target must be 'module:function', got {spec!r}")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load consumer target {spec!r}: {exc}") from None
