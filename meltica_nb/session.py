"""A running session: the live terminal view, Ctrl-C handling and the one-object summary.

Shared by ``meltica demo`` (engine + simulator) and ``meltica run`` (engine + real venues):
run the engine until ``duration`` passes or Ctrl-C, print a line per second on stderr, then
drain (5 s) and summarize. Ctrl-C becomes a flag the loop checks, so SIGINT never lands inside
a publish and strands pool slots.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from .engine import Engine
from .fixedpoint import from_mantissa
from .latency import LatencyHistogram
from .schema import EventType

__all__ = ["run_session", "summary"]

_COUNTED = (EventType.TRADE, EventType.BBO, EventType.BOOK_SNAPSHOT, EventType.TICKER,
            EventType.KLINE)


def run_session(engine: Engine, duration: float | None, quiet: bool = False) -> dict:
    """Start ``engine``, show the live view until done or Ctrl-C, stop it, return the summary."""
    interrupted = threading.Event()
    previous = _on_sigint(interrupted)
    try:
        engine.start()  # compiles what the Numba cache lacks: not part of the duration
        start = time.monotonic()
        try:
            _watch(engine, interrupted, start, duration, quiet)
        finally:
            report = engine.stop(5.0)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return summary(engine, report, time.monotonic() - start)


def _on_sigint(flag: threading.Event):
    """Make Ctrl-C set ``flag`` (main thread only); return the handler it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, lambda signum, frame: flag.set())


def _watch(engine: Engine, interrupted, start: float, duration, quiet: bool) -> None:
    """Print the live view once a second until the duration passes or Ctrl-C."""
    last, delivered = time.monotonic(), 0
    while not interrupted.wait(0.2):
        now = time.monotonic()
        if duration is not None and now - start >= duration:
            return
        if now - last >= 1.0 and not quiet:
            total = sum(c.stats().delivered for c in engine.consumers.values())
            print(view(engine, (total - delivered) / (now - last)), file=sys.stderr, flush=True)
            last, delivered = now, total
    print("meltica: interrupted, draining", file=sys.stderr)


def merged_latency(engine: Engine) -> LatencyHistogram:
    """Handler-entry latency of every consumer in one histogram."""
    hist = LatencyHistogram()
    for consumer in engine.consumers.values():
        hist.merge(consumer.latency)
    return hist


def view(engine: Engine, rate: float) -> str:
    """One line of the live view: throughput, latency, pool, losses, resyncs, best quotes."""
    stats = engine.stats()
    hist = merged_latency(engine)
    pool = stats["pools"]["CanonicalEvent"]
    cons = stats["consumers"].values()
    resyncs = sum(f.resyncs for f in stats["feeds"].values())
    return (f"{rate:,.0f} deliveries/s | latency p50 {hist.percentile(0.5) / 1e3:,.0f} us "
            f"p99 {hist.percentile(0.99) / 1e3:,.0f} us | pool {pool.in_use}/{pool.capacity} "
            f"hw {pool.high_water} | coalesced {sum(c.coalesced for c in cons)} "
            f"dropped {sum(c.dropped for c in cons)} | resyncs {resyncs} | {_quotes(engine)}")


def _quotes(engine: Engine) -> str:
    """Best bid/ask of every live book, from the feeds' own books."""
    parts = []
    for feed in engine.feeds:
        for symbol in feed.config.symbols:
            info = engine.registry.instrument(engine.registry.instrument_id(symbol))
            bid, _, ask, _ = feed.best(info.id)
            if bid and ask:
                parts.append(f"{symbol} {from_mantissa(bid, info.price_exp)}/"
                             f"{from_mantissa(ask, info.price_exp)}")
    return " ".join(parts)


def summary(engine: Engine, report, elapsed: float) -> dict:
    """The one-object summary ``demo`` and ``run`` print (``--json``)."""
    stats = engine.stats()
    cons = stats["consumers"].values()
    feeds = stats["feeds"].values()
    hist = merged_latency(engine)
    streams = stats["streams"].values()
    events = {t.name.lower(): sum(s["released"] for s in streams if s["event_type"] == t)
              for t in _COUNTED}
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
