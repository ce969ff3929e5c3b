"""WakeChain: the consumers a fan-out fed are woken one after another, not all at once.

Waking a parked thread costs the waker a futex call and, on a busy 2-core machine, usually a
pair of context switches (the woken thread preempts the waker, finds the GIL taken and sleeps
again): 5-20 us each. Ten consumers woken by the dispatcher after every publish cost the
connection thread ~150 us per batch, and the consumers then ran one at a time anyway (the GIL).

So the dispatcher marks the consumers it fed as due and wakes the first one that is parked;
each consumer, as soon as it has taken its batch, wakes the next parked one. Consumers that are
not parked (delivering a batch, or polling with a spinning wait strategy) are passed over: they
find their events on their next poll, and a slow handler never holds up the consumers after it.

No wake-up is lost: events are in the rings before any flag is read, and a consumer that is not
parked yet checks its rings after registering to park (see :class:`~meltica_nb.wait_strategy.
BlockingWait`). Races between chains of consecutive publishes can only ring a bell twice.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError

__all__ = ["WakeChain"]


class WakeChain:
    """The dispatcher's consumers in column order, and which of them still need waking.

    ``flags`` is the fan-out kernel's view of the due marks: it sets ``flags[c]`` for every
    ring ``c`` a publish fed, the chain clears a mark when it passes that consumer. The marks
    live in a ``bytearray`` so the chain reads them as plain ints (a NumPy element read costs
    several times more).
    """

    __slots__ = ("_due", "_members", "flags")

    def __init__(self, capacity: int) -> None:
        self._members: list = []
        self._due = bytearray(capacity)
        self.flags = np.frombuffer(self._due, np.uint8)

    def add(self, consumer) -> None:
        """Append a consumer; its routing column must be its position in the chain."""
        if len(self._members) >= len(self._due):
            raise ConfigError(f"wake chain: all {len(self._due)} places are taken")
        self._members.append(consumer)

    def start(self) -> None:
        """After a fan-out has marked the consumers it fed, wake the first parked one."""
        self.wake_after(-1)

    def wake_after(self, column: int) -> None:
        """Wake the next due consumer after ``column`` that is parked; pass over busy ones."""
        due, members = self._due, self._members
        for c in range(column + 1, len(members)):
            if due[c]:
                due[c] = 0
                wait = members[c].wait
                if wait.parked():
                    wait.signal()
                    return  # it carries the chain on once it has taken its batch
