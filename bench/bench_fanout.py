"""Fan-out: ordering, routing and delivery to 1, 10 and 50 consumers, engine vs baselines.

The feed is trades on 4 streams (one venue, 4 instruments), each stream's sequence contiguous,
so the ordering stage releases every event at once; it is published in batches of 256 with
``engine.publish``. Every consumer subscribes to trades and does the same work: count the
events and sum their price. For each consumer count and mode ("batch", "njit", "python"):

* end to end: consumers running on their threads, timed from the first publish until every
  consumer's handler has seen every event (a counter the handler updates); the rings hold the
  whole feed, since a full market-data ring drops its oldest trade (so the feed is shortened
  for many consumers: at most ``RING_BUDGET`` ring slots in all);
* dispatcher only: consumers not started; only the ``engine.publish`` calls are timed (stamp,
  order, route, copy into every ring), the rings are drained by ``consumer.poll()`` between
  batches outside the timed part (that drain is reported too: the consumer side on one thread).

Beside it, in the same process:

* bare copy: one small ``@njit`` kernel copies each batch of CANONICAL_EVENT records into the
  consumers' preallocated rings with wrapping cursors and another drains them (count, sum), the
  floor for fan-out (no pool, stamping, ordering or routing);
* Python queues (:mod:`bench.baselines.fanout`), naive (dataclasses, ``queue.Queue``) and tuned
  (slotted objects, ``queue.SimpleQueue``): a per-stream sequence check, routing by event type,
  one queue and one thread per consumer, the same per-consumer work.

Each figure is the median of ``--runs`` runs, with min-max. Ratios: "fan-out x bare" is the
dispatcher's publish time over the bare copy's (target: within 2x); "x python" is end-to-end
events/s over the naive Python queues' (target: batch and njit above 50x). Nothing is asserted.

Run: ``python -m bench.bench_fanout [--runs 5] [--events 200000] [--consumers 1 10 50]
[--quick] [--json]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time

import numpy as np
import orjson
from numba import njit

from bench.baselines.fanout import fanout_events, run_fanout
from bench.baselines.styles import NAIVE, STYLES
from bench.handicap import engine_path
from bench.measure import HIGHER, Measure, summary
from meltica_nb.engine import Engine
from meltica_nb.registry import Registry
from meltica_nb.schema import CANONICAL_EVENT, EventType

CONSUMER_COUNTS = (1, 10, 50)
STREAMS = 4
BATCH = 256
#: Most events a consumer's handler gets at once: a consumer that fell behind takes what is
#: waiting (up to this) in one call, which is what keeps per-call costs off each event.
CONSUMER_BATCH = 4096
#: Events published (and drained) before each timed part, untimed: page faults, caches.
WARM = 16 * BATCH
MODES = ("batch", "njit", "python")
#: Quick mode runs njit consumers at 1 consumer only: the engine compiles each njit consumer's
#: delivery loop at start (about a second each, not cached), 20 per run at 10 consumers.
QUICK_NJIT_CONSUMERS = 1
VENUE = "binance"
SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT")
#: Longest an end-to-end run may wait for its consumers before it is reported as incomplete.
E2E_TIMEOUT_S = 120.0
#: Ring slots of all consumers together in an end-to-end run (128 bytes each: 128 MiB).
RING_BUDGET = 1 << 20


# -- feed ---------------------------------------------------------------------------------------

def make_feed(n: int, venue: int, instruments: list[int]) -> np.ndarray:
    """``n`` trades round-robin over the streams, each stream's sequence contiguous from 1."""
    feed = np.zeros(n, CANONICAL_EVENT)
    k = np.arange(n, dtype=np.int64)
    seq = k // len(instruments) + 1
    feed["event_type"] = EventType.TRADE
    feed["venue"] = venue
    feed["instrument"] = np.asarray(instruments, np.int64)[k % len(instruments)]
    feed["seq_provider"] = seq
    feed["seq_first"] = seq
    feed["trade_id"] = seq
    feed["price"] = 6_700_000_000 + (k % 1000)  # sums of millions of them fit an int64
    feed["quantity"] = 1_000 + (k % 7)
    return feed


def prefault(records: np.ndarray) -> None:
    """Touch every page of a freshly allocated record array (zeros stay zeros)."""
    records.view(np.uint8)[::4096] = 0


# -- engine side --------------------------------------------------------------------------------

@njit(cache=True)
def njit_handler(rec, state):
    """The njit consumers' work: count, sum the price."""
    state[0] += 1
    state[1] += rec.price


def _batch_handler(state: np.ndarray):
    def on_batch(view: np.ndarray) -> None:
        state[1] += int(view["price"].sum())
        state[0] += view.shape[0]
    return on_batch


def _python_handler():
    acc = [0, 0]

    def on_event(rec) -> None:
        acc[1] += int(rec["price"])
        acc[0] += 1
    return on_event, acc


def build_engine(mode: str, ring_capacity: int, consumers: int) -> tuple[Engine, list, list]:
    """An engine with ``consumers`` trade consumers of ``mode``; (engine, counts, sums).

    ``counts`` and ``sums`` hold one reader per consumer of what its handler has seen.
    """
    engine = Engine()
    engine.registry.venue_id(VENUE)
    for symbol in SYMBOLS:
        engine.registry.instrument_id(symbol)
    counts, sums = [], []
    for c in range(consumers):
        state = np.zeros(2, np.int64)
        if mode == "python":
            fn, acc = _python_handler()
            count, total = (lambda a=acc: a[0]), (lambda a=acc: a[1])
        else:
            fn = _batch_handler(state) if mode == "batch" else njit_handler
            count, total = (lambda s=state: int(s[0])), (lambda s=state: int(s[1]))
        consumer = engine.add_consumer(f"c{c}", fn, events=["trade"], mode=mode,
                                       state=state if mode == "njit" else None,
                                       ring_capacity=ring_capacity,
                                       batch_size=CONSUMER_BATCH)
        prefault(consumer.market.records)
        counts.append(count)
        sums.append(total)
    prefault(engine.dispatcher.pool.records)
    return engine, counts, sums


def engine_feed(n: int) -> np.ndarray:
    """The warm-up plus ``n`` events, with the ids every bench engine hands out."""
    probe = Registry()  # an engine's registry is a fresh one: the same ids, in the same order
    venue = probe.venue_id(VENUE)
    instruments = [probe.instrument_id(s) for s in SYMBOLS]
    return make_feed(WARM + n, venue, instruments)


def _publish_all(engine: Engine, feed: np.ndarray) -> None:
    publish = engine_path(engine.publish)
    for start in range(0, feed.shape[0], BATCH):
        publish(feed[start:start + BATCH])


def _wait_counts(counts: list, target: int, deadline: float) -> bool:
    """Sleep-poll the handlers' counters until each reached ``target`` (False on timeout)."""
    while any(count() < target for count in counts):
        if time.perf_counter() > deadline:
            return False
        time.sleep(0.0002)
    return True


def engine_e2e(mode: str, feed: np.ndarray, consumers: int) -> dict:
    """One end-to-end run: publish with consumers running, until all delivered everything.

    Rings hold the whole feed: a market-data ring drops the oldest trade when full, and the
    run must deliver every event to end (the Python queues are unbounded too).
    """
    n = feed.shape[0] - WARM
    ring = 1 << (feed.shape[0] - 1).bit_length()
    engine, counts, sums = build_engine(mode, max(4096, ring), consumers)
    engine.start()
    try:
        _publish_all(engine, feed[:WARM])
        _wait_counts(counts, WARM, time.perf_counter() + E2E_TIMEOUT_S)
        gc.collect()
        start = time.perf_counter()
        _publish_all(engine, feed[WARM:])
        published = time.perf_counter()
        done = _wait_counts(counts, WARM + n, start + E2E_TIMEOUT_S)
        end = time.perf_counter()
    finally:
        engine.stop()
    return {"seconds": end - start, "publish_seconds": published - start,
            "complete": done and _delivered_all(engine, feed, sums)}


def _delivered_all(engine: Engine, feed: np.ndarray, sums: list) -> bool:
    """Every consumer delivered every event, nothing dropped, and the price sums match."""
    want = int(feed["price"].sum())
    stats = engine.stats()["consumers"]
    return all(s.delivered == feed.shape[0] and s.dropped == 0 for s in stats.values()) and all(
        total() == want for total in sums)


def engine_dispatch(mode: str, feed: np.ndarray, n_consumers: int) -> dict:
    """Consumers not started: time the publish calls; drain with poll() between batches."""
    engine, _, sums = build_engine(mode, 4096, n_consumers)
    consumers = list(engine.consumers.values())
    publish = engine_path(engine.publish)
    clock = time.thread_time  # CPU time of this thread: robust to load
    t_publish = t_drain = 0.0
    gc.collect()
    for start in range(0, feed.shape[0], BATCH):
        t0 = clock()
        publish(feed[start:start + BATCH])
        t1 = clock()
        for consumer in consumers:
            consumer.poll()
        t2 = clock()
        if start >= WARM:
            t_publish += t1 - t0
            t_drain += t2 - t1
    for consumer in consumers:
        while consumer.poll():
            pass
    engine.stop()
    return {"publish_seconds": t_publish, "drain_seconds": t_drain,
            "complete": _delivered_all(engine, feed, sums)}


# -- bare copy ----------------------------------------------------------------------------------

@njit(cache=True)
def bare_fanout(rings, heads, events):
    """Copy ``events`` into every ring ``rings[r]`` at its head (capacity a power of two)."""
    mask = rings.shape[1] - 1
    n = events.shape[0]
    for r in range(rings.shape[0]):
        head = heads[r]
        for i in range(n):
            rings[r, (head + i) & mask] = events[i]
        heads[r] = head + n


@njit(cache=True)
def bare_drain(rings, heads, tails, state):
    """Read every ring from its tail to its head: count the events, sum their price."""
    mask = rings.shape[1] - 1
    for r in range(rings.shape[0]):
        count = 0
        total = 0
        for seq in range(tails[r], heads[r]):
            total += rings[r, seq & mask]["price"]
            count += 1
        state[r, 0] += count
        state[r, 1] += total
        tails[r] = heads[r]


def bare_copy(feed: np.ndarray, consumers: int) -> dict:
    """Copy each batch into every ring, drain them; time the copies and the drains apart."""
    rings = np.zeros((consumers, 4096), CANONICAL_EVENT)
    prefault(rings)
    heads = np.zeros(consumers, np.int64)
    tails = np.zeros(consumers, np.int64)
    state = np.zeros((consumers, 2), np.int64)
    clock = time.thread_time  # CPU time of this thread: robust to load
    t_copy = t_drain = 0.0
    for start in range(0, feed.shape[0], BATCH):
        batch = feed[start:start + BATCH]
        t0 = clock()
        bare_fanout(rings, heads, batch)
        t1 = clock()
        bare_drain(rings, heads, tails, state)
        t2 = clock()
        if start >= WARM:
            t_copy += t1 - t0
            t_drain += t2 - t1
    complete = bool((state[:, 0] == feed.shape[0]).all()
                    and (state[:, 1] == int(feed["price"].sum())).all())
    return {"publish_seconds": t_copy, "drain_seconds": t_drain,
            "seconds": t_copy + t_drain, "complete": complete}


# -- runs and summaries -------------------------------------------------------------------------

def _rates(seconds: list[float], n: int, consumers: int) -> tuple[dict, dict]:
    """events/s and deliveries/s summaries for runs of ``n`` events to ``consumers``."""
    events = [n / s for s in seconds]
    return summary(events), summary([e * consumers for e in events])


def _warm_up(feed: np.ndarray) -> None:
    """Compile every kernel and handler path outside the timed runs."""
    small = feed[:WARM + 4 * BATCH]
    for mode in MODES:
        engine_dispatch(mode, small, 1)
        engine_e2e(mode, small, 1)
    bare_copy(small, 1)
    run_fanout(fanout_events(small[:BATCH], NAIVE), 1, NAIVE)


def e2e_feed(feed: np.ndarray, consumers: int) -> np.ndarray:
    """The feed cut so that every consumer's ring holds it whole within RING_BUDGET."""
    ring = 1 << ((RING_BUDGET // consumers).bit_length() - 1)
    n = max(BATCH, min(feed.shape[0] - WARM, (ring - WARM) // BATCH * BATCH))
    return feed[:WARM + n]


def measure_engine(mode: str, feed: np.ndarray, runs: int, consumers: int) -> dict:
    """End-to-end and dispatcher-only runs of one consumer mode."""
    n = feed.shape[0] - WARM
    short = e2e_feed(feed, consumers)
    e2e = [engine_e2e(mode, short, consumers) for _ in range(runs)]
    disp = [engine_dispatch(mode, feed, consumers) for _ in range(runs)]
    e2e_ev, e2e_del = _rates([r["seconds"] for r in e2e], short.shape[0] - WARM, consumers)
    fan_ev, fan_del = _rates([r["publish_seconds"] for r in disp], n, consumers)
    _, drain_del = _rates([r["drain_seconds"] for r in disp], n, consumers)
    return {
        "pipeline": f"engine {mode}", "events": n, "e2e_events": short.shape[0] - WARM,
        "consumers": consumers,
        "e2e_events_per_s": e2e_ev, "e2e_deliveries_per_s": e2e_del,
        "e2e_publish_share": statistics.median(
            r["publish_seconds"] / r["seconds"] for r in e2e),
        "fanout_events_per_s": fan_ev, "fanout_deliveries_per_s": fan_del,
        "drain_deliveries_per_s": drain_del,
        "e2e_runs": [(short.shape[0] - WARM) / r["seconds"] for r in e2e],
        "fanout_runs": [n / r["publish_seconds"] for r in disp],
        "complete": all(r["complete"] for r in e2e + disp),
    }


def measure_bare(feed: np.ndarray, runs: int, consumers: int) -> dict:
    n = feed.shape[0] - WARM
    rows = [bare_copy(feed, consumers) for _ in range(runs)]
    e2e_ev, e2e_del = _rates([r["seconds"] for r in rows], n, consumers)
    fan_ev, fan_del = _rates([r["publish_seconds"] for r in rows], n, consumers)
    _, drain_del = _rates([r["drain_seconds"] for r in rows], n, consumers)
    return {"pipeline": "bare copy", "events": n, "e2e_events": n, "consumers": consumers,
            "e2e_events_per_s": e2e_ev, "e2e_deliveries_per_s": e2e_del,
            "fanout_events_per_s": fan_ev, "fanout_deliveries_per_s": fan_del,
            "drain_deliveries_per_s": drain_del,
            "e2e_runs": [n / r["seconds"] for r in rows],
            "fanout_runs": [n / r["publish_seconds"] for r in rows],
            "complete": all(r["complete"] for r in rows)}


def measure_python(feed: np.ndarray, runs: int, consumers: int, style) -> dict:
    events = fanout_events(e2e_feed(feed, consumers)[WARM:], style)
    n = len(events)
    rows = [run_fanout(events, consumers, style) for _ in range(runs)]
    e2e_ev, e2e_del = _rates([r["seconds"] for r in rows], n, consumers)
    return {"pipeline": style.name, "events": n, "e2e_events": n, "consumers": consumers,
            "e2e_events_per_s": e2e_ev, "e2e_deliveries_per_s": e2e_del,
            "e2e_publish_share": statistics.median(
                r["publish_seconds"] / r["seconds"] for r in rows),
            "e2e_runs": [n / r["seconds"] for r in rows],
            "complete": all(r["complete"] for r in rows)}


def run_consumers(feed: np.ndarray, runs: int, consumers: int, modes=MODES) -> list[dict]:
    """Every mode, the bare copy and both Python pipelines at one consumer count."""
    bare = measure_bare(feed, runs, consumers)
    pys = [measure_python(feed, runs, consumers, style) for style in STYLES]
    naive = pys[0]["e2e_events_per_s"]["median"]
    rows = []
    for mode in modes:
        row = measure_engine(mode, feed, runs, consumers)
        row["fanout_x_bare"] = (bare["fanout_events_per_s"]["median"]
                                / row["fanout_events_per_s"]["median"])
        row["e2e_x_python"] = row["e2e_events_per_s"]["median"] / naive
        rows.append(row)
    return [*rows, bare, *pys]


def modes_for(consumers: int, quick: bool) -> tuple[str, ...]:
    if quick and consumers != QUICK_NJIT_CONSUMERS:
        return tuple(m for m in MODES if m != "njit")
    return MODES


def run(events: int = 200_000, runs: int = 5, counts=CONSUMER_COUNTS, quick: bool = False
        ) -> list[dict]:
    """Every consumer count: every mode, then the bare copy and the Python queues."""
    events = max(BATCH, events // BATCH * BATCH)
    feed = engine_feed(events)
    _warm_up(feed)
    return [row for consumers in counts
            for row in run_consumers(feed, runs, consumers, modes_for(consumers, quick))]


def measures(quick: bool) -> list[Measure]:
    """The suite's entry: e2e events/s and deliveries/s, dispatcher events/s, per count."""
    rows = run(20_000 if quick else 200_000, 1 if quick else 3, quick=quick)
    out = []
    for row in rows:
        if not row["complete"]:
            raise AssertionError(f"fanout: {row['pipeline']} lost events")
        c, side = row["consumers"], row["pipeline"]
        params = {"consumers": c, "events": row["e2e_events"], "batch": BATCH}
        e2e = tuple(row["e2e_runs"])
        out += [Measure("fanout", f"e2e events/s, {c} consumers", side, "events/s", e2e,
                        HIGHER, params),
                Measure("fanout", f"e2e deliveries/s, {c} consumers", side, "deliveries/s",
                        tuple(v * c for v in e2e), HIGHER, params)]
        if "fanout_runs" in row:
            out.append(Measure("fanout", f"dispatcher publish events/s, {c} consumers", side,
                               "events/s", tuple(row["fanout_runs"]), HIGHER,
                               {**params, "events": row["events"]}))
    return out


def _rate(figure: dict | None) -> str:
    if figure is None:
        return f"{'-':>24}"
    return (f"{figure['median'] / 1e6:>7.2f} ({figure['min'] / 1e6:.2f}-"
            f"{figure['max'] / 1e6:.2f})").rjust(24)


def _num(value: float | None, fmt: str, width: int) -> str:
    return f"{'-' if value is None else format(value, fmt):>{width}}"


def _print_table(rows: list[dict]) -> None:
    print(f"{rows[0]['events']} trades on {STREAMS} streams (end to end: fewer for many "
          f"consumers, see e2e n), published in batches of {BATCH}; millions per second, "
          f"median (min-max)")
    print(f"{'pipeline':<14} {'cons':>4} {'e2e n':>6} {'e2e events/s':>24} "
          f"{'e2e deliveries/s':>24} {'fan-out events/s':>24} {'fan-out deliv/s':>24} "
          f"{'drain deliv/s 1 thr':>24} "
          f"{'pub%':>5} {'fan-out x bare':>14} {'e2e x python':>12} {'ok':>3}")
    for row in rows:
        share = row.get("e2e_publish_share")
        print(f"{row['pipeline']:<14} {row['consumers']:>4} {row['e2e_events']:>6} "
              f"{_rate(row['e2e_events_per_s'])} "
              f"{_rate(row['e2e_deliveries_per_s'])} {_rate(row.get('fanout_events_per_s'))} "
              f"{_rate(row.get('fanout_deliveries_per_s'))} "
              f"{_rate(row.get('drain_deliveries_per_s'))} "
              f"{_num(None if share is None else 100 * share, '.0f', 5)} "
              f"{_num(row.get('fanout_x_bare'), '.2f', 14)} "
              f"{_num(row.get('e2e_x_python'), '.1f', 12)} "
              f"{'yes' if row['complete'] else 'NO':>3}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (5; quick: 1)")
    parser.add_argument("--events", type=int, default=None,
                        help="events per run (200000; quick: 20000)")
    parser.add_argument("--consumers", type=int, nargs="+", default=list(CONSUMER_COUNTS))
    parser.add_argument("--quick", action="store_true",
                        help="fewer events and runs, njit consumers at 1 consumer only (CI)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    runs = args.runs if args.runs is not None else (1 if args.quick else 5)
    events = args.events if args.events is not None else (20_000 if args.quick else 200_000)
    rows = run(events, runs, tuple(args.consumers), args.quick)
    if args.json:
        sys.stdout.write(orjson.dumps({"fanout": rows}, option=orjson.OPT_INDENT_2).decode()
                         + "\n")
    else:
        _print_table(rows)


if __name__ == "__main__":
    main()
