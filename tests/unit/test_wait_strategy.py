"""BlockingWait's doorbells under stress: no wake-up lost, no bell left to a finished wait."""

import threading

from meltica_nb.concurrency import TaskGroup
from meltica_nb.wait_strategy import BlockingWait

ROUNDS = 2000


def test_ping_pong_never_loses_a_wake_up(no_thread_leak):
    """Two threads hand a token back and forth; a lost wake-up shows as a timed-out wait."""
    token = [0]
    waits = {0: BlockingWait(), 1: BlockingWait()}
    timeouts = []

    def player(me: int):
        def run(cancel):
            for _ in range(ROUNDS):
                if not waits[me].wait_for(lambda: token[0] % 2 == me, timeout=5.0):
                    timeouts.append(me)
                    return
                token[0] += 1
                waits[1 - me].signal()
        return run

    with TaskGroup("ping-pong") as tg:
        tg.start(player(0))
        tg.start(player(1))
    assert timeouts == []
    assert token[0] == 2 * ROUNDS


def test_many_signallers_one_waiter_count_conserved(no_thread_leak):
    """Three producers add 1 at a time; the waiter sees every count up to the total."""
    wait, lock, count, seen = BlockingWait(), threading.Lock(), [0], []
    total = 3 * ROUNDS

    def producer(cancel):
        for _ in range(ROUNDS):
            with lock:
                count[0] += 1
            wait.signal()

    def consumer(cancel):
        last = 0
        while last < total:
            if not wait.wait_for(lambda seen=last: count[0] > seen, timeout=5.0):
                return
            last = count[0]
            seen.append(last)

    with TaskGroup("producers") as tg:
        tg.start(consumer)
        for _ in range(3):
            tg.start(producer)
    assert seen[-1] == total
    assert seen == sorted(seen)


def test_signals_without_waiters_never_satisfy_a_later_wait():
    """A signal nobody waited for leaves no bell open that a later wait would mistake."""
    wait = BlockingWait()
    wait.signal()
    assert not wait.wait_for(lambda: False, timeout=0.02)
    flag = [True]
    assert wait.wait_for(lambda: flag[0], timeout=0.02)
    wait.signal()
    flag[0] = False
    assert not wait.wait_for(lambda: flag[0], timeout=0.02)
