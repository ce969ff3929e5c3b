"""WakeChain: one wake-up per fan-out from the dispatcher, the rest passed consumer to consumer.

The policy is tested on small stand-ins for consumers (their wait strategy only records
signals), then for real: an engine whose first consumer is stuck in its handler still delivers
to every other consumer, and ten consumers woken through the chain get every event.
"""

import threading

import pytest
from engine_util import TRADE, Collector, make, wait_until

from meltica_nb.engine import Engine
from meltica_nb.errors import ConfigError
from meltica_nb.wake_chain import WakeChain


class _Wait:
    def __init__(self, parked: bool):
        self.is_parked = parked
        self.signals = 0

    def parked(self) -> bool:
        return self.is_parked

    def signal(self) -> None:
        self.signals += 1


class _Member:
    def __init__(self, parked: bool = True):
        self.wait = _Wait(parked)


def _chain(*members):
    chain = WakeChain(len(members))
    for m in members:
        chain.add(m)
    return chain


def _fed(chain: WakeChain, *columns: int) -> None:
    """What the fan-out kernel does: mark the consumers whose rings took events."""
    chain.flags[list(columns)] = 1


def test_the_dispatcher_wakes_only_the_first_fed_consumer_and_each_wakes_the_next():
    a, b, c = _Member(), _Member(), _Member()
    chain = _chain(a, b, c)
    _fed(chain, 0, 2)
    chain.start()
    assert [m.wait.signals for m in (a, b, c)] == [1, 0, 0]
    chain.wake_after(0)  # a took its batch
    assert [m.wait.signals for m in (a, b, c)] == [1, 0, 1]
    chain.wake_after(2)
    chain.wake_after(0)  # nothing is due any more
    assert [m.wait.signals for m in (a, b, c)] == [1, 0, 1]


def test_busy_consumers_are_passed_over_and_lose_their_due_mark():
    busy, parked, later = _Member(parked=False), _Member(), _Member()
    chain = _chain(busy, parked, later)
    _fed(chain, 0, 1, 2)
    chain.start()
    assert [m.wait.signals for m in (busy, parked, later)] == [0, 1, 0]
    busy.wait.is_parked = True
    chain.wake_after(-1)  # busy was not due any more: its next poll finds its events
    assert busy.wait.signals == 0 and later.wait.signals == 1


def test_a_chain_has_room_for_its_capacity_only():
    chain = _chain(_Member(), _Member())
    with pytest.raises(ConfigError, match="all 2 places are taken"):
        chain.add(_Member())


def test_a_consumer_stuck_in_its_handler_does_not_hold_up_the_others(no_thread_leak):
    engine = Engine()
    release, entered = threading.Event(), threading.Event()

    def stuck(events):
        entered.set()
        release.wait(10.0)

    engine.add_consumer("stuck", stuck, events=["trade"])
    others = [Collector() for _ in range(3)]
    for i, collector in enumerate(others):
        engine.add_consumer(f"c{i}", collector, events=["trade"])
    engine.start()
    try:
        engine.publish(make(engine, TRADE, [1, 2]))
        wait_until(entered.is_set, what="the first consumer entered its handler")
        engine.publish(make(engine, TRADE, [3, 4]))
        wait_until(lambda: all(c.seqs() == [1, 2, 3, 4] for c in others),
                   what="every other consumer got all four trades")
    finally:
        release.set()
        engine.stop()


def test_ten_consumers_woken_through_the_chain_get_every_event(no_thread_leak):
    engine = Engine()
    collectors = [Collector() for _ in range(10)]
    for i, collector in enumerate(collectors):
        engine.add_consumer(f"c{i}", collector, events=["trade"], coalesce=False)
    engine.start()
    try:
        for start in range(1, 2001, 20):
            engine.publish(make(engine, TRADE, range(start, start + 20)))
        wait_until(lambda: all(len(c) == 2000 for c in collectors), timeout=30.0,
                   what="all 2000 trades reached all ten consumers")
    finally:
        engine.stop()
    assert all(c.seqs() == list(range(1, 2001)) for c in collectors)
