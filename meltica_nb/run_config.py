"""The TOML configuration of ``meltica run``: engine, venue feeds and consumers.

::

    [engine]                      # EngineConfig keys: pools, dispatcher, max_consumers, ...
    dlq_capacity = 4096

    [[binance]]                   # one feed per table; BinanceConfig fields
    market = "spot"
    symbols = ["BTC-USDT", "ETH-USDT"]
    channels = ["depth@100ms", "bookTicker", "trade"]

    [binance.trading]             # optional: trade these symbols too (TradingConfig fields)
    recv_window_ms = 5000

    [[okx]]                       # OKX public (no credentials); OkxConfig fields
    market = "spot"
    symbols = ["BTC-USDT"]
    channels = ["books", "trades", "bbo-tbt"]

    [[kraken]]                    # one feed per table; KrakenConfig fields
    version = 2
    symbols = ["BTC-USD"]
    channels = ["book", "trade", "ticker"]

    [consumers.tape]              # one consumer per table
    target = "mystrategy.tape:on_trades"   # module:function
    events = ["trade"]
    mode = "batch"                # batch | njit | python
    state_size = 0                # njit: int64 state array length
    trading = false               # true: the consumer's trading switch starts on

    [[merged]]                    # a merged subscription of a consumer (MergedSubscribe)
    consumer = "tape"
    instrument = "BTC-USDT"
    event = "bbo"                 # bbo and ticker merges carry the consolidated best bid/offer
    venues = ["binance", "binance-futures"]
    window_ms = 100               # optional: window_ms, max_events, partial_policy

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
from .venues.binance.trader import BinanceTrader, TradingConfig
from .venues.kraken.config import KrakenConfig
from .venues.kraken.feed import KrakenFeed
from .venues.okx.config import OkxConfig
from .venues.okx.feed import OkxFeed

__all__ = ["engine_from_toml", "load_target"]

_CONSUMER_KEYS = {"target", "events", "instruments", "venues", "mode", "wait", "state_size",
                  "ring_capacity", "critical_capacity", "batch_size", "trading"}
_SECRET_KEYS = {"api_key", "api_secret"}


def engine_from_toml(path: str | Path) -> Engine:
    """Build an engine with its feeds and consumers from a TOML file."""
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    unknown = set(raw) - {"engine", "consumers", "merged", *_FEEDS}
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {sorted(unknown)}")
    engine = Engine(raw.get("engine"))
    consumers = raw.get("consumers") or {}
    for name, table in consumers.items():
        _add_consumer(engine, name, table)
    for venue, build in _FEEDS.items():
        for table in raw.get(venue) or []:
            engine.add_feed(build(engine, table))
    for table in raw.get("merged") or []:
        _merged_subscribe(engine, table)
    for name, table in consumers.items():
        if table.get("trading") is True:
            engine.control.set_trading_mode(name, True)
    return engine


def _merged_subscribe(engine: Engine, table: dict) -> None:
    """Send one ``[[merged]]`` table as a MergedSubscribe; a refused one is a ConfigError."""
    payload = dict(table)
    consumer = payload.pop("consumer", None)
    ack = engine.control.send({"type": "MergedSubscribe", "consumer": consumer,
                               "payload": payload})
    if not ack.success:
        raise ConfigError(f"[[merged]] of consumer {consumer!r}: {ack.error}")


def _config(venue: str, make, table: dict):
    """A venue config from its TOML table (lists become tuples); bad keys are ConfigErrors."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    try:
        return make(**values)
    except TypeError as exc:
        raise ConfigError(f"[[{venue}]]: {exc}") from None


def _binance_feed(engine: Engine, table: dict) -> BinanceFeed:
    """The market feed; with a ``[binance.trading]`` table, a trader on the same config."""
    if _SECRET_KEYS & set(table):
        raise ConfigError("[[binance]]: API keys belong in the environment, not in the file")
    table = dict(table)
    trading = table.pop("trading", None)
    config = _config("binance", BinanceConfig.from_env, table)
    if trading is not None and trading is not False:
        engine.add_trader(BinanceTrader(engine, config, TradingConfig.from_dict(
            {} if trading is True else trading)))
    return BinanceFeed(engine, config)


def _okx_feed(engine: Engine, table: dict) -> OkxFeed:
    return OkxFeed(engine, _config("okx", OkxConfig, table))


def _kraken_feed(engine: Engine, table: dict) -> KrakenFeed:
    return KrakenFeed(engine, _config("kraken", KrakenConfig, table))


#: ``[[venue]]`` table name -> feed builder: a new venue is one entry here.
_FEEDS = {"binance": _binance_feed, "okx": _okx_feed, "kraken": _kraken_feed}


def _add_consumer(engine: Engine, name: str, table: dict) -> None:
    unknown = set(table) - _CONSUMER_KEYS
    if unknown:
        raise ConfigError(f"[consumers.{name}]: unknown key(s) {sorted(unknown)}")
    options = {k: v for k, v in table.items() if k not in ("target", "state_size", "trading")}
    if not isinstance(table.get("trading", False), bool):
        raise ConfigError(f"[consumers.{name}]: trading must be true or false")
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
