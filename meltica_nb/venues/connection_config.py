"""What every venue connection reads: endpoints, pacing, timeouts, backoff, batch and frame size.

:class:`ConnectionConfig` is the frozen base of the venue configs
(:class:`~meltica_nb.venues.binance.config.BinanceConfig`,
:class:`~meltica_nb.venues.okx.config.OkxConfig`,
:class:`~meltica_nb.venues.kraken.config.KrakenConfig`): it holds and checks the fields the
shared websocket connection and the REST clients read, and each venue adds only its own
fields, its defaults (:meth:`_venue_defaults`) and what its subscriptions are
(:meth:`streams`, :meth:`_check_subscriptions`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from meltica_nb.backoff import BackoffPolicy
from meltica_nb.errors import ConfigError

__all__ = ["ConnectionConfig"]

_POSITIVE_FIELDS = (
    "control_rate_per_s", "connect_timeout_s", "read_timeout_s", "ping_interval_s",
    "pong_timeout_s", "ack_timeout_s", "proactive_reconnect_s", "rest_timeout_s",
    "max_streams_per_request", "max_frame_bytes", "batch_size",
)
_NON_NEGATIVE_FIELDS = ("max_connect_attempts", "rest_max_retries")


@dataclass(frozen=True)
class ConnectionConfig(ABC):
    """Endpoints, pacing, timeouts and retry policy of one venue websocket (and its REST calls).

    Parameters
    ----------
    symbols : canonical instruments (``"BTC-USDT"``) subscribed at start.
    channels : channels subscribed for every symbol (the venue's names).
    ws_url : websocket base, "" = the venue's.
    rest_url : REST base, "" = the venue's.
    max_streams_per_request : streams per subscribe/unsubscribe message.
    max_streams_per_connection : streams one connection may carry, 0 = the venue's limit.
    control_rate_per_s : control messages (subscribe, unsubscribe, our pings) per second.
    connect_timeout_s : TCP + TLS + websocket handshake timeout.
    read_timeout_s : the longest one wait for data blocks before the connection checks its
        timers and cancellation; its expiry never closes the socket.
    ping_interval_s : send our own ping after this long without receiving anything.
    pong_timeout_s : declare the connection dead when nothing (no data, no pong) arrived this
        long after our ping, and reconnect.
    ack_timeout_s : report a subscribe/unsubscribe without a reply after this long.
    backoff_base_s : first reconnect/retry delay (capped exponential backoff, 20 % jitter).
    backoff_cap_s : the largest reconnect/retry delay.
    backoff_seed : seed of the jitter RNG (tests); None draws one from the OS.
    max_connect_attempts : consecutive failed connects before ``run`` raises ConnectError;
        0 = retry forever.
    proactive_reconnect_s : replace a connection older than this.
    max_frame_bytes : larger frames are dropped and reported (``on_error("oversized", ...)``).
    batch_size : frames handed to ``on_frames`` at most per call.
    rest_timeout_s : socket timeout of one REST request.
    rest_max_retries : retries of one REST request after 429/5xx/transport errors.
    """

    symbols: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    ws_url: str = ""
    rest_url: str = ""
    max_streams_per_request: int = 100
    max_streams_per_connection: int = 0
    control_rate_per_s: float = 5.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 0.5
    ping_interval_s: float = 30.0
    pong_timeout_s: float = 10.0
    ack_timeout_s: float = 10.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    backoff_seed: int | None = None
    max_connect_attempts: int = 0
    proactive_reconnect_s: float = 23.5 * 3600.0
    max_frame_bytes: int = 1 << 20
    batch_size: int = 256
    rest_timeout_s: float = 10.0
    rest_max_retries: int = 5

    def __post_init__(self) -> None:
        self._fill_defaults()
        self._check_urls()
        self._check_numbers()
        self._check_subscriptions()
        if len(self.streams()) > self.max_streams_per_connection:
            raise ConfigError(
                f"{len(self.streams())} streams exceed max_streams_per_connection "
                f"{self.max_streams_per_connection}"
            )

    @abstractmethod
    def streams(self) -> tuple[str, ...]:
        """Every configured stream (the venue's subscription names), symbol-major."""

    @abstractmethod
    def _check_subscriptions(self) -> None:
        """Raise ConfigError for a channel or symbol the venue does not offer."""

    def _venue_defaults(self) -> Mapping[str, object]:
        """Values of the fields left at 0 or "" (the venue's endpoints and limits)."""
        return {}

    def _fill_defaults(self) -> None:
        # the frozen dataclass is filled once, here, before anyone can see it
        for name, value in self._venue_defaults().items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)
        object.__setattr__(self, "ws_url", self.ws_url.rstrip("/"))
        object.__setattr__(self, "rest_url", self.rest_url.rstrip("/"))
        object.__setattr__(self, "symbols", tuple(self.symbols))
        object.__setattr__(self, "channels", tuple(self.channels))

    def _check_urls(self) -> None:
        if not self.ws_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"ws_url must start with ws:// or wss://, was {self.ws_url!r}")
        if not self.rest_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"rest_url must start with http:// or https://, was {self.rest_url!r}"
            )

    def _check_numbers(self) -> None:
        for name in _POSITIVE_FIELDS:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, was {getattr(self, name)!r}")
        for name in _NON_NEGATIVE_FIELDS:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, was {getattr(self, name)!r}")
        _ = self.backoff_policy  # validates base and cap

    @property
    def backoff_policy(self) -> BackoffPolicy:
        """The capped exponential backoff shared by reconnects and REST retries."""
        return BackoffPolicy(base_s=self.backoff_base_s, cap_s=self.backoff_cap_s)

    def secrets(self) -> tuple:
        """Credentials to scrub from reported text (:func:`~meltica_nb.venues.binance.config.
        redact`); public market data carries none."""
        return ()
