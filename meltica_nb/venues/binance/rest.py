"""Binance REST over one keep-alive HTTP connection: weight-aware, bounded retries, typed errors.

:class:`BinanceRest` sends every request of one market over a single persistent
``http.client`` connection (a TLS handshake to Binance costs more than the request itself) and
reconnects transparently when the server closed an idle keep-alive connection. It returns
response bodies as ``bytes``; callers parse them with orjson.

Rate limits, as Binance documents them:

* every response carries ``X-MBX-USED-WEIGHT-1M``, the IP's request weight used in the current
  minute. The client keeps it and, when the next request would take it past
  ``rest_weight_fraction`` of the minute budget, waits until the minute rolls over;
* ``429`` means "slow down": the client waits ``Retry-After`` and retries;
* ``418`` means the IP is banned (after ignoring 429s) for ``Retry-After`` seconds: every
  request of this client waits out the ban, or raises :class:`~meltica_nb.errors.RateLimited`
  at once when the ban is longer than ``rest_max_wait_s``;
* ``5xx`` and transport failures are retried with capped exponential backoff, at most
  ``rest_max_retries`` times, then raise :class:`~meltica_nb.errors.VenueUnavailable` or
  :class:`~meltica_nb.errors.ConnectError`; other ``4xx`` raise
  :class:`~meltica_nb.errors.RequestRejected` at once (retrying cannot fix them).

Error messages and logs never contain credentials.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from meltica_nb.backoff import Backoff
from meltica_nb.clock import Clock, WallClock
from meltica_nb.concurrency import CancelToken
from meltica_nb.errors import (
    ConfigError,
    ConnectError,
    ProtocolError,
    RateLimited,
    RequestRejected,
    VenueError,
    VenueUnavailable,
)
from meltica_nb.venues.binance.config import BinanceConfig, redact, venue_symbol

__all__ = ["WEIGHT_HEADER", "BinanceRest", "RestStats", "depth_weight"]

_log = logging.getLogger("meltica_nb.venues.binance.rest")

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"

_NS = 1_000_000_000
_MINUTE_NS = 60 * _NS
_ROLL_MARGIN_S = 0.05  # wait this much past the minute boundary: clocks differ a little
_BODY_PREFIX = 200  # characters of an error body quoted in the exception

# Request weights from Binance's API docs (spot /api/v3, USD-M /fapi/v1).
_EXCHANGE_INFO_WEIGHT = {"spot": 20, "usdm": 1}
_SPOT_DEPTH_WEIGHTS = ((100, 5), (500, 25), (1000, 50), (5000, 250))
_USDM_DEPTH_WEIGHTS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}


def depth_weight(market: str, limit: int) -> int:
    """Return the request weight of a depth snapshot of ``limit`` levels.

    Raises :class:`ConfigError` for a limit the market's endpoint does not accept.
    """
    if market == "usdm":
        if limit not in _USDM_DEPTH_WEIGHTS:
            raise ConfigError(f"usdm depth limit must be one of {sorted(_USDM_DEPTH_WEIGHTS)}, "
                              f"was {limit!r}")
        return _USDM_DEPTH_WEIGHTS[limit]
    for top, weight in _SPOT_DEPTH_WEIGHTS:
        if 1 <= limit <= top:
            return weight
    raise ConfigError(f"spot depth limit must be in [1, 5000], was {limit!r}")


@dataclass(frozen=True, slots=True)
class RestStats:
    """A snapshot of the REST client's counters.

    Parameters
    ----------
    requests : HTTP requests sent, retries included.
    responses : HTTP responses received (any status).
    connections : TCP connections opened (1 while keep-alive holds).
    reconnects : requests re-sent on a fresh connection after the server closed an idle one.
    retries : requests retried after 429/418/5xx or a transport failure.
    rate_limited : 429 and 418 responses.
    weight_waits : waits for the next minute because the weight budget was used up.
    used_weight : request weight used in the current minute (the last header, plus our own
        requests since).
    """

    requests: int
    responses: int
    connections: int
    reconnects: int
    retries: int
    rate_limited: int
    weight_waits: int
    used_weight: int


@dataclass(frozen=True, slots=True)
class _Request:
    """One request as sent (and re-sent on a retry)."""

    method: str
    path: str
    target: str
    headers: dict[str, str]


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class BinanceRest:
    """A keep-alive Binance REST client for one market; calls are serialized (thread-safe).

    Parameters
    ----------
    config : base URL, timeouts, retry and weight policy, credentials.
    clock : time source for the weight minute and waits; WallClock when None.
    cancel_token : waits (Retry-After, bans, backoff, weight) end early when it is cancelled
        and the request raises VenueUnavailable; :meth:`close` does the same without it.
    """

    def __init__(
        self,
        config: BinanceConfig,
        clock: Clock | None = None,
        cancel_token: CancelToken | None = None,
    ) -> None:
        self._config = config
        self._clock = clock if clock is not None else WallClock()
        self._own_token = CancelToken()
        self._token = cancel_token if cancel_token is not None else self._own_token
        url = urlsplit(config.rest_url)
        self._https = url.scheme == "https"
        self._host = url.hostname or ""
        self._port = url.port
        self._base_path = url.path.rstrip("/")
        self._prefix = config.defaults.rest_prefix
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self._conn_used = False
        self._blocked_until = 0.0  # monotonic s: a 429/418 asked us to wait until then
        self._blocked_status = 0
        self._used_weight = 0
        self._weight_window = -1  # the minute (epoch // 60 s) _used_weight belongs to
        self._requests = self._responses = self._connections = self._reconnects = 0
        self._retries = self._rate_limited = self._weight_waits = 0

    # -- endpoints ----------------------------------------------------------------------------

    def depth(self, symbol: str, limit: int | None = None) -> bytes:
        """Return the order-book snapshot body of canonical ``symbol`` (``"BTC-USDT"``).

        ``limit`` defaults to ``config.snapshot_limit``; the weight follows Binance's table.
        """
        levels = self._config.snapshot_limit if limit is None else limit
        weight = depth_weight(self._config.market, levels)
        params = {"symbol": venue_symbol(symbol), "limit": levels}
        return self.get(f"{self._prefix}/depth", params, weight=weight)

    def exchange_info(self) -> bytes:
        """Return the exchangeInfo body (symbols, filters, rate limits)."""
        weight = _EXCHANGE_INFO_WEIGHT[self._config.market]
        return self.get(f"{self._prefix}/exchangeInfo", weight=weight)

    def ping(self) -> None:
        """Check that the REST API answers."""
        self.get(f"{self._prefix}/ping")

    def server_time(self) -> int:
        """Return the venue's time in milliseconds since the epoch."""
        body = self.get(f"{self._prefix}/time")
        try:
            value = orjson.loads(body)["serverTime"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            value = None
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolError(f"binance /time: no integer serverTime in {body[:80]!r}")
        return value

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        weight: int = 1,
        api_key: bool = False,
    ) -> bytes:
        """GET ``path`` (``"/api/v3/depth"``) with query ``params``; return the body bytes.

        ``weight`` is the request's weight for budget planning; ``api_key`` sends the
        ``X-MBX-APIKEY`` header. Raises :class:`RequestRejected`, :class:`RateLimited`,
        :class:`VenueUnavailable`, :class:`ConnectError` or :class:`ProtocolError`.
        """
        return self.request("GET", path, params, weight=weight, api_key=api_key)

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | str | None = None,
        *,
        weight: int = 1,
        api_key: bool = False,
        retries: int | None = None,
    ) -> bytes:
        """Send ``method`` (GET, POST, PUT, DELETE) to ``path`` with query ``params`` (a
        mapping, or a query string already encoded and signed); return the body bytes.

        ``retries`` overrides ``rest_max_retries``: signed requests pass 0, because a retry
        would re-send a stale timestamp, and an order must never be placed twice.
        """
        target = self._base_path + path
        if params:
            target += "?" + (params if isinstance(params, str) else urlencode(params))
        headers = {"Accept": "application/json", "User-Agent": "meltica_nb"}
        if api_key:
            if self._config.api_key is None:
                raise ConfigError("this request needs an API key: set MELTICA_BINANCE_API_KEY")
            headers["X-MBX-APIKEY"] = self._config.api_key.reveal()
        if self._own_token.cancelled:
            raise VenueUnavailable("binance REST client is closed")
        if retries is None:
            retries = self._config.rest_max_retries
        with self._lock:
            return self._send(_Request(method, path, target, headers), weight, retries)

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection for good; a wait in progress ends (unless a cancel_token was
        given) and later requests raise VenueUnavailable."""
        self._own_token.cancel()
        with self._lock:
            self._drop_connection()

    def __enter__(self) -> BinanceRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> RestStats:
        """A snapshot of the counters."""
        return RestStats(
            requests=self._requests,
            responses=self._responses,
            connections=self._connections,
            reconnects=self._reconnects,
            retries=self._retries,
            rate_limited=self._rate_limited,
            weight_waits=self._weight_waits,
            used_weight=self._used_weight,
        )

    def __repr__(self) -> str:
        return f"BinanceRest({self._config.rest_url!r}, market={self._config.market!r})"

    # -- retry loop ---------------------------------------------------------------------------

    def _send(self, req: _Request, weight: int, retries: int) -> bytes:
        backoff = Backoff(self._config.backoff_policy, seed=self._config.backoff_seed)
        for attempt in range(retries + 1):
            self._respect_limits(weight)
            outcome = self._attempt(req, backoff)
            if isinstance(outcome, bytes):
                return outcome
            error, wait = outcome
            if attempt == retries:
                raise error
            self._retries += 1
            _log.info("binance %s %s: %s; retry %d/%d in %.2f s", req.method, req.path, error,
                      attempt + 1, retries, max(wait, self._blocked_until - self._mono()))
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, req: _Request, backoff: Backoff) -> bytes | tuple[VenueError, float]:
        """One request: the body, or the error to raise if no retry is left and the wait."""
        try:
            status, response_headers, body = self._exchange(req)
        except (OSError, http.client.HTTPException) as e:
            return self._transport_error(req, e), backoff.next_delay()
        self._note_weight(response_headers)
        if status < 300:
            return body
        return self._status_error(req, status, response_headers, body, backoff)

    def _status_error(self, req: _Request, status: int, headers: Mapping[str, str], body: bytes,
                      backoff: Backoff) -> tuple[VenueError, float]:
        code, text = self._describe(body)
        message = self._redact(f"binance {req.method} {req.path}: HTTP {status}: {text}")
        if status in (418, 429):
            self._rate_limited += 1
            wait = _retry_after(headers)
            if wait is None:  # a ban without Retry-After waits as long as the backoff allows
                wait = backoff.policy.cap_s if status == 418 else backoff.next_delay()
            self._block(wait, status)
            return RateLimited(message, status=status, code=code, retry_after_s=wait), 0.0
        if status >= 500:
            return VenueUnavailable(message, status=status, code=code), backoff.next_delay()
        raise RequestRejected(message, status=status, code=code)

    def _transport_error(self, req: _Request, e: BaseException) -> VenueError:
        detail = self._redact(f"binance {req.method} {req.path}: {type(e).__name__}: {e}")
        if isinstance(e, ConnectionRefusedError | socket.gaierror | ssl.SSLError):
            return ConnectError(detail)
        if isinstance(e, http.client.HTTPException) and not isinstance(e, ConnectionError):
            return ProtocolError(detail)
        return VenueUnavailable(detail)

    @staticmethod
    def _describe(body: bytes) -> tuple[int | None, str]:
        """Binance's ``{"code": -1121, "msg": "..."}``, or the start of the body."""
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("code"), int):
            return payload["code"], f"code {payload['code']}: {payload.get('msg', '')}"
        return None, body[:_BODY_PREFIX].decode("utf-8", "replace")

    # -- limits -------------------------------------------------------------------------------

    def _block(self, wait_s: float, status: int) -> None:
        until = self._mono() + wait_s
        if until > self._blocked_until:
            self._blocked_until = until
            self._blocked_status = status

    def _respect_limits(self, weight: int) -> None:
        """Wait out a 429/418 block and the minute's weight budget before a request."""
        remaining = self._blocked_until - self._mono()
        if remaining > 0:
            if remaining > self._config.rest_max_wait_s:
                what = "banned (418)" if self._blocked_status == 418 else "rate limited (429)"
                raise RateLimited(
                    f"binance REST is {what} for another {remaining:.0f} s, longer than "
                    f"rest_max_wait_s {self._config.rest_max_wait_s:g}",
                    status=self._blocked_status,
                    retry_after_s=remaining,
                )
            self._sleep(remaining)
        self._reserve_weight(weight)

    def _reserve_weight(self, weight: int) -> None:
        now_ns = self._clock.now_ns()
        window = now_ns // _MINUTE_NS
        if window > self._weight_window:
            self._weight_window = window
            self._used_weight = 0
        budget = int(self._config.rest_weight_limit_1m * self._config.rest_weight_fraction)
        if self._used_weight + weight > budget:
            wait = ((window + 1) * _MINUTE_NS - now_ns) / _NS + _ROLL_MARGIN_S
            self._weight_waits += 1
            _log.info("binance REST weight %d + %d > %d of %d: waiting %.2f s for the next minute",
                      self._used_weight, weight, budget, self._config.rest_weight_limit_1m, wait)
            self._sleep(wait)
            self._weight_window = window + 1
            self._used_weight = 0
        self._used_weight += weight

    def _note_weight(self, headers: Mapping[str, str]) -> None:
        value = headers.get(WEIGHT_HEADER)
        if value is not None and value.strip().isdigit():
            self._used_weight = int(value)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self._token.wait(seconds):
            raise VenueUnavailable("binance REST request cancelled while waiting to retry")

    # -- the connection -----------------------------------------------------------------------

    def _exchange(self, req: _Request) -> tuple[int, Any, bytes]:
        """Send on the kept-alive connection; once more on a new one if the server had
        closed it while idle."""
        reused = self._conn_used
        try:
            return self._roundtrip(req)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            # RemoteDisconnected is a ConnectionResetError: the idle keep-alive race
            self._drop_connection()
            if not reused:
                raise
            self._reconnects += 1
            _log.debug("binance REST: keep-alive connection was closed by the server; reconnecting")
            return self._roundtrip(req)

    def _roundtrip(self, req: _Request) -> tuple[int, Any, bytes]:
        conn = self._connection()
        try:
            self._requests += 1
            conn.request(req.method, req.target, headers=req.headers)
            response = conn.getresponse()
            body = response.read()
        except BaseException:
            self._drop_connection()  # the connection's state is unknown: never reuse it
            raise
        self._responses += 1
        self._conn_used = True
        if response.will_close:
            self._drop_connection()
        return response.status, response.headers, body

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            timeout = self._config.rest_timeout_s
            if self._https:
                self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
            self._conn_used = False
            self._connections += 1
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._conn_used = False

    def _mono(self) -> float:
        return self._clock.monotonic_ns() / _NS

    def _redact(self, text: str) -> str:
        return redact(text, self._config.secrets())
