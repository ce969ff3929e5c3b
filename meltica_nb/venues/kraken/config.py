"""Kraken endpoints, protocol version, channels and book depth.

:class:`KrakenConfig` extends the venue-neutral
:class:`~meltica_nb.venues.connection_config.ConnectionConfig`, whose connection fields
(timeouts, ping/pong, backoff, pacing, batch size, frame limit) the shared websocket
connection reads; Kraken adds the protocol ``version`` (1: ``wss://ws.kraken.com``,
2: ``wss://ws.kraken.com/v2``), the ``book_depth`` subscribed (each side is truncated to it
after every message) and its own channels.

Stream names, as the connection tracks subscriptions, are ``<channel>@<wire pair>``:
``book@BTC/USD`` (v2 spelling) or ``book@XBT/USD`` (v1), ``trade@...``, ``ticker@...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meltica_nb.errors import ConfigError
from meltica_nb.venues.connection_config import ConnectionConfig
from meltica_nb.venues.kraken.symbols import v1_name, v2_name

__all__ = ["BOOK_DEPTHS", "CHANNELS", "KrakenConfig", "split_stream", "stream_name"]

#: Depths Kraken's ``book`` channel accepts (v1 and v2).
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
#: Channels a Kraken feed can subscribe.
CHANNELS = ("book", "trade", "ticker")

_WS_URLS = {1: "wss://ws.kraken.com", 2: "wss://ws.kraken.com/v2"}
_REST_URL = "https://api.kraken.com"
_MAX_STREAMS = 1024


def stream_name(channel: str, symbol: str, version: int) -> str:
    """``("book", "BTC-USD", 2)`` -> ``"book@BTC/USD"`` (``book@XBT/USD`` for v1)."""
    return f"{channel}@{v1_name(symbol) if version == 1 else v2_name(symbol)}"


def split_stream(name: str) -> tuple[str, str]:
    """``"book@BTC/USD"`` -> ``("book", "BTC/USD")``."""
    channel, _, pair = name.partition("@")
    return channel, pair


@dataclass(frozen=True)
class KrakenConfig(ConnectionConfig):
    """One Kraken websocket session (public market data).

    Parameters (besides the connection fields of
    :class:`~meltica_nb.venues.connection_config.ConnectionConfig`)
    ----------------------------------------------------------------
    version : 1 or 2, the websocket API; picks the default ``ws_url``.
    symbols : canonical instruments (``"BTC-USD"``) subscribed at start.
    channels : any of ``book``, ``trade``, ``ticker``.
    book_depth : levels per side of the ``book`` subscription (10, 25, 100, 500, 1000).
    ws_url : websocket endpoint, dialled as is ("" = Kraken's for ``version``).
    rest_url : REST base for ``/0/public/AssetPairs`` ("" = ``https://api.kraken.com``).
    max_streams_per_connection : streams one connection carries, 0 = 1024.
    ping_interval_s : send ``ping`` after this long without a frame (Kraken sends a heartbeat
        every second on a quiet subscription, so this only fires on a dead link).
    """

    version: int = 2
    channels: tuple[str, ...] = CHANNELS
    book_depth: int = 10
    ping_interval_s: float = 5.0

    def _venue_defaults(self) -> Mapping[str, object]:
        if self.version not in _WS_URLS:
            raise ConfigError(f"Kraken websocket version must be 1 or 2, was {self.version!r}")
        return {"ws_url": _WS_URLS[self.version], "rest_url": _REST_URL,
                "max_streams_per_connection": _MAX_STREAMS}

    def _check_subscriptions(self) -> None:
        for channel in self.channels:
            if channel not in CHANNELS:
                raise ConfigError(f"channel {channel!r} is not a Kraken channel; valid: "
                                  f"{list(CHANNELS)}")
        if self.book_depth not in BOOK_DEPTHS:
            raise ConfigError(f"book_depth must be one of {BOOK_DEPTHS}, was {self.book_depth}")
        for symbol in self.symbols:
            v2_name(symbol)

    def streams(self) -> tuple[str, ...]:
        """Every configured stream, symbol-major: ``("book@BTC/USD", "trade@BTC/USD", ...)``."""
        return tuple(stream_name(c, s, self.version) for s in self.symbols for c in self.channels)

    def stream_of(self, channel: str, symbol: str) -> str:
        """The stream name of ``channel`` for canonical ``symbol`` in this config's version."""
        return stream_name(channel, symbol, self.version)
