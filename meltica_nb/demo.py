"""``meltica demo``: the live engine against the bundled exchange simulator.

The simulator (:mod:`meltica_nb.sim`) serves a generated Binance market on loopback; a
:class:`~meltica_nb.venues.binance.feed.BinanceFeed` connects to it over a real websocket and
real HTTP exactly as it would to Binance: combined streams, REST snapshots, the diff-depth book
procedure. Three example consumers run on their own threads: a top-of-book view (batch mode,
BBO), a trade tape (python mode) and spread statistics (njit mode). A live line on stderr shows
events/s, handler-entry latency, pool use, coalesced and dropped counts and book resyncs until
Ctrl-C or ``--duration``; on exit the engine drains (5 s) and the shutdown report is printed.
``--faults`` passes a fault spec to the simulator (e.g. ``drop=0.01`` makes depth gaps, which
the books repair by resyncing).
"""

from __future__ import annotations

import signal
import sys
import threading
import time

import numpy as np
from numba import njit

from .engine import Engine
from .fixedpoint import from_mantissa
from .latency import LatencyHistogram
from .schema import EventType
from .sim.market import MarketConfig
from .sim.server import ExchangeSimulator
from .venues.binance.config import BinanceConfig
from .venues.binance.feed import BinanceFeed

__all__ = ["run_demo"]

SYMBOLS = ("BTC-USDT", "ETH-USDT")
CHANNELS = ("depth@100ms", "bookTicker", "trade")


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


def _merged_latency(engine: Engine) -> LatencyHistogram:
    hist = LatencyHistogram()
    for consumer in engine.consumers.values():
        hist.merge(consumer.latency)
    return hist


def _delivered(engine: Engine) -> int:
    return sum(c.stats().delivered for c in engine.consumers.values())


def _view(engine: Engine, state: dict, rate: float) -> str:
    """One line of the live terminal view."""
    stats = engine.stats()
    hist = _merged_latency(engine)
    pool = stats["pools"]["CanonicalEvent"]
    cons = stats["consumers"].values()
    resyncs = sum(f.resyncs for f in stats["feeds"].values())
    books = " ".join(_quote(engine, i, b, a) for i, (b, a) in sorted(state["top"].items()))
    return (f"{rate:,.0f} deliveries/s | latency p50 {hist.percentile(0.5) / 1e3:,.0f} us "
            f"p99 {hist.percentile(0.99) / 1e3:,.0f} us | pool {pool.in_use}/{pool.capacity} "
            f"hw {pool.high_water} | coalesced {sum(c.coalesced for c in cons)} "
            f"dropped {sum(c.dropped for c in cons)} | resyncs {resyncs} | {books}")


def _quote(engine: Engine, instrument: int, bid: int, ask: int) -> str:
    info = engine.registry.instrument(instrument)
    return (f"{info.symbol} {from_mantissa(bid, info.price_exp)}/"
            f"{from_mantissa(ask, info.price_exp)}")


def run_demo(duration: float | None, faults: str | None = None, seed: int = 7,
             quiet: bool = False) -> dict:
    """Run simulator + engine until ``duration`` seconds pass or Ctrl-C; return the summary."""
    interrupted = threading.Event()
    previous = _on_sigint(interrupted)
    sim = ExchangeSimulator("spot", config=MarketConfig.fast(), faults=faults, seed=seed)
    sim.start()
    try:
        engine = Engine()
        state = _add_consumers(engine)
        config = BinanceConfig(symbols=SYMBOLS, channels=CHANNELS, ws_url=sim.ws_url,
                               rest_url=sim.rest_url, refresh_interval_s=30.0)
        engine.add_feed(BinanceFeed(engine, config))
        start = time.monotonic()
        engine.start()
        try:
            _watch(engine, state, interrupted, start, duration, quiet)
        finally:
            report = engine.stop(5.0)
    finally:
        sim.stop()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return _summary(engine, report, time.monotonic() - start)


def _watch(engine, state, interrupted, start, duration, quiet) -> None:
    """Print the live view once a second until the duration passes or Ctrl-C."""
    last, delivered = time.monotonic(), 0
    while not interrupted.wait(0.2):
        now = time.monotonic()
        if duration is not None and now - start >= duration:
            return
        if now - last >= 1.0 and not quiet:
            total = _delivered(engine)
            print(_view(engine, state, (total - delivered) / (now - last)), file=sys.stderr,
                  flush=True)
            last, delivered = now, total
    print("meltica demo: interrupted, draining", file=sys.stderr)


def _on_sigint(flag: threading.Event):
    """Make Ctrl-C set ``flag`` (main thread only); return the handler it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, lambda signum, frame: flag.set())


def _summary(engine: Engine, report, elapsed: float) -> dict:
    """The demo's one-object summary: counts, latency, losses, books, pools, slots."""
    stats = engine.stats()
    cons = stats["consumers"].values()
    feeds = stats["feeds"].values()
    hist = _merged_latency(engine)
    streams = stats["streams"].values()
    events = {t.name.lower(): sum(s["released"] for s in streams if s["event_type"] == t)
              for t in (EventType.TRADE, EventType.BBO, EventType.BOOK_SNAPSHOT)}
    return {
        "events": events,
        "elapsed_s": round(elapsed, 3),
        "latency_us": {"p50": hist.percentile(0.5) / 1e3, "p99": hist.percentile(0.99) / 1e3,
                       "p999": hist.percentile(0.999) / 1e3},
        "delivered": sum(c.delivered for c in cons),
        "dropped": sum(c.dropped for c in cons),
        "coalesced": sum(c.coalesced for c in cons),
        "resyncs": sum(f.resyncs for f in feeds),
        "snapshots": sum(f.snapshots for f in feeds),
        "frames": sum(f.frames for f in feeds),
        "malformed": sum(f.malformed for f in feeds),
        "errors": sum(c.errors for c in cons),
        "pool_high_water": {name: p.high_water for name, p in stats["pools"].items()},
        "unreturned_slots": report.count,
    }
