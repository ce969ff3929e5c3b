"""Wait strategies: how a ring's consumer waits for data and a lossless producer for space.

As in the LMAX Disruptor, the waiting policy is a small object the ring is built with, so the
trade-off between latency and CPU is chosen per subscriber, not hard-coded:

* :class:`BlockingWait` (default) sleeps on a condition variable: no CPU while idle, but a
  Python thread wake-up costs ~100 us;
* :class:`YieldingWait` spins a little, then yields with ``time.sleep(0)``: lower latency, one
  core busy while waiting;
* :class:`BusySpinWait` only re-checks: the lowest latency a Python thread can get, at the price
  of a whole core (and, under the GIL, of the other threads' time slice).

The ring state itself is never guarded by these objects (ring kernels are atomic under the
GIL); a strategy only decides how to sleep until a predicate over that state turns true.
Producers call :meth:`WaitStrategy.signal` after each publish and consumers after each drain.
"""

from __future__ import annotations

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


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


class BlockingWait:
    """Wait on a ``threading.Condition``; cheap to signal when nobody waits.

    No wake-up is lost although the ring state changes outside the condition's lock: a waiter
    checks the predicate while holding the lock and releases it only inside ``wait``, and a
    signaller that sees a waiter takes the lock before notifying. A signaller that sees no
    waiter changed the state before the waiter registered, so the waiter's check sees it.
    """

    __slots__ = ("_cond", "_waiters")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._waiters = 0

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block until ``predicate()`` holds (True) or ``timeout`` seconds passed (False)."""
        if predicate():
            return True
        with self._cond:
            self._waiters += 1
            try:
                return self._cond.wait_for(predicate, timeout)
            finally:
                self._waiters -= 1

    def signal(self) -> None:
        """Wake every waiter so it re-checks its predicate; skips the lock when none waits."""
        if self._waiters:
            with self._cond:
                self._cond.notify_all()

    def __repr__(self) -> str:
        return "BlockingWait()"


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

    def __repr__(self) -> str:
        return "BusySpinWait()"
