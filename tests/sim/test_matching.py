"""The pure matching engine: order types, resting fills, filters, and filled + remaining."""

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_nb.errors import RequestRejected
from meltica_nb.sim.binance import exchange_info
from meltica_nb.sim.filters import SymbolRules
from meltica_nb.sim.market import SPOT_INSTRUMENTS
from meltica_nb.sim.matching import (
    BookView,
    FillPolicy,
    MarketTrade,
    Matcher,
    OrderRequest,
)

RULES = SymbolRules.from_symbol_info(exchange_info(SPOT_INSTRUMENTS, "spot", 0, 0)["symbols"][0])
BOOK = BookView(bids=((D("100.00"), D("1")), (D("99.50"), D("2")), (D("99.00"), D("3"))),
                asks=((D("100.50"), D("1")), (D("101.00"), D("2")), (D("102.00"), D("3"))))


def _kinds(reports):
    return [(r.kind, r.order.status) for r in reports]


def _limit(side, qty, price, tif="GTC", cid=""):
    return OrderRequest(side, "LIMIT", D(qty), D(price), tif, client_order_id=cid)


def _code(fn) -> tuple[int, str]:
    with pytest.raises(RequestRejected) as info:
        fn()
    return info.value.code, str(info.value)


def test_rules_come_from_the_simulators_exchange_info():
    assert (RULES.symbol, RULES.tick_size, RULES.step_size) == ("BTCUSDT", D("0.01"),
                                                                D("0.00001"))
    assert (RULES.min_notional, RULES.max_qty, RULES.quote) == (D("5"), D("9000"), "USDT")


def test_crossing_limit_takes_levels_then_rests():
    m = Matcher(RULES)
    reports = m.submit(_limit("BUY", "4", "101.00", cid="a"), BOOK, 10)
    assert _kinds(reports) == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"),
                               ("TRADE", "PARTIALLY_FILLED")]
    assert [(r.last_price, r.last_qty, r.maker) for r in reports[1:]] == [
        (D("100.50"), D("1"), False), (D("101.00"), D("2"), False)]
    order = m.find(client_order_id="a")
    assert order.is_working and order.remaining == 1 and order.working_ms == 10
    assert order.executed_qty == 3 and order.cum_quote == D("302.50")
    assert m.open_orders() == [order]


def test_rest_then_fill_from_market_prints():
    m = Matcher(RULES)
    m.submit(_limit("BUY", "1", "100.00", cid="b"), BOOK, 1)
    assert m.on_trade(MarketTrade(D("100.00"), D("0.4"), "BUY"), 2) == []  # buyer-initiated
    part = m.on_trade(MarketTrade(D("100.00"), D("0.4"), "SELL"), 3)
    assert _kinds(part) == [("TRADE", "PARTIALLY_FILLED")] and part[0].maker
    done = m.on_trade(MarketTrade(D("99.00"), D("5"), "SELL"), 4)
    assert _kinds(done) == [("TRADE", "FILLED")]
    assert done[0].last_price == D("100.00") and done[0].last_qty == D("0.6")
    assert m.open_orders() == []


def test_strict_policy_needs_a_print_through_the_price():
    m = Matcher(RULES, FillPolicy(at_touch=False))
    m.submit(_limit("SELL", "1", "101.00"), BOOK, 1)
    assert m.on_trade(MarketTrade(D("101.00"), D("1"), "BUY"), 2) == []
    assert _kinds(m.on_trade(MarketTrade(D("101.01"), D("1"), "BUY"), 3)) == [
        ("TRADE", "FILLED")]


def test_book_moving_through_a_resting_order_fills_it_once():
    m = Matcher(RULES)
    m.submit(_limit("BUY", "3", "99.80"), BOOK, 1)
    crossed = BookView(bids=BOOK.bids, asks=((D("99.70"), D("1")), (D("99.80"), D("0.5"))))
    first = m.on_book(crossed, 2)
    assert [(r.last_price, r.last_qty) for r in first] == [(D("99.80"), D("1")),
                                                            (D("99.80"), D("0.5"))]
    assert m.on_book(crossed, 3) == []  # the same liquidity does not fill twice
    more = BookView(bids=BOOK.bids, asks=((D("99.70"), D("2")),))
    assert [r.last_qty for r in m.on_book(more, 4)] == [D("1")]  # only the new part


def test_taken_liquidity_is_remembered_until_the_market_changes_it():
    m = Matcher(RULES)
    m.submit(OrderRequest("BUY", "MARKET", D("1")), BOOK, 1)
    second = m.submit(OrderRequest("BUY", "MARKET", D("1")), BOOK, 2)
    assert second[1].last_price == D("101.00")
    refreshed = BookView(bids=BOOK.bids, asks=((D("100.60"), D("1")),) + BOOK.asks[1:])
    assert m.submit(OrderRequest("BUY", "MARKET", D("1")), refreshed, 3)[1].last_price == D(
        "100.60")


def test_ioc_fok_and_market_outcomes():
    m = Matcher(RULES)
    ioc = m.submit(_limit("SELL", "2", "100.00", "IOC"), BOOK, 1)
    assert _kinds(ioc) == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"),
                           ("EXPIRED", "EXPIRED")]
    fok = m.submit(_limit("SELL", "4", "99.50", "FOK"), BookView(bids=BOOK.bids[1:]), 2)
    assert _kinds(fok) == [("NEW", "NEW"), ("EXPIRED", "EXPIRED")]
    fok_ok = m.submit(_limit("SELL", "3", "99.00", "FOK"), BookView(bids=BOOK.bids[1:]), 3)
    assert _kinds(fok_ok)[-1] == ("TRADE", "FILLED")
    sweep = m.submit(OrderRequest("BUY", "MARKET", D("10")), BOOK, 4)
    assert _kinds(sweep)[-1] == ("EXPIRED", "EXPIRED") and sweep[-1].order.executed_qty == 6
    quote = Matcher(RULES).submit(OrderRequest("BUY", "MARKET", quote_quantity=D("150")),
                                  BookView(asks=BOOK.asks), 5)
    order = quote[-1].order
    assert order.status == "FILLED" and order.orig_quote_qty == D("150")
    assert order.executed_qty == D("1") + D("0.49009") and order.cum_quote <= D("150")


def test_cancel_and_lookups():
    m = Matcher(RULES)
    m.submit(_limit("SELL", "1", "110.00", cid="x"), BOOK, 1)
    ex = m.cancel(2, client_order_id="x", cancel_id="c1")
    assert (ex.kind, ex.order.status, ex.cancel_id, ex.order.is_working) == (
        "CANCELED", "CANCELED", "c1", False)
    assert _code(lambda: m.cancel(3, client_order_id="x")) == (-2011, "Unknown order sent.")
    assert _code(lambda: m.find(order_id=99)) == (-2013, "Order does not exist.")
    assert _code(lambda: m.find(order_id=1, client_order_id="y"))[0] == -2013
    assert _code(lambda: m.find())[0] == -1102
    assert m.find(order_id=1).status == "CANCELED"


@pytest.mark.parametrize(("request_", "expected"), [
    (_limit("BUY", "1", "100.001"), (-1013, "Filter failure: PRICE_FILTER")),
    (_limit("BUY", "0.000000001", "100"), (-1111, "Parameter 'quantity' has too much precision.")),
    (_limit("BUY", "0.000015", "100"), (-1013, "Filter failure: LOT_SIZE")),
    (_limit("BUY", "9001", "100"), (-1013, "Filter failure: LOT_SIZE")),
    (_limit("BUY", "0.01", "100"), (-1013, "Filter failure: NOTIONAL")),
    (_limit("BUY", "1", "100", tif="GTD"), (-1115, "Invalid timeInForce.")),
    (_limit("HOLD", "1", "100"), (-1117, "Invalid side.")),
    (OrderRequest("BUY", "STOP", D("1")), (-1116, "Invalid orderType.")),
    (OrderRequest("BUY", "LIMIT", D("1"), D("100")), (-1102, "Mandatory parameter "
     "'timeInForce' was not sent, was empty/null, or malformed.")),
    (OrderRequest("BUY", "MARKET"), (-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, "
                                            "but both were empty/null!")),
    (OrderRequest("BUY", "MARKET", D("1"), time_in_force="GTC"), (
        -1106, "Parameter 'timeInForce' sent when not required.")),
    (OrderRequest("BUY", "LIMIT_MAKER", D("1"), D("101.00")), (
        -2010, "Order would immediately match and take.")),
])
def test_refusals_carry_binance_codes(request_, expected):
    assert _code(lambda: Matcher(RULES).submit(request_, BOOK, 1)) == expected


def test_duplicate_client_id_of_an_open_order_is_refused():
    m = Matcher(RULES)
    m.submit(_limit("BUY", "1", "90.00", cid="dup"), BOOK, 1)
    assert _code(lambda: m.submit(_limit("BUY", "1", "90.00", cid="dup"), BOOK, 2)) == (
        -2010, "Duplicate order sent.")
    m.cancel(3, client_order_id="dup")
    assert m.submit(_limit("BUY", "1", "90.00", cid="dup"), BOOK, 4)[0].order.order_id == 2


_prices = st.integers(9_800, 10_200).map(lambda cents: D(cents) / 100)
_qtys = st.integers(1, 300_000).map(lambda steps: D(steps) / 100_000)
_side = st.sampled_from(["BUY", "SELL"])
_levels = st.lists(st.tuples(_prices, _qtys), max_size=6)
_book = st.builds(lambda b, a: BookView(tuple(sorted(b, reverse=True)), tuple(sorted(a))),
                  _levels, _levels)
_limit_req = st.builds(lambda s, q, p, t: OrderRequest(s, "LIMIT", q, p, t), _side, _qtys,
                       _prices, st.sampled_from(["GTC", "IOC", "FOK"]))
_market_req = st.builds(lambda s, q: OrderRequest(s, "MARKET", q), _side, _qtys)
_steps = st.lists(st.one_of(
    st.tuples(st.just("submit"), st.one_of(_limit_req, _market_req), _book),
    st.tuples(st.just("trade"), st.builds(MarketTrade, _prices, _qtys, _side), st.none()),
    st.tuples(st.just("book"), _book, st.none()),
    st.tuples(st.just("cancel"), st.integers(1, 20), st.none()),
), max_size=40)


def _apply(m: Matcher, step, now: int):
    kind, arg, book = step
    try:
        if kind == "submit":
            return m.submit(arg, book, now)
        if kind == "trade":
            return m.on_trade(arg, now)
        if kind == "book":
            return m.on_book(arg, now)
        return [m.cancel(now, order_id=arg)]
    except RequestRejected:
        return []


@settings(max_examples=150, deadline=None)
@given(_steps)
def test_filled_plus_remaining_is_always_the_quantity(steps):
    m = Matcher(RULES)
    filled: dict[int, D] = {}
    for now, step in enumerate(steps):
        for r in _apply(m, step, now):
            order = r.order
            assert order.executed_qty + order.remaining == order.orig_qty
            assert D(0) <= order.executed_qty <= order.orig_qty
            filled[order.order_id] = filled.get(order.order_id, D(0)) + r.last_qty
            assert filled[order.order_id] == order.executed_qty
            assert (order.status == "FILLED") == (order.remaining == 0)
            assert r.kind != "TRADE" or r.last_qty > 0
    for order in m.open_orders():
        assert order.is_working and order.remaining > 0


def test_only_the_newest_closed_orders_stay_queryable():
    m = Matcher(RULES, keep_closed=2)
    for n in range(3):
        m.submit(_limit("BUY", "1", "90.00", "IOC", cid=f"c{n}"), BOOK, n)
    m.submit(_limit("BUY", "1", "90.00", cid="open"), BOOK, 3)
    assert _code(lambda: m.find(order_id=1))[0] == -2013
    assert _code(lambda: m.find(client_order_id="c0"))[0] == -2013
    assert [m.find(order_id=i).status for i in (2, 3, 4)] == ["EXPIRED", "EXPIRED", "NEW"]
