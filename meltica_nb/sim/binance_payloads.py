"""The JSON bodies of Binance's spot order endpoints and user data stream events.

Field names, order and formats as Binance documents them (``rest-api.md``: new order ACK,
RESULT and FULL responses, query and cancel responses; ``user-data-stream.md``:
``executionReport``); amounts print with 8 decimals. Commissions are zero in the simulator.
"""

from __future__ import annotations

from decimal import Decimal

from meltica_nb.sim.order_records import Execution, Order

__all__ = ["cancel_body", "execution_report", "fmt", "new_order_body", "query_body",
           "trade_body"]

_NOTHING = "0.00000000"


def fmt(value: Decimal) -> str:
    """An amount as Binance prints it (``"0.10000000"``)."""
    return f"{value:.8f}"


def execution_report(ex: Execution, event_ms: int) -> dict:
    """The ``executionReport`` event of one execution, in Binance's field order and format."""
    order = ex.order
    cancel = ex.kind == "CANCELED"
    return {
        "e": "executionReport", "E": event_ms, "s": order.symbol,
        "c": ex.cancel_id if cancel else order.client_order_id,
        "S": order.side, "o": order.type, "f": order.time_in_force,
        "q": fmt(order.orig_qty), "p": fmt(order.price), "P": _NOTHING,
        "F": _NOTHING, "g": -1, "C": order.client_order_id if cancel else "",
        "x": ex.kind, "X": order.status, "r": "NONE", "i": order.order_id,
        "l": fmt(ex.last_qty), "z": fmt(order.executed_qty), "L": fmt(ex.last_price),
        "n": "0", "N": None, "T": ex.time_ms, "t": ex.trade_id, "I": 0,
        "w": order.is_working, "m": ex.maker, "M": False, "O": order.time_ms,
        "Z": fmt(order.cum_quote), "Y": fmt(ex.last_qty * ex.last_price),
        "Q": fmt(order.orig_quote_qty),
        **({"W": order.working_ms} if order.working_ms >= 0 else {}),
        "V": "NONE",
    }


def _order_fields(order: Order) -> dict:
    """The fields every order body shares."""
    return {"price": fmt(order.price), "origQty": fmt(order.orig_qty),
            "executedQty": fmt(order.executed_qty),
            "origQuoteOrderQty": fmt(order.orig_quote_qty),
            "cummulativeQuoteQty": fmt(order.cum_quote), "status": order.status,
            "timeInForce": order.time_in_force, "type": order.type, "side": order.side}


def query_body(order: Order) -> dict:
    """``GET /api/v3/order`` and ``openOrders`` entries."""
    return {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
            "clientOrderId": order.client_order_id, **_order_fields(order),
            "stopPrice": _NOTHING, "icebergQty": _NOTHING, "time": order.time_ms,
            "updateTime": order.update_ms, "isWorking": order.is_working,
            "workingTime": order.working_ms, "selfTradePreventionMode": "NONE"}


def cancel_body(ex: Execution) -> dict:
    """``DELETE /api/v3/order`` (and each entry of ``DELETE openOrders``)."""
    order = ex.order
    return {"symbol": order.symbol, "origClientOrderId": order.client_order_id,
            "orderId": order.order_id, "orderListId": -1, "clientOrderId": ex.cancel_id,
            "transactTime": ex.time_ms, **_order_fields(order),
            "selfTradePreventionMode": "NONE"}


def new_order_body(reports: list[Execution], resp_type: str, quote_asset: str) -> dict:
    """``POST /api/v3/order`` as ``ACK``, ``RESULT`` or ``FULL`` (with its taker fills)."""
    order = reports[-1].order
    body = {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
            "clientOrderId": order.client_order_id, "transactTime": order.time_ms}
    if resp_type == "ACK":
        return body
    body.update(_order_fields(order), workingTime=order.working_ms,
                selfTradePreventionMode="NONE")
    if resp_type == "FULL":
        body["fills"] = [{"price": fmt(r.last_price), "qty": fmt(r.last_qty),
                          "commission": _NOTHING, "commissionAsset": quote_asset,
                          "tradeId": r.trade_id} for r in reports if r.kind == "TRADE"]
    return body


def trade_body(ex: Execution, quote_asset: str) -> dict:
    """One entry of ``GET /api/v3/myTrades`` for a TRADE execution."""
    order = ex.order
    return {"symbol": order.symbol, "id": ex.trade_id, "orderId": order.order_id,
            "orderListId": -1, "price": fmt(ex.last_price), "qty": fmt(ex.last_qty),
            "quoteQty": fmt(ex.last_price * ex.last_qty), "commission": _NOTHING,
            "commissionAsset": quote_asset, "time": ex.time_ms, "isBuyer": order.side == "BUY",
            "isMaker": ex.maker, "isBestMatch": True}
