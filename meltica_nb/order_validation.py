"""Order validation: nothing leaves the engine that the venue's own filters would refuse.

A SubmitOrder payload names its order in text (``{"instrument": "BTC-USDT", "side": "BUY",
"type": "LIMIT", "quantity": "0.010", "price": "60000.5", "client_order_id": "a1"}``).
:class:`OrderValidator` checks it against the instrument's :class:`SymbolFilters` (read from the
venue's ``exchangeInfo``: PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, NOTIONAL / MIN_NOTIONAL,
orderTypes) and writes the result into a pooled ORDER_REQUEST record as exact mantissas. Every
refusal is a :class:`~meltica_nb.errors.CommandRefused` with ``ErrorCode.INVALID_ORDER`` and a
message that names the field, the value and the rule, so the failed ControlAck says why.

Quantities and prices must be decimal text (or integers): a float such as ``0.1`` is not the
decimal the caller meant, and a mantissa is never rounded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np

from .errors import CommandRefused, DecimalError
from .fixedpoint import normalize, to_mantissa
from .schema import ErrorCode, OrderType, Side, TimeInForce

__all__ = ["ORDER_FIELDS", "OrderValidator", "SymbolFilters", "check_client_order_id"]

#: Binance's documented pattern for client order ids (36 characters at most).
_CLIENT_ID = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")

#: Payload fields a SubmitOrder may carry.
ORDER_FIELDS = frozenset({"client_order_id", "venue", "instrument", "side", "type",
                          "time_in_force", "quantity", "price", "decision_id", "trace_id"})

_TYPES = {"LIMIT": OrderType.LIMIT, "MARKET": OrderType.MARKET,
          "LIMIT_MAKER": OrderType.LIMIT_MAKER}
_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
_TIFS = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}


def _refuse(message: str) -> CommandRefused:
    return CommandRefused(ErrorCode.INVALID_ORDER, message)


def check_client_order_id(value) -> str:
    """The id if it matches Binance's ``^[.A-Z:/a-z0-9_-]{1,36}$``, else CommandRefused."""
    if not isinstance(value, str) or not _CLIENT_ID.fullmatch(value):
        raise _refuse(f"client_order_id must be 1..36 characters of [.A-Za-z0-9:/_-], "
                      f"got {value!r}")
    return value


@dataclass(frozen=True)
class SymbolFilters:
    """One instrument's trading rules as mantissas (0 = the venue sets no such bound).

    Prices are at ``price_exp``, quantities at ``qty_exp``, ``min_notional`` at
    ``price_exp + qty_exp`` (a price mantissa times a quantity mantissa).
    """

    instrument: int
    symbol: str
    price_exp: int
    qty_exp: int
    tick: int = 0
    min_price: int = 0
    max_price: int = 0
    step: int = 0
    min_qty: int = 0
    max_qty: int = 0
    market_step: int = 0
    market_min_qty: int = 0
    market_max_qty: int = 0
    min_notional: int = 0
    order_types: frozenset[int] = frozenset(_TYPES.values())

    @classmethod
    def from_exchange_info(cls, entry: Mapping, instrument: int, symbol: str,
                           price_exp: int, qty_exp: int) -> SymbolFilters:
        """Read one ``exchangeInfo`` symbol entry (its ``filters`` and ``orderTypes``)."""
        values: dict = {}
        by_type = {f.get("filterType"): f for f in entry.get("filters") or ()
                   if isinstance(f, Mapping)}
        price = by_type.get("PRICE_FILTER", {})
        values.update(tick=_amount(price.get("tickSize"), price_exp),
                      min_price=_amount(price.get("minPrice"), price_exp),
                      max_price=_amount(price.get("maxPrice"), price_exp))
        lot = by_type.get("LOT_SIZE", {})
        values.update(step=_amount(lot.get("stepSize"), qty_exp),
                      min_qty=_amount(lot.get("minQty"), qty_exp),
                      max_qty=_amount(lot.get("maxQty"), qty_exp))
        market = by_type.get("MARKET_LOT_SIZE", {})
        values.update(market_step=_amount(market.get("stepSize"), qty_exp),
                      market_min_qty=_amount(market.get("minQty"), qty_exp),
                      market_max_qty=_amount(market.get("maxQty"), qty_exp))
        notional = by_type.get("NOTIONAL") or by_type.get("MIN_NOTIONAL") or {}
        values["min_notional"] = _amount(notional.get("minNotional"), price_exp + qty_exp)
        types = entry.get("orderTypes")
        if isinstance(types, list):
            values["order_types"] = frozenset(_TYPES[t] for t in types if t in _TYPES)
        return cls(instrument, symbol, price_exp, qty_exp, **values)


def _amount(text, exponent: int) -> int:
    """Mantissa of an exchangeInfo bound at ``exponent``; 0 when absent (Binance: "0" too)."""
    if not isinstance(text, str):
        return 0
    try:
        return int(Decimal(text).scaleb(exponent).to_integral_value())
    except InvalidOperation:
        return 0


class OrderValidator:
    """Checks SubmitOrder payloads against the filters of the instruments a venue trades."""

    def __init__(self) -> None:
        self._filters: dict[tuple[int, int], SymbolFilters] = {}

    def add(self, venue: int, filters: SymbolFilters) -> None:
        """Accept orders for ``filters.instrument`` on ``venue`` under these rules."""
        self._filters[venue, filters.instrument] = filters

    def filters(self, venue: int, instrument: int) -> SymbolFilters:
        """The rules of an instrument, or CommandRefused when the venue does not trade it."""
        found = self._filters.get((venue, instrument))
        if found is None:
            raise _refuse("instrument is not traded on this venue (not in its exchangeInfo)")
        return found

    def fill(self, record: np.void | np.ndarray, payload: Mapping, venue: int,
             instrument: int) -> SymbolFilters:
        """Validate ``payload`` and write side, type, time in force, price and quantity."""
        rules = self.filters(venue, instrument)
        side = _choice(payload.get("side"), _SIDES, "side")
        otype = _choice(payload.get("type"), _TYPES, "type")
        if otype not in rules.order_types:
            raise _refuse(f"order type {OrderType(otype).name} is not allowed on {rules.symbol}")
        quantity = _positive(payload.get("quantity"), rules.qty_exp, "quantity")
        if otype == OrderType.MARKET:
            _check_market(payload, rules, quantity)
            price, tif = 0, TimeInForce.NONE
        else:
            price = _positive(payload.get("price"), rules.price_exp, "price")
            tif = _time_in_force(payload.get("time_in_force"), otype)
            _check_limit(rules, price, quantity)
        record["side"], record["order_type"], record["time_in_force"] = side, otype, tif
        record["price"], record["quantity"] = price, quantity
        return rules


def _choice(value, names: Mapping[str, int], what: str) -> int:
    key = value.upper() if isinstance(value, str) else value
    if key not in names:
        raise _refuse(f"{what} must be one of {sorted(names)}, got {value!r}")
    return int(names[key])


def _time_in_force(value, otype: int) -> int:
    if otype == OrderType.LIMIT_MAKER:
        if value is not None:
            raise _refuse("LIMIT_MAKER orders take no time_in_force")
        return TimeInForce.NONE
    return TimeInForce.GTC if value is None else _choice(value, _TIFS, "time_in_force")


def _positive(value, exponent: int, what: str) -> int:
    """A strictly positive exact mantissa from decimal text or an int."""
    if value is None:
        raise _refuse(f"{what} is required")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _refuse(f"{what} must be decimal text such as '0.01' (not "
                      f"{type(value).__name__}), got {value!r}")
    try:
        mantissa = to_mantissa(str(value), exponent)
    except DecimalError as exc:
        raise _refuse(f"{what} {value!r}: {exc}") from None
    if mantissa <= 0:
        raise _refuse(f"{what} must be > 0, got {value!r}")
    return mantissa


def _check_limit(rules: SymbolFilters, price: int, quantity: int) -> None:
    _bounds("price", price, rules.tick, rules.min_price, rules.max_price, rules.price_exp)
    _bounds("quantity", quantity, rules.step, rules.min_qty, rules.max_qty, rules.qty_exp)
    if rules.min_notional and price * quantity < rules.min_notional:
        exponent = rules.price_exp + rules.qty_exp
        raise _refuse(f"notional {_text(price * quantity, exponent)} is below minNotional "
                      f"{_text(rules.min_notional, exponent)}")


def _check_market(payload: Mapping, rules: SymbolFilters, quantity: int) -> None:
    """Market orders: no price; quantity within MARKET_LOT_SIZE (else LOT_SIZE)."""
    if payload.get("price") is not None:
        raise _refuse("MARKET orders take no price")
    if payload.get("time_in_force") is not None:
        raise _refuse("MARKET orders take no time_in_force")
    step = rules.market_step or rules.step
    _bounds("quantity", quantity, step, rules.market_min_qty or rules.min_qty,
            rules.market_max_qty or rules.max_qty, rules.qty_exp)


def _text(mantissa: int, exponent: int) -> str:
    """Readable decimal text of a mantissa (``"9000"``, ``"0.00001"``) for messages."""
    return normalize(str(Decimal(mantissa).scaleb(-exponent).quantize(Decimal(1).scaleb(
        -exponent))))


def _bounds(what: str, value: int, step: int, low: int, high: int, exponent: int) -> None:
    if low and value < low:
        raise _refuse(f"{what} {_text(value, exponent)} is below the minimum "
                      f"{_text(low, exponent)}")
    if high and value > high:
        raise _refuse(f"{what} {_text(value, exponent)} is above the maximum "
                      f"{_text(high, exponent)}")
    if step and (value - low) % step:
        raise _refuse(f"{what} {_text(value, exponent)} is not a multiple of the step "
                      f"{_text(step, exponent)}")
