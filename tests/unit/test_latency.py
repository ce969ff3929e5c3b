"""Latency histograms: bucket layout, kernels and LatencyHistogram, error within 12.5 %."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_nb.errors import ConfigError
from meltica_nb.kernels import histogram_kernels as hk
from meltica_nb.latency import N_BUCKETS, LatencyHistogram
from meltica_nb.schema import CANONICAL_EVENT

MAX_REL_ERROR = 0.125
INT64_MAX = np.iinfo(np.int64).max
QUANTILES = [0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0]


def lognormal_ns(seed, n, mean_ns=50_000.0, sigma=1.5):
    """Latency-like data: a long right tail around ``mean_ns`` (median), as int64 ns."""
    rng = np.random.default_rng(seed)
    return np.maximum(rng.lognormal(np.log(mean_ns), sigma, n), 1.0).astype(np.int64)


def test_buckets_tile_every_int64_without_gaps():
    assert N_BUCKETS == hk.N_BUCKETS == 488
    assert hk.bucket_lower(0) == 0
    assert hk.bucket_upper(N_BUCKETS - 1) == INT64_MAX
    for i in range(N_BUCKETS):
        lo, hi = hk.bucket_lower(i), hk.bucket_upper(i)
        assert lo <= hi
        assert hk.bucket_index(lo) == i
        assert hk.bucket_index(hi) == i
        assert hi - lo <= lo / 8  # width <= 12.5 % of the bucket's smallest value
        if i + 1 < N_BUCKETS:
            assert hk.bucket_lower(i + 1) == hi + 1


def test_small_values_are_exact_and_1ns_to_100s_is_covered():
    for v in range(hk.SUB_BUCKETS):
        i = hk.bucket_index(v)
        assert hk.bucket_lower(i) == hk.bucket_upper(i) == v
    assert hk.bucket_index(100 * 10**9) < N_BUCKETS


def test_floor_log2_is_exact_at_powers_of_two():
    for k in range(63):
        assert hk.floor_log2(np.int64(1) << k) == k
        if k > 0:
            assert hk.floor_log2((np.int64(1) << k) - 1) == k - 1


@settings(max_examples=500, deadline=None)
@given(st.integers(0, INT64_MAX))
def test_any_value_lands_in_a_bucket_overstating_it_by_under_an_eighth(value):
    v = np.int64(value)
    i = hk.bucket_index(v)
    assert 0 <= i < N_BUCKETS
    assert hk.bucket_lower(i) <= value <= hk.bucket_upper(i)
    assert int(hk.bucket_upper(i)) - value <= value * MAX_REL_ERROR


def test_record_value_and_negative_clamp():
    counts = np.zeros(N_BUCKETS, np.int64)
    hk.record_value(counts, np.int64(1000))
    hk.record_value(counts, np.int64(-5))
    hk.record_value(counts, np.int64(0))
    assert counts[hk.bucket_index(1000)] == 1
    assert counts[0] == 2
    assert hk.total_count(counts) == 3


def test_record_latencies_counts_now_minus_start():
    counts = np.zeros(N_BUCKETS, np.int64)
    starts = np.array([900, 990, 1_000, 1_200], np.int64)
    hk.record_latencies(counts, starts, np.int64(1_000))
    assert counts[hk.bucket_index(100)] == 1
    assert counts[hk.bucket_index(10)] == 1
    assert counts[0] == 2  # exactly now, and a start after now (clamped)
    assert hk.total_count(counts) == 4


def test_percentile_kernel_empty_and_extremes():
    counts = np.zeros(N_BUCKETS, np.int64)
    assert hk.percentile(counts, 0.5) == 0
    assert hk.max_value(counts) == 0
    for v in (5, 100, 1_000_000):
        hk.record_value(counts, np.int64(v))
    assert hk.percentile(counts, 0.0) == 5
    assert hk.percentile(counts, 0.5) == hk.bucket_upper(hk.bucket_index(100))
    assert hk.percentile(counts, 1.0) == hk.max_value(counts)
    assert hk.max_value(counts) == hk.bucket_upper(hk.bucket_index(1_000_000))
    assert hk.percentile(counts, -1.0) == 5  # the kernel clamps q; the class rejects it
    assert hk.percentile(counts, 2.0) == hk.max_value(counts)


def test_merge_kernel_adds():
    a = np.arange(N_BUCKETS, dtype=np.int64)
    b = np.ones(N_BUCKETS, np.int64)
    hk.merge(a, b)
    assert (a == np.arange(N_BUCKETS) + 1).all()
    assert (b == 1).all()


def recorded(values):
    h = LatencyHistogram()
    h.record_batch(-values, 0)  # now - (-v) == v
    assert h.count == len(values)
    return h


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_percentiles_within_12_5_percent_of_numpy(seed, sigma):
    values = lognormal_ns(seed, 50_000, sigma=sigma)
    h = recorded(values)
    for q in QUANTILES:
        expected = np.percentile(values, q * 100)
        got = h.percentile(q)
        assert abs(got - expected) <= MAX_REL_ERROR * expected, (q, got, expected)


@pytest.mark.parametrize("seed", [4, 5])
@pytest.mark.parametrize("sigma", [1.5, 3.0, 5.0])
def test_percentiles_bound_numpy_inverted_cdf(seed, sigma):
    """Against the same quantile definition, the bound is one-sided and strict, even for
    heavy tails reaching single nanoseconds and hours (where numpy's linear interpolation
    between integer samples, not the histogram, would dominate the difference)."""
    values = lognormal_ns(seed, 50_000, sigma=sigma)
    h = recorded(values)
    for q in QUANTILES:
        exact = int(np.percentile(values, q * 100, method="inverted_cdf"))
        got = h.percentile(q)
        assert exact <= got <= exact + exact * MAX_REL_ERROR, (q, got, exact)


def test_a_batch_of_zero_latencies():
    h = LatencyHistogram()
    h.record_batch(np.full(5, 123, np.int64), 123)
    assert h.count == 5
    assert h.percentile(1.0) == 0


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(0, 10**12), min_size=1, max_size=200),
    q=st.floats(0.0, 1.0),
)
def test_percentile_bounds_the_exact_order_statistic(values, q):
    """Reported q-quantile is the ceil(q*n)-th smallest value, overstated by < 12.5 %."""
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    exact = sorted(values)[max(1, int(np.ceil(q * len(values)))) - 1]
    got = h.percentile(q)
    assert exact <= got <= exact + exact * MAX_REL_ERROR


def test_record_batch_reads_a_strided_field_view():
    events = np.zeros(4, CANONICAL_EVENT)
    events["ingest_ns"] = [1_000, 2_000, 3_000, 4_000]
    h = LatencyHistogram()
    h.record_batch(events["ingest_ns"], 5_000)
    h.record_batch(np.array([4_000], np.uint32), 5_000)
    h.record_batch([4_500], 5_000)
    assert h.count == 6
    assert h.percentile(0.0) == hk.bucket_upper(hk.bucket_index(500))
    assert h.percentile(1.0) == hk.bucket_upper(hk.bucket_index(4_000))


def test_snapshot_is_in_microseconds():
    h = LatencyHistogram()
    assert h.snapshot() == {"p50": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0, "count": 0}
    values = lognormal_ns(7, 10_000)
    for v in values:
        h.record(int(v))
    h.record(2_000_000_000)  # one 2 s outlier
    snap = h.snapshot()
    assert set(snap) == {"p50", "p99", "p999", "max", "count"}
    assert snap["count"] == 10_001
    assert all(isinstance(snap[k], float) for k in ("p50", "p99", "p999", "max"))
    assert type(snap["count"]) is int
    assert snap["p50"] == h.percentile(0.5) / 1_000
    median_us = np.percentile(np.append(values, 2_000_000_000), 50, method="inverted_cdf") / 1e3
    assert median_us <= snap["p50"] <= median_us * (1 + MAX_REL_ERROR)
    assert snap["p50"] <= snap["p99"] <= snap["p999"] <= snap["max"]
    assert snap["max"] == h.max() / 1_000
    assert 2_000_000.0 <= snap["max"] <= 2_000_000.0 * (1 + MAX_REL_ERROR)


def test_reset_is_in_place():
    h = LatencyHistogram()
    counts = h.counts
    h.record(10)
    h.reset()
    assert h.count == 0
    assert h.counts is counts
    assert repr(h) == "LatencyHistogram(count=0)"


def test_merge_equals_recording_everything_in_one():
    a_vals, b_vals = lognormal_ns(1, 5_000), lognormal_ns(2, 7_000, sigma=2.0)
    a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    a.record_batch(-a_vals, 0)
    b.record_batch(-b_vals, 0)
    both.record_batch(-np.concatenate([a_vals, b_vals]), 0)
    b_before = b.counts.copy()
    a.merge(b)
    assert (a.counts == both.counts).all()
    assert (b.counts == b_before).all()
    assert a.count == 12_000
    for q in QUANTILES:
        assert a.percentile(q) == both.percentile(q)


def test_wraps_an_existing_array_that_kernels_update():
    matrix = np.zeros((3, N_BUCKETS), np.int64)
    h = LatencyHistogram(matrix[1])
    hk.record_value(matrix[1], np.int64(42))
    assert h.count == 1
    h.record(7)
    assert matrix[1].sum() == 2
    assert matrix[0].sum() == matrix[2].sum() == 0


@pytest.mark.parametrize(
    "counts", [np.zeros(N_BUCKETS, np.int32), np.zeros(10, np.int64), [0] * N_BUCKETS]
)
def test_rejects_bad_counts(counts):
    with pytest.raises(ConfigError):
        LatencyHistogram(counts)


def test_rejects_bad_arguments():
    h = LatencyHistogram()
    for q in (-0.1, 1.1, float("nan")):
        with pytest.raises(ConfigError):
            h.percentile(q)
    with pytest.raises(ConfigError):
        h.record_batch(np.zeros((2, 2), np.int64), 0)
    with pytest.raises(ConfigError):
        h.record_batch(np.zeros(2, np.float64), 0)
    with pytest.raises(ConfigError):
        h.merge(np.zeros(N_BUCKETS, np.int64))
