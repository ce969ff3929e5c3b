"""Pool slot operations: acquire + zero-fill + release, engine vs a pure-Python baseline.

The baseline is what users write without pools: one Python object per event (a dataclass
with the CanonicalEvent's fields), created for each event and dropped after use. Both sides
process batches of 1, 64 and 4096 events; each configuration runs several times and reports
the median with min-max. Allocations per event are counted as Python memory blocks alive
while a batch is held (``sys.getallocatedblocks``), the number the Go seeds promised to cut
by 40 %.

Run: ``python -m bench.bench_pool [--runs 5] [--events 200000] [--json]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import orjson

from bench.handicap import engine_path
from bench.measure import HIGHER, Measure, summary
from meltica_nb import Pool
from meltica_nb.schema import CANONICAL_EVENT

BATCHES = (1, 64, 4096)


@dataclass
class PyEvent:
    """The baseline's per-event object: the canonical header plus a trade payload."""

    ingest_ns: int = 0
    exchange_ns: int = 0
    seq_provider: int = 0
    trace_id: int = 0
    routing_version: int = 0
    instrument: int = 0
    venue: int = 0
    event_type: int = 0
    kind: int = 0
    price: int = 0
    quantity: int = 0


def engine_round(pool: Pool, handles: np.ndarray, batch: int) -> None:
    """One batch: acquire (zero-filled), touch, release, reusing the handle array."""
    slots = pool.acquire_many(batch, out=handles)
    pool.records["seq_provider"][slots[0]] = 1
    pool.release_many(slots)


def baseline_round(batch: int, base: int) -> list:
    """One batch: build ``batch`` fresh objects, touch, drop."""
    events = [PyEvent(ingest_ns=base + i, seq_provider=base + i, price=6_700_000_000_000 + i)
              for i in range(batch)]
    events[0].seq_provider = 1
    return events


def slots_per_second(fn, batch: int, events: int) -> float:
    """Run ``fn`` over ``events`` events in batches of ``batch``; return events per second."""
    rounds = max(1, events // batch)
    start = time.perf_counter()
    for r in range(rounds):
        fn(r)
    return rounds * batch / (time.perf_counter() - start)


def blocks_per_event(fn, batch: int) -> float:
    """Python memory blocks alive while one batch is held, per event (after warm-up)."""
    fn(0)
    gc.collect()
    gc.disable()
    try:
        before = sys.getallocatedblocks()
        held = fn(1)
        during = sys.getallocatedblocks()
        del held
    finally:
        gc.enable()
    return max(0, during - before - 1) / batch


def measure(batch: int, events: int, runs: int) -> dict:
    """Median and min-max slots/s and allocations for one batch size, both sides."""
    pool = Pool(CANONICAL_EVENT, max(8192, batch), name="bench")
    handles = np.empty(batch, dtype=np.int64)
    slowed = engine_path(engine_round)
    engine = lambda r: slowed(pool, handles, batch)  # noqa: E731
    baseline = lambda r: baseline_round(batch, r * batch)  # noqa: E731
    engine(0)  # compile
    eng = [slots_per_second(engine, batch, events) for _ in range(runs)]
    base = [slots_per_second(baseline, batch, events // 4) for _ in range(runs)]
    return {
        "batch": batch,
        "engine_slots_per_s": summary(eng),
        "baseline_objects_per_s": summary(base),
        "engine_runs": eng, "baseline_runs": base,
        "ratio_median": statistics.median(eng) / statistics.median(base),
        "engine_blocks_per_event": blocks_per_event(engine, batch),
        "baseline_blocks_per_event": blocks_per_event(baseline, batch),
    }


def run(events: int = 200_000, runs: int = 5) -> list[dict]:
    """Every batch size, engine beside baseline."""
    return [measure(batch, events, runs) for batch in BATCHES]


def measures(quick: bool) -> list[Measure]:
    """The suite's entry: slots/s and blocks per held event, engine and baseline, per batch."""
    rows = run(20_000 if quick else 200_000, 3 if quick else 5)
    out = []
    for row in rows:
        params = {"batch": row["batch"]}
        name = f"pool batch {row['batch']}"
        out += [Measure("pool", f"{name} events/s", "engine", "events/s",
                        tuple(row["engine_runs"]), HIGHER, params),
                Measure("pool", f"{name} events/s", "python dataclass per event", "events/s",
                        tuple(row["baseline_runs"]), HIGHER, params),
                Measure("pool", f"{name} blocks/event", "engine", "blocks/event",
                        (row["engine_blocks_per_event"],), params=params),
                Measure("pool", f"{name} blocks/event", "python dataclass per event",
                        "blocks/event", (row["baseline_blocks_per_event"],), params=params)]
    return out


def _print_table(rows: list[dict]) -> None:
    print(f"{'batch':>6} {'engine slots/s (min-max)':>34} {'baseline obj/s':>14} "
          f"{'ratio':>7} {'blocks/ev eng':>13} {'base':>6}")
    for row in rows:
        e, b = row["engine_slots_per_s"], row["baseline_objects_per_s"]
        print(f"{row['batch']:>6} {e['median']:>12,.0f} ({e['min']:,.0f}-{e['max']:,.0f}) "
              f"{b['median']:>14,.0f} {row['ratio_median']:>7.1f} "
              f"{row['engine_blocks_per_event']:>13.2f} {row['baseline_blocks_per_event']:>6.2f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = run(args.events, args.runs)
    if args.json:
        sys.stdout.write(orjson.dumps({"pool": rows}, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_table(rows)


if __name__ == "__main__":
    main()
