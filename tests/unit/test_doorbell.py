"""Doorbell: rings are never lost, many rings wake once, a finished thread's bell is closed."""

import gc
import os
import time

import pytest

from meltica_nb.concurrency import TaskGroup
from meltica_nb.doorbell import Doorbell
from meltica_nb.wait_strategy import _thread_bell


def test_a_ring_before_the_wait_is_answered_at_once():
    bell = Doorbell()
    bell.ring()
    assert bell.wait(0.0)
    bell.close()


def test_no_ring_times_out():
    bell = Doorbell()
    start = time.monotonic()
    assert not bell.wait(0.02)
    assert time.monotonic() - start >= 0.015
    bell.close()


def test_many_rings_wake_one_wait_and_clear_answers_the_rest():
    bell = Doorbell()
    for _ in range(10_000):  # more than a pipe holds: the extra rings are already pending
        bell.ring()
    assert bell.wait(0.0)
    assert not bell.wait(0.0)
    bell.ring()
    bell.clear()
    assert not bell.wait(0.0)
    bell.close()


def test_a_ring_from_another_thread_wakes_the_waiter(no_thread_leak):
    bell, woke = Doorbell(), []

    def waiter(cancel):
        woke.append(bell.wait(5.0))

    with TaskGroup("bell") as tg:
        tg.start(waiter)
        time.sleep(0.02)
        bell.ring()
    assert woke == [True]
    bell.close()


def test_close_releases_both_descriptors():
    bell = Doorbell()
    fds = (bell._read, bell._write)
    bell.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)
    bell.close()  # twice is harmless


def test_a_finished_threads_bell_is_closed(no_thread_leak):
    seen = []

    def body(cancel):
        bell = _thread_bell()
        seen.append((bell._read, bell._write))

    with TaskGroup("bell-owner") as tg:
        tg.start(body)
    gc.collect()
    for fd in seen[0]:
        with pytest.raises(OSError):
            os.fstat(fd)
