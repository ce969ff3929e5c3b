"""Wait strategies: how a ring's consumer waits for data and a lossless producer for space.

As in the LMAX Disruptor, the waiting policy is a small object the ring is built with, so the
trade-off between latency and CPU is chosen per subscriber, not hard-coded:

* :class:`BlockingWait` (default) sleeps on a per-thread doorbell lock: no CPU while idle,
  but a Python thread wake-up costs ~100 us;
* :class:`YieldingWait` spins a little, then yields with ``time.sleep(0)``: lower latency, one
  core busy while waiting;
* :class:`BusySpinWait` only re-checks: the lowest latency a Python thread can get, at the price
  of a whole core (and, under the GIL, of the other threads' time slice).

The ring state itself is never guarded by these objects (ring kernels are atomic under the
GIL); a strategy only decides how to sleep until a predicate over that state turns true.
Producers call :meth:`WaitStrategy.signal` after each publish and consumers after each drain.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["BlockingWait", "BusySpinWait", "WaitStrategy", "YieldingWait"]


@runtime_checkable
class WaitStrategy(Protocol):
    """Sleep until a predicate holds; be woken by the other side's :meth:`signal`."""

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Return True once ``predicate()`` holds, False if ``timeout`` seconds passed first."""
        ...

    def signal(self) -> None:
        """Tell waiters the state changed (a no-op for strategies that poll)."""
        ...

    def parked(self) -> bool:
        """True while a thread sleeps in :meth:`wait_for` until a signal (never for polling)."""
        ...


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


class BlockingWait:
    """Sleep on a per-thread doorbell; a signal rings the bells of the threads waiting now.

    Each waiting thread parks on its own lock (held while nobody rang) and ``signal`` releases
    the bells of the waiters registered at that moment. The signaller never takes a lock a
    waiter holds, so a publish is never stuck behind a consumer that is re-checking its
    predicate (a ``threading.Condition`` made the producer wait for that, under the GIL, and
    its p99 signal cost reached milliseconds on a loaded machine).

    No wake-up is lost: a waiter registers its bell before it checks the predicate, and a
    signaller changes the state before it reads the registered bells. Either the signaller
    saw the bell (and rings it) or the state change came first (and the check sees it). A ring
    that arrives after the wait ended leaves the bell open: the next wait re-checks its
    predicate once more and parks again.
    """

    __slots__ = ("_bells",)

    def __init__(self) -> None:
        self._bells: tuple = ()  # replaced, never mutated: signal iterates a snapshot

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block until ``predicate()`` holds (True) or ``timeout`` seconds passed (False)."""
        if predicate():
            return True
        bell = _thread_bell()
        self._bells = (*self._bells, bell)
        try:
            deadline = _deadline(timeout)
            while not predicate():
                if deadline is None:
                    bell.acquire()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                bell.acquire(timeout=remaining)
            return True
        finally:
            self._bells = tuple(b for b in self._bells if b is not bell)
            bell.acquire(blocking=False)  # held again, whether or not a ring came

    def signal(self) -> None:
        """Ring every waiting thread's bell; nothing to do when none waits."""
        for bell in self._bells:
            with contextlib.suppress(RuntimeError):  # rung already, not yet answered
                bell.release()

    def parked(self) -> bool:
        """True while a thread waits on its bell (or is about to re-check and park)."""
        return bool(self._bells)

    def __repr__(self) -> str:
        return "BlockingWait()"


_local = threading.local()


def _thread_bell() -> threading.Lock:
    """This thread's doorbell: a lock held by the thread until someone rings (releases) it."""
    bell = getattr(_local, "bell", None)
    if bell is None:
        bell = _local.bell = threading.Lock()
        bell.acquire()
    return bell


class YieldingWait:
    """Spin ``spin_tries`` checks, then yield the GIL with ``time.sleep(0)`` between checks."""

    __slots__ = ("_spin_tries",)

    def __init__(self, spin_tries: int = 100) -> None:
        self._spin_tries = spin_tries

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Poll ``predicate()`` until it holds (True) or ``timeout`` seconds passed (False)."""
        deadline = _deadline(timeout)
        spins = 0
        while not predicate():
            if _expired(deadline):
                return False
            spins += 1
            if spins > self._spin_tries:
                time.sleep(0)
        return True

    def signal(self) -> None:
        """Nothing to do: waiters poll."""

    def parked(self) -> bool:
        """Never: waiters poll, so nobody needs waking."""
        return False

    def __repr__(self) -> str:
        return f"YieldingWait(spin_tries={self._spin_tries})"


class BusySpinWait:
    """Re-check the predicate in a tight loop: lowest latency, one core (and the GIL) busy."""

    __slots__ = ()

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Spin on ``predicate()`` until it holds (True) or ``timeout`` seconds passed (False)."""
        deadline = _deadline(timeout)
        while not predicate():
            if _expired(deadline):
                return False
        return True

    def signal(self) -> None:
        """Nothing to do: waiters spin."""

    def parked(self) -> bool:
        """Never: waiters poll, so nobody needs waking."""
        return False

    def __repr__(self) -> str:
        return "BusySpinWait()"
