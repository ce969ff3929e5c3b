"""Structured concurrency: the one owner of every thread of the engine.

Why this module exists
----------------------
A trading engine runs feed readers, pool reclaimers and strategy loops side by side. Threads
started ad hoc leak: nobody joins them, their exceptions are printed by ``threading.excepthook``
and lost, and a dead feed keeps the rest of the engine running on stale data. So ``meltica_nb``
bans bare ``threading.Thread`` everywhere except here (ruff ``TID251``) and starts every thread
through a :class:`TaskGroup` -- the Python counterpart of Go's ``sourcegraph/conc`` pool and of
trio's nursery:

* **single owner** -- every thread belongs to exactly one group; the group joins all of them, so
  no thread outlives the code that started it;
* **first error stops the group** -- the first exception raised by any worker is recorded and the
  group's :class:`CancelToken` is cancelled at once, so every other worker (which polls or waits
  on the token) stops instead of running on in a half-broken engine;
* **re-raised after all joined** -- the first error is raised in the joining thread only after
  every thread of the group has been joined, so the caller never sees an error while workers are
  still touching shared state. Later errors are logged and attached to it as notes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from threading import Thread  # noqa: TID251
from types import TracebackType
from typing import Any

from meltica_nb.errors import TaskGroupError

__all__ = ["CancelToken", "TaskGroup", "TaskGroupStats"]

_log = logging.getLogger("meltica_nb.concurrency")


class CancelToken:
    """A cancel flag shared by a group and its workers (a trio ``CancelScope``-like token).

    Threads cannot be killed from outside, so cancellation is cooperative: looping workers call
    :meth:`wait` (instead of ``time.sleep``) or check :attr:`cancelled` and return when it is set.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def cancelled(self) -> bool:
        """True once the group was cancelled; workers that see it should return promptly."""
        return self._event.is_set()

    def cancel(self) -> None:
        """Set the flag and wake every waiter; idempotent."""
        self._event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep up to ``timeout`` seconds but wake at once on cancel; True when cancelled."""
        return self._event.wait(timeout)

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.cancelled})"


@dataclass(frozen=True, slots=True)
class TaskGroupStats:
    """A snapshot of a group's counters, for health checks and logs (immutable on purpose)."""

    name: str
    started: int
    running: int
    failed: int


def _remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (None = no deadline), never negative."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


def _task_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


class _Task:
    """A worker thread plus a ``done`` event set by the worker itself when its function ends.

    Completion is tracked with our own event rather than ``Thread.is_alive()`` alone: on
    CPython 3.11 a KeyboardInterrupt inside ``Thread.join()`` can mark a still-running thread
    as stopped (bpo-45274 follow-up), and the group must still wait for it after Ctrl-C.
    """

    __slots__ = ("done", "thread")

    def __init__(self, thread: Thread, done: threading.Event) -> None:
        self.thread = thread
        self.done = done

    @property
    def running(self) -> bool:
        return not self.done.is_set() or self.thread.is_alive()

    def wait(self, deadline: float | None) -> None:
        """Wait for the function to return, then for the thread itself to exit."""
        if self.done.wait(_remaining(deadline)):
            self.thread.join(_remaining(deadline))


class TaskGroup:
    """Owns a set of worker threads: starts them, cancels them together, joins them all.

    ``start(fn, *args)`` runs ``fn(cancel_token, *args)`` on a new non-daemon thread. The first
    worker exception cancels the group and is re-raised by :meth:`join` (or on leaving the
    ``with`` block) after every thread has been joined. Leaving the ``with`` body normally does
    *not* cancel: like a nursery it waits for the workers to finish by themselves. Long-running
    services that must be shut down use :meth:`stop`.
    """

    def __init__(self, name: str = "group") -> None:
        self._name = name
        self._token = CancelToken()
        self._lock = threading.Lock()
        self._tasks: list[_Task] = []
        self._errors: list[tuple[str, BaseException]] = []
        self._closed = False
        self._reported = False

    # -- properties ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The group name; it prefixes every thread name (``"<group>:<task>"``)."""
        return self._name

    @property
    def token(self) -> CancelToken:
        """The token handed to every worker of this group."""
        return self._token

    @property
    def cancelled(self) -> bool:
        """True once the group was cancelled (explicitly or by a worker error)."""
        return self._token.cancelled

    # -- starting --------------------------------------------------------------------------

    def start(self, fn: Callable[..., Any], *args: Any, name: str | None = None) -> None:
        """Run ``fn(token, *args)`` on a new thread named ``"<group>:<name or fn.__name__>"``.

        Raises :class:`TaskGroupError` once the group was joined/closed or cancelled: a worker
        started then would either never be joined or be stopped before doing anything. (If the
        cancel came from a worker error, that error is still re-raised by :meth:`join`.)
        """
        thread_name = f"{self._name}:{name or _task_name(fn)}"
        with self._lock:
            self._check_can_start(thread_name)
            done = threading.Event()
            thread = Thread(target=self._run, args=(fn, args, done), name=thread_name, daemon=False)
            self._tasks.append(_Task(thread, done))
            thread.start()

    def _check_can_start(self, thread_name: str) -> None:
        if self._closed:
            raise TaskGroupError(
                f"task group {self._name!r} is closed: cannot start {thread_name!r}"
            )
        if self._token.cancelled:
            why = "a worker failed" if self._errors else "it was cancelled"
            raise TaskGroupError(
                f"task group {self._name!r} is cancelled ({why}): cannot start {thread_name!r}"
            )

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...], done: threading.Event) -> None:
        """Thread body: run the task and turn any exception into a group failure."""
        try:
            fn(self._token, *args)
        except BaseException as exc:  # noqa: B036 - recorded, re-raised by join()
            self._record(threading.current_thread().name, exc)
        finally:
            done.set()

    def _record(self, thread_name: str, exc: BaseException) -> None:
        """Keep the first error, note and log later ones, and cancel the whole group."""
        with self._lock:
            self._errors.append((thread_name, exc))
            first_name, first = self._errors[0]
        if first is exc:
            _log.debug("task %s failed first, cancelling group %s", thread_name, self._name)
        else:
            first.add_note(f"also failed in thread {thread_name!r}: {exc!r}")
            _log.error(
                "task %s of group %s also failed (first failure in %s)",
                thread_name,
                self._name,
                first_name,
                exc_info=exc,
            )
        self._token.cancel()

    # -- stopping and joining --------------------------------------------------------------

    def cancel(self) -> None:
        """Ask every worker to stop (cooperatively, via the token); does not wait."""
        self._token.cancel()

    def join(self, timeout: float | None = None) -> None:
        """Wait for all threads, then re-raise the first worker error (once).

        ``timeout`` is one total deadline across all threads, not per thread. Threads still
        alive at the deadline raise :class:`TimeoutError` naming them; if a worker also failed,
        the worker error is raised instead, with a note listing the stuck threads, so the root
        cause is never swallowed. KeyboardInterrupt/SystemExit while waiting cancels the group,
        joins every thread, then propagates. After join the group is closed to new starts.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        stuck = self._wait(deadline)
        self._raise_outcome(stuck)

    def stop(self, timeout: float | None = 5.0) -> None:
        """Cancel and join: the shutdown path of long-running services."""
        self.cancel()
        self.join(timeout)

    def _wait(self, deadline: float | None) -> list[str]:
        """Join with a deadline; on Ctrl-C/SystemExit cancel, join everything, propagate."""
        try:
            return self._wait_all(deadline)
        except (KeyboardInterrupt, SystemExit):
            self.cancel()
            self._wait_all(None)
            raise

    def _wait_all(self, deadline: float | None) -> list[str]:
        """Join until no thread is alive or the deadline passed; return stuck thread names.

        Loops because a worker may start a sibling while we wait (nursery semantics).
        """
        me = threading.current_thread()
        while True:
            with self._lock:
                pending = [t for t in self._tasks if t.running and t.thread is not me]
                if not pending or (deadline is not None and time.monotonic() >= deadline):
                    self._closed = True
                    return [t.thread.name for t in pending]
            for task in pending:
                task.wait(deadline)

    def _take_error(self) -> BaseException | None:
        """The first worker error, the first time it is asked for (it is raised only once)."""
        with self._lock:
            if self._reported or not self._errors:
                return None
            self._reported = True
            return self._errors[0][1]

    def _raise_outcome(self, stuck: list[str]) -> None:
        error = self._take_error()
        if stuck:
            msg = (
                f"task group {self._name!r}: threads still running after join timeout: "
                + ", ".join(stuck)
            )
            if error is None:
                raise TimeoutError(msg)
            error.add_note(msg)
        if error is not None:
            raise error

    # -- inspection ------------------------------------------------------------------------

    def alive(self) -> list[str]:
        """Names of the group's threads that are still running."""
        with self._lock:
            return [t.thread.name for t in self._tasks if t.running]

    def stats(self) -> TaskGroupStats:
        """Counters for health checks: threads started, still running, and failed."""
        with self._lock:
            return TaskGroupStats(
                name=self._name,
                started=len(self._tasks),
                running=sum(1 for t in self._tasks if t.running),
                failed=len(self._errors),
            )

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"TaskGroup({s.name!r}, started={s.started}, running={s.running}, "
            f"failed={s.failed}, cancelled={self.cancelled})"
        )

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> TaskGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Join on exit; if the body raised, cancel first and let the body's error win."""
        if exc is None:
            self.join()
            return
        self.cancel()
        self._wait(None)
        error = self._take_error()
        if error is not None:
            for thread_name, worker_exc in self._errors:
                exc.add_note(f"task group {self._name!r}: {thread_name!r} failed: {worker_exc!r}")
