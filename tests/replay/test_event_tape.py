"""EventTape's digest: what it covers, what it ignores, and that batching does not matter."""

from __future__ import annotations

import numpy as np
import pytest

from meltica_nb.book_table import BookTable
from meltica_nb.errors import ConfigError
from meltica_nb.event_tape import EventTape
from meltica_nb.schema import CANONICAL_EVENT, EventType, Flag


def events(n: int = 6) -> np.ndarray:
    ev = np.zeros(n, CANONICAL_EVENT)
    ev["event_type"] = EventType.TRADE
    ev["seq_provider"] = np.arange(1, n + 1)
    ev["price"] = 100 + np.arange(n)
    ev["ingest_ns"] = 1_000 + np.arange(n)
    return ev


def digest(*batches, table=None) -> str:
    tape = EventTape(table or BookTable(8, 2))
    for batch in batches:
        tape.record(batch.copy())
    return tape.digest()


def test_the_digest_ignores_batching_and_the_replayed_flag():
    ev = events()
    assert digest(ev) == digest(ev[:2], ev[2:5], ev[5:])
    flagged = ev.copy()
    flagged["flags"] |= np.uint8(Flag.REPLAYED)
    assert digest(flagged) == digest(ev)


def test_the_digest_sees_every_content_byte_and_the_order():
    ev = events()
    base = digest(ev)
    for field in ("price", "ingest_ns", "seq_provider"):
        changed = ev.copy()
        changed[field][3] += 1
        assert digest(changed) != base, field
    assert digest(ev[::-1]) != base


def test_book_events_count_by_their_levels_not_their_table_rows():
    a, b = BookTable(8, 2), BookTable(8, 2)
    b.write(np.zeros(0, "i8,i8"), np.zeros(0, "i8,i8"))  # b's rows are one further on
    ev = np.zeros(1, CANONICAL_EVENT)
    ev["event_type"] = EventType.BOOK_SNAPSHOT
    levels = np.array([(100, 1), (99, 2)], dtype=[("price", "i8"), ("quantity", "i8")])
    digests = []
    for table in (a, b):
        row, gen = table.write(levels, levels[:1])
        one = ev.copy()
        one["book_row"], one["book_slot"] = row, gen
        digests.append(digest(one, table=table))
    assert digests[0] == digests[1]
    other = BookTable(8, 2)
    row, gen = other.write(levels[:1], levels[:1])
    ev["book_row"], ev["book_slot"] = row, gen
    assert digest(ev, table=other) != digests[0]


def test_counts_and_kept_events():
    tape = EventTape(BookTable(8, 2), keep_events=True)
    tape.record(events(3))
    tape.record(events(2))
    assert tape.by_type() == {"trade": 5}
    kept = tape.kept()
    assert kept.shape[0] == 5 and (kept["flags"] & Flag.REPLAYED).all()
    assert EventTape(BookTable(8, 2)).kept() is None


def test_levels_handed_in_stand_for_the_table_and_must_match_the_books():
    """A canonical replay hands the tape the levels it restored: the same digest as reading
    them back from the table; a levels array that does not match the book events is refused."""
    table = BookTable(8, 2)
    levels = np.array([(100, 1), (99, 2)], dtype=[("price", "i8"), ("quantity", "i8")])
    row, gen = table.write(levels, levels[:1])
    ev = np.zeros(1, CANONICAL_EVENT)
    ev["event_type"] = EventType.BOOK_SNAPSHOT
    ev["book_row"], ev["book_slot"] = row, gen
    handed = np.zeros((1, 5, 2), np.int64)  # (n_bids, n_asks), 2 bids, 2 asks
    handed[0, 0] = (2, 1)
    handed[0, 1:3] = [(100, 1), (99, 2)]
    handed[0, 3] = (100, 1)
    tape = EventTape(table)
    tape.record(ev.copy(), handed)
    assert tape.digest() == digest(ev, table=table)
    with pytest.raises(ConfigError, match="2 levels rows for 1 book events"):
        EventTape(table).record(ev.copy(), np.zeros((2, 5, 2), np.int64))
