"""L2 book kernels and OrderBooks, checked against a plain dict book.

Runs both jitted and under NUMBA_DISABLE_JIT=1 (kernels as plain Python).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_nb.errors import ConfigError
from meltica_nb.kernels import book_kernels as bk
from meltica_nb.order_book import OrderBooks, OrderBooksStats
from meltica_nb.schema import BOOK_LEVEL


class RefSide:
    """The reference: a dict price -> quantity, cut to the best ``depth`` after each change."""

    def __init__(self, depth: int, descending: bool):
        self.depth = depth
        self.descending = descending
        self.levels: dict[int, int] = {}
        self.truncated = 0

    def ordered(self) -> list[tuple[int, int]]:
        return sorted(self.levels.items(), reverse=self.descending)

    def cut(self) -> None:
        keep = self.ordered()[: self.depth]
        self.truncated += len(self.levels) - len(keep)
        self.levels = dict(keep)

    def set(self, price: int, qty: int) -> None:
        if qty == 0:
            self.levels.pop(price, None)
        else:
            self.levels[price] = qty

    def apply_run(self, run) -> None:
        for price, qty in run:
            self.set(price, qty)
        self.cut()


def side_arrays(n_books: int, depth: int):
    return (np.zeros((n_books, depth), np.int64), np.zeros((n_books, depth), np.int64),
            np.zeros(n_books, np.int64))


def side_levels(px, qty, count, i) -> list[tuple[int, int]]:
    n = int(count[i])
    return list(zip(px[i, :n].tolist(), qty[i, :n].tolist(), strict=True))


def as_levels(run) -> np.ndarray:
    return np.array(run, np.int64).reshape(-1, 2)


prices = st.integers(1, 40)
quantities = st.sampled_from([0, 0, 1, 2, 3, 7])
runs = st.lists(st.tuples(prices, quantities), max_size=12)


@settings(max_examples=150, deadline=None)
@given(depth=st.integers(1, 10), descending=st.booleans(),
       sequence=st.lists(runs, min_size=1, max_size=12), sort_runs=st.booleans())
def test_apply_levels_matches_a_dict_book_including_truncation(depth, descending, sequence,
                                                              sort_runs):
    px, qty, count = side_arrays(3, depth)
    row = 1
    ref = RefSide(depth, descending)
    truncated = 0
    for run in sequence:
        if sort_runs:  # venue order: one level per price, best first
            run = sorted(dict(run).items(), reverse=descending)
        lv = as_levels([(0, 0)] + list(run))  # offset 1: the run need not start the arena
        truncated += bk.apply_levels(px, qty, count, row, descending, lv, 1, len(run))
        ref.apply_run(run)
        assert side_levels(px, qty, count, row) == ref.ordered()
        assert truncated == ref.truncated
    assert count[0] == count[2] == 0  # other books untouched


@settings(max_examples=100, deadline=None)
@given(depth=st.integers(1, 8), descending=st.booleans(),
       levels=st.lists(st.tuples(prices, quantities), max_size=40))
def test_set_level_one_at_a_time_matches_a_dict_book(depth, descending, levels):
    px, qty, count = side_arrays(2, depth)
    ref = RefSide(depth, descending)
    truncated = 0
    for price, q in levels:
        truncated += bk.set_level(px, qty, count, 0, descending, price, q)
        ref.set(price, q)
        ref.cut()
        assert side_levels(px, qty, count, 0) == ref.ordered()
    assert truncated == ref.truncated


def test_a_full_side_keeps_the_best_levels_and_counts_what_it_drops():
    px, qty, count = side_arrays(1, 3)
    assert bk.apply_levels(px, qty, count, 0, True, as_levels([(10, 1), (9, 1), (8, 1)]), 0,
                           3) == 0
    # better level: the worst (8) falls off; worse level (5): refused
    assert bk.apply_levels(px, qty, count, 0, True, as_levels([(11, 2)]), 0, 1) == 1
    assert bk.apply_levels(px, qty, count, 0, True, as_levels([(5, 2)]), 0, 1) == 1
    assert side_levels(px, qty, count, 0) == [(11, 2), (10, 1), (9, 1)]
    # one run that inserts above and deletes inside keeps what fits after the whole run
    assert bk.apply_levels(px, qty, count, 0, True, as_levels([(12, 1), (10, 0)]), 0, 2) == 0
    assert side_levels(px, qty, count, 0) == [(12, 1), (11, 2), (9, 1)]


def test_deleting_a_missing_level_is_a_no_op_and_a_repeated_price_keeps_its_last_quantity():
    px, qty, count = side_arrays(1, 5)
    assert bk.apply_levels(px, qty, count, 0, False, as_levels([(7, 0)]), 0, 1) == 0
    assert count[0] == 0
    bk.apply_levels(px, qty, count, 0, False, as_levels([(7, 1), (3, 2), (7, 5)]), 0, 3)
    assert side_levels(px, qty, count, 0) == [(3, 2), (7, 5)]
    bk.apply_levels(px, qty, count, 0, False, as_levels([(7, 0), (7, 4), (3, 0)]), 0, 3)
    assert side_levels(px, qty, count, 0) == [(7, 4)]


def make_book(n_books=2, depth=8):
    bid_px, bid_qty, bid_n = side_arrays(n_books, depth)
    ask_px, ask_qty, ask_n = side_arrays(n_books, depth)
    return bid_px, bid_qty, bid_n, ask_px, ask_qty, ask_n


def test_load_snapshot_replaces_the_book_and_apply_depth_reads_bids_then_asks():
    b = make_book()
    lv = as_levels([(99, 1), (100, 2), (101, 3), (103, 4), (102, 5)])  # unsorted is fine
    assert bk.load_snapshot(*b, 1, lv, 0, 2, 3) == 0
    assert side_levels(b[0], b[1], b[2], 1) == [(100, 2), (99, 1)]
    assert side_levels(b[3], b[4], b[5], 1) == [(101, 3), (102, 5), (103, 4)]
    diff = as_levels([(100, 0), (98, 6), (101, 0)])
    bk.apply_depth(*b, 1, diff, 0, 2, 1)
    assert side_levels(b[0], b[1], b[2], 1) == [(99, 1), (98, 6)]
    assert side_levels(b[3], b[4], b[5], 1) == [(102, 5), (103, 4)]
    bk.load_snapshot(*b, 1, as_levels([(50, 1)]), 0, 1, 0)
    assert side_levels(b[0], b[1], b[2], 1) == [(50, 1)]
    assert b[5][1] == 0


def test_top_k_best_and_is_crossed():
    b = make_book()
    bk.load_snapshot(*b, 0, as_levels([(10, 1), (9, 2), (8, 3), (11, 4), (12, 5)]), 0, 3, 2)
    out_b = np.zeros((2, 2), np.int64)
    out_a = np.zeros((4, 2), np.int64)
    assert bk.top_k(out_b, out_a, *b, 0) == (2, 2)
    assert out_b.tolist() == [[10, 1], [9, 2]]
    assert out_a[:2].tolist() == [[11, 4], [12, 5]]
    assert bk.best(*b, 0) == (10, 1, 11, 4)
    assert bk.best(*b, 1) == (0, 0, 0, 0)
    assert not bk.is_crossed(b[0], b[2], b[3], b[5], 0)
    bk.apply_depth(*b, 0, as_levels([(11, 1)]), 0, 1, 0)
    assert bk.is_crossed(b[0], b[2], b[3], b[5], 0)
    bk.clear_book(b[2], b[5], 0)
    assert bk.best(*b, 0) == (0, 0, 0, 0)
    assert not bk.is_crossed(b[0], b[2], b[3], b[5], 0)


def levels(pairs) -> np.ndarray:
    return np.array(pairs, BOOK_LEVEL)


def test_order_books_levels_are_copies_best_first():
    books = OrderBooks(4, depth=3)
    assert books.load(2, levels([(10, 1), (9, 1), (8, 1), (7, 1)]), levels([(11, 2)])) == 1
    bids, asks = books.levels(2)
    assert bids.dtype == asks.dtype == BOOK_LEVEL
    assert bids.tolist() == [(10, 1), (9, 1), (8, 1)]
    assert asks.tolist() == [(11, 2)]
    bids["quantity"] = 99  # a copy: the book does not change
    assert books.best(2) == (10, 1, 11, 2)
    books.update(2, levels([(10, 0)]), levels([(10, 5)]))
    assert books.best(2) == (9, 1, 10, 5)
    assert not books.is_crossed(2)
    books.update(2, levels([(10, 1)]), [])
    assert books.is_crossed(2)
    books.clear(2)
    assert books.levels(2)[0].size == 0
    assert books.best(2) == (0, 0, 0, 0)


def test_order_books_stats_and_errors():
    books = OrderBooks(3, depth=2)
    books.load(0, levels([(5, 1), (4, 1), (3, 1)]), levels([(6, 1)]))
    books.load(1, [], levels([(7, 1)]))
    assert books.stats() == OrderBooksStats(max_books=3, depth=2, books_in_use=2, levels=4,
                                            max_side_levels=2, truncated=1)
    with pytest.raises(ConfigError):
        OrderBooks(0)
    with pytest.raises(ConfigError):
        OrderBooks(2, depth=0)
    with pytest.raises(ConfigError, match="out of range"):
        books.levels(3)
    assert "max_books=3" in repr(books)
