"""Routing: subscriptions compiled to rule arrays, the route_batch kernel, staged flips.

Every mask is compared with :func:`reference`, an independent pure-Python router over the
subscriptions a table was compiled from.
"""

import dataclasses
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_nb.concurrency import TaskGroup
from meltica_nb.errors import ConfigError
from meltica_nb.kernels import routing_kernels as rk
from meltica_nb.routing import (
    ALL_EVENT_TYPES,
    Router,
    RouterStats,
    RoutingTable,
    Subscription,
)
from meltica_nb.schema import CANONICAL_EVENT, EventType

TRADE, BBO, TICKER = int(EventType.TRADE), int(EventType.BBO), int(EventType.TICKER)
EXEC = int(EventType.EXEC_REPORT)
BINANCE, OKX = 1, 2
BTC, ETH, SOL = 1, 2, 3


def events_of(triples):
    """CANONICAL_EVENT array from (venue, instrument, event_type) triples."""
    ev = np.zeros(len(triples), CANONICAL_EVENT)
    for i, (v, ins, t) in enumerate(triples):
        ev[i]["venue"], ev[i]["instrument"], ev[i]["event_type"] = v, ins, t
    return ev


def reference(subs, events, n_consumers):
    """Pure-Python routing: consumer c gets event i if any of its subscriptions matches."""
    mask = np.zeros((len(events), n_consumers), np.uint8)
    for i, e in enumerate(events):
        v, ins, t = int(e["venue"]), int(e["instrument"]), int(e["event_type"])
        for s in subs:
            types = ALL_EVENT_TYPES if s.event_types is None else s.event_types
            if (t in types and (s.venues is None or v in s.venues)
                    and (s.instruments is None or ins in s.instruments)):
                mask[i, s.consumer] = 1
    return mask


def table_of(subs, n_consumers=4, n_venues=3, n_instruments=3, version=0):
    return RoutingTable.compile(subs, n_consumers, n_venues, n_instruments, version)


def routed(table, triples):
    """Consumers per event, as lists, routed by the kernel (checked against the reference)."""
    ev = events_of(triples)
    mask = table.route(ev)
    assert mask.shape == (len(triples), table.n_consumers)
    np.testing.assert_array_equal(mask, reference(table.subscriptions, ev, table.n_consumers))
    return [np.flatnonzero(row).tolist() for row in mask]


# -- matching --------------------------------------------------------------------------------


def test_match_by_venue():
    t = table_of([Subscription(0, venues={OKX}, event_types={TRADE})])
    assert routed(t, [(OKX, BTC, TRADE), (BINANCE, BTC, TRADE), (0, BTC, TRADE)]) == [[0], [], []]


def test_match_by_instrument():
    t = table_of([Subscription(1, instruments={ETH, SOL}, event_types={TRADE})])
    got = routed(t, [(BINANCE, ETH, TRADE), (OKX, SOL, TRADE), (OKX, BTC, TRADE), (OKX, 0, TRADE)])
    assert got == [[1], [1], [], []]


def test_match_by_event_type():
    t = table_of([Subscription(2, event_types={BBO, EXEC})])
    got = routed(t, [(1, 1, BBO), (1, 1, EXEC), (1, 1, TRADE), (1, 1, 0), (1, 1, 15)])
    assert got == [[2], [2], [], [], []]


def test_all_dimensions_must_match():
    t = table_of([Subscription(0, venues={BINANCE}, instruments={BTC}, event_types={TRADE})])
    got = routed(t, [(BINANCE, BTC, TRADE), (OKX, BTC, TRADE), (BINANCE, ETH, TRADE),
                     (BINANCE, BTC, BBO)])
    assert got == [[0], [], [], []]


def test_wildcards_match_any_id_even_unknown_or_out_of_range():
    t = table_of([Subscription(3)])  # all venues, all instruments, all event types
    triples = [(v, i, typ) for v in (0, 1, 3, 4, 65535) for i in (0, 2, 999)
               for typ in sorted(ALL_EVENT_TYPES)]
    assert routed(t, triples) == [[3]] * len(triples)
    assert routed(t, [(1, 1, 0), (1, 1, 10), (1, 1, 16), (1, 1, 255)]) == [[], [], [], []]


def test_wildcard_on_one_dimension_only():
    t = table_of([Subscription(0, venues=None, instruments={BTC}, event_types={TRADE}),
                  Subscription(1, venues={OKX}, instruments=None, event_types={TRADE})])
    got = routed(t, [(BINANCE, BTC, TRADE), (OKX, ETH, TRADE), (OKX, BTC, TRADE), (3, ETH, TRADE)])
    assert got == [[0], [1], [0, 1], []]


def test_or_of_two_subscriptions_does_not_leak_cross_combinations():
    t = table_of([Subscription(0, instruments={BTC}, event_types={TRADE}),
                  Subscription(0, instruments={ETH}, event_types={BBO})])
    got = routed(t, [(1, BTC, TRADE), (1, ETH, BBO), (1, ETH, TRADE), (1, BTC, BBO)])
    assert got == [[0], [0], [], []]
    # the same with venues
    t = table_of([Subscription(0, venues={BINANCE}, instruments={BTC}, event_types={TRADE}),
                  Subscription(0, venues={OKX}, instruments={ETH}, event_types={TRADE})])
    got = routed(t, [(BINANCE, BTC, TRADE), (OKX, ETH, TRADE), (BINANCE, ETH, TRADE),
                     (OKX, BTC, TRADE)])
    assert got == [[0], [0], [], []]


def test_rules_with_equal_sets_merge_their_types_exactly():
    t = table_of([Subscription(0, instruments={BTC}, event_types={TRADE}),
                  Subscription(0, instruments={BTC}, event_types={BBO}),
                  Subscription(1, instruments={BTC}, event_types={BBO})])
    assert t.n_rules == 2
    assert routed(t, [(1, BTC, TRADE), (1, BTC, BBO), (1, ETH, BBO)]) == [[0], [0, 1], []]


def test_out_of_range_ids_never_match_explicit_sets():
    t = table_of([Subscription(0, venues={3}, instruments={3}, event_types={TRADE})],
                 n_venues=3, n_instruments=3)
    assert t.rule_venue_ok.shape == (1, 4) and t.rule_instr_ok.shape == (1, 4)
    got = routed(t, [(3, 3, TRADE), (4, 3, TRADE), (3, 4, TRADE), (65535, 65535, TRADE),
                     (3, 3, 200)])
    assert got == [[0], [], [], [], []]


def test_empty_table_routes_nothing():
    t = table_of([])
    assert t.n_rules == 0
    assert routed(t, [(1, 1, TRADE), (0, 0, 0)]) == [[], []]
    assert t.route(events_of([])).shape == (0, 4)


# -- table -----------------------------------------------------------------------------------


def test_table_is_immutable():
    t = table_of([Subscription(0, event_types={TRADE})], version=7)
    assert t.version == 7
    for a in t.arrays():
        assert not a.flags.writeable
    with pytest.raises(ValueError):
        t.rule_venue_any[0] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.version = 8  # type: ignore[misc]


@pytest.mark.parametrize(
    ("subs", "kwargs", "match"),
    [
        ([Subscription(4)], {}, "consumer 4 out of range"),
        ([Subscription(0, venues={4})], {}, "venue id 4 exceeds"),
        ([Subscription(0, instruments={9})], {}, "instrument id 9 exceeds"),
        (["not a subscription"], {}, "expected a Subscription"),
        ([], {"n_consumers": 0}, "n_consumers"),
        ([], {"n_venues": 65536}, "n_venues"),
        ([], {"version": 2**32}, "version"),
        ([], {"version": -1}, "version"),
    ],
)
def test_compile_validates(subs, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        table_of(subs, **kwargs)


def test_route_into_caller_buffer_and_bad_arguments():
    t = table_of([Subscription(1, event_types={TRADE})])
    out = np.full((10, 4), 7, np.uint8)
    mask = t.route(events_of([(1, 1, TRADE), (1, 1, BBO)]), out)
    assert mask.base is out or mask.base is out.base
    assert mask.tolist() == [[0, 1, 0, 0], [0, 0, 0, 0]]
    assert (out[2:] == 7).all()  # rows past the batch untouched
    with pytest.raises(ConfigError, match="rows"):
        t.route(events_of([(1, 1, 1)] * 11), out)
    with pytest.raises(ConfigError, match="uint8"):
        t.route(events_of([(1, 1, 1)]), np.zeros((1, 3), np.uint8))
    with pytest.raises(ConfigError, match="uint8"):
        t.route(events_of([(1, 1, 1)]), np.zeros((1, 4), np.int64))
    with pytest.raises(ConfigError, match="CANONICAL_EVENT"):
        t.route(np.zeros(3, np.int64))
    with pytest.raises(ConfigError, match="CANONICAL_EVENT"):
        t.route(np.zeros((2, 2), CANONICAL_EVENT))


def test_kernel_refuses_a_mask_narrower_than_the_consumers():
    t = table_of([Subscription(3, event_types={TRADE})])
    ev = events_of([(1, 1, TRADE)])
    narrow = np.full((1, 3), 9, np.uint8)
    assert rk.route_batch(narrow, ev, rk.new_memo(), *t.arrays()) == rk.BAD_ARGS
    assert (narrow == 9).all()
    wide = np.zeros((1, 4), np.uint8)
    assert rk.route_batch(wide, ev, rk.new_memo(), *t.arrays()) == 1


def test_kernel_returns_delivery_count():
    t = table_of([Subscription(0), Subscription(1, event_types={TRADE})])
    out = np.zeros((3, 4), np.uint8)
    ev = events_of([(1, 1, TRADE), (1, 1, BBO), (1, 1, 0)])
    assert rk.route_batch(out, ev, rk.new_memo(), *t.arrays()) == 3


# -- subscriptions ---------------------------------------------------------------------------


def test_subscription_normalizes_and_compares_by_value():
    a = Subscription(0, [2, 1, 1], (3,), [EventType.TRADE, 2])
    b = Subscription(0, frozenset({1, 2}), frozenset({3}), frozenset({TRADE, BBO}))
    assert a == b and hash(a) == hash(b)
    assert a.venues == frozenset({1, 2}) and type(next(iter(a.event_types))) is int
    assert Subscription(0).event_types == ALL_EVENT_TYPES
    assert Subscription(0, event_types=None) == Subscription(0, event_types=ALL_EVENT_TYPES)
    assert a.matches(1, 3, TRADE) and not a.matches(1, 3, TICKER)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"consumer": -1}, "consumer"),
        ({"consumer": True}, "consumer"),
        ({"consumer": 0, "venues": set()}, "empty"),
        ({"consumer": 0, "instruments": [0]}, "instruments"),
        ({"consumer": 0, "venues": [65536]}, "venues"),
        ({"consumer": 0, "venues": "binance"}, "venues"),
        ({"consumer": 0, "event_types": [0]}, "not routable"),
        ({"consumer": 0, "event_types": [10]}, "not routable"),
        ({"consumer": 0, "event_types": [16]}, "event_types"),
        ({"consumer": 0, "event_types": [1.0]}, "event_types"),
    ],
)
def test_bad_subscriptions_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Subscription(**kwargs)


# -- router: versions and flips --------------------------------------------------------------


def test_router_versions_bump_once_per_successful_change():
    r = Router(n_consumers_max=4)
    assert r.version == 0 and r.table.version == 0
    assert r.stats() == RouterStats(version=0, n_rules=0, flips=0, n_subscriptions=0)
    s_btc = Subscription(0, instruments={BTC}, event_types={TRADE})
    s_eth = Subscription(0, instruments={ETH}, event_types={BBO})
    assert r.subscribe(s_btc) == 1
    assert r.subscribe(s_eth) == 2
    assert r.subscribe(Subscription(0, None, [BTC], [TRADE])) == 2  # duplicate
    assert r.subscriptions(0) == [s_btc, s_eth]
    assert r.subscriptions(1) == []
    assert r.unsubscribe(0, None, {SOL}, {TRADE}) == (False, 2)
    assert r.unsubscribe(1, None, {BTC}, {TRADE}) == (False, 2)
    assert r.unsubscribe(0, None, {BTC}, {TRADE, BBO}) == (False, 2)  # exact match only
    assert r.version == 2
    assert r.unsubscribe(0, None, {BTC}, {TRADE}) == (True, 3)
    assert r.subscriptions(0) == [s_eth]
    assert r.unsubscribe(0, None, {BTC}, {TRADE}) == (False, 3)
    assert r.stats() == RouterStats(version=3, n_rules=1, flips=3, n_subscriptions=1)


def test_remove_consumer_and_stage():
    r = Router(4)
    r.subscribe(Subscription(1, event_types={TRADE}))
    r.subscribe(Subscription(1, venues={OKX}))
    r.subscribe(Subscription(2, instruments={BTC}))
    assert r.remove_consumer(1) == (True, 4)
    assert r.subscriptions(1) == [] and len(r.subscriptions(2)) == 1
    assert r.remove_consumer(1) == (False, 4)
    assert r.stage([Subscription(0), Subscription(3, event_types={EXEC})]) == 5
    assert r.subscriptions(2) == [] and r.subscriptions(3) == [Subscription(3, event_types={EXEC})]
    assert r.stage([]) == 6
    assert r.stats() == RouterStats(version=6, n_rules=0, flips=6, n_subscriptions=0)


def test_failed_change_keeps_the_live_table():
    r = Router(n_consumers_max=2)
    r.subscribe(Subscription(1, event_types={TRADE}))
    live = r.table
    with pytest.raises(ConfigError, match="consumer 2 out of range"):
        r.subscribe(Subscription(2))
    with pytest.raises(ConfigError, match="consumer 5 out of range"):
        r.stage([Subscription(0), Subscription(5)])
    with pytest.raises(ConfigError, match="expected a Subscription"):
        r.subscribe("trade")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        r.unsubscribe(0, event_types=[99])
    assert r.table is live and r.version == 1 and r.stats().flips == 1
    with pytest.raises(ConfigError, match="n_consumers_max"):
        Router(0)


def test_tables_are_sized_by_the_largest_subscribed_ids():
    r = Router(4)
    r.subscribe(Subscription(0, venues={5}, instruments={300}, event_types={TRADE}))
    r.subscribe(Subscription(1, instruments={7}))
    t = r.table
    assert (t.n_venues, t.n_instruments) == (5, 300)
    assert r.route(events_of([(5, 300, TRADE), (6, 300, TRADE), (5, 7, BBO)])).tolist() == [
        [1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]]


def test_router_route_reuses_its_buffer_and_old_tables_stay_valid():
    r = Router(3)
    r.subscribe(Subscription(2, event_types={TRADE}))
    old = r.table
    m1 = r.route(events_of([(1, 1, TRADE)] * 5))
    assert m1.shape == (5, 3) and m1[:, 2].all()
    m2 = r.route(events_of([(1, 1, BBO)] * 2))
    assert m2.shape == (2, 3) and not m2.any()
    assert np.shares_memory(m1, m2)
    m3 = r.route(events_of([(1, 1, TRADE)] * 50))
    assert m3.shape == (50, 3) and m3[:, 2].all()
    r.remove_consumer(2)
    assert not r.route(events_of([(1, 1, TRADE)])).any()
    assert old.route(events_of([(1, 1, TRADE)])).tolist() == [[0, 0, 1]]  # still usable


# -- properties ------------------------------------------------------------------------------

ID_SETS = st.none() | st.frozensets(st.integers(1, 6), min_size=1, max_size=4)
SUBSCRIPTIONS = st.lists(
    st.builds(
        Subscription,
        consumer=st.integers(0, 5),
        venues=ID_SETS,
        instruments=ID_SETS,
        event_types=st.none() | st.frozensets(st.sampled_from(sorted(ALL_EVENT_TYPES)),
                                              min_size=1, max_size=4),
    ),
    max_size=12,
)
TRIPLES = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 20)),
                   max_size=40)


@settings(max_examples=200, deadline=None)
@given(subs=SUBSCRIPTIONS, triples=TRIPLES, extra=st.integers(0, 3))
def test_route_batch_equals_the_pure_python_reference(subs, triples, extra):
    n_venues = max([max(s.venues) for s in subs if s.venues] + [0]) + extra
    n_instr = max([max(s.instruments) for s in subs if s.instruments] + [0]) + extra
    t = RoutingTable.compile(subs, 6, n_venues, n_instr, 0)
    ev = events_of(triples)
    out = np.full((len(triples) + 2, 6), 5, np.uint8)  # stale content must be overwritten
    deliveries = rk.route_batch(out, ev, rk.new_memo(), *t.arrays())
    expected = reference(subs, ev, 6)
    np.testing.assert_array_equal(out[: len(triples)], expected)
    assert (out[len(triples):] == 5).all()
    assert deliveries == int(expected.sum())


#: Batches of few streams (most events repeat one: the memo answers them) and of more streams
#: than the memo has slots (entries are evicted and re-routed).
REPEATING = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.sampled_from([1, 2, 3])),
                     max_size=200)
CROWDED = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 40), st.integers(0, 20)),
                   min_size=100, max_size=300)


@settings(max_examples=100, deadline=None)
@given(subs=SUBSCRIPTIONS, triples=REPEATING | CROWDED)
def test_route_memo_gives_the_reference_mask_for_repeated_and_crowded_streams(subs, triples):
    """Events of a stream routed once and copied agree with routing each event on its own."""
    t = RoutingTable.compile(subs, 6, 10, 41, 0)
    ev = events_of(triples)
    out = np.full((len(triples), 6), 5, np.uint8)
    deliveries = rk.route_batch(out, ev, rk.new_memo(), *t.arrays())
    expected = reference(subs, ev, 6)
    np.testing.assert_array_equal(out, expected)
    assert deliveries == int(expected.sum())


# -- concurrency -----------------------------------------------------------------------------


def _random_change(router, rng, model):
    """Apply one random change to ``router`` and the same to ``model``; True if it flipped."""
    consumer = int(rng.integers(0, 4))
    op = rng.integers(0, 10)
    if op < 5 or not model:
        sub = Subscription(
            consumer,
            None if rng.random() < 0.3 else rng.choice(np.arange(1, 6), 2).tolist(),
            None if rng.random() < 0.3 else rng.choice(np.arange(1, 8), 2).tolist(),
            rng.choice(sorted(ALL_EVENT_TYPES), 2).tolist(),
        )
        flipped = sub not in model
        router.subscribe(sub)
        if flipped:
            model.append(sub)
        return flipped
    if op < 9:
        sub = model[int(rng.integers(0, len(model)))]
        found, _ = router.unsubscribe(sub.consumer, sub.venues, sub.instruments, sub.event_types)
        assert found
        model.remove(sub)
        return True
    found, _ = router.remove_consumer(consumer)
    model[:] = [s for s in model if s.consumer != consumer]
    return found


def test_concurrent_flips_every_batch_routed_by_one_version(no_thread_leak):
    router = Router(n_consumers_max=4)
    rng = np.random.default_rng(7)
    ev = events_of([(int(rng.integers(0, 7)), int(rng.integers(0, 9)),
                     int(rng.integers(0, 11))) for _ in range(96)])
    router.table.route(ev)  # compile/load the kernel before the race starts
    reader_started, writer_done = threading.Event(), threading.Event()
    history = {0: ()}  # version -> subscriptions, as the writer meant them
    seen = []  # (version, mask) per batch, in routing order

    def reader(token):
        while not token.cancelled:
            finished = writer_done.is_set()
            table = router.table  # once per batch
            mask = table.route(ev)
            np.testing.assert_array_equal(mask, reference(table.subscriptions, ev, 4))
            seen.append((table.version, mask))
            reader_started.set()
            if finished:
                return

    def writer(token):
        try:
            reader_started.wait(10.0)
            model = []
            for _ in range(150):
                if token.cancelled:
                    return
                if _random_change(router, rng, model):
                    history[router.version] = tuple(model)
                token.wait(0.0005)
        finally:
            writer_done.set()

    with TaskGroup("routing") as tg:
        tg.start(reader)
        tg.start(writer)
    assert tg.alive() == []

    versions = [v for v, _ in seen]
    assert versions == sorted(versions), "a reader saw the version go backwards"
    assert len(set(versions)) > 1
    assert versions[-1] == router.version == max(history) == router.stats().flips
    assert sorted(history) == list(range(router.version + 1))  # +1 per flip, no gaps
    for version, mask in seen:
        np.testing.assert_array_equal(mask, reference(history[version], ev, 4))
