"""A backtest that trades on a real recording and reports its fills.

Strategy: quote both sides of BTC-USDT at the recorded best bid and best ask, 0.001 BTC each,
at most one order per side at a time; when a quote fills, quote that side again on the next
best bid/offer. Orders go through the Control Bus to a paper venue that fills them against the
replayed book and trades after a latency, in recording time (see ``meltica_nb.replay_trading``).
At the end: every fill, the inventory, the cash and the mark-to-market PnL at the last mid.

Run: ``python examples/backtest_quotes.py [RECORDING] [--latency-ms 5]`` (default: the Binance
spot BTCUSDT recording in tests/data).
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path

import orjson

import meltica_nb as mn
from meltica_nb.fixedpoint import from_mantissa
from meltica_nb.schema import EventType, OrderStatus

DEFAULT = (Path(__file__).resolve().parents[1] / "tests" / "data" / "binance"
           / "binance_spot_btcusdt_20240808_hftbacktest.jsonl.gz")
BBO, EXEC = int(EventType.BBO), int(EventType.EXEC_REPORT)
SIZE, EXP = "0.001", 8
OPEN = (OrderStatus.NONE, OrderStatus.ACK, OrderStatus.PARTIAL)


class QuoteBothSides:
    """Join the best bid and the best ask; requote a side once its order is done."""

    def __init__(self, orders: mn.OrderEntry):
        self.orders = orders
        self.working: dict[str, str | None] = {"BUY": None, "SELL": None}
        self.status: dict[str, int] = {}
        self.sides: dict[str, str] = {}
        self.fills: list[tuple[int, str, Decimal, Decimal]] = []  # (ns, side, price, qty)
        self.filled: dict[str, int] = {}
        self.mid = Decimal(0)
        self._n = 0

    def __call__(self, events) -> None:
        for ev in events:
            if ev["event_type"] == EXEC:
                self._on_report(ev)
            elif ev["event_type"] == BBO:
                bid, ask = int(ev["bid_price"]), int(ev["ask_price"])
                self.mid = (Decimal(from_mantissa(bid, EXP)) + Decimal(from_mantissa(ask, EXP))) / 2
                self._quote("BUY", bid)
                self._quote("SELL", ask)

    def _quote(self, side: str, price: int) -> None:
        current = self.working[side]
        if current is not None and self.status.get(current, 0) in OPEN:
            return
        self._n += 1
        client_id = f"q{self._n}"
        ack = self.orders.submit(client_id, "BTC-USDT", side, "LIMIT", SIZE,
                                 from_mantissa(price, EXP))
        self.working[side] = client_id if ack.success else None
        self.status[client_id] = OrderStatus.NONE
        self.sides[client_id] = side

    def _on_report(self, ev) -> None:
        client_id = ev["client_order_id"].decode()
        self.status[client_id] = int(ev["status"])
        filled, before = int(ev["filled_qty"]), self.filled.get(client_id, 0)
        if filled > before:
            self.fills.append((int(ev["ingest_ns"]), self.sides[client_id],
                               Decimal(from_mantissa(int(ev["fill_price"]), EXP)),
                               Decimal(from_mantissa(filled - before, EXP))))
            self.filled[client_id] = filled

    def summary(self) -> dict:
        inventory = sum(q if s == "BUY" else -q for _, s, _, q in self.fills)
        cash = sum(-p * q if s == "BUY" else p * q for _, s, p, q in self.fills)
        return {"orders": self._n, "fills": len(self.fills), "inventory_btc": str(inventory),
                "cash_usdt": str(cash), "pnl_usdt_at_last_mid": str(cash + inventory * self.mid)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording", nargs="?", default=str(DEFAULT))
    parser.add_argument("--latency-ms", type=float, default=5.0)
    args = parser.parse_args(argv)
    made: list[QuoteBothSides] = []

    def make(orders: mn.OrderEntry) -> QuoteBothSides:
        made.append(QuoteBothSides(orders))
        return made[-1]

    result = mn.replay(args.recording, [mn.ReplayStrategy(make, name="quotes", events=["bbo"],
                                                          instruments=["BTC-USDT"])],
                       order_latency_ms=args.latency_ms)
    strategy = made[0]
    for ns, side, price, qty in strategy.fills:
        print(f"{ns} {side:4} {qty} BTC @ {price}")
    print(orjson.dumps(strategy.summary()).decode())
    print(f"replayed {result.frames} frames in {result.elapsed_s:.2f} s, digest {result.digest}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
