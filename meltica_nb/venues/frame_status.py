"""What became of each frame a venue parser saw: the status, its counts, the parser's counters.

Every venue parser (:mod:`meltica_nb.venues.binance.parsing`, :mod:`~meltica_nb.venues.okx.
parsing`, :mod:`~meltica_nb.venues.kraken.parsing`) gives each frame one :class:`FrameStatus`
and never raises on bad input. Its batch result carries the per-frame ``status`` and the
``counts`` per status (:class:`FrameCounts` reads them), and its ``stats()`` record starts with
the counters every parser keeps (:class:`ParserCounts`, by status from :func:`status_counts`).
The values of ``OK``, ``FALLBACK`` and ``MALFORMED`` are the ones the byte-scanner kernels
write.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

__all__ = ["FrameCounts", "FrameStatus", "ParserCounts", "status_counts"]


class FrameStatus(IntEnum):
    """What became of one frame."""

    #: Parsed; its records are in the result.
    OK = 0
    #: The byte scanner handed the frame to the orjson path; only a parser's ``scan`` (the
    #: scanner alone) leaves it in a result.
    FALLBACK = 1
    #: Not JSON (truncated, broken structure, invalid UTF-8).
    MALFORMED = 2
    #: A control message (subscription ack or error, event, heartbeat, pong): no record.
    CONTROL = 3
    #: Valid JSON, but not a message or shape this parser knows.
    UNKNOWN = 4
    #: A known message for an instrument that is not registered.
    UNKNOWN_SYMBOL = 5
    #: A known message with a missing field, a wrong type, or a value that does not fit (a
    #: decimal with more places than the exponent, an int64 overflow).
    BAD_VALUE = 6


class FrameCounts:
    """The per-frame view every parse result shares: its ``status`` and ``counts`` arrays.

    A mixin of the venues' frozen result records, which declare the two fields:
    ``status`` (int8 :class:`FrameStatus` per frame) and ``counts`` (int64 per status).
    """

    __slots__ = ()
    status: np.ndarray
    counts: np.ndarray

    @property
    def n_frames(self) -> int:
        """Frames of the batch."""
        return int(self.status.shape[0])

    def count(self, status: FrameStatus) -> int:
        """Frames of the batch with ``status``."""
        return int(self.counts[status])


@dataclass(frozen=True, slots=True)
class ParserCounts:
    """Counters every parser keeps since it was built; a venue's stats record adds its own.

    Parameters
    ----------
    frames : frames parsed.
    fallback : frames parsed by orjson (the scanner handed them on).
    levels : book levels produced.
    control, unknown, unknown_symbol, bad_value, malformed : frames of that
        :class:`FrameStatus`.
    """

    frames: int
    fallback: int
    levels: int
    control: int
    unknown: int
    unknown_symbol: int
    bad_value: int
    malformed: int


def status_counts(totals: np.ndarray) -> dict[str, int]:
    """The :class:`ParserCounts` fields that count frames by status, from a parser's totals
    per :class:`FrameStatus` (an int64 array indexed by status)."""
    t = totals.tolist()
    return {"frames": sum(t), "control": t[FrameStatus.CONTROL],
            "unknown": t[FrameStatus.UNKNOWN], "unknown_symbol": t[FrameStatus.UNKNOWN_SYMBOL],
            "bad_value": t[FrameStatus.BAD_VALUE], "malformed": t[FrameStatus.MALFORMED]}
