"""OKX v5 public endpoints and limits: everything the OKX connection, REST call and feed read.

One frozen :class:`OkxConfig` per instrument type (``market``: ``"spot"``, ``"swap"`` or
``"futures"``). Public market data needs no credentials. The engine dials OKX itself only when
a user runs ``meltica run`` against it; tests and the demo point ``ws_url``/``rest_url`` at the
simulator on loopback. A subscription is named ``"<channel>:<instId>"`` (``"books:BTC-USDT"``),
the key the connection resubscribes after a reconnect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meltica_nb.errors import ConfigError
from meltica_nb.venues.connection_config import ConnectionConfig
from meltica_nb.venues.okx.symbols import INST_TYPES, canonical_of

__all__ = ["CHANNELS", "OkxConfig", "subscription", "venue_name"]

#: Public channels the feed understands.
CHANNELS = frozenset({"books", "books5", "bbo-tbt", "trades", "tickers"})

_VENUES = {"spot": "okx", "swap": "okx-swap", "futures": "okx-futures"}
_SUFFIX = {"spot": "", "swap": "-SWAP", "futures": ""}


def venue_name(market: str) -> str:
    """The registry venue of an OKX market: ``okx``, ``okx-swap`` or ``okx-futures``."""
    return _VENUES[market]


def subscription(name: str) -> dict[str, str]:
    """``"books:BTC-USDT"`` -> ``{"channel": "books", "instId": "BTC-USDT"}``."""
    channel, sep, inst_id = name.partition(":") if isinstance(name, str) else ("", "", "")
    if not sep or channel not in CHANNELS or not inst_id:
        raise ConfigError(f"not an OKX subscription: {name!r} (channel:instId, channel in "
                          f"{sorted(CHANNELS)})")
    canonical_of(inst_id)
    return {"channel": channel, "instId": inst_id}


@dataclass(frozen=True)
class OkxConfig(ConnectionConfig):
    """Endpoints, pacing, timeouts and retry policy of one OKX public connection.

    Parameters (besides the connection fields of
    :class:`~meltica_nb.venues.connection_config.ConnectionConfig`)
    ----------------------------------------------------------------
    market : ``"spot"``, ``"swap"`` or ``"futures"`` (one instrument type per feed).
    symbols : instruments subscribed at start: canonical ``"BTC-USDT"`` (spot; swap adds
        ``-SWAP``) or OKX instIds (``"BTC-USD-220527"``).
    channels : channels subscribed for every symbol (see :data:`CHANNELS`).
    ws_url : websocket base; the connection dials ``<ws_url>/ws/v5/public``.
    rest_url : REST base for ``/api/v5/public/instruments``.
    max_streams_per_request : subscriptions per ``subscribe`` op.
    max_streams_per_connection : subscriptions one connection carries.
    control_rate_per_s : ops (subscribe, unsubscribe, our pings) per second (OKX: 3 requests
        per second per connection).
    ping_interval_s : send the text ``ping`` after this long without data (OKX closes a
        connection silent for 30 s).
    book_depth : levels kept per side of each ``books`` book (OKX sends 400).
    """

    market: str = "spot"
    channels: tuple[str, ...] = ("books", "trades", "bbo-tbt")
    ws_url: str = "wss://ws.okx.com:8443"
    rest_url: str = "https://www.okx.com"
    max_streams_per_request: int = 50
    max_streams_per_connection: int = 480
    control_rate_per_s: float = 3.0
    ping_interval_s: float = 25.0
    book_depth: int = 1024

    def _venue_defaults(self) -> Mapping[str, object]:
        if self.market not in INST_TYPES:
            raise ConfigError(f"OKX market must be one of {sorted(INST_TYPES)}, was "
                              f"{self.market!r}")
        return {}

    def _check_subscriptions(self) -> None:
        for name in self.streams():
            subscription(name)

    @property
    def inst_type(self) -> str:
        """``SPOT``, ``SWAP`` or ``FUTURES``: the instruments request's ``instType``."""
        return INST_TYPES[self.market]

    def inst_ids(self) -> tuple[str, ...]:
        """The OKX instIds of :attr:`symbols` (``"BTC-USDT"`` -> ``"BTC-USDT-SWAP"`` on swap)."""
        suffix = _SUFFIX[self.market]
        return tuple(s if s.count("-") > 1 else s + suffix for s in self.symbols)

    def streams(self) -> tuple[str, ...]:
        """Every configured subscription, symbol-major: ``("books:BTC-USDT", ...)``."""
        return tuple(f"{c}:{i}" for i in self.inst_ids() for c in self.channels)
