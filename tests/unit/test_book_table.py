"""BookTable: top-K rows round a ring; a handle goes stale exactly when its row is rewritten.

Runs both jitted and under NUMBA_DISABLE_JIT=1 (kernels as plain Python).
"""

import numpy as np
import pytest

from meltica_nb.book_table import BookTable, BookTableStats
from meltica_nb.errors import ConfigError, PoolError, StaleHandle
from meltica_nb.schema import BOOK_LEVEL, CANONICAL_EVENT


def levels(pairs) -> np.ndarray:
    return np.array(pairs, BOOK_LEVEL)


def test_write_then_read_returns_copies_of_the_levels():
    table = BookTable(rows=4, k=3)
    row, gen = table.write(levels([(10, 1), (9, 2)]), levels([(11, 3)]))
    assert (row, gen) == (0, 1)
    bids, asks = table.read(row, gen)
    assert bids.dtype == asks.dtype == BOOK_LEVEL
    assert bids.tolist() == [(10, 1), (9, 2)]
    assert asks.tolist() == [(11, 3)]
    bids["price"] = 0  # a copy
    assert table.read(row, gen)[0].tolist() == [(10, 1), (9, 2)]


def test_only_the_best_k_levels_per_side_are_kept():
    table = BookTable(rows=2, k=2)
    row, gen = table.write(levels([(10, 1), (9, 1), (8, 1)]), levels([]))
    bids, asks = table.read(row, gen)
    assert bids.tolist() == [(10, 1), (9, 1)]
    assert asks.size == 0


def test_rows_go_round_the_ring_with_unique_generations():
    table = BookTable(rows=3, k=1)
    handles = [table.write(levels([(p, 1)]), levels([(p + 1, 1)])) for p in range(7)]
    assert [h[0] for h in handles] == [0, 1, 2, 0, 1, 2, 0]
    assert [h[1] for h in handles] == [1, 2, 3, 4, 5, 6, 7]
    # the last `rows` writes are readable
    for p, (row, gen) in list(enumerate(handles))[-3:]:
        assert table.read(row, gen)[0].tolist() == [(p, 1)]
        assert table.is_current(row, gen)


def test_an_overwritten_row_raises_stale_handle():
    table = BookTable(rows=2, k=1)
    row, gen = table.write(levels([(1, 1)]), levels([]))
    table.write(levels([(2, 1)]), levels([]))
    assert table.read(row, gen)[0].tolist() == [(1, 1)]
    table.write(levels([(3, 1)]), levels([]))  # row 0 again
    assert not table.is_current(row, gen)
    with pytest.raises(StaleHandle, match="row 0: handle generation 1 was overwritten"):
        table.read(row, gen)
    assert issubclass(StaleHandle, PoolError)
    with pytest.raises(StaleHandle):
        table.read(5, 1)  # not a row at all
    with pytest.raises(StaleHandle):
        table.read(1, 0)  # never written at generation 0
    assert table.stats() == BookTableStats(rows=2, k=1, written=3, reads=4, stale_reads=3)


def test_read_event_uses_the_book_snapshot_handle():
    table = BookTable(rows=8, k=2)
    table.write(levels([(1, 1)]), levels([]))
    row, gen = table.write(levels([(5, 1)]), levels([(6, 2)]))
    event = np.zeros(1, CANONICAL_EVENT)[0]
    event["book_row"], event["book_slot"] = row, gen
    assert [x.tolist() for x in table.read_event(event)] == [[(5, 1)], [(6, 2)]]


def test_the_raw_int64_views_share_memory_with_the_level_arrays():
    table = BookTable(rows=2, k=2)
    (bids_raw, asks_raw), (nb, na, generation, head) = table.arrays
    assert bids_raw.shape == (2, 2, 2) and bids_raw.dtype == np.int64
    table.write(levels([(7, 3)]), levels([(8, 4)]))
    assert bids_raw[0, 0].tolist() == [7, 3] and asks_raw[0, 0].tolist() == [8, 4]
    assert (nb[0], na[0], generation[0], head[0]) == (1, 1, 1, 1)


def test_bad_sizes_are_refused():
    with pytest.raises(ConfigError):
        BookTable(rows=0)
    with pytest.raises(ConfigError):
        BookTable(k=0)
    assert "rows=4096, k=20" in repr(BookTable())
