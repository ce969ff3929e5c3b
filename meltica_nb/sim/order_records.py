"""Orders and what the market shows, as the matcher sees them: plain immutable records.

Sides, types, statuses and execution types are Binance's strings (``"BUY"``, ``"LIMIT"``,
``"PARTIALLY_FILLED"``, ``"TRADE"``); quantities and prices are exact decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "BUY",
    "SELL",
    "BookView",
    "Execution",
    "Level",
    "MarketTrade",
    "Order",
    "OrderRequest",
]

BUY, SELL = "BUY", "SELL"
NEW, PARTIALLY_FILLED, FILLED = "NEW", "PARTIALLY_FILLED", "FILLED"
CANCELED, EXPIRED, TRADE = "CANCELED", "EXPIRED", "TRADE"
LIMIT, MARKET, LIMIT_MAKER = "LIMIT", "MARKET", "LIMIT_MAKER"
GTC, IOC, FOK = "GTC", "IOC", "FOK"
ORDER_TYPES = (LIMIT, MARKET, LIMIT_MAKER)
OPEN = (NEW, PARTIALLY_FILLED)
_ZERO = Decimal(0)

Level = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class BookView:
    """The market's best levels at one moment: (price, quantity) per side, best first."""

    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()

    @classmethod
    def from_depth(cls, depth: dict) -> BookView:
        """From a Binance depth body (``{"bids": [["price", "qty"], ...], "asks": ...}``)."""
        return cls(tuple((Decimal(p), Decimal(q)) for p, q in depth.get("bids", ())),
                   tuple((Decimal(p), Decimal(q)) for p, q in depth.get("asks", ())))

    def opposing(self, side: str) -> tuple[Level, ...]:
        """The levels an order of ``side`` takes from (asks for a buy)."""
        return self.asks if side == BUY else self.bids


@dataclass(frozen=True, slots=True)
class MarketTrade:
    """One print of the market: price, quantity and the aggressor's side."""

    price: Decimal
    qty: Decimal
    taker_side: str


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a client asks for; ``quote_quantity`` is ``quoteOrderQty`` (MARKET only)."""

    side: str
    type: str = LIMIT
    quantity: Decimal | None = None
    price: Decimal | None = None
    time_in_force: str | None = None
    quote_quantity: Decimal | None = None
    client_order_id: str = ""


@dataclass(frozen=True, slots=True)
class Order:
    """The state of one order after its latest execution (immutable: each step is a new one)."""

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    orig_quote_qty: Decimal
    time_ms: int
    update_ms: int
    status: str = NEW
    executed_qty: Decimal = _ZERO
    cum_quote: Decimal = _ZERO
    working_ms: int = -1  # when it went on the book; -1: never

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def is_working(self) -> bool:
        """True while the order rests on the book."""
        return self.is_open and self.working_ms >= 0


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution report: ``kind`` is Binance's execution type (NEW, TRADE, CANCELED, ...)."""

    order: Order
    kind: str
    time_ms: int
    last_qty: Decimal = _ZERO
    last_price: Decimal = _ZERO
    trade_id: int = -1
    maker: bool = False
    cancel_id: str = ""  # the client id of the cancel request (Binance's ``c`` on a cancel)
