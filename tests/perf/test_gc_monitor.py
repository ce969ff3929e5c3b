"""GC pauses timed through gc.callbacks."""

import gc

from bench.gc_monitor import GcMonitor


def test_a_collection_inside_the_window_is_timed_and_counted():
    with GcMonitor() as gcm:
        gc.collect()
    stats = gcm.stats()
    assert stats.pauses >= 1 and stats.collections[2] >= 1
    assert 0 < stats.longest_ms <= stats.total_ms
    assert stats.per_second > 0
    assert gcm._callback not in gc.callbacks


def test_collections_after_stop_are_not_counted():
    gcm = GcMonitor().start()
    stats = gcm.stop()
    gc.collect()
    assert gcm.stats().pauses == stats.pauses
