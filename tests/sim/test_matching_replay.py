"""The matcher driven offline by a real recording, as a backtest drives it: no sockets, no clock.

The recorded depth snapshot and diffs rebuild the book by Binance's procedure, the recorded prints
become MarketTrades, and an order submitted with a latency fills in recording time.
"""

from decimal import Decimal
from pathlib import Path

import orjson

from meltica_nb.sim.binance import exchange_info
from meltica_nb.sim.filters import SymbolRules
from meltica_nb.sim.market import SPOT_INSTRUMENTS
from meltica_nb.sim.matching import BookView, MarketTrade, Matcher, OrderRequest
from meltica_nb.sim.recording import read_recording

from .helpers import ClientBook

RECORDING = Path(__file__).parent.parent / "data" / "binance" / \
    "binance_spot_btcusdt_20240808_hftbacktest.jsonl.gz"
LATENCY_MS = 5


def _replay(lines):
    """(time ms, BookView or None, trades) per recorded message once the book is built; diffs
    that arrived before the snapshot are buffered and applied after it (Binance's procedure)."""
    book, buffered = None, []
    for line in lines:
        now_ms = line["recv_ns"] // 1_000_000
        if line["stream"].startswith("rest:"):
            book = ClientBook(orjson.loads(line["raw"]))
            for diff in buffered:
                book.apply(diff)
            continue
        data = orjson.loads(line["raw"])["data"]
        if line["stream"].endswith("@depth@100ms"):
            if book is None:
                buffered.append(data)
                continue
            book.apply(data)
            yield now_ms, BookView.from_depth(book.top(20)), ()
        elif line["stream"].endswith("@trade") and book is not None:
            taker = "SELL" if data["m"] else "BUY"
            yield now_ms, None, (MarketTrade(Decimal(data["p"]), Decimal(data["q"]), taker),)


def test_a_backtest_order_fills_against_the_replayed_market():
    lines = read_recording(RECORDING)[:6000]
    rules = SymbolRules.from_symbol_info(
        exchange_info(SPOT_INSTRUMENTS, "spot", 0, 0)["symbols"][0])
    matcher = Matcher(rules)
    reports, submitted, last_book = [], None, None
    for now_ms, view, trades in _replay(lines):
        last_book = view or last_book
        if submitted is None and last_book is not None:
            bid = last_book.bids[0][0]
            submitted = now_ms + LATENCY_MS  # the order reaches the venue LATENCY_MS later
            order = OrderRequest("BUY", "LIMIT", Decimal("0.05"), bid, "GTC", client_order_id="bt")
        elif submitted is not None and now_ms >= submitted and not reports:
            reports += matcher.submit(order, last_book, submitted)
        elif reports:
            reports += matcher.on_market(now_ms, view, trades)
    kinds = [(r.kind, r.order.status) for r in reports]
    assert kinds[0] == ("NEW", "NEW") and kinds[-1] == ("TRADE", "FILLED")
    assert all(r.time_ms >= submitted for r in reports)
    assert all(r.last_price == bid and r.maker for r in reports[1:])
    assert sum(r.last_qty for r in reports) == Decimal("0.05")
    assert [r.time_ms for r in reports] == sorted(r.time_ms for r in reports)
