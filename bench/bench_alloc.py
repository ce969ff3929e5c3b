"""Python allocations per event: the engine's fan-out vs the naive and tuned Python pipelines.

Two figures, each for the engine (10 batch consumers, not started: their rings hold what is
published) and for the Python pipelines of :mod:`bench.baselines.fanout` (an object per
event in their style, shared by 10 queues, nobody draining):

* blocks held per event: ``sys.getallocatedblocks()`` after publishing ``HELD`` events minus
  before, divided by ``HELD``, the collector off. What a burst costs in live Python objects
  while it is in flight (the engine's records live in preallocated NumPy rings);
* traced bytes per event: ``tracemalloc``'s peak over a steady run of publish-then-drain
  batches, above where it started, divided by the events of one batch. The transient memory
  a batch in flight takes (objects, queue blocks, temporaries) before it is freed.

Each figure is the median of the runs with min-max. The Go seeds asked for 40 % fewer
allocations than their baseline; the gate asks the engine for at most 0.4x the tuned one's.

Run: ``python -m bench.bench_alloc [--runs 5]``
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc

import numpy as np

from bench.baselines.fanout import fanout_events
from bench.baselines.styles import STYLES, Style
from bench.bench_fanout import BATCH, WARM, build_engine, engine_feed
from bench.handicap import engine_path
from bench.measure import Measure

CONSUMERS = 10
#: Events in flight for the blocks-held figure (fits the consumers' 4096-slot rings).
HELD = 2048
#: Events of the steady publish-then-drain run traced by tracemalloc.
TRACED = 8192


def _drain(engine) -> None:
    for consumer in engine.consumers.values():
        while consumer.poll():
            pass


def _held(publish_burst, release) -> float:
    """Blocks alive after ``publish_burst()`` minus before, per event; then ``release``."""
    gc.collect()
    gc.disable()
    try:
        before = sys.getallocatedblocks()
        held = publish_burst()
        after = sys.getallocatedblocks()
    finally:
        gc.enable()
    release(held)
    return max(0, after - before - 1) / HELD


def _traced(step, rounds: int) -> float:
    """tracemalloc's peak above the start over ``rounds`` calls of ``step``, per event of
    the batch in flight (each step publishes and drains one batch)."""
    gc.collect()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for r in range(rounds):
            step(r)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return max(0, peak - start) / BATCH


def engine_sides(feed: np.ndarray) -> tuple[float, float]:
    """(blocks held per event, traced bytes per event) of the engine."""
    engine, _, _ = build_engine("batch", 4096, CONSUMERS)
    publish = engine_path(engine.publish)
    for start in range(0, WARM, BATCH):
        publish(feed[start:start + BATCH])
    _drain(engine)
    burst = feed[WARM:WARM + HELD]

    def publish_burst():
        for start in range(0, HELD, BATCH):
            publish(burst[start:start + BATCH])

    held = _held(publish_burst, lambda _: _drain(engine))

    def step(r: int) -> None:
        lo = WARM + (r * BATCH) % HELD
        publish(feed[lo:lo + BATCH])
        _drain(engine)

    traced = _traced(step, TRACED // BATCH)
    engine.stop()
    return held, traced


def python_sides(feed: np.ndarray, style: Style) -> tuple[float, float]:
    """(blocks held per event, traced bytes per event) of a Python pipeline in ``style``."""
    queues = [style.make_queue() for _ in range(CONSUMERS)]
    puts = [q.put for q in queues]
    records = feed[WARM:WARM + HELD]

    def publish(batch: np.ndarray) -> None:
        for ev in fanout_events(batch, style):
            for put in puts:
                put(ev)

    def drain(_=None) -> None:
        for q in queues:
            while not q.empty():
                q.get()

    publish(records[:BATCH])
    drain()
    held = _held(lambda: publish(records), drain)

    def step(r: int) -> None:
        lo = (r * BATCH) % HELD
        publish(records[lo:lo + BATCH])
        drain()

    return held, _traced(step, TRACED // BATCH)


def run(runs: int) -> dict[str, list[tuple[float, float]]]:
    """side -> [(blocks held/event, traced bytes/event)] per run, sides interleaved."""
    feed = engine_feed(HELD + TRACED)
    results: dict[str, list] = {"engine": [], **{style.name: [] for style in STYLES}}
    for _ in range(runs):
        results["engine"].append(engine_sides(feed))
        for style in STYLES:
            results[style.name].append(python_sides(feed, style))
    return results


def measures(quick: bool) -> list[Measure]:
    """The suite's entry: both figures for the engine and each Python pipeline."""
    params = {"consumers": CONSUMERS, "held": HELD, "traced_events": TRACED, "batch": BATCH}
    out = []
    for side, values in run(3 if quick else 5).items():
        out += [Measure("alloc", "blocks held per event in flight", side, "blocks/event",
                        tuple(v[0] for v in values), params=params),
                Measure("alloc", "traced peak bytes per event, steady run", side, "bytes/event",
                        tuple(v[1] for v in values), params=params)]
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    for side, values in run(args.runs).items():
        held = sorted(v[0] for v in values)
        traced = sorted(v[1] for v in values)
        print(f"{side:<14} blocks held/event {held[len(held) // 2]:8.3f} "
              f"({held[0]:.3f}-{held[-1]:.3f})   traced bytes/event "
              f"{traced[len(traced) // 2]:8.1f} ({traced[0]:.1f}-{traced[-1]:.1f})")


if __name__ == "__main__":
    main()
