"""A strategy trades in a replay: its orders fill against the replayed BTCUSDT market.

The strategy sees the recorded book snapshots, sends a BUY through its OrderEntry, and gets its
ExecReports back through the replay, stamped in recording time: ACK no earlier than the order
latency after the decision, fills at prices the recorded book offered.
"""

from pathlib import Path

import numpy as np

import meltica_nb as mn
from meltica_nb.fixedpoint import from_mantissa
from meltica_nb.schema import EventType, OrderStatus

DATA = Path(__file__).parent.parent / "data" / "binance"
RECORDING = DATA / "binance_spot_btcusdt_20240808_hftbacktest.jsonl.gz"
BBO, EXEC = int(EventType.BBO), int(EventType.EXEC_REPORT)
LATENCY_MS = 25


class CrossTheSpread:
    """On the first best bid/offer: buy through the best ask (fills at once) and bid half
    below (rests); cancel the resting bid after the first fill. Keeps every report it gets."""

    def __init__(self, orders: mn.OrderEntry):
        self.orders = orders
        self.reports: list[tuple[str, int, int, int, int]] = []
        self.sent_ns = 0
        self.ask = None

    def __call__(self, events: np.ndarray) -> None:
        for ev in events:
            if ev["event_type"] == BBO and not self.sent_ns:
                self._trade(ev)
            elif ev["event_type"] == EXEC:
                self.reports.append((ev["client_order_id"].decode(), int(ev["status"]),
                                     int(ev["filled_qty"]), int(ev["fill_price"]),
                                     int(ev["ingest_ns"])))
                if ev["status"] == OrderStatus.FILLED and ev["client_order_id"] == b"take":
                    assert self.orders.cancel("rest").success

    def _trade(self, ev) -> None:
        self.sent_ns = int(ev["ingest_ns"])
        price_exp = 8
        self.ask = int(ev["ask_price"])
        take = from_mantissa(self.ask + 10 ** price_exp, price_exp)  # 1 USDT through the ask
        rest = from_mantissa(self.ask // 2 // 10 ** price_exp * 10 ** price_exp, price_exp)
        assert self.orders.submit("take", "BTC-USDT", "BUY", "LIMIT", "0.001", take).success
        assert self.orders.submit("rest", "BTC-USDT", "BUY", "LIMIT", "0.001", rest).success


def test_a_strategy_fills_against_the_replayed_book_after_the_latency(recording):
    strategies = []

    def make(orders):
        strategies.append(CrossTheSpread(orders))
        return strategies[0]

    result = mn.replay(recording(RECORDING), [mn.ReplayStrategy(make, name="cross",
                                                     events=["bbo"])],
                       order_latency_ms=LATENCY_MS)
    strategy = strategies[0]
    assert strategy.sent_ns
    take = [r for r in strategy.reports if r[0] == "take"]
    rest = [r for r in strategy.reports if r[0] == "rest"]
    assert take[0][1] == OrderStatus.ACK and take[-1][1] == OrderStatus.FILLED
    assert take[-1][2] == 100_000  # 0.001 BTC at 8 decimals
    assert [r[1] for r in rest] == [OrderStatus.ACK, OrderStatus.CANCELLED]
    assert all(r[4] >= strategy.sent_ns + LATENCY_MS * 1_000_000 for r in strategy.reports)
    fills = [r for r in take if r[1] in (OrderStatus.PARTIAL, OrderStatus.FILLED)]
    assert all(strategy.ask <= r[3] <= strategy.ask + 10 ** 8 for r in fills)
    assert result.consumers["cross"].stats.errors == 0


def test_the_same_backtest_twice_gives_the_same_digest_and_reports(recording):
    runs, path = [], recording(RECORDING)
    for _ in range(2):
        made: list[CrossTheSpread] = []

        def make(orders, made=made):
            made.append(CrossTheSpread(orders))
            return made[-1]

        result = mn.replay(path, [mn.ReplayStrategy(make, name="cross", events=["bbo"])])
        runs.append((result.digest, made[0].reports))
    assert runs[0] == runs[1] and runs[0][1]
