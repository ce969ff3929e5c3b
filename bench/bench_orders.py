"""Orders: the engine's submit path against a bare signed HTTP request, on the simulator.

Both sides place the same resting LIMIT orders (far below the market, so nothing fills) on one
simulator over loopback, one at a time, and time each call until the venue answered:

* engine: ``engine.control.submit_order`` -- trading switch, idempotency, validation against
  exchangeInfo, a pooled OrderRequest, tracking, the signed REST request, the ControlAck and
  its critical record to the consumer; plus, separately, the time until the order's ACK
  execution report reached the consumer (user data stream, tracker, dispatcher, ring);
* bare: urlencode + HMAC-SHA256 + ``http.client`` POST on a kept-alive connection, the floor
  any Binance client pays.

Figures are per-order latencies in microseconds, median (min-max) over ``--runs`` runs of the
per-run median. The simulator's own handling is in both; the difference is the engine's cost.
Nothing is asserted. Run: ``python -m bench.bench_orders [--runs 5] [--orders 200] [--json]``
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import statistics
import time
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

import numpy as np
import orjson

from bench.handicap import engine_path
from bench.measure import Measure
from meltica_nb.engine import Engine
from meltica_nb.schema import EventType
from meltica_nb.sim import BinanceLimits, ExchangeSimulator, MarketConfig
from meltica_nb.venues.binance.config import BinanceConfig
from meltica_nb.venues.binance.trader import BinanceTrader


class _AckWatcher:
    """A batch consumer noting when each order's ACK report arrived (perf_counter_ns)."""

    def __init__(self) -> None:
        self.seen: dict[bytes, int] = {}

    def __call__(self, events: np.ndarray) -> None:
        now = time.perf_counter_ns()
        reports = events[events["event_type"] == EventType.EXEC_REPORT]
        for cid in reports["client_order_id"].tolist():
            self.seen.setdefault(cid, now)


def _engine_run(sim, orders: int, run: int, qty: str, price: str) -> tuple[float, float]:
    engine = Engine()
    watcher = _AckWatcher()
    engine.add_consumer("bench", watcher)
    config = BinanceConfig(symbols=("BTC-USDT",), ws_url=sim.ws_url, rest_url=sim.rest_url,
                           api_key=sim.credentials.api_key,
                           api_secret=sim.credentials.api_secret, read_timeout_s=0.05)
    trader = BinanceTrader(engine, config)
    engine.add_trader(trader)
    submit_us, report_us = [], []
    with engine:
        while not trader.stream.connected:
            time.sleep(0.01)
        engine.control.set_trading_mode("bench", True)
        submit = engine_path(engine.control.submit_order)
        for i in range(orders):
            cid = f"r{run}o{i}"
            t0 = time.perf_counter_ns()
            ack = submit("bench", cid, "BTC-USDT", "BUY", "LIMIT", qty, price)
            submit_us.append((time.perf_counter_ns() - t0) / 1e3)
            if not ack.success:
                raise RuntimeError(f"order refused: {ack.error}")
            while cid.encode() not in watcher.seen:
                time.sleep(0)
            report_us.append((watcher.seen[cid.encode()] - t0) / 1e3)
    return statistics.median(submit_us), statistics.median(report_us)


def _bare_run(sim, orders: int, run: int, qty: str, price: str) -> float:
    url = urlsplit(sim.rest_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    secret = sim.credentials.api_secret.encode()
    headers = {"X-MBX-APIKEY": sim.credentials.api_key}
    took = []
    try:
        for i in range(orders):
            t0 = time.perf_counter_ns()
            query = urlencode({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                               "timeInForce": "GTC", "quantity": qty, "price": price,
                               "newClientOrderId": f"b{run}o{i}", "newOrderRespType": "ACK",
                               "recvWindow": 5000, "timestamp": int(time.time() * 1000)})
            query += "&signature=" + hmac.new(secret, query.encode(), hashlib.sha256).hexdigest()
            conn.request("POST", "/api/v3/order?" + query, headers=headers)
            response = conn.getresponse()
            body = response.read()
            took.append((time.perf_counter_ns() - t0) / 1e3)
            if response.status != 200:
                raise RuntimeError(f"bare order refused: {body[:200]!r}")
    finally:
        conn.close()
    return statistics.median(took)


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def run(orders: int, runs: int) -> dict:
    """Measure both sides ``runs`` times; return the figures."""
    with ExchangeSimulator(config=MarketConfig.fast(updates_per_s=10.0),
                           limits=BinanceLimits(ping_interval=None, rest_weight_limit=10**9),
                           seed=1, balances={"USDT": "1000000000000"}) as sim:
        sim.pause()
        bid = Decimal(sim.book("BTCUSDT", 1)["bids"][0][0])
        price, qty = str((bid * Decimal("0.5")).quantize(Decimal("0.01"))), "0.00100"
        engine_submit, engine_report, bare = [], [], []
        for r in range(runs):
            submit_us, report_us = _engine_run(sim, orders, r, qty, price)
            engine_submit.append(submit_us)
            engine_report.append(report_us)
            bare.append(_bare_run(sim, orders, r, qty, price))
    return {"orders_per_run": orders, "runs": runs,
            "engine_submit_us": _summary(engine_submit),
            "engine_ack_report_us": _summary(engine_report),
            "bare_signed_post_us": _summary(bare),
            "submit_over_bare": statistics.median(engine_submit) / statistics.median(bare)}


#: Orders per run in quick mode (the tests lower it).
QUICK_ORDERS = 40


def measures(quick: bool) -> list[Measure]:
    """The suite's entry: per-order submit latency beside the bare signed POST, and the time
    until the ACK report reached the consumer (per-run medians)."""
    result = run(QUICK_ORDERS if quick else 200, 3 if quick else 5)
    params = {"orders_per_run": result["orders_per_run"]}
    return [Measure("orders", "submit until the venue answered", "engine", "us",
                    tuple(result["engine_submit_us"]["runs"]), params=params),
            Measure("orders", "submit until the venue answered", "bare signed POST", "us",
                    tuple(result["bare_signed_post_us"]["runs"]), params=params),
            Measure("orders", "submit until the ACK report reached the consumer", "engine",
                    "us", tuple(result["engine_ack_report_us"]["runs"]), params=params)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.orders, args.runs)
    if args.json:
        print(orjson.dumps(result).decode())
        return 0
    for key in ("engine_submit_us", "engine_ack_report_us", "bare_signed_post_us"):
        s = result[key]
        print(f"{key:>22}: {s['median']:8.0f} us  ({s['min']:.0f}-{s['max']:.0f})")
    print(f"{'submit over bare':>22}: {result['submit_over_bare']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
