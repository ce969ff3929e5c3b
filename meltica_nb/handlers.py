"""Handler strategies: how a consumer hands its ready batch to user code.

Three modes, one protocol (``deliver(batch) -> HandlerOutcome``):

- ``batch``: one call per batch with a read-only structured-array view (cheapest in Python).
- ``njit``: a Numba function called per event inside a compiled loop; no Python per event.
- ``python``: one call per event with a read-only record (simplest, slowest).

A raising handler never stops its consumer: the outcome says how many events raised and the
index of the first, so the consumer can count and log with that event's trace id.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit
from numba.core import config as numba_config

from .errors import ConfigError

__all__ = ["BatchHandler", "HandlerOutcome", "NjitHandler", "PythonHandler", "make_handler"]


@dataclass(frozen=True, slots=True)
class HandlerOutcome:
    """How a delivery went: number of events that raised, first failing index, its error."""

    errors: int = 0
    first_index: int = -1
    error: BaseException | None = None


_OK = HandlerOutcome()


class BatchHandler:
    """Call ``fn(view)`` once per batch; an exception counts every event of the batch."""

    mode = "batch"

    def __init__(self, fn: Callable[[np.ndarray], object]):
        self.fn = fn

    def deliver(self, batch: np.ndarray) -> HandlerOutcome:
        try:
            self.fn(batch)
        except Exception as exc:  # a user handler: count, log, keep consuming
            return HandlerOutcome(batch.shape[0], 0, exc)
        return _OK


class PythonHandler:
    """Call ``fn(record)`` once per event; each raising event is counted separately."""

    mode = "python"

    def __init__(self, fn: Callable[[np.void], object]):
        self.fn = fn

    def deliver(self, batch: np.ndarray) -> HandlerOutcome:
        errors, first, error = 0, -1, None
        fn = self.fn
        for i in range(batch.shape[0]):
            try:
                fn(batch[i])
            except Exception as exc:  # a user handler: count, log, keep consuming
                errors += 1
                if first < 0:
                    first, error = i, exc
        return HandlerOutcome(errors, first, error) if errors else _OK


@functools.lru_cache(maxsize=256)
def compile_runner(handler):
    """Compile a delivery loop with ``handler`` built in (once per handler function).

    Passing the handler as an argument would make Numba type-check the function object on
    every call (about 5 us per batch); a loop compiled per handler calls it directly. The loop
    releases the GIL (``nogil``): it reads only the consumer's own copy of the batch and the
    handler's state, so njit consumers run in parallel with the dispatcher and each other.
    The loop cannot be cached on disk (it closes over the handler), so it is kept per handler
    here: fifty consumers of one handler compile it once, not fifty times.
    """

    @njit(nogil=True)
    def run(batch, state):
        errors = 0
        first = -1
        for i in range(batch.shape[0]):
            try:
                handler(batch[i], state)
            except Exception:  # noqa: BLE001 - numba catches only the bare class
                errors += 1
                if first < 0:
                    first = i
        return errors, first

    return run


class NjitHandler:
    """Call a ``@numba.njit`` function ``fn(record, state)`` per event inside compiled code.

    ``state`` is any NumPy array the handler keeps its results in (Numba functions hold no
    Python state). With ``NUMBA_DISABLE_JIT=1`` records are passed as ``np.record`` so the
    same attribute access (``rec.price``) works in plain Python.
    """

    mode = "njit"

    def __init__(self, fn, state: np.ndarray | None = None):
        if not numba_config.DISABLE_JIT and not hasattr(fn, "py_func"):
            raise ConfigError(f"njit consumer handler {fn!r} is not a numba.njit function")
        self.fn = fn
        self.state = np.zeros(1, np.int64) if state is None else state
        self._run = compile_runner(fn)

    def warm_up(self, empty: np.ndarray) -> None:
        """Compile the delivery loop (with the handler built in) on an empty batch."""
        self._run(empty, self.state)

    def deliver(self, batch: np.ndarray) -> HandlerOutcome:
        view = batch.view(np.recarray) if numba_config.DISABLE_JIT else batch
        errors, first = self._run(view, self.state)
        if errors:
            return HandlerOutcome(int(errors), int(first),
                                  RuntimeError("njit handler raised (details are not kept "
                                               "by compiled code)"))
        return _OK


_MODES = {"batch": BatchHandler, "python": PythonHandler, "njit": NjitHandler}


def make_handler(mode: str, fn, state: np.ndarray | None = None):
    """Build the handler strategy for ``mode`` ("batch", "njit" or "python")."""
    if mode not in _MODES:
        raise ConfigError(f"unknown consumer mode {mode!r}; use one of {sorted(_MODES)}")
    if mode == "njit":
        return NjitHandler(fn, state)
    return _MODES[mode](fn)
