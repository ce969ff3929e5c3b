"""The injected clock: no engine code reads the wall clock directly.

Every component that needs a timestamp (ingest time, merge windows, lateness, latency) is handed
a :class:`Clock`. Live runs pass :class:`WallClock`; replays and tests pass a
:class:`ManualClock` that follows the recording's receive times (or the test's script), so the
same kernels produce the same output on every run instead of depending on when they ran.

Two readings, because they answer different questions: :meth:`Clock.now_ns` is epoch time to
stamp on records and compare with venue times; :meth:`Clock.monotonic_ns` never goes back and
is what durations and timeouts must be measured with (NTP may step the wall clock).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

from meltica_nb.errors import ConfigError

__all__ = ["Clock", "ManualClock", "WallClock"]


@runtime_checkable
class Clock(Protocol):
    """What the engine asks of a clock: two nanosecond readings."""

    def now_ns(self) -> int:
        """Return nanoseconds since the Unix epoch (for stamping records)."""
        ...

    def monotonic_ns(self) -> int:
        """Return nanoseconds from an arbitrary origin that never decrease (for durations)."""
        ...


class WallClock:
    """The live clock: the operating system's real and monotonic time."""

    __slots__ = ()

    def now_ns(self) -> int:
        """Return ``time.time_ns()``: epoch time comparable with venue timestamps."""
        return time.time_ns()

    def monotonic_ns(self) -> int:
        """Return ``time.monotonic_ns()``: immune to wall-clock steps, for durations."""
        return time.monotonic_ns()

    def __repr__(self) -> str:
        return "WallClock()"


def _check_ns(value: int, what: str) -> int:
    """Accept Python and NumPy integers only: a float would silently lose nanoseconds."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ConfigError(f"{what} must be an integer number of nanoseconds, got {value!r}")
    return int(value.__index__())


class ManualClock:
    """A clock that only moves when told to: replay and tests drive it.

    Both readings return the same manual time, so a replay's durations are measured on the
    recording's timeline. Time never goes backwards (a backwards step would break the
    monotonic contract that timeouts rely on), so :meth:`set` to an earlier time and a negative
    :meth:`advance` raise :class:`~meltica_nb.errors.ConfigError`. A lock makes advancing safe
    when a test drives the clock from one thread while engine threads read it.
    """

    __slots__ = ("_lock", "_ns")

    def __init__(self, start_ns: int = 0) -> None:
        self._ns = _check_ns(start_ns, "start_ns")
        if self._ns < 0:
            raise ConfigError(f"start_ns must be >= 0, got {self._ns}")
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        """Return the manual time."""
        return self._ns

    def monotonic_ns(self) -> int:
        """Return the manual time (the same reading as :meth:`now_ns`)."""
        return self._ns

    def advance(self, ns: int) -> int:
        """Move the clock forward by ``ns`` (>= 0) and return the new time."""
        step = _check_ns(ns, "advance step")
        if step < 0:
            raise ConfigError(f"ManualClock cannot go backwards: advance({step})")
        with self._lock:
            self._ns += step
            return self._ns

    def set(self, ns: int) -> int:
        """Jump to ``ns`` (not earlier than now) and return it; replay sets receive times."""
        target = _check_ns(ns, "time")
        with self._lock:
            if target < self._ns:
                raise ConfigError(
                    f"ManualClock cannot go backwards: set({target}) < now ({self._ns})"
                )
            self._ns = target
            return self._ns

    def __repr__(self) -> str:
        return f"ManualClock({self._ns})"
