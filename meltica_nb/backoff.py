"""Capped exponential backoff with jitter: how long to wait before trying again.

Every retry loop of the engine (websocket reconnects, REST retries, book resyncs) waits
``min(cap, base * factor**attempt)`` seconds after its ``attempt``-th consecutive failure,
minus a random share of up to ``jitter`` of that ceiling, so that many clients dropped at the
same moment do not reconnect in lockstep. The randomness comes from a ``random.Random`` the
caller can seed, which makes a test's delay sequence reproducible; the default seed is drawn
from the operating system, because a fleet of processes sharing one seed would jitter in
lockstep and defeat the purpose.

::

    delays = Backoff(BackoffPolicy(base_s=0.5, cap_s=30.0), seed=7)
    while not connected:
        token.wait(delays.next_delay())   # 0.5, 1, 2, 4 ... 30, 30 (minus jitter)
    delays.reset()                         # after a success
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from meltica_nb.errors import ConfigError

__all__ = ["Backoff", "BackoffPolicy"]

# factor**attempt is evaluated with the exponent clamped here: float pow overflows long before
# any real retry count, and every ceiling past this point is the cap anyway.
_MAX_EXPONENT = 64


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """The shape of a backoff: first delay, growth, cap and jitter (immutable, shareable).

    Parameters
    ----------
    base_s : delay ceiling after the first failure, seconds (> 0).
    cap_s : the largest delay ever returned, seconds (>= base_s).
    factor : growth of the ceiling per consecutive failure (1 <= factor <= 10).
    jitter : share of the ceiling removed at random, 0 <= jitter < 1; a delay lies in
        ``[(1 - jitter) * ceiling, ceiling]``, so it never exceeds the cap and never reaches 0.
    """

    base_s: float = 0.5
    cap_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not self.base_s > 0:
            raise ConfigError(f"backoff base_s must be > 0, was {self.base_s!r}")
        if not self.cap_s >= self.base_s:
            raise ConfigError(f"backoff cap_s {self.cap_s!r} is below base_s {self.base_s!r}")
        if not 1.0 <= self.factor <= 10.0:
            raise ConfigError(f"backoff factor must be in [1, 10], was {self.factor!r}")
        if not 0.0 <= self.jitter < 1.0:
            raise ConfigError(f"backoff jitter must be in [0, 1), was {self.jitter!r}")

    def ceiling(self, attempt: int) -> float:
        """Return the delay before jitter after ``attempt`` (0-based) consecutive failures."""
        if attempt < 0:
            raise ConfigError(f"backoff attempt must be >= 0, was {attempt}")
        exponent = min(attempt, _MAX_EXPONENT)
        return min(self.cap_s, self.base_s * self.factor**exponent)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Return the jittered delay for ``attempt``, drawing one number from ``rng``."""
        ceiling = self.ceiling(attempt)
        return ceiling - ceiling * self.jitter * rng.random()


class Backoff:
    """The delays of one retry loop: each :meth:`next_delay` is one failure further.

    Not thread-safe: each loop owns its own instance (they may share one policy).

    Parameters
    ----------
    policy : the delay shape; the defaults are 0.5 s doubling up to 30 s with 20 % jitter.
    seed : seed of the jitter RNG, for reproducible sequences; None draws one from the OS.
    """

    __slots__ = ("_attempt", "_policy", "_rng")

    def __init__(self, policy: BackoffPolicy | None = None, *, seed: int | None = None) -> None:
        self._policy = policy if policy is not None else BackoffPolicy()
        self._rng = random.Random(seed)
        self._attempt = 0

    @property
    def policy(self) -> BackoffPolicy:
        """The policy the delays follow."""
        return self._policy

    @property
    def attempts(self) -> int:
        """Number of delays handed out since creation or the last :meth:`reset`."""
        return self._attempt

    def next_delay(self) -> float:
        """Return the delay to wait after one more failure, in seconds."""
        delay = self._policy.delay(self._attempt, self._rng)
        self._attempt += 1
        return delay

    def reset(self) -> None:
        """Start over from ``base_s``: call it after a success."""
        self._attempt = 0

    def __repr__(self) -> str:
        return f"Backoff({self._policy!r}, attempts={self._attempt})"
