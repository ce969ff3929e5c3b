"""The frame status the venue parsers share, its counts, and the growth of their scratch arrays."""

import numpy as np
import pytest

from meltica_nb.kernels import binance_scan_kernels, kraken_scan_kernels, okx_scan_kernels
from meltica_nb.schema import BOOK_LEVEL
from meltica_nb.venues.binance import parsing as binance_parsing
from meltica_nb.venues.frame_status import FrameCounts, FrameStatus, ParserCounts, status_counts
from meltica_nb.venues.kraken import parsing as kraken_parsing
from meltica_nb.venues.okx import parsing as okx_parsing
from meltica_nb.venues.scratch import grow


@pytest.mark.parametrize("kernels", [binance_scan_kernels, okx_scan_kernels, kraken_scan_kernels])
def test_the_scanners_write_the_shared_status_values(kernels):
    assert (kernels.OK, kernels.FALLBACK) == (FrameStatus.OK, FrameStatus.FALLBACK)


def test_the_binance_scanner_marks_malformed_frames_with_the_shared_value():
    assert binance_scan_kernels.MALFORMED == FrameStatus.MALFORMED


@pytest.mark.parametrize("module", [binance_parsing, okx_parsing, kraken_parsing])
def test_every_parser_reports_the_one_status_and_the_shared_counters(module):
    assert module.FrameStatus is FrameStatus
    assert issubclass(module.ParserStats, ParserCounts)
    results = [getattr(module, n) for n in dir(module) if n.endswith("ParseResult")]
    assert results and all(issubclass(r, FrameCounts) for r in results)


def test_frame_counts_read_status_and_counts():
    class Result(FrameCounts):
        __slots__ = ("counts", "status")

    result = Result()
    result.status = np.array([FrameStatus.OK, FrameStatus.UNKNOWN, FrameStatus.OK], np.int8)
    result.counts = np.bincount(result.status, minlength=len(FrameStatus))
    assert result.n_frames == 3
    assert (result.count(FrameStatus.OK), result.count(FrameStatus.MALFORMED)) == (2, 0)


def test_scratch_arrays_grow_only_and_at_least_double():
    assert grow(64, 64, np.int64) is None
    capacity, (levels, spans) = grow(64, 65, BOOK_LEVEL, (np.int64, 3))
    assert capacity == 128 and levels.dtype == BOOK_LEVEL and spans.shape == (128, 3)
    assert grow(64, 1000, np.int8)[0] == 1000
    assert not levels.tobytes().strip(b"\0")


def test_status_counts_are_the_parser_counters_by_status():
    totals = np.array([5, 0, 1, 2, 3, 4, 6], np.int64)  # per FrameStatus, OK first
    assert status_counts(totals) == {"frames": 21, "control": 2, "unknown": 3,
                                     "unknown_symbol": 4, "bad_value": 6, "malformed": 1}
