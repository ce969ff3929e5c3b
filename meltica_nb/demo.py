"""``meltica demo``: the live engine with example consumers, on a generated market.

A seeded random walk for BTC-USDT and ETH-USDT produces best bid/offer updates, trades with
contiguous ids and tickers, published with ``engine.publish`` (the bring-your-own-feed path,
the same dispatcher path venue events take) at a steady rate. Three example consumers run on
their own threads: a top-of-book view (batch mode), a trade tape (python mode) and spread
statistics (njit mode). A live line on stderr shows events/s, handler-entry latency, pool use,
coalesced and dropped counts until Ctrl-C or ``--duration``; on exit the engine drains and the
shutdown report is printed.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from .engine import Engine
from .fixedpoint import from_mantissa
from .latency import LatencyHistogram
from .schema import CANONICAL_EVENT, EventType, Side

__all__ = ["DemoMarket", "run_demo"]

INSTRUMENTS = {"BTC-USDT": 67_000_00, "ETH-USDT": 3_200_00}  # mid prices, 2 decimals
PRICE_EXP = 2
QTY_EXP = 6


@dataclass
class DemoMarket:
    """A seeded random walk that emits BBO, trade and ticker records per tick."""

    engine: Engine
    seed: int = 7
    rng: np.random.Generator = field(init=False)

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)
        reg = self.engine.registry
        self.venue = reg.venue_id("demo")
        self.ids = [reg.instrument_id(s, price_exp=PRICE_EXP, qty_exp=QTY_EXP)
                    for s in INSTRUMENTS]
        self.mid = np.array(list(INSTRUMENTS.values()), dtype=np.int64)
        self.trade_id = np.zeros(len(self.ids), dtype=np.int64)
        self.tick = 0

    def batch(self, trades_per_tick: int) -> np.ndarray:
        """One tick for every instrument: a BBO, a ticker and ``trades_per_tick`` trades."""
        per = trades_per_tick + 2
        out = np.zeros(per * len(self.ids), CANONICAL_EVENT)
        self.tick += 1
        for k, inst in enumerate(self.ids):
            self.mid[k] += int(self.rng.integers(-5, 6))
            self._fill(out[k * per:(k + 1) * per], k, inst, trades_per_tick)
        return out

    def _fill(self, rows: np.ndarray, k: int, inst: int, n_trades: int) -> None:
        mid, spread = int(self.mid[k]), int(self.rng.integers(1, 4))
        rows["venue"], rows["instrument"] = self.venue, inst
        bbo, ticker, trades = rows[0:1], rows[1:2], rows[2:]
        bbo["event_type"], bbo["seq_provider"] = EventType.BBO, self.tick
        bbo["bid_price"], bbo["ask_price"] = mid - spread, mid + spread
        bbo["bid_qty"] = bbo["ask_qty"] = int(self.rng.integers(1, 10**6))
        ticker["event_type"], ticker["seq_provider"] = EventType.TICKER, self.tick
        ticker["last_price"], ticker["bid_price"], ticker["ask_price"] = mid, mid - 1, mid + 1
        ids = self.trade_id[k] + 1 + np.arange(n_trades)
        self.trade_id[k] += n_trades
        trades["event_type"] = EventType.TRADE
        trades["seq_provider"] = trades["seq_first"] = trades["trade_id"] = ids
        trades["price"] = mid + self.rng.integers(-spread, spread + 1, n_trades)
        trades["quantity"] = self.rng.integers(1, 10**5, n_trades)
        trades["side"] = self.rng.integers(Side.BUY, Side.SELL + 1, n_trades)


@njit(cache=True)
def spread_stats(rec, state):
    """njit consumer: count BBOs and sum spreads (state[0] count, state[1] spread sum)."""
    state[0] += 1
    state[1] += rec.ask_price - rec.bid_price


def _add_consumers(engine: Engine) -> dict:
    """The three example consumers; returns the state they keep."""
    top: dict[int, tuple[int, int]] = {}
    tape = {"trades": 0, "volume": 0}
    spread = np.zeros(2, dtype=np.int64)

    def top_of_book(events):
        for inst, bid, ask in zip(events["instrument"].tolist(), events["bid_price"].tolist(),
                                  events["ask_price"].tolist(), strict=True):
            top[inst] = (bid, ask)

    def trade_tape(rec):
        tape["trades"] += 1
        tape["volume"] += int(rec["quantity"])

    engine.add_consumer("top-of-book", top_of_book, events=["bbo"], mode="batch")
    engine.add_consumer("trade-tape", trade_tape, events=["trade"], mode="python")
    engine.add_consumer("spread-stats", spread_stats, events=["bbo"], mode="njit", state=spread)
    return {"top": top, "tape": tape, "spread": spread}


def _view(engine: Engine, state: dict, rate: float) -> str:
    """One line of the live terminal view."""
    stats = engine.stats()
    hist = _merged_latency(engine)
    pool = stats["pools"]["CanonicalEvent"]
    cons = stats["consumers"].values()
    books = " ".join(
        f"{engine.registry.instrument(i).symbol} {from_mantissa(b, PRICE_EXP)}/"
        f"{from_mantissa(a, PRICE_EXP)}" for i, (b, a) in sorted(state["top"].items()))
    return (f"{rate:,.0f} ev/s | latency p50 {hist.percentile(0.5) / 1e3:,.0f} us "
            f"p99 {hist.percentile(0.99) / 1e3:,.0f} us | pool {pool.in_use}/{pool.capacity} "
            f"hw {pool.high_water} | coalesced {sum(c.coalesced for c in cons)} "
            f"dropped {sum(c.dropped for c in cons)} | {books}")


def _merged_latency(engine: Engine) -> LatencyHistogram:
    hist = LatencyHistogram()
    for consumer in engine.consumers.values():
        hist.merge(consumer.latency)
    return hist


def run_demo(duration: float | None, rate: int = 5000, quiet: bool = False) -> dict:
    """Run the demo until ``duration`` seconds pass or Ctrl-C; return the summary."""
    engine = Engine()
    state = _add_consumers(engine)
    market = DemoMarket(engine)
    trades_per_tick = 8
    per_tick = (trades_per_tick + 2) * len(INSTRUMENTS)
    period = per_tick / rate
    counts = {t.name.lower(): 0 for t in (EventType.TRADE, EventType.BBO, EventType.TICKER)}
    interrupted = threading.Event()
    previous = _on_sigint(interrupted)
    engine.start()
    start = last_view = time.monotonic()
    sent = sent_at_view = 0
    try:
        while not interrupted.is_set() and (
                duration is None or time.monotonic() - start < duration):
            batch = market.batch(trades_per_tick)
            engine.publish(batch)
            sent += batch.shape[0]
            for t, n in zip(*np.unique(batch["event_type"], return_counts=True), strict=True):
                counts[EventType(int(t)).name.lower()] += int(n)
            now = time.monotonic()
            if now - last_view >= 1.0 and not quiet:
                print(_view(engine, state, (sent - sent_at_view) / (now - last_view)),
                      file=sys.stderr, flush=True)
                last_view, sent_at_view = now, sent
            interrupted.wait(max(0.0, start + period * (sent / per_tick) - time.monotonic()))
    finally:
        if interrupted.is_set():
            print("meltica demo: interrupted, draining", file=sys.stderr)
        report = engine.stop(5.0)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return _summary(engine, report, counts, time.monotonic() - start)


def _on_sigint(flag: threading.Event):
    """Make Ctrl-C set ``flag`` (main thread only); return the handler it replaced.

    The loop checks the flag, so SIGINT never lands inside a publish and strands pool slots.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, lambda signum, frame: flag.set())


def _summary(engine: Engine, report, counts: dict, elapsed: float) -> dict:
    """The demo's one-object summary: counts, latency, losses, pools, unreturned slots."""
    stats = engine.stats()
    cons = stats["consumers"].values()
    hist = _merged_latency(engine)
    return {
        "events": counts,
        "elapsed_s": round(elapsed, 3),
        "latency_us": {"p50": hist.percentile(0.5) / 1e3, "p99": hist.percentile(0.99) / 1e3,
                       "p999": hist.percentile(0.999) / 1e3},
        "delivered": sum(c.delivered for c in cons),
        "dropped": sum(c.dropped for c in cons),
        "coalesced": sum(c.coalesced for c in cons),
        "errors": sum(c.errors for c in cons),
        "pool_high_water": {name: p.high_water for name, p in stats["pools"].items()},
        "unreturned_slots": report.count,
    }
