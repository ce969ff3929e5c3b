"""BinanceTrader: the engine's trader for Binance spot (signed REST + user data stream).

Registered with ``engine.add_trader(BinanceTrader(engine, config))``, it has the feed life
cycle (``prepare`` at ``engine.start()``, ``tasks`` on the feeds' TaskGroup, ``stats``) and
the :class:`~meltica_nb.order_gateway.Trader` methods the order gateway calls:

* ``prepare`` loads ``exchangeInfo`` for the configured symbols, registers them and gives their
  filters to the gateway's validator, so an order is checked against the venue's own rules
  before it is sent;
* ``place`` / ``cancel`` / ``query`` send signed REST requests (the venue client id is the
  tracker's, the consumer's own id never leaves the engine);
* the user-stream thread reports executions and reconciles open orders after each connect.

It uses a REST connection of its own: an order never queues behind a depth snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import orjson

from meltica_nb.clock import Clock
from meltica_nb.concurrency import CancelToken
from meltica_nb.dead_letter_queue import DeadLetterReason
from meltica_nb.errors import ConfigError, RequestRejected
from meltica_nb.exec_reports import VenueReport
from meltica_nb.fixedpoint import from_mantissa
from meltica_nb.order_tracker import TrackedOrder
from meltica_nb.order_validation import SymbolFilters
from meltica_nb.schema import OrderStatus, OrderType, Side, TimeInForce
from meltica_nb.venues.binance.config import BinanceConfig, venue_symbol
from meltica_nb.venues.binance.orders import (
    BinanceOrders,
    report_from_order,
    reports_from_trades,
)
from meltica_nb.venues.binance.rest import BinanceRest
from meltica_nb.venues.binance.symbols import BinanceSymbols
from meltica_nb.venues.binance.user_stream import BinanceUserStream, UserStreamStats

__all__ = ["NO_SUCH_ORDER", "BinanceTrader", "TraderStats", "TradingConfig"]

#: Binance's "Order does not exist." (query or cancel of an unknown order).
NO_SUCH_ORDER = -2013


@dataclass(frozen=True)
class TradingConfig:
    """Trading settings of one Binance account (TOML ``[binance.trading]``).

    Parameters
    ----------
    recv_window_ms : how long after its ``timestamp`` the venue may accept a signed request.
    time_offset_ms : added to the local clock for ``timestamp`` (when clocks disagree).
    keepalive_s : listenKey keep-alive interval (Binance: every 30 min, a key lives 60).
    """

    recv_window_ms: int = 5000
    time_offset_ms: int = 0
    keepalive_s: float = 1800.0

    @classmethod
    def from_dict(cls, raw: dict | None) -> TradingConfig:
        """From a TOML table; unknown keys are errors."""
        try:
            return cls(**(raw or {}))
        except TypeError as exc:
            raise ConfigError(f"[binance.trading]: {exc}") from None

    def __post_init__(self) -> None:
        if not self.keepalive_s > 0:
            raise ConfigError(f"keepalive_s must be > 0, got {self.keepalive_s!r}")


@dataclass(frozen=True)
class TraderStats:
    """Requests sent and the user stream's counters."""

    name: str
    placed: int
    cancels: int
    queries: int
    trade_queries: int
    rejected: int
    user_stream: UserStreamStats


class BinanceTrader:
    """Places, cancels and queries Binance spot orders for the engine's order gateway.

    Parameters
    ----------
    engine : the engine (its registry, clock, DLQ and order gateway).
    config : endpoints, symbols and credentials (``BinanceConfig.from_env``).
    trading : signing window, clock offset and keep-alive.
    """

    def __init__(self, engine, config: BinanceConfig, trading: TradingConfig | None = None):
        self.engine = engine
        self.config = config
        self.trading = trading or TradingConfig()
        self.clock: Clock = engine.clock
        self.venue = engine.registry.venue_id("binance")
        self.name = "binance:trader"
        self.rest = BinanceRest(config, self.clock)
        self.api = BinanceOrders(config, self.rest, self._now_ms, self.trading.recv_window_ms)
        self.gateway = engine.orders
        self.symbols = BinanceSymbols(engine.registry)
        self.stream = BinanceUserStream(config, self.api, self.gateway.reports.report,
                                        self.reconcile, self._on_malformed,
                                        self.trading.keepalive_s)
        self._n = dict.fromkeys(("placed", "cancels", "queries", "trade_queries", "rejected"), 0)

    def _now_ms(self) -> int:
        return self.clock.now_ns() // 1_000_000 + self.trading.time_offset_ms

    # -- life cycle (engine.start / stop) -----------------------------------------------------

    def prepare(self) -> None:
        """Load the configured symbols' exchangeInfo; give their filters to the validator."""
        if not self.config.symbols:
            raise ConfigError("a Binance trader needs at least one symbol")
        wanted = {venue_symbol(s) for s in self.config.symbols}
        entries = [e for e in orjson.loads(self.rest.exchange_info()).get("symbols") or []
                   if isinstance(e, dict) and e.get("symbol") in wanted]
        missing = wanted - {e["symbol"] for e in entries}
        if missing:
            raise ConfigError(f"binance exchangeInfo does not list {sorted(missing)}")
        self.symbols.add_exchange_info({"symbols": entries})
        for entry in entries:
            known = self.symbols[entry["symbol"]]
            self.gateway.validator.add(self.venue, SymbolFilters.from_exchange_info(
                entry, known.instrument, known.canonical, known.price_exp, known.qty_exp))

    def tasks(self) -> list[tuple[str, object]]:
        """The user-stream thread."""
        return [(f"{self.name}:user-stream", self._run_stream)]

    def _run_stream(self, cancel: CancelToken) -> None:
        try:
            self.stream.run(cancel)
        finally:
            self.rest.close()

    # -- the gateway's Trader methods ----------------------------------------------------------

    def place(self, order: TrackedOrder) -> int:
        """POST the order; return Binance's orderId."""
        self._n["placed"] += 1
        try:
            reply = self.api.new_order(self._params(order))
        except RequestRejected:
            self._n["rejected"] += 1
            raise
        return int(reply.get("orderId", 0)) if isinstance(reply, dict) else 0

    def cancel(self, order: TrackedOrder) -> None:
        """DELETE the order (its CANCELLED report comes on the user stream)."""
        self._n["cancels"] += 1
        self.api.cancel_order(self._symbol(order), order.venue_client_id)

    def query(self, order: TrackedOrder) -> VenueReport:
        """GET the order's current state."""
        self._n["queries"] += 1
        return report_from_order(self.api.query_order(self._symbol(order),
                                                      order.venue_client_id))

    def reconcile(self) -> int:
        """Bring every open order up to date by REST; return how many reports were new.

        The order is queried; if it filled more than was reported, its fills are fetched
        (``myTrades``) and reported one by one, then its current state. An order the venue
        does not know (the request failed in transit) is reported REJECTED.
        """
        new = 0
        for order in self.gateway.tracker.open_orders(self.venue):
            try:
                reports = self._catch_up(order)
            except RequestRejected as exc:
                if exc.code != NO_SUCH_ORDER or order.status != OrderStatus.NONE:
                    raise
                reports = [VenueReport(order.venue_client_id, 0, OrderStatus.REJECTED, "0",
                                       reject_code=NO_SUCH_ORDER)]
            new += sum(self.gateway.reports.report(r) for r in reports)
        return new

    def _catch_up(self, order: TrackedOrder) -> list[VenueReport]:
        """The reports missed since the last one: the ACK if none came, each fill, then the
        order's current state (the tracker drops whatever was already delivered)."""
        state = self.query(order)
        missed = [] if order.status != OrderStatus.NONE else [
            VenueReport(order.venue_client_id, state.exchange_order_id, OrderStatus.ACK, "0",
                        transact_ms=state.transact_ms)]
        info = self.engine.registry.instrument(order.instrument)
        filled = Decimal(order.filled).scaleb(-info.qty_exp)
        if Decimal(state.filled_qty) > filled and state.exchange_order_id:
            self._n["trade_queries"] += 1
            trades = self.api.my_trades(self._symbol(order), state.exchange_order_id)
            quantity = Decimal(order.quantity).scaleb(-info.qty_exp)
            missed += reports_from_trades(order.venue_client_id, state.exchange_order_id,
                                          trades, filled, quantity)
        return [*missed, state]

    # -- helpers -------------------------------------------------------------------------------

    def _symbol(self, order: TrackedOrder) -> str:
        return venue_symbol(self.engine.registry.instrument(order.instrument).symbol)

    def _params(self, order: TrackedOrder) -> dict:
        info = self.engine.registry.instrument(order.instrument)
        params = {"symbol": venue_symbol(info.symbol), "side": Side(order.side).name,
                  "type": OrderType(order.order_type).name,
                  "quantity": from_mantissa(order.quantity, info.qty_exp),
                  "newClientOrderId": order.venue_client_id, "newOrderRespType": "ACK"}
        if order.order_type != OrderType.MARKET:
            params["price"] = from_mantissa(order.price, info.price_exp)
        if order.time_in_force != TimeInForce.NONE:
            params["timeInForce"] = TimeInForce(order.time_in_force).name
        return params

    def _on_malformed(self, detail: str, raw: bytes) -> None:
        self.engine.dlq.offer_text(DeadLetterReason.MALFORMED,
                                   f"{self.name}: user stream: {detail}", raw=raw)

    def stats(self) -> TraderStats:
        """Counters of the trader and its user stream."""
        return TraderStats(self.name, **self._n, user_stream=self.stream.stats())

