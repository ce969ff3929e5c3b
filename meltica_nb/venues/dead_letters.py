"""What every venue feed does with bad input: a dead letter with an excerpt, and a count.

Frames the parser refused (by status: each feed names which statuses are dead letters, and why)
and connection errors that are the venue's bad input (oversized, binary or protocol-breaking
frames; the connection has already redacted any credential from the excerpt). The stream goes
on; the feed adds the returned counts to its stats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum

import numpy as np

from meltica_nb.dead_letter_queue import DeadLetterQueue, DeadLetterReason

__all__ = ["BAD_INPUT", "offer_bad_frames", "offer_connection_error"]

#: Connection error kinds that are bad input from the venue (dead letters, counted malformed).
BAD_INPUT = ("oversized", "binary", "protocol")
#: Bytes of a refused frame kept in its dead letter.
EXCERPT = 200


def offer_bad_frames(dlq: DeadLetterQueue, name: str, result, frames: Sequence[bytes],
                     reasons: Mapping[IntEnum, DeadLetterReason]) -> tuple[int, int]:
    """Dead-letter every frame of a parse ``result`` whose status is in ``reasons``.

    Returns (malformed, unknown): how many went to the DLQ as each reason. A batch without
    such a frame costs one look at the result's status counts.
    """
    if not sum(result.count(status) for status in reasons):
        return 0, 0
    kind = type(next(iter(reasons)))
    malformed = unknown = 0
    for f in np.flatnonzero(np.isin(result.status, list(reasons))).tolist():
        status = kind(int(result.status[f]))
        reason = reasons[status]
        malformed += reason == DeadLetterReason.MALFORMED
        unknown += reason == DeadLetterReason.UNKNOWN_MESSAGE
        dlq.offer_text(reason, f"{name}: {status.name} frame", raw=frames[f][:EXCERPT])
    return malformed, unknown


def offer_connection_error(dlq: DeadLetterQueue, name: str, kind: str, detail: str,
                           raw_prefix: bytes) -> bool:
    """Dead-letter a connection error that is bad input; True when it was one (count it)."""
    if kind not in BAD_INPUT:
        return False
    dlq.offer_text(DeadLetterReason.MALFORMED, f"{name}: {kind}: {detail}", raw=raw_prefix)
    return True
