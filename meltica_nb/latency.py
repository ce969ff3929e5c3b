"""Latency histograms: an int64 counts array that kernels update, with a small Python face.

Why a histogram and not a list of samples: the engine records a latency per event at millions
of events per second; a fixed array of :data:`N_BUCKETS` counters costs one increment per value,
never allocates, merges by addition and answers any percentile later. The bucket layout (see
:mod:`meltica_nb.kernels.histogram_kernels`) bounds the error of every reported percentile to
12.5 % of the true value, which is ample to tell 40 us from 400 us.

:class:`LatencyHistogram` wraps one counts array. The array is public (:attr:`counts`) so stage
kernels can record into it directly; a histogram may also wrap an existing array (for example a
row of a stats matrix) instead of allocating one.

Threading: one writer per histogram. Jitted kernel calls hold the GIL, so a reader (``stats()``
on another thread) sees whole batches; readers only ever see slightly stale counts, never
corrupt ones. Aggregate several writers by giving each its own histogram and :meth:`merge`.
"""

from __future__ import annotations

import numpy as np

from meltica_nb.errors import ConfigError
from meltica_nb.kernels import histogram_kernels as hk

__all__ = ["N_BUCKETS", "LatencyHistogram"]

#: Length of a histogram's counts array.
N_BUCKETS = hk.N_BUCKETS

_NS_PER_US = 1_000.0


def _check_q(q: float) -> float:
    q = float(q)
    if not 0.0 <= q <= 1.0:  # also rejects NaN
        raise ConfigError(f"quantile must be in [0, 1], got {q}")
    return q


class LatencyHistogram:
    """Log-linear latency histogram over nanosecond values; percentiles within 12.5 %."""

    __slots__ = ("counts",)

    def __init__(self, counts: np.ndarray | None = None) -> None:
        if counts is None:
            counts = np.zeros(N_BUCKETS, np.int64)
        elif not (isinstance(counts, np.ndarray) and counts.dtype == np.int64
                  and counts.shape == (N_BUCKETS,)):
            raise ConfigError(f"histogram counts must be an int64 array of shape ({N_BUCKETS},)")
        #: The bucket counters: kernels may record into this array directly.
        self.counts: np.ndarray = counts

    def record(self, value_ns: int) -> None:
        """Count one latency of ``value_ns`` nanoseconds (negative counts as 0)."""
        hk.record_value(self.counts, np.int64(value_ns))

    def record_batch(self, start_ns: np.ndarray, now_ns: int) -> None:
        """Count ``now_ns - start`` for each start of a batch, e.g. ``events["ingest_ns"]``."""
        starts = np.asarray(start_ns)
        if starts.ndim != 1 or starts.dtype.kind not in "iu":
            raise ConfigError("record_batch needs a 1-d integer array of start times")
        if starts.dtype != np.int64:
            starts = starts.astype(np.int64)
        hk.record_latencies(self.counts, starts, np.int64(now_ns))

    @property
    def count(self) -> int:
        """How many latencies were recorded."""
        return int(hk.total_count(self.counts))

    def percentile(self, q: float) -> int:
        """Return the ``q``-quantile (q in [0, 1]) in ns: its bucket's upper bound; 0 if empty."""
        return int(hk.percentile(self.counts, _check_q(q)))

    def max(self) -> int:
        """Return the largest latency's bucket upper bound in ns (0 if empty)."""
        return int(hk.max_value(self.counts))

    def snapshot(self) -> dict[str, float | int]:
        """Return ``p50``, ``p99``, ``p999`` and ``max`` in microseconds, and ``count``.

        Microseconds as floats, the unit operators read latency in (``latency_us``). The
        counts are copied first so every number describes the same moment even while a writer
        keeps recording.
        """
        counts = self.counts.copy()
        return {
            "p50": float(hk.percentile(counts, 0.5)) / _NS_PER_US,
            "p99": float(hk.percentile(counts, 0.99)) / _NS_PER_US,
            "p999": float(hk.percentile(counts, 0.999)) / _NS_PER_US,
            "max": float(hk.max_value(counts)) / _NS_PER_US,
            "count": int(hk.total_count(counts)),
        }

    def reset(self) -> None:
        """Forget every recorded value (in place, so kernels holding the array keep working)."""
        self.counts[:] = 0

    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s counts into this histogram (``other`` is unchanged)."""
        if not isinstance(other, LatencyHistogram):
            raise ConfigError(f"can only merge a LatencyHistogram, got {type(other).__name__}")
        hk.merge(self.counts, other.counts)

    def __repr__(self) -> str:
        return f"LatencyHistogram(count={self.count})"
