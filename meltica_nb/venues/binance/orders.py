"""Binance spot order endpoints: signed REST requests and the order/report shapes Binance uses.

Signing follows Binance's documentation for ``SIGNED`` endpoints: the parameters, with
``recvWindow`` and ``timestamp`` (ms) last, are url-encoded into the query string, and
``signature`` = hex HMAC-SHA256 of exactly that string under the API secret is appended; the API
key travels in the ``X-MBX-APIKEY`` header. Signed requests are never retried: a retry would
carry a stale timestamp, and an order must not be placed twice.

The venue's refusals come back as :class:`~meltica_nb.errors.RequestRejected` carrying
Binance's own ``code`` (``-1022`` bad signature, ``-1021`` timestamp outside ``recvWindow``,
``-1121`` invalid symbol, ``-2010`` new order rejected, ``-2011`` cancel rejected, ``-2013``
no such order) and its message, with any credential redacted.

:func:`report_from_order` and :func:`report_from_execution` turn a REST order object and a
user-data-stream ``executionReport`` into the venue-neutral
:class:`~meltica_nb.exec_reports.VenueReport`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson

from meltica_nb.errors import ConfigError, ProtocolError
from meltica_nb.exec_reports import VenueReport
from meltica_nb.schema import OrderStatus
from meltica_nb.venues.binance.config import BinanceConfig, Secret
from meltica_nb.venues.binance.rest import BinanceRest

__all__ = ["STATUS", "BinanceOrders", "report_from_execution", "report_from_order",
           "reports_from_trades", "sign"]

#: Binance order status -> the engine's lifecycle status.
STATUS: Mapping[str, OrderStatus] = {
    "NEW": OrderStatus.ACK,
    "PENDING_NEW": OrderStatus.ACK,
    "PENDING_CANCEL": OrderStatus.ACK,
    "PARTIALLY_FILLED": OrderStatus.PARTIAL,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELLED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}

# Request weights (Binance spot API docs).
_ORDER_WEIGHT = 1
_QUERY_WEIGHT = 4
_OPEN_ORDERS_WEIGHT = 6
_MY_TRADES_WEIGHT = 20
_LISTEN_KEY_WEIGHT = 2
_ORDER_PATH = "/api/v3/order"
_LISTEN_KEY_PATH = "/api/v3/userDataStream"


def sign(query: str, secret: Secret | str) -> str:
    """Hex HMAC-SHA256 of ``query`` under ``secret``: Binance's ``signature`` parameter."""
    key = secret.reveal() if isinstance(secret, Secret) else secret
    return hmac.new(key.encode(), query.encode(), hashlib.sha256).hexdigest()


class BinanceOrders:
    """Signed order requests and the listenKey life cycle over one :class:`BinanceRest`.

    Parameters
    ----------
    config : credentials (``api_key``, ``api_secret``) and endpoints.
    rest : the keep-alive REST client the requests travel on.
    now_ms : the local time in ms for ``timestamp`` (add an offset when the local clock
        runs apart from the venue's).
    recv_window_ms : how long after ``timestamp`` the venue may still accept the request.
    """

    def __init__(self, config: BinanceConfig, rest: BinanceRest, now_ms: Callable[[], int],
                 recv_window_ms: int = 5000):
        if config.api_key is None or config.api_secret is None:
            raise ConfigError("trading needs MELTICA_BINANCE_API_KEY and "
                              "MELTICA_BINANCE_API_SECRET (or their *_FILE variants)")
        if config.market != "spot":
            raise ConfigError(f"trading is implemented for Binance spot, not {config.market!r}")
        if not 0 < recv_window_ms <= 60_000:
            raise ConfigError(f"recv_window_ms must be in (0, 60000], got {recv_window_ms!r}")
        self._secret = config.api_secret
        self._rest = rest
        self._now_ms = now_ms
        self.recv_window_ms = recv_window_ms

    # -- orders -------------------------------------------------------------------------------

    def new_order(self, params: Mapping[str, Any]) -> dict:
        """POST /api/v3/order with ``params`` (symbol, side, type, quantity, ...)."""
        return self._signed("POST", _ORDER_PATH, params, _ORDER_WEIGHT)

    def cancel_order(self, symbol: str, client_order_id: str) -> dict:
        """DELETE /api/v3/order of the order sent as ``client_order_id``."""
        return self._signed("DELETE", _ORDER_PATH,
                            {"symbol": symbol, "origClientOrderId": client_order_id},
                            _ORDER_WEIGHT)

    def query_order(self, symbol: str, client_order_id: str) -> dict:
        """GET /api/v3/order: the order's current state."""
        return self._signed("GET", _ORDER_PATH,
                            {"symbol": symbol, "origClientOrderId": client_order_id},
                            _QUERY_WEIGHT)

    def my_trades(self, symbol: str, order_id: int) -> list:
        """GET /api/v3/myTrades of one order: its fills, oldest first."""
        return self._signed("GET", "/api/v3/myTrades", {"symbol": symbol, "orderId": order_id},
                            _MY_TRADES_WEIGHT)

    def open_orders(self, symbol: str) -> list:
        """GET /api/v3/openOrders of one symbol."""
        return self._signed("GET", "/api/v3/openOrders", {"symbol": symbol},
                            _OPEN_ORDERS_WEIGHT)

    def _signed(self, method: str, path: str, params: Mapping[str, Any], weight: int):
        query = urlencode({**params, "recvWindow": self.recv_window_ms,
                           "timestamp": self._now_ms()})
        query += "&signature=" + sign(query, self._secret)
        body = self._rest.request(method, path, query, weight=weight, api_key=True, retries=0)
        return _json(body, path)

    # -- user data stream ---------------------------------------------------------------------

    def create_listen_key(self) -> str:
        """POST /api/v3/userDataStream: a new listenKey (valid 60 min unless kept alive)."""
        body = _json(self._rest.request("POST", _LISTEN_KEY_PATH, weight=_LISTEN_KEY_WEIGHT,
                                        api_key=True, retries=0), _LISTEN_KEY_PATH)
        key = body.get("listenKey") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise ProtocolError("binance userDataStream: no listenKey in the reply")
        return key

    def keepalive_listen_key(self, key: str) -> None:
        """PUT /api/v3/userDataStream: extend the key's validity by 60 min."""
        self._rest.request("PUT", _LISTEN_KEY_PATH, {"listenKey": key},
                           weight=_LISTEN_KEY_WEIGHT, api_key=True, retries=0)

    def close_listen_key(self, key: str) -> None:
        """DELETE /api/v3/userDataStream: the stream of ``key`` ends."""
        self._rest.request("DELETE", _LISTEN_KEY_PATH, {"listenKey": key},
                           weight=_LISTEN_KEY_WEIGHT, api_key=True, retries=0)


def _json(body: bytes, path: str):
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProtocolError(f"binance {path}: reply is not JSON: {body[:80]!r}") from None


def _status(text) -> OrderStatus:
    try:
        return STATUS[text]
    except (KeyError, TypeError):
        raise ProtocolError(f"binance: unknown order status {text!r}") from None


def report_from_order(order: Mapping) -> VenueReport:
    """A REST order object (``GET``/``DELETE /api/v3/order``) as a VenueReport."""
    try:
        client_id = order.get("origClientOrderId") or order["clientOrderId"]
        return VenueReport(client_id, int(order["orderId"]), _status(order["status"]),
                           order["executedQty"], order.get("cummulativeQuoteQty", "0"),
                           transact_ms=int(order.get("updateTime") or
                                           order.get("transactTime") or 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"binance order object without {exc}") from None


def reports_from_trades(venue_client_id: str, order_id: int, trades: list, filled: Decimal,
                        quantity: Decimal) -> list[VenueReport]:
    """One report per fill of ``myTrades`` beyond ``filled`` (cumulative), oldest first.

    This is how fills made while the user stream was down are recovered one by one: each
    becomes PARTIAL, the one completing ``quantity`` FILLED, with its own price and size.
    """
    out: list[VenueReport] = []
    cum, cum_quote = Decimal(0), Decimal(0)
    try:
        for trade in sorted(trades, key=lambda t: t["id"]):
            qty, price = Decimal(trade["qty"]), Decimal(trade["price"])
            cum += qty
            cum_quote += Decimal(trade.get("quoteQty") or qty * price)
            if cum <= filled:
                continue
            status = OrderStatus.FILLED if cum >= quantity else OrderStatus.PARTIAL
            out.append(VenueReport(venue_client_id, order_id, status, str(cum), str(cum_quote),
                                   trade["price"], trade["qty"], trade.get("commission", "0"),
                                   int(trade.get("time", 0))))
    except (KeyError, TypeError, ArithmeticError) as exc:
        raise ProtocolError(f"binance myTrades entry without a valid {exc}") from None
    return out


def report_from_execution(event: Mapping) -> VenueReport:
    """A user-data-stream ``executionReport`` as a VenueReport.

    For a cancel Binance puts the cancel request's id in ``c`` and the order's own id in ``C``.
    """
    try:
        status = _status(event["X"])
        client_id = (event.get("C") or event["c"]) if status == OrderStatus.CANCELLED \
            else event["c"]
        reason = event.get("r", "NONE")
        return VenueReport(client_id, int(event["i"]), status, event["z"], event.get("Z", "0"),
                           event.get("L", "0"), event.get("l", "0"), event.get("n") or "0",
                           int(event.get("T") or event.get("E") or 0),
                           0 if reason in ("NONE", None) else _REJECT_CODE)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"binance executionReport without {exc}") from None


#: ``reject_code`` of a report the venue rejected with a textual reason only (Binance's
#: executionReport ``r``): its generic "new order rejected" code.
_REJECT_CODE = -2010
