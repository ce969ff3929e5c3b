"""Venue-neutral record helpers of the parsers: one market-data event, joining event arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from meltica_nb.schema import CANONICAL_EVENT, SCHEMA_VERSION, EventType, Kind

__all__ = ["concat_events", "market_event"]


def market_event(venue: int, recv_ns: int, event_type: EventType, exchange_ns: int, seq: int,
                 instrument: int, **payload: int) -> np.ndarray:
    """One market-data CANONICAL_EVENT (an array of length 1) with ``payload`` fields set.

    ``trace_id`` and ``routing_version`` stay 0 for the ingest stage and the orchestrator.
    """
    rec = np.zeros(1, CANONICAL_EVENT)
    rec["ingest_ns"] = recv_ns
    rec["exchange_ns"] = exchange_ns
    rec["seq_provider"] = seq
    rec["instrument"] = instrument
    rec["venue"] = venue
    rec["event_type"] = event_type
    rec["kind"] = Kind.MARKET_DATA
    rec["schema_version"] = SCHEMA_VERSION
    for name, value in payload.items():
        rec[name] = value
    return rec


def concat_events(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate CANONICAL_EVENT arrays, keeping the layout.

    ``np.concatenate`` promotes the union dtype to a packed 352-byte struct with one slot per
    field name; joining the raw bytes keeps the 128-byte record.
    """
    raw = [np.ascontiguousarray(a).view(np.uint8).reshape(-1) for a in arrays]
    return np.concatenate([np.zeros(0, np.uint8), *raw]).view(CANONICAL_EVENT)
