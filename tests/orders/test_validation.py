"""Order validation against exchangeInfo filters: every refusal names the rule it broke."""

import numpy as np
import pytest

from meltica_nb.errors import CommandRefused
from meltica_nb.order_validation import OrderValidator, SymbolFilters, check_client_order_id
from meltica_nb.schema import ORDER_REQUEST, ErrorCode, OrderType, Side, TimeInForce

#: The BTCUSDT entry of Binance spot exchangeInfo, in the shape Binance documents it.
ENTRY = {
    "symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT",
    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT"],
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
         "tickSize": "0.01000000"},
        {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
         "stepSize": "0.00001000"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "76.5",
         "stepSize": "0.00000000"},
        {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
         "maxNotional": "9000000.00000000", "applyMaxToMarket": False},
    ],
}
VENUE, INST = 1, 3


@pytest.fixture
def validator():
    v = OrderValidator()
    v.add(VENUE, SymbolFilters.from_exchange_info(ENTRY, INST, "BTC-USDT", 8, 8))
    return v


def order(**overrides):
    payload = {"side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "60000.01"}
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def fill(validator, **overrides):
    rec = np.zeros(1, ORDER_REQUEST)[0]
    validator.fill(rec, order(**overrides), VENUE, INST)
    return rec


def refused(validator, **overrides) -> str:
    with pytest.raises(CommandRefused) as info:
        fill(validator, **overrides)
    assert info.value.code == ErrorCode.INVALID_ORDER
    return str(info.value)


def test_filters_are_read_as_mantissas():
    f = SymbolFilters.from_exchange_info(ENTRY, INST, "BTC-USDT", 8, 8)
    assert (f.tick, f.min_price, f.max_price) == (1_000_000, 1_000_000, 10**14)
    assert (f.step, f.min_qty, f.max_qty) == (1000, 1000, 9000 * 10**8)
    assert (f.market_step, f.market_max_qty) == (0, 7_650_000_000)
    assert f.min_notional == 5 * 10**16
    assert f.order_types == {OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.MARKET}


def test_a_valid_limit_order_is_written_exactly(validator):
    rec = fill(validator, side="sell", time_in_force="IOC")
    assert (rec["side"], rec["order_type"], rec["time_in_force"]) == (
        Side.SELL, OrderType.LIMIT, TimeInForce.IOC)
    assert (rec["price"], rec["quantity"]) == (6_000_001_000_000, 100_000)


def test_limit_defaults_to_gtc_and_market_has_no_price(validator):
    assert fill(validator)["time_in_force"] == TimeInForce.GTC
    rec = fill(validator, type="MARKET", price=None)
    assert (rec["price"], rec["time_in_force"]) == (0, TimeInForce.NONE)


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"quantity": "0"}, "quantity must be > 0"),
    ({"quantity": "-1"}, "quantity must be > 0"),
    ({"quantity": 0.001}, "must be decimal text"),
    ({"quantity": None}, "quantity is required"),
    ({"quantity": "abc"}, "quantity 'abc'"),
    ({"price": None}, "price is required"),
    ({"side": "HOLD"}, "side must be one of"),
    ({"type": "STOP"}, "type must be one of"),
    ({"time_in_force": "GTD"}, "time_in_force must be one of"),
    ({"price": "60000.015"}, "price 60000.015"),
    ({"price": "0.001"}, "below the minimum 0.01"),
    ({"quantity": "0.000015"}, "not a multiple of the step 0.00001"),
    ({"quantity": "9001"}, "above the maximum 9000"),
    ({"quantity": "0.00001", "price": "100"}, "below minNotional 5"),
    ({"type": "MARKET"}, "MARKET orders take no price"),
    ({"type": "MARKET", "price": None, "quantity": "77"}, "above the maximum 76.5"),
    ({"type": "LIMIT_MAKER", "time_in_force": "GTC"}, "LIMIT_MAKER orders take no"),
])
def test_each_rule_refuses_with_a_clear_reason(validator, overrides, reason):
    assert reason in refused(validator, **overrides)


def test_an_instrument_the_venue_does_not_list_is_refused(validator):
    rec = np.zeros(1, ORDER_REQUEST)[0]
    with pytest.raises(CommandRefused, match="not traded on this venue"):
        validator.fill(rec, order(), VENUE, INST + 1)


def test_an_order_type_the_symbol_does_not_allow_is_refused():
    v = OrderValidator()
    v.add(VENUE, SymbolFilters.from_exchange_info({**ENTRY, "orderTypes": ["LIMIT"]}, INST,
                                                  "BTC-USDT", 8, 8))
    with pytest.raises(CommandRefused, match="MARKET is not allowed"):
        v.fill(np.zeros(1, ORDER_REQUEST)[0], order(type="MARKET", price=None), VENUE, INST)


@pytest.mark.parametrize("bad", ["", "x" * 37, "has space", "ü", None, 7])
def test_client_order_ids_follow_binance_pattern(bad):
    assert check_client_order_id("a.B:c/d_e-1") == "a.B:c/d_e-1"
    with pytest.raises(CommandRefused, match="client_order_id"):
        check_client_order_id(bad)
