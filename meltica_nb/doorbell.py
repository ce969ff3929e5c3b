"""Doorbell: one thread's park-and-ring primitive, rung without holding the GIL.

:class:`~meltica_nb.wait_strategy.BlockingWait` parks each waiting thread on its own doorbell.
The first doorbell was a ``threading.Lock`` that the signaller released. On a busy 2-core
machine the woken thread usually preempts the signaller inside that release, and the signaller
is then descheduled *while it holds the GIL*: nobody can run Python until the scheduler comes
back to it. py-spy (``--gil``) showed the live connection thread holding the GIL inside
``Lock.release`` for 37 % of its GIL time at 5k msgs/s, and the first consumer of the wake
chain likewise.

A doorbell is a pipe instead: :meth:`ring` writes one byte, :meth:`wait` sleeps in ``poll(2)``
and reads. Both syscalls release the GIL, so a thread that preempts its ringer finds the GIL
free and runs at once. Rings accumulate until a wait or :meth:`clear` reads them, so a ring
is never lost and many rings wake a waiter once.
"""

from __future__ import annotations

import contextlib
import os
import select

__all__ = ["Doorbell"]

#: Bytes read per call when emptying the pipe (rings pending at once are few).
_DRAIN = 4096


class Doorbell:
    """A non-blocking pipe: rings are bytes in it, a wait polls its read end."""

    __slots__ = ("_poller", "_read", "_write")

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._poller = select.poll()
        self._poller.register(self._read, select.POLLIN)

    def ring(self) -> None:
        """Wake the thread waiting on this bell (or its next wait), GIL released meanwhile."""
        with contextlib.suppress(BlockingIOError):  # pipe full: rung already, not yet answered
            os.write(self._write, b"\x01")

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until rung (True, every ring so far answered) or ``timeout`` s passed (False)."""
        ms = None if timeout is None else max(0.0, timeout * 1000.0)
        if not self._poller.poll(ms):
            return False
        self.clear()
        return True

    def clear(self) -> None:
        """Answer every ring so far without sleeping."""
        with contextlib.suppress(BlockingIOError):
            while len(os.read(self._read, _DRAIN)) == _DRAIN:
                pass

    def close(self) -> None:
        """Close the pipe (the bell of a finished thread)."""
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._read = self._write = -1

    def __del__(self) -> None:
        if getattr(self, "_read", -1) >= 0:
            self.close()
