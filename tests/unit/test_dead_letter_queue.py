"""DeadLetterQueue: bounded drop-oldest storage of undeliverable records, for operators."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_nb.dead_letter_queue import (
    MAX_DETAIL_CHARS,
    NO_CONSUMER,
    RAW_EXCERPT_BYTES,
    DeadLetterQueue,
    DeadLetterReason,
    DeadLetterStats,
)
from meltica_nb.errors import ConfigError
from meltica_nb.schema import CANONICAL_EVENT, EventType

R = DeadLetterReason


def events(seqs):
    """CanonicalEvent trades whose ``seq_provider`` identifies them."""
    out = np.zeros(len(seqs), CANONICAL_EVENT)
    out["seq_provider"] = seqs
    out["event_type"] = EventType.TRADE
    out["price"] = np.asarray(seqs, np.int64) * 10
    return out


def seqs(batch):
    return batch.records["seq_provider"].tolist()


def check_conservation(dlq):
    s = dlq.stats()
    assert s.offered == s.evicted + s.drained + s.size
    assert s.texts_offered == s.texts_evicted + s.texts_drained + s.text_size
    assert sum(s.by_reason.values()) == s.offered + s.texts_offered
    assert s.size == len(dlq) <= s.capacity


def test_empty_queue():
    dlq = DeadLetterQueue(4)
    assert len(dlq) == 0
    batch = dlq.peek()
    assert batch.records.dtype == CANONICAL_EVENT
    assert len(batch.records) == len(batch.reasons) == len(batch.consumers) == 0
    assert len(dlq.drain().records) == 0
    s = dlq.stats()
    assert isinstance(s, DeadLetterStats)
    assert (s.capacity, s.size, s.offered, s.evicted) == (4, 0, 0, 0)
    assert s.by_reason == dict.fromkeys(R, 0)
    assert repr(dlq) == "DeadLetterQueue(capacity=4, size=0)"


def test_order_reasons_and_consumers_are_kept_oldest_first():
    dlq = DeadLetterQueue(8)
    assert dlq.offer(events([1, 2]), R.OVERFLOW_DROPPED, consumer=3) == 0
    assert dlq.offer(events([3]), R.LATE) == 0
    assert dlq.offer(events([4, 5]), R.HANDLER_ERROR, consumer=np.int64(7)) == 0
    records, reasons, consumers = dlq.peek()
    assert records["seq_provider"].tolist() == [1, 2, 3, 4, 5]
    assert records["price"].tolist() == [10, 20, 30, 40, 50]
    assert reasons.dtype == np.uint8
    assert reasons.tolist() == [1, 1, 4, 6, 6]
    assert consumers.tolist() == [3, 3, NO_CONSUMER, 7, 7]
    assert len(dlq) == 5


def test_offer_copies_so_the_caller_may_reuse_its_buffer():
    dlq = DeadLetterQueue(4)
    buf = events([1, 2])
    dlq.offer(buf, R.MALFORMED)
    buf["seq_provider"] = 99
    assert seqs(dlq.peek()) == [1, 2]


def test_offer_keeps_every_byte_of_a_record():
    raw = np.random.default_rng(1).integers(0, 256, (3, CANONICAL_EVENT.itemsize), np.uint8)
    recs = raw.view(CANONICAL_EVENT).reshape(3)
    dlq = DeadLetterQueue(4)
    dlq.offer(recs, R.UNROUTABLE)
    out = dlq.drain().records
    assert out.view(np.uint8).reshape(3, -1).tobytes() == raw.tobytes()


def test_offer_accepts_a_single_record_and_strided_views():
    dlq = DeadLetterQueue(4)
    recs = events([1, 2, 3, 4])
    dlq.offer(recs[2], R.LATE)
    dlq.offer(recs[::2], R.LATE)
    assert seqs(dlq.peek()) == [3, 1, 3]


def test_peek_does_not_remove_and_returns_copies():
    dlq = DeadLetterQueue(4)
    dlq.offer(events([1, 2, 3]), R.LATE)
    first = dlq.peek(2)
    assert seqs(first) == [1, 2]
    first.records["seq_provider"] = -1
    first.reasons[:] = 0
    assert seqs(dlq.peek()) == [1, 2, 3]
    assert dlq.peek().reasons.tolist() == [4, 4, 4]
    assert seqs(dlq.peek(10)) == [1, 2, 3]
    assert seqs(dlq.peek(0)) == []
    assert len(dlq) == 3


def test_wrap_around_drops_the_oldest_and_counts_evictions():
    dlq = DeadLetterQueue(4)
    assert dlq.offer(events([1, 2, 3]), R.OVERFLOW_DROPPED, consumer=1) == 0
    assert dlq.offer(events([4, 5]), R.LATE, consumer=2) == 1
    assert seqs(dlq.peek()) == [2, 3, 4, 5]
    assert dlq.offer(events([6, 7, 8]), R.MALFORMED) == 3
    records, reasons, consumers = dlq.peek()
    assert records["seq_provider"].tolist() == [5, 6, 7, 8]
    assert reasons.tolist() == [R.LATE, R.MALFORMED, R.MALFORMED, R.MALFORMED]
    assert consumers.tolist() == [2, NO_CONSUMER, NO_CONSUMER, NO_CONSUMER]
    s = dlq.stats()
    assert (s.size, s.offered, s.evicted) == (4, 8, 4)
    assert s.by_reason[R.OVERFLOW_DROPPED] == 3
    assert s.by_reason[R.LATE] == 2
    assert s.by_reason[R.MALFORMED] == 3
    check_conservation(dlq)


def test_batch_larger_than_capacity_keeps_the_newest():
    dlq = DeadLetterQueue(4)
    dlq.offer(events([1, 2]), R.LATE)
    assert dlq.offer(events(list(range(10, 20))), R.OVERFLOW_DROPPED, consumer=5) == 8
    records, reasons, consumers = dlq.peek()
    assert records["seq_provider"].tolist() == [16, 17, 18, 19]
    assert reasons.tolist() == [R.OVERFLOW_DROPPED] * 4
    assert consumers.tolist() == [5] * 4
    s = dlq.stats()
    assert (s.size, s.offered, s.evicted) == (4, 12, 8)
    check_conservation(dlq)


def test_drain_empties_and_the_queue_is_reusable():
    dlq = DeadLetterQueue(3)
    dlq.offer(events([1, 2, 3, 4]), R.LATE)
    records, reasons, _ = dlq.drain()
    assert records["seq_provider"].tolist() == [2, 3, 4]
    assert reasons.tolist() == [R.LATE] * 3
    assert len(dlq) == 0
    assert len(dlq.drain().records) == 0
    dlq.offer(events([5, 6]), R.UNROUTABLE)
    assert seqs(dlq.drain()) == [5, 6]
    s = dlq.stats()
    assert (s.size, s.offered, s.evicted, s.drained) == (0, 6, 1, 5)
    check_conservation(dlq)


def test_empty_batch_is_counted_as_nothing():
    dlq = DeadLetterQueue(2)
    assert dlq.offer(events([]), R.LATE) == 0
    assert dlq.stats().offered == 0
    assert len(dlq) == 0


def test_texts_keep_a_bounded_excerpt():
    dlq = DeadLetterQueue(4, text_capacity=2)
    raw = b"{" + b"x" * 500
    assert dlq.offer_text(R.MALFORMED, "expected ':' at byte 7", raw) is False
    (entry,) = dlq.texts()
    assert entry.reason is R.MALFORMED
    assert entry.detail == "expected ':' at byte 7"
    assert entry.raw == raw[:RAW_EXCERPT_BYTES]
    assert len(entry.raw) == RAW_EXCERPT_BYTES
    dlq.offer_text(R.UNKNOWN_MESSAGE, "e" * 5000, bytearray(b"abc"))
    assert len(dlq.texts()[1].detail) == MAX_DETAIL_CHARS
    assert dlq.texts()[1].raw == b"abc"
    assert dlq.offer_text(R.MALFORMED, "third", memoryview(b"zz")) is True
    assert [t.detail for t in dlq.texts()] == ["e" * MAX_DETAIL_CHARS, "third"]
    assert len(dlq) == 0  # texts are not records
    s = dlq.stats()
    assert (s.text_capacity, s.text_size, s.texts_offered, s.texts_evicted) == (2, 2, 3, 1)
    assert s.by_reason[R.MALFORMED] == 2
    assert s.by_reason[R.UNKNOWN_MESSAGE] == 1
    check_conservation(dlq)


def test_drain_texts_empties():
    dlq = DeadLetterQueue()
    dlq.offer_text(R.MALFORMED, "bad")
    assert dlq.texts()[0].raw == b""
    assert [t.detail for t in dlq.drain_texts()] == ["bad"]
    assert dlq.texts() == []
    assert dlq.drain_texts() == []
    assert dlq.stats().texts_drained == 1
    check_conservation(dlq)


def test_stats_is_a_frozen_snapshot():
    dlq = DeadLetterQueue(2)
    s = dlq.stats()
    dlq.offer(events([1]), R.LATE)
    assert s.offered == 0
    assert s.by_reason[R.LATE] == 0
    with pytest.raises(AttributeError):
        s.size = 3


@pytest.mark.parametrize("capacity", [0, -1, 2.0, True, "8"])
def test_bad_capacity(capacity):
    with pytest.raises(ConfigError):
        DeadLetterQueue(capacity)
    with pytest.raises(ConfigError):
        DeadLetterQueue(4, text_capacity=capacity)


def test_bad_arguments():
    dlq = DeadLetterQueue(4)
    with pytest.raises(ConfigError):
        dlq.offer(np.zeros(2, np.int64), R.LATE)
    with pytest.raises(ConfigError):
        dlq.offer(events([1]).reshape(1, 1), R.LATE)
    with pytest.raises(ConfigError):
        dlq.offer([1, 2], R.LATE)
    with pytest.raises(ConfigError):
        dlq.offer(events([1]), 0)
    with pytest.raises(ConfigError):
        dlq.offer(events([1]), 7)
    with pytest.raises(ConfigError):
        dlq.offer(events([1]), R.LATE, consumer=-2)
    with pytest.raises(ConfigError):
        dlq.offer(events([1]), R.LATE, consumer=1.0)
    with pytest.raises(ConfigError):
        dlq.offer_text(99, "x")
    for n in (-1, 1.5, True):
        with pytest.raises(ConfigError):
            dlq.peek(n)
    assert dlq.stats().offered == 0


def test_reason_values_are_stable():
    assert {r.name: int(r) for r in R} == {
        "OVERFLOW_DROPPED": 1, "MALFORMED": 2, "UNKNOWN_MESSAGE": 3,
        "LATE": 4, "UNROUTABLE": 5, "HANDLER_ERROR": 6,
    }


def test_concurrent_producers_and_a_draining_reader(no_thread_leak):
    dlq = DeadLetterQueue(64)
    n_threads, per_thread = 4, 500
    drained = []

    def produce(t):
        for i in range(per_thread):
            dlq.offer(events([t * per_thread + i]), R.OVERFLOW_DROPPED, consumer=t)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    while any(th.is_alive() for th in threads):
        drained.extend(seqs(dlq.drain()))
    for th in threads:
        th.join()
    drained.extend(seqs(dlq.drain()))
    s = dlq.stats()
    assert s.offered == n_threads * per_thread
    assert s.drained == len(drained)
    assert len(set(drained)) == len(drained)
    for t in range(n_threads):  # each producer's survivors stay in its order
        mine = [x for x in drained if x // per_thread == t]
        assert mine == sorted(mine)
    check_conservation(dlq)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 8),
    ops=st.lists(st.one_of(st.integers(0, 12), st.just("drain"), st.just("peek")), max_size=30),
)
def test_matches_a_reference_model(capacity, ops):
    """Against a plain list: keep the newest ``capacity`` records, drop-oldest."""
    dlq = DeadLetterQueue(capacity)
    model, next_seq, evicted = [], 0, 0
    for op in ops:
        if op == "drain":
            assert seqs(dlq.drain()) == model
            model = []
        elif op == "peek":
            assert seqs(dlq.peek()) == model
        else:
            batch = list(range(next_seq, next_seq + op))
            next_seq += op
            model.extend(batch)
            lost = max(0, len(model) - capacity)
            model = model[lost:]
            evicted += lost
            assert dlq.offer(events(batch), R.OVERFLOW_DROPPED) == lost
        assert len(dlq) == len(model)
    assert seqs(dlq.peek()) == model
    assert dlq.stats().evicted == evicted
    check_conservation(dlq)
