"""Binance endpoints, limits and credentials: everything the connection and REST client read.

One frozen :class:`BinanceConfig` per market (``"spot"`` or ``"usdm"`` futures). Fields left at
their zero default (``ws_url=""``, ``snapshot_limit=0`` ...) take the market's documented value,
so a config names only what differs. The engine dials the real endpoints only when a user runs
``meltica run`` against Binance; tests and the demo point ``ws_url``/``rest_url`` at loopback.

Credentials are :class:`Secret` objects: their ``repr``/``str`` is ``'***'``, they come from the
environment (``MELTICA_BINANCE_API_KEY`` / ``MELTICA_BINANCE_API_SECRET``) or from a file named
by ``MELTICA_BINANCE_API_KEY_FILE`` / ``MELTICA_BINANCE_API_SECRET_FILE``, and :func:`redact`
scrubs their text out of any message built from venue replies before it is logged or raised.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meltica_nb.errors import ConfigError
from meltica_nb.venues.connection_config import ConnectionConfig
from meltica_nb.venues.secret import Secret, redact

__all__ = [
    "API_KEY_ENV",
    "API_SECRET_ENV",
    "MARKETS",
    "BinanceConfig",
    "MarketDefaults",
    "Secret",
    "redact",
    "stream_name",
    "venue_symbol",
]

API_KEY_ENV = "MELTICA_BINANCE_API_KEY"
API_SECRET_ENV = "MELTICA_BINANCE_API_SECRET"

_KLINE_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
                    "1d", "3d", "1w", "1M")
_COMMON_CHANNELS = frozenset(
    {"depth", "depth@100ms", "bookTicker", "trade", "aggTrade", "ticker"}
    | {f"kline_{i}" for i in _KLINE_INTERVALS}
)


@dataclass(frozen=True, slots=True)
class MarketDefaults:
    """What differs between Binance spot and USD-M futures (from Binance's API docs).

    Parameters
    ----------
    ws_url : websocket base; the connection dials ``ws_url + "/stream"`` (combined streams).
    rest_url : REST base.
    rest_prefix : path prefix of the REST market-data endpoints.
    snapshot_limit : default depth snapshot size (the largest the venue serves).
    max_snapshot_limit : the largest ``limit`` the depth endpoint accepts.
    weight_limit_1m : the REQUEST_WEIGHT budget per minute per IP.
    max_streams_per_connection : streams one websocket may carry.
    channels : stream channels valid on this market.
    """

    ws_url: str
    rest_url: str
    rest_prefix: str
    snapshot_limit: int
    max_snapshot_limit: int
    weight_limit_1m: int
    max_streams_per_connection: int
    channels: frozenset[str]


MARKETS: Mapping[str, MarketDefaults] = {
    "spot": MarketDefaults(
        ws_url="wss://stream.binance.com:9443",
        rest_url="https://api.binance.com",
        rest_prefix="/api/v3",
        snapshot_limit=5000,
        max_snapshot_limit=5000,
        weight_limit_1m=6000,
        max_streams_per_connection=1024,
        channels=_COMMON_CHANNELS,
    ),
    "usdm": MarketDefaults(
        ws_url="wss://fstream.binance.com",
        rest_url="https://fapi.binance.com",
        rest_prefix="/fapi/v1",
        snapshot_limit=1000,
        max_snapshot_limit=1000,
        weight_limit_1m=2400,
        max_streams_per_connection=200,
        channels=(_COMMON_CHANNELS - {"kline_1s"}) | {"depth@0ms", "depth@500ms"},
    ),
}

_ALL_CHANNELS = frozenset().union(*(m.channels for m in MARKETS.values()))
_SYMBOL = re.compile(r"^[A-Z0-9]+-[A-Z0-9]+$")


def venue_symbol(symbol: str) -> str:
    """Return Binance's symbol for a canonical one: ``"BTC-USDT"`` -> ``"BTCUSDT"``."""
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
        raise ConfigError(f"symbol must be canonical BASE-QUOTE like 'BTC-USDT', was {symbol!r}")
    return symbol.replace("-", "")


def stream_name(symbol: str, channel: str) -> str:
    """Return the stream of ``channel`` for ``symbol``: ``("BTC-USDT", "depth@100ms")`` ->
    ``"btcusdt@depth@100ms"``.
    """
    if channel not in _ALL_CHANNELS:
        raise ConfigError(f"unknown Binance channel {channel!r}; valid: {sorted(_ALL_CHANNELS)}")
    return f"{venue_symbol(symbol).lower()}@{channel}"


def _read_secret(name: str, environ: Mapping[str, str]) -> Secret | None:
    """The secret in ``$name``, else in the file named by ``$name_FILE``, else None."""
    value = environ.get(name, "").strip()
    if value:
        return Secret(value)
    path = environ.get(f"{name}_FILE", "").strip()
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        # name the file and the reason only: never echo content
        raise ConfigError(f"cannot read {name}_FILE {path!r}: {e.strerror}") from None
    return Secret(text) if text.strip() else None


_POSITIVE_FIELDS = ("refresh_interval_s", "rest_max_wait_s")


@dataclass(frozen=True)
class BinanceConfig(ConnectionConfig):
    """Endpoints, pacing, timeouts, retry policy and credentials of one Binance market.

    Parameters (besides the connection fields of
    :class:`~meltica_nb.venues.connection_config.ConnectionConfig`)
    ----------------------------------------------------------------
    market : ``"spot"`` or ``"usdm"`` (USD-M futures); picks every market default below.
    channels : channels subscribed for every symbol: ``depth``, ``depth@100ms``, ``bookTicker``,
        ``trade``, ``aggTrade``, ``ticker``, ``kline_<interval>``; futures add ``depth@0ms`` and
        ``depth@500ms``.
    ws_url : websocket base, "" = ``wss://stream.binance.com:9443`` (spot) /
        ``wss://fstream.binance.com`` (usdm); the connection dials ``<ws_url>/stream``.
    rest_url : REST base, "" = ``https://api.binance.com`` / ``https://fapi.binance.com``.
    max_streams_per_request : streams per SUBSCRIBE/UNSUBSCRIBE message (Binance: 100).
    max_streams_per_connection : streams one connection may carry, 0 = market limit
        (1024 spot, 200 usdm).
    control_rate_per_s : control messages per second; Binance disconnects above 5.
    proactive_reconnect_s : reconnect after this connection age (Binance cuts at 24 h).
    snapshot_limit : depth snapshot levels, 0 = market default (5000 spot, 1000 usdm).
    refresh_interval_s : how often the book layer refreshes a book from a snapshot.
    rest_max_retries : retries of one REST request after 429/418/5xx/transport errors.
    rest_max_wait_s : the longest single wait (Retry-After, ban) the REST client accepts; a
        longer one raises RateLimited at once instead of sleeping.
    rest_weight_limit_1m : REQUEST_WEIGHT budget per minute, 0 = market (6000 spot, 2400 usdm).
    rest_weight_fraction : share of the budget used before requests wait for the next minute.
    api_key : API key (a str is wrapped into :class:`Secret`); see :meth:`from_env`.
    api_secret : API secret, same handling.
    """

    market: str = "spot"
    channels: tuple[str, ...] = ("depth@100ms",)
    snapshot_limit: int = 0
    refresh_interval_s: float = 60.0
    rest_max_wait_s: float = 60.0
    rest_weight_limit_1m: int = 0
    rest_weight_fraction: float = 0.8
    api_key: Secret | None = None
    api_secret: Secret | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("api_key", "api_secret"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, Secret(value))
            elif value is not None and not isinstance(value, Secret):
                raise ConfigError(f"{name} must be a str or Secret")

    def _venue_defaults(self) -> Mapping[str, object]:
        if self.market not in MARKETS:
            raise ConfigError(f"market must be one of {sorted(MARKETS)}, was {self.market!r}")
        m = MARKETS[self.market]
        return {
            "ws_url": m.ws_url,
            "rest_url": m.rest_url,
            "snapshot_limit": m.snapshot_limit,
            "max_streams_per_connection": m.max_streams_per_connection,
            "rest_weight_limit_1m": m.weight_limit_1m,
        }

    def _check_numbers(self) -> None:
        super()._check_numbers()
        for name in _POSITIVE_FIELDS:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, was {getattr(self, name)!r}")
        if not 0.0 < self.rest_weight_fraction <= 1.0:
            raise ConfigError(
                f"rest_weight_fraction must be in (0, 1], was {self.rest_weight_fraction!r}"
            )
        if not 0 < self.snapshot_limit <= MARKETS[self.market].max_snapshot_limit:
            raise ConfigError(f"snapshot_limit {self.snapshot_limit} is out of range")

    def _check_subscriptions(self) -> None:
        valid = MARKETS[self.market].channels
        for channel in self.channels:
            if channel not in valid:
                raise ConfigError(
                    f"channel {channel!r} is not valid on Binance {self.market}; "
                    f"valid: {sorted(valid)}"
                )
        for symbol in self.symbols:
            venue_symbol(symbol)

    @property
    def defaults(self) -> MarketDefaults:
        """The market's documented endpoints and limits."""
        return MARKETS[self.market]

    def streams(self) -> tuple[str, ...]:
        """Every configured stream, symbol-major: ``("btcusdt@trade", "btcusdt@depth" ...)``."""
        return tuple(stream_name(s, c) for s in self.symbols for c in self.channels)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **values: Any) -> BinanceConfig:
        """Build a config whose credentials come from the environment unless given.

        ``MELTICA_BINANCE_API_KEY`` / ``MELTICA_BINANCE_API_SECRET`` hold the values, or
        ``MELTICA_BINANCE_API_KEY_FILE`` / ``MELTICA_BINANCE_API_SECRET_FILE`` name files
        holding them (one value per file, surrounding whitespace ignored).
        """
        env = os.environ if environ is None else environ
        values.setdefault("api_key", _read_secret(API_KEY_ENV, env))
        values.setdefault("api_secret", _read_secret(API_SECRET_ENV, env))
        return cls(**values)

    def secrets(self) -> tuple[Secret | None, Secret | None]:
        """The credentials, for :func:`redact`."""
        return (self.api_key, self.api_secret)
