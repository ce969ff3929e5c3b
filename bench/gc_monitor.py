"""Garbage-collector pauses, timed through ``gc.callbacks`` while a run is being measured.

CPython calls every callback with ``"start"`` before a collection and ``"stop"`` after it, on
the thread that triggered it; the pause is the time between the two (every Python thread
waits for it: the collector holds the GIL).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["GcMonitor", "GcStats"]


@dataclass(frozen=True)
class GcStats:
    """Collections per generation and pause figures (ms) over one monitored window."""

    seconds: float
    collections: tuple[int, int, int]
    pauses: int
    longest_ms: float
    p99_ms: float
    total_ms: float

    @property
    def per_second(self) -> float:
        return self.pauses / self.seconds if self.seconds > 0 else 0.0


class GcMonitor:
    """``with GcMonitor() as gcm: ...; gcm.stats()`` (or ``start()`` / ``stop()``)."""

    def __init__(self) -> None:
        self.pauses_ns: list[int] = []
        self.generations = [0, 0, 0]
        self._started = 0
        self._window = (0, 0)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        elif self._started:
            self.pauses_ns.append(time.perf_counter_ns() - self._started)
            self.generations[info["generation"]] += 1
            self._started = 0

    def start(self) -> GcMonitor:
        self._window = (time.perf_counter_ns(), 0)
        gc.callbacks.append(self._callback)
        return self

    def stop(self) -> GcStats:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
            self._window = (self._window[0], time.perf_counter_ns())
        return self.stats()

    def stats(self) -> GcStats:
        """The window so far (up to now while monitoring)."""
        end = self._window[1] or time.perf_counter_ns()
        pauses = np.asarray(self.pauses_ns, dtype=np.int64) / 1e6
        return GcStats((end - self._window[0]) / 1e9, tuple(self.generations), int(pauses.size),
                       float(pauses.max()) if pauses.size else 0.0,
                       float(np.percentile(pauses, 99)) if pauses.size else 0.0,
                       float(pauses.sum()))

    def __enter__(self) -> GcMonitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
