"""RingBank: rings of different sizes stacked in one set of arrays, surviving regrowth."""

import numpy as np

from meltica_nb.ring import MarketDataRing
from meltica_nb.ring_bank import RingBank, table_size
from meltica_nb.schema import CANONICAL_EVENT, EventType


def trades(seqs):
    out = np.zeros(len(seqs), CANONICAL_EVENT)
    out["event_type"] = EventType.TRADE
    out["venue"] = 1
    out["instrument"] = 2
    out["seq_provider"] = seqs
    return out


def test_rows_follow_the_order_rings_join_and_views_are_rows_of_the_bank():
    bank = RingBank()
    small, big = MarketDataRing(4, bank=bank), MarketDataRing(16, bank=bank)
    assert (small.row, big.row, len(bank)) == (0, 1, 2)
    assert bank.capacities.tolist() == [4, 16]
    assert bank.records.shape[1] == 16 and bank.records.shape[0] >= 2
    assert small.records.shape == (4,) and big.records.shape == (16,)
    assert np.shares_memory(small.records, bank.records)
    assert small.stream_keys.shape == (table_size(4),)
    assert big.stream_keys.shape == (table_size(16),)


def test_a_wider_ring_joining_keeps_every_earlier_rings_contents_and_counters():
    bank = RingBank()
    first = MarketDataRing(4, bank=bank)
    first.publish(trades([1, 2, 3]))
    first.drain(1)
    before = first.stats()
    MarketDataRing(64, bank=bank)  # regrows every array of the bank
    assert bank.records.shape[1] == 64
    assert first.stats() == before
    assert first.drain()["seq_provider"].tolist() == [2, 3]
    first.publish(trades([4, 5, 6, 7, 8]))  # wraps its own 4 slots, not the row's 64
    assert first.drain()["seq_provider"].tolist() == [5, 6, 7, 8]
    assert first.stats().dropped == 1


def test_table_size_is_twice_the_capacity_and_at_least_eight():
    assert [table_size(c) for c in (1, 2, 4, 8, 1024)] == [8, 8, 8, 16, 2048]


def test_a_non_coalescing_ring_in_the_bank_keeps_every_update_of_a_stream():
    bank = RingBank()
    latest, every = MarketDataRing(8, bank=bank), MarketDataRing(8, bank=bank, coalesce=False)
    quotes = trades([1, 2, 3])
    quotes["event_type"] = EventType.BBO
    latest.publish(quotes)
    every.publish(quotes)
    assert latest.drain()["seq_provider"].tolist() == [3]
    assert every.drain()["seq_provider"].tolist() == [1, 2, 3]
    assert bank.coalescing.tolist() == [1, 0]
