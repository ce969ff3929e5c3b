"""Histogram kernels: log-linear (HDR-lite) latency histograms in plain int64 arrays.

Why log-linear: latencies span nanoseconds (a kernel call) to seconds (a stalled venue), and
what matters is *relative* precision at every scale. Each power of two ``[2**m, 2**(m+1))`` is a
major bucket split into :data:`SUB_BUCKETS` equal linear sub-buckets, so a bucket is never wider
than 1/8 of its lower bound: reporting a bucket's upper bound overstates the true value by less
than 12.5 %. Values below :data:`SUB_BUCKETS` get one exact bucket each.

Why arrays and free functions: counters live where kernels can update them (DESIGN.md,
Observability); a histogram is just ``counts = np.zeros(N_BUCKETS, np.int64)``, so a stage
kernel can record into it without a Python object, many histograms can be rows of one matrix,
and merging is an element-wise add.

The buckets cover every non-negative int64 (1 ns .. ~292 years), well past the 100 s that
matters, so no value is ever clamped except negatives (clock skew between a receive stamp and
``now``), which count as 0.

Index of a value ``v >= SUB_BUCKETS`` with ``m = floor(log2(v))``::

    index = (m - SUB_BITS + 1) * SUB_BUCKETS + ((v >> (m - SUB_BITS)) & (SUB_BUCKETS - 1))
"""

import numpy as np
from numba import njit

__all__ = [
    "MAX_MAJOR",
    "N_BUCKETS",
    "SUB_BITS",
    "SUB_BUCKETS",
    "bucket_index",
    "bucket_lower",
    "bucket_upper",
    "floor_log2",
    "max_value",
    "merge",
    "percentile",
    "record_latencies",
    "record_value",
    "total_count",
]

#: log2 of the linear sub-buckets per power of two.
SUB_BITS = 3
#: Linear sub-buckets per power of two: bucket width <= 1/8 of its lower bound.
SUB_BUCKETS = 1 << SUB_BITS
#: Largest power of two an int64 value can reach (2**62 <= v < 2**63).
MAX_MAJOR = 62
#: Length of a counts array: exact buckets 0..7, then 8 sub-buckets for each of 2**3..2**62.
N_BUCKETS = (MAX_MAJOR - SUB_BITS + 2) * SUB_BUCKETS


@njit(cache=True, _nrt=False)
def floor_log2(v):
    """Return floor(log2(v)) for v >= 1 by binary search on shifts (exact, unlike float log2)."""
    r = 0
    for shift in (32, 16, 8, 4, 2, 1):
        if v >> shift:
            v >>= shift
            r += shift
    return r


@njit(cache=True, _nrt=False)
def bucket_index(value):
    """Return the bucket of ``value`` ns; negative values (clock skew) count as 0."""
    if value < SUB_BUCKETS:
        return max(value, 0)
    m = floor_log2(value)
    return (m - SUB_BITS + 1) * SUB_BUCKETS + ((value >> (m - SUB_BITS)) & (SUB_BUCKETS - 1))


@njit(cache=True, _nrt=False)
def bucket_lower(index):
    """Return the smallest value that lands in bucket ``index``."""
    if index < SUB_BUCKETS:
        return np.int64(index)
    m = index // SUB_BUCKETS + SUB_BITS - 1
    sub = index % SUB_BUCKETS
    return np.int64(SUB_BUCKETS + sub) << (m - SUB_BITS)


@njit(cache=True, _nrt=False)
def bucket_upper(index):
    """Return the largest value that lands in bucket ``index`` (what percentiles report)."""
    if index < SUB_BUCKETS:
        return np.int64(index)
    m = index // SUB_BUCKETS + SUB_BITS - 1
    return bucket_lower(index) + ((np.int64(1) << (m - SUB_BITS)) - 1)  # no overflow at the top


@njit(cache=True, _nrt=False)
def record_value(counts, value_ns):
    """Count one latency of ``value_ns`` ns."""
    counts[bucket_index(value_ns)] += 1


@njit(cache=True, _nrt=False)
def record_latencies(counts, start_ns, now_ns):
    """Count ``now_ns - start_ns[i]`` for every element of a batch (one call per batch).

    ``start_ns`` is typically a field view such as ``events["ingest_ns"]``; a start later than
    ``now_ns`` (clocks of different threads) counts as 0 rather than corrupting the histogram.
    """
    for i in range(start_ns.shape[0]):
        counts[bucket_index(now_ns - start_ns[i])] += 1


@njit(cache=True, _nrt=False)
def total_count(counts):
    """Return how many values were recorded."""
    total = np.int64(0)
    for i in range(counts.shape[0]):
        total += counts[i]
    return total


@njit(cache=True, _nrt=False)
def percentile(counts, q):
    """Return the upper bound of the bucket holding the ``q``-quantile (q clamped to [0, 1]).

    The q-quantile is the ``ceil(q * count)``-th smallest value (at least the first), so
    ``q = 0`` reports the minimum's bucket and ``q = 1`` the maximum's. Returns 0 when empty.
    """
    total = total_count(counts)
    if total == 0:
        return np.int64(0)
    q = min(max(q, 0.0), 1.0)
    target = max(np.int64(1), np.int64(np.ceil(q * total)))
    seen = np.int64(0)
    for i in range(counts.shape[0]):
        seen += counts[i]
        if seen >= target:
            return bucket_upper(i)
    return bucket_upper(counts.shape[0] - 1)  # unreachable unless counts changed mid-call


@njit(cache=True, _nrt=False)
def max_value(counts):
    """Return the upper bound of the highest non-empty bucket (0 when empty)."""
    for i in range(counts.shape[0] - 1, -1, -1):
        if counts[i]:
            return bucket_upper(i)
    return np.int64(0)


@njit(cache=True, _nrt=False)
def merge(dst, src):
    """Add ``src``'s counts into ``dst`` (same bucket layout): combine per-thread histograms."""
    for i in range(dst.shape[0]):
        dst[i] += src[i]
