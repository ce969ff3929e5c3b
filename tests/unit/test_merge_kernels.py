"""Merge kernels against the plain-Python reference model, on generated fragment streams.

The reference is ``bench.bench_merge.DictMerger`` (the benchmark's baseline: the same rules in
plain Python, windows in a dict), so the benchmark compares like with like. Streams mix three
merged subscriptions (two over overlapping venues of one instrument with different policies,
one trade merge), events nobody merges, quotes with empty sides, time going backwards (late
fragments), batches of random size and flush ticks. Every emitted window (merge id, open and
close times, completeness, fragments, consolidated sides) and every counter must be equal.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.bench_merge import DictMerger, as_dicts
from meltica_nb.clock import ManualClock
from meltica_nb.engine import Engine
from meltica_nb.kernels import merge_kernels as mk
from meltica_nb.merge_spec import PARTIAL_POLICIES, MergeSpec
from meltica_nb.orchestrator import COUNTER_COLUMNS
from meltica_nb.schema import CANONICAL_EVENT, EventType, Flag

T0 = 1_000_000_000
MS = 1_000_000
BBO, TRADE = int(EventType.BBO), int(EventType.TRADE)
COUNTS = [name for name in COUNTER_COLUMNS if name != "discarded"]


def rules_for(policies, windows_ms, max_events):
    """Venue ids 1..4 and instruments 1..2 are registered first, in this order."""
    return [
        {"instrument": 1, "event_type": BBO, "venues": [1, 2, 3], "window_ns": windows_ms[0] * MS,
         "max_events": max_events[0], "policy": policies[0]},
        {"instrument": 1, "event_type": BBO, "venues": [3, 2], "window_ns": windows_ms[1] * MS,
         "max_events": max_events[1], "policy": policies[1]},
        {"instrument": 2, "event_type": TRADE, "venues": [4, 1], "window_ns": windows_ms[2] * MS,
         "max_events": max_events[2], "policy": policies[2]},
    ]


def engine_with(rules):
    engine = Engine({"pools": {"MergedEvent": 4096}}, clock=ManualClock(T0))
    for v in ("v1", "v2", "v3", "v4"):
        engine.registry.venue_id(v)
    for s in ("BTC-USDT", "ETH-USDT"):
        engine.registry.instrument_id(s)
    for rule in rules:
        spec = MergeSpec(rule["instrument"], rule["event_type"], tuple(rule["venues"]),
                         rule["window_ns"], rule["max_events"], PARTIAL_POLICIES[rule["policy"]])
        engine.orchestrator.subscribe(0, spec)
    return engine


def feed_from(draws):
    """CanonicalEvents from drawn (venue, instrument, type, time step, bid, spread, sizes)."""
    out = np.zeros(len(draws), CANONICAL_EVENT)
    t = T0
    for i, (venue, inst, etype, step, bid, spread, bq, aq) in enumerate(draws):
        t = max(T0, t + step * MS)
        rec = out[i]
        rec["venue"], rec["instrument"], rec["event_type"] = venue, inst, etype
        rec["ingest_ns"], rec["seq_provider"], rec["trace_id"] = t, i + 1, i + 1
        if etype == TRADE:
            rec["price"], rec["quantity"] = bid, bq
        else:
            rec["bid_price"], rec["ask_price"] = bid, bid + spread
            rec["bid_qty"], rec["ask_qty"] = bq, aq
    return out


def window_of_kernel(engine, ev):
    (record,) = engine.merged_event(ev)
    frags = record["fragments"][:record["n_fragments"]]
    row = engine.registry.venue_name(int(ev["venue"]))
    quoted = int(ev["merged_type"]) in (BBO, int(EventType.TICKER))
    best = ((int(ev["best_bid_price"]), int(ev["best_bid_qty"]), int(ev["best_bid_venue"])),
            (int(ev["best_ask_price"]), int(ev["best_ask_qty"]), int(ev["best_ask_venue"])))
    assert bool(ev["flags"] & Flag.PARTIAL) == (not record["is_complete"])
    return (int(row.split("-")[1]), int(record["merge_id"]), int(record["window_open_ns"]),
            int(record["window_close_ns"]), bool(record["is_complete"]),
            [(int(f["venue"]), int(f["seq_provider"])) for f in frags],
            best if quoted else ((0, 0, 0), (0, 0, 0)))


def window_of_reference(w):
    return (w["rule"], w["merge_id"], w["open"], w["close"], w["complete"],
            [(f["venue"], f["seq_provider"]) for f in w["fragments"]],
            (w.get("best_bid", (0, 0, 0)), w.get("best_ask", (0, 0, 0))))


draw = st.tuples(st.integers(1, 5), st.sampled_from([1, 1, 1, 2]),
                 st.sampled_from([BBO, BBO, TRADE, int(EventType.TICKER)]),
                 st.sampled_from([0, 1, 2, 3, 5, 8, -4, -30]),
                 st.integers(95, 105), st.integers(1, 4), st.integers(0, 3), st.integers(0, 3))
policy = st.sampled_from(["suppress", "emit", "drop"])


@settings(max_examples=40, deadline=None)
@given(st.lists(draw, min_size=1, max_size=120), st.lists(policy, min_size=3, max_size=3),
       st.lists(st.integers(5, 40), min_size=3, max_size=3),
       st.lists(st.integers(3, 12), min_size=3, max_size=3),
       st.lists(st.tuples(st.integers(1, 16), st.integers(0, 20)), min_size=1, max_size=40))
def test_the_kernels_merge_exactly_as_the_reference_model(draws, policies, windows_ms,
                                                          max_events, cuts):
    rules = rules_for(policies, windows_ms, max_events)
    engine = engine_with(rules)
    reference = DictMerger(rules)
    feed = feed_from(draws)
    got, want = [], []
    start, c = 0, 0
    while start < len(feed):
        size, tick_ms = cuts[c % len(cuts)]
        batch = feed[start:start + size]
        now = max(int(batch["ingest_ns"].max()), engine.clock.now_ns()) + tick_ms * MS
        engine.clock.set(now)
        got += [window_of_kernel(engine, ev) for ev in engine.orchestrator.on_batch(batch)]
        emitted: list[dict] = []
        for ev in as_dicts(batch):
            reference.on_event(ev, emitted)
        reference.tick(now, emitted)
        want += [window_of_reference(w) for w in emitted]
        start, c = start + size, c + 1
    assert got == want
    orch = engine.orchestrator
    for r, counts in enumerate(reference.counts):
        assert {n: int(orch.counters[r, COUNTER_COLUMNS[n]]) for n in COUNTS} == counts
        venues = rules[r]["venues"]
        assert dict(zip(venues, orch.missing[r, :len(venues)].tolist(), strict=True)) \
            == reference.missing[r]
        assert dict(zip(venues, orch.late[r, :len(venues)].tolist(), strict=True)) \
            == reference.late[r]


def test_merged_event_sequence_numbers_grow_per_subscription_and_flags_follow_completeness():
    rules = rules_for(["emit", "emit", "emit"], [10, 10, 10], [3, 3, 3])
    engine = engine_with(rules)
    rng = np.random.default_rng(3)
    feed = feed_from([(int(rng.integers(1, 5)), 1, BBO, 1, 100, 1, 1, 1) for _ in range(200)])
    seqs: dict[int, list[int]] = {}
    for start in range(0, 200, 17):
        for ev in engine.orchestrator.on_batch(feed[start:start + 17]):
            seqs.setdefault(int(ev["venue"]), []).append(int(ev["seq_provider"]))
            assert ev["event_type"] == int(EventType.MERGED) and ev["seq_first"] == 0
    assert len(seqs) == 2
    for run in seqs.values():
        assert run == list(range(1, len(run) + 1))


def test_discard_windows_forgets_open_windows_and_last_close_times():
    windows = np.zeros((3, mk.N_WIN_COLS), np.int64)
    counters = np.zeros((3, mk.N_COUNTERS), np.int64)
    windows[[0, 2], mk.W_OPEN] = 1
    windows[:, mk.W_LAST_CLOSE] = 77
    windows[:, mk.W_SEEN] = 3
    assert mk.discard_windows(windows, counters, np.array([0, 1], np.int64)) == 1
    assert windows[:2].tolist() == [[0, 0, 0, 0, 0, 0, 0]] * 2
    assert windows[2, mk.W_OPEN] == 1 and windows[2, mk.W_LAST_CLOSE] == 77
    assert counters[:, mk.C_DISCARDED].tolist() == [1, 0, 0]

