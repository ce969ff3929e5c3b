"""Windowed merges: fragments/s through the Orchestrator vs a pure-Python dict of windows.

The feed is BBOs of one instrument alternating between two venues (``binance`` and
``binance-futures``), received 1 us apart, plus as many BBOs of a second instrument nobody
merges (so half of what the merge stage sees is not a fragment). Two merged subscriptions are
measured, each a scenario:

* ``defaults``: the spec's window (10 s) and count (1000): windows close by count every 1000
  fragments, so the cost is routing fragments into windows;
* ``every-pair``: ``max_events=2``: a consolidated best bid/offer is emitted for every pair of
  fragments, so the cost includes closing windows, composing MergedEvents and the pool.

Rows, all in the same process run:

* orchestrator: ``Orchestrator.on_batch`` on CanonicalEvent batches of 256 (the merge stage
  alone: one kernel call per batch, then the MergedEvent records into pool slots);
* python-dict: :class:`DictMerger`, the same rules in plain Python over one dict per event (the
  shape a pure-Python engine would hand it), windows in a dict; it is also the reference model
  the kernel tests compare the Orchestrator with, so the comparison is like for like;
* engine publish, with and without the merged subscription: ``engine.publish`` of the same
  batches (stamp, order, route, merge, fan out to one consumer), so the merge stage's share of
  the dispatcher path shows.

Each figure is the median of ``--runs`` runs with min-max; "x python" is the orchestrator's
events/s over the dict baseline's; "publish slowdown" is the share of ``engine.publish``
throughput the merged subscription costs (merge stage plus publishing the merged events).
Nothing is asserted.

Run: ``python -m bench.bench_merge [--runs 5] [--events 200000] [--quick] [--json]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time

import numpy as np
import orjson

from bench.handicap import engine_path
from bench.measure import HIGHER, Measure
from meltica_nb.clock import ManualClock
from meltica_nb.engine import Engine
from meltica_nb.schema import CANONICAL_EVENT, EventType

BATCH = 256
VENUES = ("binance", "binance-futures")
SCENARIOS = {"defaults": {}, "every-pair": {"max_events": 2}}
T0 = 1_000_000_000
BBO = int(EventType.BBO)
TICKER = int(EventType.TICKER)
_COUNTS = ("fragments", "windows", "emitted", "emitted_partial", "suppressed",
           "dropped_partial", "dropped_late", "closed_by_count", "closed_by_time")


# -- the baseline (and reference model) ---------------------------------------------------------


class DictMerger:
    """The merge rules of :mod:`meltica_nb.kernels.merge_kernels` in plain Python.

    ``rules``: dicts with ``instrument``, ``event_type``, ``venues`` (list), ``window_ns``,
    ``max_events`` and ``policy`` ("suppress", "emit" or "drop"). Events are dicts with
    ``venue``, ``instrument``, ``event_type``, ``ingest_ns`` and the quote fields. Emitted
    windows are appended to the ``out`` list given to :meth:`on_event` / :meth:`tick`.
    """

    def __init__(self, rules: list[dict]):
        self.rules = rules
        self.by_key: dict[tuple[int, int], list[int]] = {}
        for i, rule in enumerate(rules):
            self.by_key.setdefault((rule["instrument"], rule["event_type"]), []).append(i)
        self.windows: dict[int, dict] = {}
        self.last_close = [0] * len(rules)
        self.next_id = 1
        self.counts = [dict.fromkeys(_COUNTS, 0) for _ in rules]
        self.missing = [dict.fromkeys(rule["venues"], 0) for rule in rules]
        self.late = [dict.fromkeys(rule["venues"], 0) for rule in rules]

    def on_event(self, ev: dict, out: list) -> None:
        for i in self.by_key.get((ev["instrument"], ev["event_type"]), ()):
            if ev["venue"] in self.rules[i]["venues"]:
                self._add(i, ev, out)

    def _add(self, i: int, ev: dict, out: list) -> None:
        rule, t = self.rules[i], ev["ingest_ns"]
        if t < self.last_close[i]:
            self.counts[i]["dropped_late"] += 1
            self.late[i][ev["venue"]] += 1
            return
        win = self.windows.get(i)
        if win is not None and t >= win["open"] + rule["window_ns"]:
            self._close(i, win["open"] + rule["window_ns"], "closed_by_time", out)
            win = None
        if win is None:
            win = self.windows[i] = {"open": t, "id": self.next_id, "count": 0, "frags": {}}
            self.next_id += 1
            self.counts[i]["windows"] += 1
        win["frags"][ev["venue"]] = ev
        win["count"] += 1
        self.counts[i]["fragments"] += 1
        if win["count"] >= rule["max_events"]:
            self._close(i, t, "closed_by_count", out)

    def tick(self, now_ns: int, out: list) -> None:
        """Close every window whose time is up (rule order, as the kernel does)."""
        for i in sorted(self.windows):
            end = self.windows[i]["open"] + self.rules[i]["window_ns"]
            if now_ns >= end:
                self._close(i, end, "closed_by_time", out)

    def _close(self, i: int, close_ns: int, why: str, out: list) -> None:
        rule, win = self.rules[i], self.windows.pop(i)
        self.last_close[i] = close_ns
        self.counts[i][why] += 1
        frags = [win["frags"][v] for v in rule["venues"] if v in win["frags"]]
        complete = len(frags) == len(rule["venues"])
        if complete or rule["policy"] == "emit":
            self.counts[i]["emitted"] += 1
            self.counts[i]["emitted_partial"] += not complete
            out.append({"rule": i, "merge_id": win["id"], "open": win["open"],
                        "close": close_ns, "complete": complete, "fragments": frags,
                        **(_best(frags) if rule["event_type"] in (BBO, TICKER) else {})})
        elif rule["policy"] == "suppress":
            self.counts[i]["suppressed"] += 1
            for v in rule["venues"]:
                self.missing[i][v] += v not in win["frags"]
        else:
            self.counts[i]["dropped_partial"] += 1


def _best(frags: list[dict]) -> dict:
    """Consolidated sides: highest bid / lowest ask, ties to the larger size, then list order."""
    bid = ask = None
    for f in frags:
        if f["bid_qty"] > 0 and (bid is None or (f["bid_price"], f["bid_qty"]) > bid[:2]):
            bid = (f["bid_price"], f["bid_qty"], f["venue"])
        if f["ask_qty"] > 0 and (ask is None or (f["ask_price"], -f["ask_qty"])
                                 < (ask[0], -ask[1])):
            ask = (f["ask_price"], f["ask_qty"], f["venue"])
    return {"best_bid": bid or (0, 0, 0), "best_ask": ask or (0, 0, 0)}


def as_dicts(events: np.ndarray) -> list[dict]:
    """CanonicalEvent records as the dicts a pure-Python engine would carry."""
    names = ("venue", "instrument", "event_type", "ingest_ns", "seq_provider", "bid_price",
             "bid_qty", "ask_price", "ask_qty")
    columns = [events[name].tolist() for name in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


# -- feed and engine ------------------------------------------------------------------------------


def make_feed(engine: Engine, n: int) -> np.ndarray:
    """``n`` BBOs, 1 us apart: BTC-USDT alternating venues, interleaved with ETH-USDT ones."""
    reg = engine.registry
    venue_ids = np.array([reg.venue_id(v) for v in VENUES])
    insts = np.array([reg.instrument_id("BTC-USDT"), reg.instrument_id("ETH-USDT")])
    i = np.arange(n)
    feed = np.zeros(n, CANONICAL_EVENT)
    feed["event_type"] = BBO
    feed["instrument"] = insts[i % 2]
    feed["venue"] = venue_ids[(i // 2) % 2]
    feed["seq_provider"] = feed["seq_first"] = i // 4 + 1  # contiguous per stream
    feed["ingest_ns"] = T0 + i * 1000
    rng = np.random.default_rng(1)
    feed["bid_price"] = 6_000_000 + rng.integers(0, 100, n)
    feed["ask_price"] = feed["bid_price"] + 1 + rng.integers(0, 5, n)
    feed["bid_qty"] = rng.integers(1, 1000, n)
    feed["ask_qty"] = rng.integers(1, 1000, n)
    return feed


def build(options: dict | None) -> Engine:
    """An engine (not started) with one consumer; ``options`` merges BTC-USDT BBOs."""
    engine = Engine({"pools": {"CanonicalEvent": 8192}}, clock=ManualClock(T0))
    engine.add_consumer("merged", lambda view: None, ring_capacity=1 << 16)
    if options is not None:
        ack = engine.control.merged_subscribe("merged", "BTC-USDT", "bbo", list(VENUES),
                                              **options)
        assert ack.success, ack
    return engine


def _timed(fn) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def time_orchestrator(options: dict, n: int) -> float:
    engine = build(options)
    feed = make_feed(engine, n)
    orch, clock = engine.orchestrator, engine.clock

    def run() -> None:
        for start in range(0, n, BATCH):
            batch = feed[start:start + BATCH]
            clock.set(int(batch["ingest_ns"][-1]))
            orch.on_batch(batch)

    return _timed(engine_path(run))


def time_python(options: dict, n: int) -> float:
    engine = build(None)
    feed = make_feed(engine, n)
    reg = engine.registry
    merger = DictMerger([{"instrument": reg.instrument_id("BTC-USDT"), "event_type": BBO,
                          "venues": [reg.venue_id(v) for v in VENUES],
                          "window_ns": 10_000_000_000,
                          "max_events": options.get("max_events", 1000), "policy": "suppress"}])
    events = as_dicts(feed)
    out: list = []

    def run() -> None:
        for start in range(0, n, BATCH):
            for ev in events[start:start + BATCH]:
                merger.on_event(ev, out)
            merger.tick(events[min(start + BATCH, n) - 1]["ingest_ns"], out)
            out.clear()

    return _timed(run)


def time_publish(options: dict | None, n: int) -> float:
    engine = build(options)
    feed = make_feed(engine, n)
    consumer = engine.consumers["merged"]

    def run() -> None:
        for start in range(0, n, BATCH):
            engine.publish(feed[start:start + BATCH])
            consumer.poll()

    return _timed(engine_path(run))


# -- report -------------------------------------------------------------------------------------


def _summary(seconds: list[float], n: int) -> dict:
    rates = [n / s for s in seconds]
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
            "runs": rates}


def run(events: int = 200_000, runs: int = 5) -> list[dict]:
    """Every scenario: orchestrator, python-dict, publish with and without the merge."""
    events = max(BATCH, events // BATCH * BATCH)
    for options in SCENARIOS.values():  # compile and warm every path once, untimed
        time_orchestrator(options, 4 * BATCH)
        time_publish(options, 4 * BATCH)
    rows = []
    for scenario, options in SCENARIOS.items():
        measures = {
            "orchestrator": lambda o=options: time_orchestrator(o, events),
            "python-dict": lambda o=options: time_python(o, events),
            "publish+merge": lambda o=options: time_publish(o, events),
            "publish": lambda: time_publish(None, events),
        }
        row = {"scenario": scenario, "events": events}
        for name, measure in measures.items():
            row[name] = _summary([measure() for _ in range(runs)], events)
        row["x_python"] = row["orchestrator"]["median"] / row["python-dict"]["median"]
        row["publish_slowdown"] = 1 - (row["publish+merge"]["median"]
                                             / row["publish"]["median"])
        rows.append(row)
    return rows


#: The suite's figures and sides (engine sides start with "engine", see bench.measure): the
#: merge stage beside its dict baseline, and the publish path with and without the merge.
FIGURES = {"merge stage": {"orchestrator": "engine orchestrator",
                           "python-dict": "python dict of windows"},
           "publish path": {"publish+merge": "engine publish+merge",
                            "publish": "engine publish (no merge)"}}


#: Events per run in quick mode (the tests lower it).
QUICK_EVENTS = 20_000


def measures(quick: bool) -> list[Measure]:
    """The suite's entry: events/s through the merge stage and the publish path, per scenario."""
    out = []
    for row in run(QUICK_EVENTS if quick else 200_000, 3 if quick else 5):
        params = {"events": row["events"], "batch": BATCH}
        out += [Measure("merge", f"{figure} {row['scenario']} events/s", side, "events/s",
                        tuple(row[key]["runs"]), HIGHER, params)
                for figure, sides in FIGURES.items() for key, side in sides.items()]
    return out


def _rate(s: dict) -> str:
    return f"{s['median'] / 1e6:7.2f} ({s['min'] / 1e6:.2f}-{s['max'] / 1e6:.2f})".rjust(24)


def _print_table(rows: list[dict]) -> None:
    print(f"{rows[0]['events']} BBOs (half of them fragments), batches of {BATCH}; "
          "million events/s, median (min-max)")
    print(f"{'scenario':<11} {'orchestrator':>24} {'python-dict':>24} {'publish+merge':>24} "
          f"{'publish':>24} {'x python':>9} {'publish slowdown %':>19}")
    for r in rows:
        print(f"{r['scenario']:<11} {_rate(r['orchestrator'])} {_rate(r['python-dict'])} "
              f"{_rate(r['publish+merge'])} {_rate(r['publish'])} {r['x_python']:9.1f} "
              f"{100 * r['publish_slowdown']:19.1f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20000 events, one run")
    parser.add_argument("--events", type=int, help="events per run (default 200000)")
    parser.add_argument("--runs", type=int, help="runs per figure (default 5)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    quick = {"events": 20_000, "runs": 1} if args.quick else {"events": 200_000, "runs": 5}
    rows = run(args.events or quick["events"], args.runs or quick["runs"])
    if not args.json:
        _print_table(rows)
        return
    sys.stdout.write(orjson.dumps({"merge": rows}, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
