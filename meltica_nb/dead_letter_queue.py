"""The dead-letter queue: what the engine could not deliver, kept for operators.

Trades dropped from an overloaded market-data ring, input that failed to parse, messages of an
unknown type, events too late for their ordering window, events no route wanted and events whose
handler raised all end up here instead of vanishing, so an operator can see *what* was lost and
*why*. Dead letters are never delivered to consumers (DESIGN.md, Observability).

Why bounded and drop-oldest: the DLQ fills fastest exactly when the engine is overloaded, and
then it must neither allocate nor block the dispatcher. The storage is preallocated (a
CanonicalEvent record array plus parallel ``reasons`` and ``consumers`` arrays used as a ring),
and when it is full the oldest dead letters make room for the newest, which are the ones an
operator investigating a live incident wants. Every eviction is counted, so the numbers still
add up: ``offered == evicted + drained + size``.

Frames that never became records (malformed JSON, unknown messages) are kept as text in a
separate, smaller bounded list: the error text plus the first :data:`RAW_EXCERPT_BYTES` bytes of
the raw input, enough to reproduce a parser bug without keeping whole frames.

All methods take one lock: producers (dispatcher, parsers) and the operator's reader run on
different threads, and a DLQ is off the hot path, so a lock costs nothing that matters.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from meltica_nb.errors import ConfigError
from meltica_nb.schema import CANONICAL_EVENT

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_TEXT_CAPACITY",
    "MAX_DETAIL_CHARS",
    "NO_CONSUMER",
    "RAW_EXCERPT_BYTES",
    "DeadLetterBatch",
    "DeadLetterQueue",
    "DeadLetterReason",
    "DeadLetterStats",
    "DeadLetterText",
]

#: Records kept by default.
DEFAULT_CAPACITY = 4096
#: Text details kept by default (each holds at most a few hundred bytes).
DEFAULT_TEXT_CAPACITY = 64
#: Bytes of raw input kept per text dead letter.
RAW_EXCERPT_BYTES = 200
#: Characters of error text kept per text dead letter (a traceback is not needed to triage).
MAX_DETAIL_CHARS = 1000
#: Consumer id of a dead letter that no particular consumer was meant to receive.
NO_CONSUMER = -1


class DeadLetterReason(IntEnum):
    """Why a dead letter could not be delivered (stored as uint8 beside each record)."""

    #: Dropped (oldest first) from a full market-data ring under overload.
    OVERFLOW_DROPPED = 1
    #: Input that could not be parsed into a valid record.
    MALFORMED = 2
    #: A well-formed venue message of a type the engine does not handle.
    UNKNOWN_MESSAGE = 3
    #: Arrived after its ordering / merge window had already been released.
    LATE = 4
    #: No route or consumer wanted it.
    UNROUTABLE = 5
    #: A consumer's handler raised while processing it.
    HANDLER_ERROR = 6


class DeadLetterBatch(NamedTuple):
    """Dead-letter records oldest first, with the reason and source consumer of each."""

    records: np.ndarray
    reasons: np.ndarray
    consumers: np.ndarray


@dataclass(frozen=True, slots=True)
class DeadLetterText:
    """A frame that never became a record: why, the error text and the raw bytes' start."""

    reason: DeadLetterReason
    detail: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class DeadLetterStats:
    """A consistent snapshot of the DLQ's counters.

    Records: ``offered == evicted + drained + size``. Texts: ``texts_offered ==
    texts_evicted + texts_drained + text_size``. ``by_reason`` counts every dead letter offered
    (records and texts together), so the operator sees e.g. all MALFORMED input in one number.
    """

    capacity: int
    size: int
    offered: int
    evicted: int
    drained: int
    by_reason: dict[DeadLetterReason, int]
    text_capacity: int
    text_size: int
    texts_offered: int
    texts_evicted: int
    texts_drained: int


def _check_capacity(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"DeadLetterQueue {what} must be an int >= 1, got {value!r}")
    return int(value)


def _check_reason(reason: int) -> DeadLetterReason:
    try:
        return DeadLetterReason(reason)
    except ValueError:
        raise ConfigError(f"unknown dead-letter reason {reason!r}") from None


def _check_consumer(consumer: int) -> int:
    if isinstance(consumer, bool) or not isinstance(consumer, int | np.integer) or consumer < -1:
        raise ConfigError(f"dead-letter consumer must be an id >= 0 or -1, got {consumer!r}")
    return int(consumer)


def _as_records(records: np.ndarray) -> np.ndarray:
    """Return ``records`` as a 1-d CANONICAL_EVENT array (a single record becomes length 1)."""
    if not isinstance(records, np.ndarray | np.void) or records.dtype != CANONICAL_EVENT:
        raise ConfigError("DeadLetterQueue.offer needs CANONICAL_EVENT records")
    arr = np.atleast_1d(records) if isinstance(records, np.ndarray) else np.array([records])
    if arr.ndim != 1:
        raise ConfigError(f"DeadLetterQueue.offer needs a 1-d array, got shape {arr.shape}")
    return arr


class DeadLetterQueue:
    """A bounded, drop-oldest, thread-safe store of undeliverable CanonicalEvent records."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY,
                 text_capacity: int = DEFAULT_TEXT_CAPACITY) -> None:
        self._capacity = _check_capacity(capacity, "capacity")
        self._text_capacity = _check_capacity(text_capacity, "text_capacity")
        self._records = np.zeros(self._capacity, CANONICAL_EVENT)
        self._reasons = np.zeros(self._capacity, np.uint8)
        self._consumers = np.full(self._capacity, NO_CONSUMER, np.int64)
        self._texts: deque[DeadLetterText] = deque(maxlen=self._text_capacity)
        self._lock = threading.Lock()
        self._head = 0  # next slot written
        self._size = 0
        self._offered = 0
        self._evicted = 0
        self._drained = 0
        self._texts_offered = 0
        self._texts_evicted = 0
        self._texts_drained = 0
        self._by_reason = dict.fromkeys(DeadLetterReason, 0)

    @property
    def capacity(self) -> int:
        """Most records held at once."""
        return self._capacity

    def __len__(self) -> int:
        return self._size

    def offer(self, records: np.ndarray, reason: int, consumer: int = NO_CONSUMER) -> int:
        """Copy a batch in, evicting the oldest records if it does not fit; return evictions.

        The records are copied, so the caller may reuse its buffer (a ring slot, a pool slot)
        at once. A batch larger than the capacity keeps only its newest ``capacity`` records;
        the rest count as evicted.
        """
        batch = _as_records(records)
        why = _check_reason(reason)
        consumer = _check_consumer(consumer)
        n = len(batch)
        with self._lock:
            self._offered += n
            self._by_reason[why] += n
            if n == 0:
                return 0
            kept = batch[-self._capacity:]
            k = len(kept)
            slots = (self._head + np.arange(k)) % self._capacity
            self._records[slots] = kept
            self._reasons[slots] = why
            self._consumers[slots] = consumer
            self._head = (self._head + k) % self._capacity
            evicted = max(0, self._size + n - self._capacity)
            self._size = min(self._capacity, self._size + k)
            self._evicted += evicted
            return evicted

    def offer_text(self, reason: int, detail: str,
                   raw: bytes | bytearray | memoryview = b"") -> bool:
        """Keep a frame that never became a record; return True if an older text was evicted.

        Only the first :data:`RAW_EXCERPT_BYTES` of ``raw`` and :data:`MAX_DETAIL_CHARS` of
        ``detail`` are kept: enough to reproduce the problem, bounded whatever the input.
        """
        why = _check_reason(reason)
        entry = DeadLetterText(why, str(detail)[:MAX_DETAIL_CHARS],
                               bytes(memoryview(raw)[:RAW_EXCERPT_BYTES]))
        with self._lock:
            evicted = len(self._texts) == self._text_capacity
            self._texts.append(entry)  # deque(maxlen) drops the oldest
            self._texts_offered += 1
            self._texts_evicted += evicted
            self._by_reason[why] += 1
            return evicted

    def _read(self, n: int) -> DeadLetterBatch:
        """Copy the oldest ``n`` held records (lock held by the caller)."""
        start = (self._head - self._size) % self._capacity
        slots = (start + np.arange(n)) % self._capacity
        return DeadLetterBatch(self._records[slots], self._reasons[slots],
                               self._consumers[slots])

    def peek(self, n: int | None = None) -> DeadLetterBatch:
        """Return copies of the oldest ``n`` (default all) records without removing them."""
        if n is not None and (isinstance(n, bool) or not isinstance(n, int | np.integer)
                              or n < 0):
            raise ConfigError(f"peek(n) needs an int >= 0 or None, got {n!r}")
        with self._lock:
            count = self._size if n is None else min(int(n), self._size)
            return self._read(count)

    def drain(self) -> DeadLetterBatch:
        """Remove and return every held record, oldest first."""
        with self._lock:
            batch = self._read(self._size)
            self._drained += self._size
            self._size = 0
            return batch

    def texts(self) -> list[DeadLetterText]:
        """Return the held text dead letters, oldest first, without removing them."""
        with self._lock:
            return list(self._texts)

    def drain_texts(self) -> list[DeadLetterText]:
        """Remove and return the held text dead letters, oldest first."""
        with self._lock:
            out = list(self._texts)
            self._texts.clear()
            self._texts_drained += len(out)
            return out

    def stats(self) -> DeadLetterStats:
        """Return a snapshot of every counter, taken under the lock so it is consistent."""
        with self._lock:
            return DeadLetterStats(
                capacity=self._capacity,
                size=self._size,
                offered=self._offered,
                evicted=self._evicted,
                drained=self._drained,
                by_reason=dict(self._by_reason),
                text_capacity=self._text_capacity,
                text_size=len(self._texts),
                texts_offered=self._texts_offered,
                texts_evicted=self._texts_evicted,
                texts_drained=self._texts_drained,
            )

    def __repr__(self) -> str:
        return f"DeadLetterQueue(capacity={self._capacity}, size={self._size})"
