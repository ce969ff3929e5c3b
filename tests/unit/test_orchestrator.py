"""Orchestrator: merged subscriptions through the real Engine, with an injected clock.

Fragments are BBOs of bring-your-own venues published with ``engine.publish``; time moves only
when the test advances the ManualClock, and ``engine.dispatcher.flush()`` is the flush tick.
Consumers are polled on the test thread (no engine threads), except where a test says so.
"""

import numpy as np
import pytest
from engine_util import BBO, T0, TRADE, Collector, cat, make

from meltica_nb.clock import ManualClock
from meltica_nb.control_bus import ControlBus
from meltica_nb.engine import Engine
from meltica_nb.errors import ConfigError, StaleHandle
from meltica_nb.merge_spec import MergeSpec
from meltica_nb.orchestrator import Orchestrator, OrchestratorStats
from meltica_nb.run_config import engine_from_toml
from meltica_nb.schema import CommandType, ErrorCode, EventType, Flag

MERGED = int(EventType.MERGED)
MS = 1_000_000
VENUES = ["alpha", "beta"]


def new_engine(**config):
    return Engine(config or None, clock=ManualClock(T0))


def bbo(engine, venue, seq, bid, ask, bid_qty=5, ask_qty=5, ingest_ns=None):
    """One BBO of ``venue`` (prices and sizes as mantissas), received now unless told."""
    ingest_ns = engine.clock.now_ns() if ingest_ns is None else ingest_ns
    ev = make(engine, BBO, [seq], venue=venue, ingest_ns=ingest_ns)
    ev["bid_price"], ev["bid_qty"], ev["ask_price"], ev["ask_qty"] = bid, bid_qty, ask, ask_qty
    return ev


def setup(policy="suppress", window_ms=100, max_events=1000, venues=VENUES, **config):
    """An engine, a consumer 'tape' of BBOs and acks, and a merged BBO subscription of it."""
    engine = new_engine(**config)
    tape = Collector()
    consumer = engine.add_consumer("tape", tape, events=["bbo", "control_ack"])
    ack = engine.control.merged_subscribe("tape", "BTC-USDT", "bbo", venues,
                                          window_ms=window_ms, max_events=max_events,
                                          partial_policy=policy)
    assert ack.success, ack
    return engine, consumer, tape


def merged_of(consumer, tape):
    consumer.poll()
    ev = tape.events
    return ev[ev["event_type"] == MERGED]


def totals(engine):
    return engine.stats()["orchestrator"].totals


def tick(engine, ms):
    engine.clock.advance(ms * MS)
    engine.dispatcher.flush()


# -- the merge rules --------------------------------------------------------------------------


def test_a_complete_window_emits_once_with_one_fragment_per_venue():
    engine, consumer, tape = setup()
    engine.publish(bbo(engine, "alpha", 1, 100, 110))
    engine.clock.advance(10 * MS)
    engine.publish(bbo(engine, "beta", 1, 101, 112))
    assert len(merged_of(consumer, tape)) == 0  # open until its time is up
    engine.clock.advance(10 * MS)
    engine.publish(bbo(engine, "alpha", 2, 102, 111))  # replaces alpha's first
    tick(engine, 79)
    assert len(merged_of(consumer, tape)) == 0
    tick(engine, 1)
    (ev,) = merged_of(consumer, tape)
    tick(engine, 500)
    assert len(merged_of(consumer, tape)) == 1  # emitted once

    assert ev["merge_id"] > 0 and ev["merged_type"] == BBO and not ev["flags"] & Flag.PARTIAL
    assert ev["venue"] == engine.registry.venue_id("merged-0")
    assert ev["routing_version"] == engine.router.version
    frags = engine.merged_fragments(ev)
    venue_ids = [engine.registry.venue_id(v) for v in VENUES]
    assert frags["venue"].tolist() == venue_ids
    assert frags["seq_provider"].tolist() == [2, 1] and frags["bid_price"].tolist() == [102, 101]
    (record,) = engine.merged_event(ev)
    assert record["is_complete"] == 1 and record["n_fragments"] == 2
    assert record["window_open_ns"] == T0 and record["window_close_ns"] == T0 + 100 * MS
    assert record["merge_id"] == ev["merge_id"] and record["event_type"] == BBO
    assert record["routing_version"] == engine.router.version
    t = totals(engine)
    assert (t["fragments"], t["windows"], t["emitted"], t["closed_by_time"]) == (3, 1, 1, 1)
    # the fragments reached the consumer as ordinary BBOs too, before the merged event
    kinds = tape.events["event_type"].tolist()
    assert kinds == [int(EventType.CONTROL_ACK), BBO, BBO, BBO, MERGED]
    # every event carries the routing version it was routed with (the MergedSubscribe's)
    assert set(tape.events["routing_version"].tolist()) == {engine.router.version}


@pytest.mark.parametrize("policy, counted, missing", [
    ("suppress", "suppressed", {"alpha": 0, "beta": 1}),  # counted, with the missing venue
    ("drop", "dropped_partial", {"alpha": 0, "beta": 0}),  # counted only
])
def test_a_partial_window_is_not_emitted_under_suppress_or_drop(policy, counted, missing):
    engine, consumer, tape = setup(policy=policy)
    engine.publish(bbo(engine, "alpha", 1, 100, 110))
    tick(engine, 100)
    assert len(merged_of(consumer, tape)) == 0
    sub = engine.stats()["orchestrator"].subscriptions["merged-0"]
    assert sub.counts[counted] == 1 and sub.counts["emitted"] == 0
    assert sub.counts["suppressed"] + sub.counts["dropped_partial"] == 1
    assert sub.missing == missing


def test_policy_emit_emits_a_partial_window_flagged_partial():
    engine, consumer, tape = setup(policy="emit")
    engine.publish(bbo(engine, "beta", 1, 100, 110))
    tick(engine, 100)
    (ev,) = merged_of(consumer, tape)
    assert ev["flags"] & Flag.PARTIAL
    assert engine.merged_event(ev)["is_complete"][0] == 0
    assert engine.merged_fragments(ev)["venue"].tolist() == [engine.registry.venue_id("beta")]
    assert (ev["best_bid_venue"], ev["best_ask_venue"]) == (engine.registry.venue_id("beta"),) * 2
    t = totals(engine)
    assert t["emitted"] == t["emitted_partial"] == 1 and t["suppressed"] == 0


def test_a_late_fragment_is_dropped_from_the_merge_but_still_delivered():
    engine, consumer, tape = setup()
    engine.publish(cat(bbo(engine, "alpha", 1, 100, 110), bbo(engine, "beta", 1, 101, 111)))
    tick(engine, 120)
    assert len(merged_of(consumer, tape)) == 1
    # received 60 ms after the window opened, handed over only now: its window closed at 100 ms
    engine.publish(bbo(engine, "beta", 2, 99, 109, ingest_ns=T0 + 60 * MS))
    sub = engine.stats()["orchestrator"].subscriptions["merged-0"]
    assert sub.counts["dropped_late"] == 1 and sub.late == {"alpha": 0, "beta": 1}
    assert sub.max_lateness_ms == 40.0 and not sub.open
    consumer.poll()
    assert tape.seqs(BBO) == [1, 1, 2]  # ordinary subscribers still get it
    tick(engine, 500)
    assert len(merged_of(consumer, tape)) == 1  # and no window opened for it


def test_the_count_closes_a_window_before_its_time():
    engine, consumer, tape = setup(window_ms=10_000, max_events=3)
    engine.publish(bbo(engine, "alpha", 1, 100, 110))
    engine.publish(bbo(engine, "beta", 1, 101, 111))
    assert len(merged_of(consumer, tape)) == 0
    engine.clock.advance(5 * MS)
    engine.publish(bbo(engine, "alpha", 2, 103, 113))
    (ev,) = merged_of(consumer, tape)  # no clock tick needed
    (record,) = engine.merged_event(ev)
    assert record["window_close_ns"] == T0 + 5 * MS  # the third fragment's ingest time
    assert engine.merged_fragments(ev)["seq_provider"].tolist() == [2, 1]
    t = totals(engine)
    assert (t["closed_by_count"], t["closed_by_time"]) == (1, 0)


def test_a_fragment_past_the_window_end_closes_it_and_opens_the_next():
    engine, consumer, tape = setup(policy="emit")
    engine.publish(bbo(engine, "alpha", 1, 100, 110))
    engine.clock.advance(150 * MS)  # no tick ran: the next fragment finds the window expired
    engine.publish(bbo(engine, "beta", 1, 101, 111))
    (ev,) = merged_of(consumer, tape)
    assert engine.merged_fragments(ev)["venue"].tolist() == [engine.registry.venue_id("alpha")]
    assert engine.merged_event(ev)["window_close_ns"][0] == T0 + 100 * MS
    sub = engine.stats()["orchestrator"].subscriptions["merged-0"]
    assert sub.open and sub.counts["windows"] == 2


def test_restart_discards_open_windows():
    engine, consumer, tape = setup()
    engine.publish(cat(bbo(engine, "alpha", 1, 100, 110), bbo(engine, "beta", 1, 101, 111)))
    assert engine.orchestrator.reset() == 1
    tick(engine, 1000)
    assert len(merged_of(consumer, tape)) == 0
    t = totals(engine)
    assert t["discarded"] == 1 and t["emitted"] == 0
    # the next fragment opens a fresh window; nothing before the restart counts as late
    engine.publish(bbo(engine, "beta", 2, 101, 111))
    assert engine.stats()["orchestrator"].open_windows == 1 and totals(engine)["dropped_late"] == 0


def test_engine_stop_discards_open_windows_and_returns_every_merged_slot(no_thread_leak):
    engine, _, _ = setup()
    engine.start()
    engine.publish(cat(bbo(engine, "alpha", 1, 100, 110), bbo(engine, "beta", 1, 101, 111)))
    tick(engine, 100)
    engine.publish(bbo(engine, "alpha", 2, 100, 110))  # opens the next window
    assert engine.pools["MergedEvent"].in_use == 1
    report = engine.stop(5.0)
    assert report.clean
    t = totals(engine)
    assert t["emitted"] == 1 and t["discarded"] == 1
    assert engine.stats()["orchestrator"].retained == 0


# -- the consolidated best bid/offer -----------------------------------------------------------


def test_the_consolidated_bbo_is_the_best_side_of_each_venue_with_its_venue():
    venues = ["alpha", "beta", "gamma", "delta"]
    engine, consumer, tape = setup(venues=venues)
    vid = {v: engine.registry.venue_id(v) for v in venues}
    engine.publish(cat(
        bbo(engine, "alpha", 1, 100, 120, bid_qty=1, ask_qty=1),
        bbo(engine, "beta", 1, 104, 111, bid_qty=2, ask_qty=3),
        bbo(engine, "gamma", 1, 104, 111, bid_qty=7, ask_qty=1),  # tie: larger size wins
        bbo(engine, "delta", 1, 0, 109, bid_qty=0, ask_qty=4)))   # no bid side
    tick(engine, 100)
    (ev,) = merged_of(consumer, tape)
    assert (ev["best_bid_price"], ev["best_bid_qty"], ev["best_bid_venue"]) == (104, 7,
                                                                                 vid["gamma"])
    assert (ev["best_ask_price"], ev["best_ask_qty"], ev["best_ask_venue"]) == (109, 4,
                                                                                 vid["delta"])


def test_consolidated_sides_equal_the_best_of_random_venue_quotes():
    rng = np.random.default_rng(5)
    engine, consumer, tape = setup(window_ms=10, policy="emit", venues=["alpha", "beta", "gamma"])
    names = ["alpha", "beta", "gamma"]
    seqs = dict.fromkeys(names, 0)
    for step in range(1, 60):
        venue = names[int(rng.integers(3))]
        seqs[venue] += 1
        bid = int(rng.integers(90, 110))
        engine.publish(bbo(engine, venue, seqs[venue], bid, bid + int(rng.integers(1, 5)),
                           bid_qty=int(rng.integers(1, 9)), ask_qty=int(rng.integers(1, 9))))
        engine.clock.advance(int(rng.integers(1, 6)) * MS)
        if step % 7 == 0:
            engine.dispatcher.flush()
        for ev in merged_of(consumer, tape):
            check_best_sides(ev, engine.merged_fragments(ev))
        tape.batches.clear()
    assert totals(engine)["emitted"] >= 10 and totals(engine)["dropped_late"] == 0


def check_best_sides(ev, frags):
    bids = [(f["bid_price"], f["bid_qty"]) for f in frags]
    asks = [(f["ask_price"], -f["ask_qty"]) for f in frags]
    best_bid, best_ask = max(bids), min(asks)
    assert (ev["best_bid_price"], ev["best_bid_qty"]) == best_bid
    assert (ev["best_ask_price"], -ev["best_ask_qty"]) == best_ask
    assert ev["best_bid_venue"] == frags[bids.index(best_bid)]["venue"]
    assert ev["best_ask_venue"] == frags[asks.index(best_ask)]["venue"]


def test_a_trade_merge_carries_fragments_and_no_consolidated_quote():
    engine = new_engine()
    tape = Collector()
    consumer = engine.add_consumer("tape", tape, events=["control_ack"])
    assert engine.control.merged_subscribe("tape", "BTC-USDT", "trade", VENUES,
                                           window_ms=50).success
    now = engine.clock.now_ns()
    engine.publish(cat(make(engine, TRADE, [1], venue="alpha", ingest_ns=now),
                       make(engine, TRADE, [1], price=[7], venue="beta", ingest_ns=now)))
    tick(engine, 50)
    (ev,) = merged_of(consumer, tape)  # the trades themselves are not routed to this consumer
    assert ev["merged_type"] == TRADE and ev["best_bid_venue"] == ev["best_ask_venue"] == 0
    assert engine.merged_fragments(ev)["trade_id"].tolist() == [0, 0]
    assert engine.merged_fragments(ev)["price"].tolist() == [1, 7]


# -- routing, fan-out, sharing ---------------------------------------------------------------


def test_merged_events_reach_only_their_subscribers_and_coalesce_per_merge():
    engine, consumer, tape = setup(window_ms=10, max_events=2)
    other = Collector()
    bystander = engine.add_consumer("quotes", other, events=["bbo"])
    version = engine.router.version
    assert engine.control.merged_subscribe("tape", "BTC-USDT", "ticker", VENUES).success
    assert engine.router.version == version + 1
    for seq in (1, 2, 3):  # three complete windows before the consumer looks
        engine.publish(cat(bbo(engine, "alpha", seq, 100 + seq, 110),
                           bbo(engine, "beta", seq, 100, 110)))
    now = engine.clock.now_ns()
    ticker = make(engine, int(EventType.TICKER), [1], venue="alpha", ingest_ns=now)
    ticker["bid_qty"] = ticker["ask_qty"] = 1
    engine.publish(cat(ticker, make(engine, int(EventType.TICKER), [1], venue="beta",
                                    ingest_ns=now)))
    tick(engine, 10_000)
    merged = merged_of(consumer, tape)
    # latest-wins per merged stream: the three BBO merges coalesced into the newest one
    assert sorted(merged["merged_type"].tolist()) == [BBO, int(EventType.TICKER)]
    newest = merged[merged["merged_type"] == BBO][0]
    assert newest["seq_provider"] == 3 and newest["best_bid_price"] == 103
    assert consumer.stats().coalesced == 4 + 2  # four of the six BBOs, two BBO merges
    bystander.poll()
    assert MERGED not in other.events["event_type"].tolist()
    assert other.events["seq_provider"].tolist() == [3, 3]  # the newest BBO of each venue


def test_equal_subscriptions_share_one_merge_and_the_last_unsubscribe_removes_it():
    engine, consumer, tape = setup()
    other = Collector()
    second = engine.add_consumer("second", other, events=["control_ack"])
    assert engine.control.merged_subscribe("second", "BTC-USDT", "bbo", VENUES, window_ms=100,
                                           partial_policy="suppress", max_events=1000).success
    stats = engine.stats()["orchestrator"]
    assert list(stats.subscriptions) == ["merged-0"]
    assert stats.subscriptions["merged-0"].consumers == (0, 1)
    assert stats.subscriptions["merged-0"].subscription == "BTC-USDT bbo [alpha, beta]"
    engine.publish(cat(bbo(engine, "alpha", 1, 100, 110), bbo(engine, "beta", 1, 101, 111)))
    tick(engine, 100)
    assert len(merged_of(consumer, tape)) == len(merged_of(second, other)) == 1

    ack = engine.control.merged_unsubscribe("tape", "BTC-USDT", "bbo", VENUES, window_ms=100)
    assert ack.success and ack.routing_version == engine.router.version
    engine.publish(cat(bbo(engine, "alpha", 2, 100, 110), bbo(engine, "beta", 2, 101, 111)))
    tick(engine, 100)
    assert len(merged_of(consumer, tape)) == 1 and len(merged_of(second, other)) == 2
    engine.publish(bbo(engine, "alpha", 3, 100, 110))  # opens a window ...
    assert engine.control.merged_unsubscribe("second", "BTC-USDT", "bbo", VENUES,
                                             window_ms=100).success
    stats = engine.stats()["orchestrator"]  # ... discarded with the subscription
    assert stats.subscriptions == {} and stats.open_windows == 0
    assert stats.totals["emitted"] == 2 and stats.totals["discarded"] == 1
    again = engine.control.merged_unsubscribe("second", "BTC-USDT", "bbo", VENUES,
                                              window_ms=100)
    assert not again.success and again.error_code == ErrorCode.NOT_SUBSCRIBED


def test_old_merged_events_go_stale_when_the_pool_needs_their_slots():
    engine, consumer, tape = setup(window_ms=10, max_events=2, pools={"MergedEvent": 2})
    events = []
    for seq in (1, 2, 3):
        engine.publish(cat(bbo(engine, "alpha", seq, 100, 110), bbo(engine, "beta", seq, 1, 2)))
        events.append(merged_of(consumer, tape)[-1])
    assert engine.merged_fragments(events[2])["seq_provider"].tolist() == [3, 3]
    assert engine.merged_fragments(events[1])["seq_provider"].tolist() == [2, 2]
    with pytest.raises(StaleHandle, match="released to make room"):
        engine.merged_fragments(events[0])
    with pytest.raises(ConfigError, match="not a MERGED event"):
        engine.merged_fragments(tape.events[tape.events["event_type"] == BBO][0])
    assert engine.stats()["orchestrator"].retained == 2


def test_more_windows_closing_at_once_than_the_pool_holds_are_counted_as_overflow():
    engine, consumer, tape = setup(window_ms=10, max_events=2, pools={"MergedEvent": 2})
    batch = cat(*[bbo(engine, v, seq, 100, 110) for seq in range(1, 5) for v in VENUES])
    engine.publish(batch)  # four windows close by count in one batch
    (merged,) = merged_of(consumer, tape)  # the two published coalesced: latest wins
    assert merged["seq_provider"] == 4
    assert consumer.stats().coalesced == 6 + 1  # six of the eight BBOs, one merge
    assert engine.merged_fragments(merged)["seq_provider"].tolist() == [4, 4]
    stats = engine.stats()["orchestrator"]
    assert stats.overflow == 2 and stats.totals["emitted"] == 4
    assert engine.stats()["dispatcher"].published == 8 + 2 + 1  # BBOs, merges, the ack


# -- the MergedSubscribe command ---------------------------------------------------------------

GOOD = {"instrument": "BTC-USDT", "event": "bbo", "venues": VENUES}


@pytest.mark.parametrize("change, message", [
    ({"venues": ["alpha"]}, "2..4 venues"),
    ({"venues": ["a", "b", "c", "d", "e"]}, "2..4 venues"),
    ({"venues": ["alpha", "alpha"]}, "distinct"),
    ({"venues": "alpha"}, "list of venue names"),
    ({"venues": ["alpha", "Not A Venue"]}, "invalid venue name"),
    ({"instrument": "btcusdt"}, "not canonical"),
    ({"instrument": None}, "canonical symbol"),
    ({"event": "merged"}, "market-data event type"),
    ({"event": "exec_report"}, "market-data event type"),
    ({"event": None}, "market-data event type"),
    ({"window_ms": 0}, "window_ms"),
    ({"window_ms": -5}, "window_ms"),
    ({"window_ms": "10s"}, "window_ms"),
    ({"window_ms": True}, "window_ms"),
    ({"max_events": 1}, "max_events"),
    ({"max_events": 2.5}, "max_events"),
    ({"max_events": 2, "venues": ["alpha", "beta", "gamma"]}, "before all 3 venues"),
    ({"partial_policy": "keep"}, "partial_policy"),
    ({"partial_policy": ["emit"]}, "partial_policy"),
    ({"window": 10}, "unknown MergedSubscribe field"),
])
def test_bad_merged_subscribe_payloads_get_a_failed_ack(change, message):
    engine = new_engine()
    tape = Collector()
    consumer = engine.add_consumer("tape", tape)
    ack = engine.control.send({"type": "MergedSubscribe", "consumer": "tape",
                               "payload": {**GOOD, **change}})
    assert not ack.success and ack.error_code == ErrorCode.BAD_PAYLOAD
    assert message in ack.error
    assert engine.router.version == 1 and engine.stats()["orchestrator"].subscriptions == {}
    consumer.poll()
    (rec,) = tape.events
    assert rec["command_type"] == CommandType.MERGED_SUBSCRIBE and not rec["flags"] & Flag.SUCCESS


def test_a_good_merged_subscribe_is_acked_to_the_consumer_with_the_new_version():
    engine = new_engine()
    tape = Collector()
    consumer = engine.add_consumer("tape", tape)
    ack = engine.control.send({"type": "MergedSubscribe", "consumer": "tape", "payload": GOOD})
    assert ack.success and ack.routing_version == engine.router.version == 2
    consumer.poll()
    (rec,) = tape.events
    assert rec["command_type"] == CommandType.MERGED_SUBSCRIBE and rec["flags"] & Flag.SUCCESS
    sub = engine.stats()["orchestrator"].subscriptions["merged-0"]
    assert (sub.window_ms, sub.max_events, sub.partial_policy) == (10_000.0, 1000, "suppress")
    unknown = engine.control.send({"type": "MergedSubscribe", "consumer": "nobody",
                                   "payload": GOOD})
    assert unknown.error_code == ErrorCode.UNKNOWN_CONSUMER


def test_the_number_of_merged_subscriptions_is_bounded():
    engine = new_engine()
    engine.add_consumer("tape", Collector())
    orchestrator = Orchestrator(engine.pools["MergedEvent"], engine.registry, engine.router,
                                engine.clock, max_rules=1)
    orchestrator.subscribe(0, MergeSpec.from_payload(GOOD, engine.registry))
    eth = MergeSpec.from_payload({**GOOD, "instrument": "ETH-USDT"}, engine.registry)
    with pytest.raises(ConfigError, match="all 1 merged subscriptions are in use"):
        orchestrator.subscribe(0, eth)
    with pytest.raises(ConfigError, match="max_rules"):
        Orchestrator(engine.pools["MergedEvent"], engine.registry, engine.router, engine.clock,
                     max_rules=0)


def test_stats_have_an_orchestrator_section():
    engine, _, _ = setup()
    stats = engine.stats()["orchestrator"]
    assert isinstance(stats, OrchestratorStats)
    assert stats.routing_version == engine.orchestrator.routing_version == engine.router.version
    assert stats.open_windows == stats.retained == stats.overflow == 0
    assert set(stats.totals) == {"fragments", "windows", "emitted", "emitted_partial",
                                 "suppressed", "dropped_partial", "dropped_late",
                                 "closed_by_count", "closed_by_time", "discarded"}


def test_meltica_run_config_takes_merged_tables(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[consumers.tape]\ntarget = "builtins:print"\n'
                    '[[merged]]\nconsumer = "tape"\ninstrument = "BTC-USDT"\nevent = "bbo"\n'
                    'venues = ["binance", "binance-futures"]\nwindow_ms = 250\n')
    engine = engine_from_toml(path)
    sub = engine.stats()["orchestrator"].subscriptions["merged-0"]
    assert (sub.subscription, sub.window_ms) == ("BTC-USDT bbo [binance, binance-futures]", 250.0)
    path.write_text('[consumers.tape]\ntarget = "builtins:print"\n'
                    '[[merged]]\nconsumer = "tape"\ninstrument = "BTC-USDT"\nevent = "bbo"\n'
                    'venues = ["binance"]\n')
    with pytest.raises(ConfigError, match=r"\[\[merged\]\] of consumer 'tape': a merge needs"):
        engine_from_toml(path)


def test_a_batch_larger_than_the_scratch_and_an_engine_without_merges():
    engine, consumer, tape = setup(window_ms=10_000, max_events=2)
    now = engine.clock.now_ns()
    big = cat(*[bbo(engine, v, seq, 100, 110, ingest_ns=now) for seq in range(1, 601)
                for v in VENUES])
    engine.publish(big)  # 1200 fragments in one ready batch: 600 windows close by count
    assert totals(engine)["emitted"] == 600
    assert merged_of(consumer, tape)["seq_provider"].tolist() == [600]  # latest wins
    bare = new_engine()
    bare.add_consumer("tape", Collector())
    bare.publish(bbo(bare, "alpha", 1, 100, 110))
    assert bare.stats()["orchestrator"].totals["fragments"] == 0
    assert bare.orchestrator.on_tick().shape[0] == 0


def test_a_control_bus_without_an_orchestrator_refuses_merged_commands():
    engine = new_engine()
    engine.add_consumer("tape", Collector())
    bus = ControlBus(engine.router, engine.registry, {"tape": 0}, engine.dispatcher.publish_to)
    ack = bus.send({"type": "MergedSubscribe", "consumer": "tape", "payload": GOOD})
    assert not ack.success and ack.error_code == ErrorCode.UNKNOWN_COMMAND
    assert "no orchestrator" in ack.error
