"""A deliberate handicap on the engine's side of a benchmark, to prove the gates fire.

The gates (:mod:`bench.gates`) compare the engine with baselines measured in the same run. To
show that a gate fails when the engine gets slower or allocates more, the engine-side
callables of the benchmarks are wrapped by :func:`engine_path`; with no handicap set the
wrapper is the callable itself, so ordinary runs measure the engine untouched.

The handicap comes from the environment variable ``MELTICA_BENCH_HANDICAP`` (so it reaches
benchmark subprocesses too), e.g. ``slowdown=20`` (each engine call takes at least 20 times
as long: after returning it busy-waits 19 times the CPU time it took, so time the process
spent preempted by other jobs is not multiplied too) or ``allocs=64`` (each engine call
keeps 64 more Python objects alive for as long as the wrapped callable lives).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ENV", "Handicap", "current", "engine_path"]

ENV = "MELTICA_BENCH_HANDICAP"


@dataclass(frozen=True)
class Handicap:
    """How much to slow (``slowdown``, a factor >= 1) and bloat (``allocs`` per call)."""

    slowdown: float = 1.0
    allocs: int = 0

    def __post_init__(self) -> None:
        if self.slowdown < 1.0 or self.allocs < 0:
            raise ValueError(f"a handicap needs slowdown >= 1 and allocs >= 0, got {self}")

    @property
    def active(self) -> bool:
        return self.slowdown > 1.0 or self.allocs > 0

    @classmethod
    def parse(cls, text: str) -> Handicap:
        """``"slowdown=20,allocs=64"`` (either part optional; "" = no handicap)."""
        values: dict = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key not in ("slowdown", "allocs"):
                raise ValueError(f"{ENV}: expected slowdown=X and/or allocs=N, got {part!r}")
            values[key] = float(value) if key == "slowdown" else int(value)
        return cls(**values)

    def env(self) -> str:
        """The value of ``MELTICA_BENCH_HANDICAP`` that reproduces this handicap."""
        return f"slowdown={self.slowdown:g},allocs={self.allocs}"


def current() -> Handicap:
    """The handicap the environment asks for (none by default)."""
    return Handicap.parse(os.environ.get(ENV, ""))


def engine_path(fn: Callable) -> Callable:
    """``fn`` itself, or ``fn`` slowed and bloated by the current handicap."""
    handicap = current()
    if not handicap.active:
        return fn
    clock, cpu = time.perf_counter_ns, time.thread_time_ns
    extra, allocs = handicap.slowdown - 1.0, handicap.allocs
    kept: list = []

    def handicapped(*args, **kwargs):
        start = cpu()
        result = fn(*args, **kwargs)
        until = clock() + int((cpu() - start) * extra)
        while clock() < until:
            pass
        kept.extend(object() for _ in range(allocs))
        return result

    handicapped.kept = kept
    return handicapped
