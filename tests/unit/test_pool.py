"""Pool and Recycler: zero on acquire, timeouts, double release, poison, stale handles."""

import random
import threading
import time

import numpy as np
import pytest

import meltica_nb as mn
from meltica_nb.concurrency import TaskGroup
from meltica_nb.schema import DTYPES


def _fill_nonzero(records, slots):
    """Write a non-zero byte pattern over every field of the given records."""
    raw = records.view(np.uint8).reshape(records.shape[0], -1)
    raw[slots] = 0xA5


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_every_field_is_zero_after_acquire_even_when_the_slot_held_data(name):
    pool = mn.Pool(DTYPES[name], 4, name=name)
    slots = pool.acquire_many(4)
    _fill_nonzero(pool.records, slots)
    pool.release_many(slots)
    again = pool.acquire_many(4)
    assert sorted(again.tolist()) == sorted(slots.tolist())
    for field_name in DTYPES[name].names:  # iterate the dtype so a new field can't escape
        values = pool.records[field_name][again]
        assert not np.any(values.view(np.uint8)), (name, field_name)


def test_acquire_timeout_lands_just_after_the_timeout():
    pool = mn.Pool(DTYPES["CanonicalEvent"], 2, name="tiny")
    pool.acquire_many(2)
    start = time.monotonic()
    with pytest.raises(mn.PoolExhausted, match="pool tiny"):
        pool.acquire(timeout=0.1)
    waited = time.monotonic() - start
    assert 0.1 <= waited < 0.3
    assert pool.stats().timeouts == 1


def test_acquire_waits_for_a_release_from_another_thread(no_thread_leak):
    pool = mn.Pool(DTYPES["CanonicalEvent"], 1, name="one")
    held = pool.acquire()

    def release_later(cancel):
        time.sleep(0.05)
        pool.release(held)

    with TaskGroup("release") as tg:
        tg.start(release_later)
        assert pool.acquire(timeout=2.0) == held


def test_acquire_many_is_all_or_nothing():
    pool = mn.Pool(DTYPES["CanonicalEvent"], 4, name="p")
    pool.acquire_many(3)
    with pytest.raises(mn.PoolExhausted):
        pool.acquire_many(2, timeout=0.01)
    assert pool.in_use == 3


def test_bad_batch_sizes_are_config_errors():
    pool = mn.Pool(DTYPES["CanonicalEvent"], 4, name="p")
    with pytest.raises(mn.ConfigError):
        pool.acquire_many(5)
    with pytest.raises(mn.ConfigError):
        pool.acquire_many(0)
    with pytest.raises(mn.ConfigError):
        mn.Pool(DTYPES["CanonicalEvent"], 0)
    with pytest.raises(mn.ConfigError):
        mn.Pool(np.dtype([("a", "u1")]), 4)


def test_double_release_names_pool_and_slot():
    pool = mn.Pool(DTYPES["ExecReport"], 4, name="ExecReport")
    h = pool.acquire()
    pool.release(h)
    with pytest.raises(mn.DoubleRelease, match=f"pool ExecReport: slot {h} released twice"):
        pool.release(h)
    assert pool.stats().double_releases == 1


def test_bad_handle_in_a_batch_does_not_lose_the_good_ones():
    pool = mn.Pool(DTYPES["CanonicalEvent"], 4, name="p")
    a, b, c = pool.acquire_many(3)
    pool.release(b)
    with pytest.raises(mn.DoubleRelease, match=f"slot {b}"):
        pool.release_many([a, b, c])
    assert pool.in_use == 0
    with pytest.raises(mn.DoubleRelease, match="slot 99"):
        pool.release(99)


def test_same_slot_twice_in_one_batch_is_a_double_release():
    pool = mn.Pool(DTYPES["CanonicalEvent"], 4, name="p")
    h = pool.acquire()
    with pytest.raises(mn.DoubleRelease, match=f"slot {h}"):
        pool.release_many([h, h])
    assert pool.in_use == 0


def test_debug_mode_catches_a_write_after_release_and_says_where_it_was_released():
    pool = mn.Pool(DTYPES["CanonicalEvent"], 2, name="ev", debug=True)
    h = pool.acquire()
    pool.release(h)
    pool.records[h]["price"] = 42  # a consumer kept the handle
    with pytest.raises(mn.UseAfterRelease, match=rf"pool ev: slot {h} was written after"):
        pool.acquire()
    assert "last released at" in _message_of(pool, h)
    assert pool.stats().poison_violations == 1
    assert pool.acquire() == h  # the slot was re-poisoned and is usable again
    assert pool.records["price"][h] == 0


def _message_of(pool, slot):
    return pool.recycler.release_site(pool, slot)


def test_debug_double_release_reports_the_first_release_site():
    pool = mn.Pool(DTYPES["CanonicalEvent"], 2, name="ev", debug=True)
    h = pool.acquire()
    pool.release(h)
    with pytest.raises(mn.DoubleRelease, match="last released at"):
        pool.release(h)


def test_generation_catches_a_stale_handle():
    pool = mn.Pool(DTYPES["CanonicalEvent"], 1, name="ev")
    h = pool.acquire()
    gen = pool.generation_of(h)
    pool.check(h, gen)
    pool.release(h, generation=gen)
    h2 = pool.acquire()
    assert h2 == h
    with pytest.raises(mn.StaleHandle, match=f"slot {h}"):
        pool.check(h, gen)
    with pytest.raises(mn.StaleHandle, match=f"stale handle for slot {h}"):
        pool.release(h, generation=gen)
    pool.release_many([h2], generations=[pool.generation_of(h2)])
    assert pool.stats().stale_handles == 2


def test_stats_track_high_water_and_counts():
    pool = mn.Pool(DTYPES["CanonicalEvent"], 8, name="ev")
    hs = pool.acquire_many(5)
    pool.release_many(hs[:3])
    pool.acquire_many(2)
    stats = pool.stats()
    assert (stats.capacity, stats.in_use, stats.high_water) == (8, 4, 5)
    assert (stats.acquired, stats.released) == (7, 3)
    assert "in_use=4" in repr(pool)


def test_closed_pool_refuses_acquires():
    pool = mn.Pool(DTYPES["CanonicalEvent"], 2, name="ev")
    pool.close()
    with pytest.raises(mn.PoolClosed):
        pool.acquire()


def test_stress_eight_threads_never_share_a_slot_and_conserve_counts(no_thread_leak):
    """8 threads acquire and release random batches; ownership is checked on every slot."""
    capacity = 256
    pool = mn.Pool(DTYPES["CanonicalEvent"], capacity, name="stress")
    owner = np.full(capacity, -1, dtype=np.int64)
    owner_lock = threading.Lock()
    violations = []
    totals = [0] * 8
    deadline = time.monotonic() + 2.0

    def claim(worker, slots, expect, new):
        with owner_lock:
            for s in slots.tolist():
                if owner[s] != expect:
                    violations.append((worker, s, int(owner[s])))
                owner[s] = new

    def worker(cancel, index):
        rng = random.Random(index)
        while time.monotonic() < deadline and not cancel.cancelled:
            try:
                slots = pool.acquire_many(rng.randint(1, 48), timeout=0.05)
            except mn.PoolExhausted:
                continue
            claim(index, slots, -1, index)
            pool.records["seq_provider"][slots] = index  # write while owning
            if np.any(pool.records["seq_provider"][slots] != index):
                violations.append((index, "torn"))
            claim(index, slots, index, -1)
            pool.release_many(slots)
            totals[index] += len(slots)

    with TaskGroup("stress") as tg:
        for i in range(8):
            tg.start(worker, i, name=f"w{i}")
    stats = pool.stats()
    assert not violations
    assert pool.in_use == 0 and np.all(owner == -1)
    assert stats.acquired == stats.released == sum(totals) > 0
