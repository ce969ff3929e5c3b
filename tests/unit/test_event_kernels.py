"""join_events: two CANONICAL_EVENT batches copied whole into one buffer, in order."""

import numpy as np

from meltica_nb.kernels.event_kernels import join_events
from meltica_nb.schema import CANONICAL_EVENT, EventType
from meltica_nb.venues.records import concat_events


def _events(n: int, first_seq: int, event_type: EventType) -> np.ndarray:
    ev = np.zeros(n, CANONICAL_EVENT)
    ev["event_type"] = event_type
    ev["seq_provider"] = np.arange(first_seq, first_seq + n)
    ev["price"] = 100 + np.arange(n)
    return ev


def test_join_writes_both_batches_byte_for_byte_and_counts_them():
    trades, books = _events(5, 1, EventType.TRADE), _events(3, 10, EventType.BOOK_SNAPSHOT)
    out = np.zeros(10, CANONICAL_EVENT)
    out.view(np.uint8)[:] = 0xEE  # stale bytes must be overwritten, whole records
    n = join_events(out, trades, books)
    assert n == 8
    assert out[:n].tobytes() == concat_events((trades, books)).tobytes()
    assert (out.view(np.uint8).reshape(10, -1)[8:] == 0xEE).all()  # nothing written past n


def test_join_of_empty_batches():
    out = np.zeros(2, CANONICAL_EVENT)
    assert join_events(out, out[:0], _events(1, 7, EventType.BBO)) == 1
    assert out[0]["seq_provider"] == 7
    assert join_events(out, out[:0], out[:0]) == 0
