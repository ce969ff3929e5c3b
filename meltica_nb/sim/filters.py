"""A symbol's trading rules from its ``exchangeInfo`` entry, checked the way Binance checks them.

The simulator derives the rules from the same ``exchangeInfo`` body it serves, so a client that
reads the filters and rounds accordingly is never refused, and one that does not is refused with
Binance's own code and message (``-1013 Filter failure: PRICE_FILTER`` and so on). Everything is
:class:`~decimal.Decimal`: the simulator is not the hot path and its arithmetic must be exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from meltica_nb.errors import RequestRejected

__all__ = ["SymbolRules", "reject"]

_ZERO = Decimal(0)
_MAX_PLACES = 8  # Binance spot: base and quote asset precision


def reject(code: int, msg: str, status: int = 400) -> RequestRejected:
    """The error Binance answers with: ``{"code": code, "msg": msg}`` and an HTTP status."""
    return RequestRejected(msg, status=status, code=code)


def _check_grid(value: Decimal, low: Decimal, high: Decimal, step: Decimal, name: str,
                filter_type: str) -> None:
    """Binance's range-and-grid filters: ``low <= value <= high``, ``(value - low) % step == 0``
    (zero bounds and steps are not checked)."""
    if value <= _ZERO:
        raise reject(-1013, f"Invalid {name}.")
    out_of_range = (low > _ZERO and value < low) or (high > _ZERO and value > high)
    off_grid = step > _ZERO and (value - low) % step != _ZERO
    if out_of_range or off_grid:
        raise reject(-1013, f"Filter failure: {filter_type}")


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """PRICE_FILTER, LOT_SIZE and NOTIONAL of one symbol (zero bounds are not checked)."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_price: Decimal = _ZERO
    max_price: Decimal = _ZERO
    min_qty: Decimal = _ZERO
    max_qty: Decimal = _ZERO
    min_notional: Decimal = _ZERO
    max_notional: Decimal = _ZERO

    @classmethod
    def from_symbol_info(cls, info: dict) -> SymbolRules:
        """Read one entry of ``exchangeInfo["symbols"]``."""
        filters = {f.get("filterType"): f for f in info.get("filters", ())}
        price = filters.get("PRICE_FILTER", {})
        lot = filters.get("LOT_SIZE", {})
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}

        def num(section: dict, key: str) -> Decimal:
            return Decimal(str(section.get(key, "0")))

        return cls(symbol=info["symbol"], base=info.get("baseAsset", ""),
                   quote=info.get("quoteAsset", ""), tick_size=num(price, "tickSize"),
                   step_size=num(lot, "stepSize"), min_price=num(price, "minPrice"),
                   max_price=num(price, "maxPrice"), min_qty=num(lot, "minQty"),
                   max_qty=num(lot, "maxQty"),
                   min_notional=num(notional, "minNotional") or num(notional, "notional"),
                   max_notional=num(notional, "maxNotional"))

    def check_precision(self, name: str, value: Decimal) -> None:
        """-1111 when ``value`` has more decimals than the asset precision allows."""
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < -_MAX_PLACES:
            raise reject(-1111, f"Parameter '{name}' has too much precision.")

    def check_price(self, price: Decimal) -> None:
        """PRICE_FILTER: within [minPrice, maxPrice] and on the tick grid."""
        _check_grid(price, self.min_price, self.max_price, self.tick_size, "price",
                    "PRICE_FILTER")

    def check_quantity(self, qty: Decimal) -> None:
        """LOT_SIZE: within [minQty, maxQty] and on the step grid."""
        _check_grid(qty, self.min_qty, self.max_qty, self.step_size, "quantity", "LOT_SIZE")

    def check_notional(self, notional: Decimal) -> None:
        """NOTIONAL: price x quantity within [minNotional, maxNotional]."""
        too_low = self.min_notional > _ZERO and notional < self.min_notional
        too_high = self.max_notional > _ZERO and notional > self.max_notional
        if too_low or too_high:
            raise reject(-1013, "Filter failure: NOTIONAL")

    def round_quantity(self, qty: Decimal) -> Decimal:
        """``qty`` rounded down to the step grid (a quote-quantity market order's base size)."""
        if self.step_size == _ZERO:
            return qty
        return (qty // self.step_size) * self.step_size
