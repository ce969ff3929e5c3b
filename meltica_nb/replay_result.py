"""ReplayResult: what a replay produced, as numbers, decimal books and (optionally) tables.

Everything a backtest reads after :func:`meltica_nb.replay` returns: counters (lines, frames,
events per type, errors by kind), throughput, the digest that proves two runs identical, the
final book of every instrument (top levels as exact decimal strings), each consumer's stats
and state, and, with ``keep_events=True``, every event the feeds produced as columns
(:meth:`ReplayResult.columns`, pure NumPy) or as a pandas / Arrow table when those optional
packages are installed (``pip install meltica_nb[analysis]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from meltica_nb.errors import ConfigError
from meltica_nb.fixedpoint import from_mantissa
from meltica_nb.schema import CANONICAL_EVENT, EventType

__all__ = ["ConsumerOutput", "FinalBook", "InstrumentSummary", "ReplayResult"]

#: Event columns of :meth:`ReplayResult.columns`: the header, then each type's payload names
#: (a union: a column means what its name says only for the event types that use it).
COLUMNS = ("ingest_ns", "exchange_ns", "seq_provider", "trace_id", "venue", "instrument",
           "event_type", "flags", "side", "seq_first", "price", "quantity", "trade_id",
           "bid_price", "bid_qty", "ask_price", "ask_qty", "last_price", "volume",
           "kline_open", "kline_high", "kline_low", "kline_close", "n_bids", "n_asks")


class FinalBook(NamedTuple):
    """One instrument's book at the end of a replay, as its venue entry reports it."""

    bids: np.ndarray      # BOOK_LEVEL, best first
    asks: np.ndarray
    update_id: int        # the venue's last applied sequence
    applied: int          # diffs applied
    resyncs: int
    checksum_ok: int
    checksum_fail: int


@dataclass(frozen=True)
class InstrumentSummary:
    """A final book in decimal text: ``bids``/``asks`` are ``[price, quantity]`` strings."""

    venue: str
    symbol: str
    bids: list
    asks: list
    update_id: int
    applied: int
    resyncs: int
    checksum_ok: int
    checksum_fail: int

    @classmethod
    def of(cls, venue: str, info, book: FinalBook) -> InstrumentSummary:
        """Convert mantissas with the instrument's exponents (``info``: registry entry)."""
        def text(levels):
            return [[from_mantissa(int(p), info.price_exp), from_mantissa(int(q), info.qty_exp)]
                    for p, q in zip(levels["price"].tolist(), levels["quantity"].tolist(),
                                    strict=True)]
        return cls(venue, info.symbol, text(book.bids), text(book.asks), int(book.update_id),
                   int(book.applied), int(book.resyncs), int(book.checksum_ok),
                   int(book.checksum_fail))

    def to_dict(self) -> dict:
        return {"bids": self.bids, "asks": self.asks, "update_id": self.update_id,
                "applied": self.applied, "resyncs": self.resyncs,
                "checksum_ok": self.checksum_ok, "checksum_fail": self.checksum_fail}


@dataclass(frozen=True)
class ConsumerOutput:
    """One consumer after the replay: its counters and (njit) its state array."""

    name: str
    stats: object          # ConsumerStats
    state: np.ndarray | None

    def to_dict(self) -> dict:
        s = self.stats
        out = {"mode": s.mode, "delivered": s.delivered, "coalesced": s.coalesced,
               "dropped": s.dropped, "errors": s.errors, "batches": s.batches}
        if self.state is not None:
            out["state"] = self.state.tolist()
        return out


@dataclass(frozen=True)
class ReplayResult:
    """The outcome of one replay (see the module docstring)."""

    lines: int
    frames: int
    snapshots: int
    events: dict
    parse_errors: int
    errors_by_kind: dict
    errors: tuple
    elapsed_s: float
    digest: str
    instruments: dict
    consumers: dict
    unreturned_slots: int
    sources: tuple
    kept: np.ndarray | None = None
    names: dict = field(default_factory=dict)
    ordering: dict = field(default_factory=dict)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        return sum(self.events.values()) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict:
        """The one JSON object ``meltica backtest --json`` prints."""
        return {
            "sources": list(self.sources), "lines": self.lines, "frames": self.frames,
            "snapshots": self.snapshots, "events": dict(self.events),
            "parse_errors": self.parse_errors, "errors_by_kind": dict(self.errors_by_kind),
            "errors": list(self.errors), "elapsed_s": round(self.elapsed_s, 6),
            "frames_per_s": round(self.frames_per_s, 1),
            "events_per_s": round(self.events_per_s, 1), "digest": self.digest,
            "instruments": {k: v.to_dict() for k, v in self.instruments.items()},
            "consumers": {k: v.to_dict() for k, v in self.consumers.items()},
            "unreturned_slots": self.unreturned_slots, "ordering": dict(self.ordering),
        }

    # -- analysis ------------------------------------------------------------------------

    def columns(self) -> dict[str, np.ndarray]:
        """Every produced event as NumPy columns (needs ``keep_events=True``).

        Mantissa columns come with the ``price_exp`` / ``qty_exp`` of each row's instrument;
        ``venue_name``, ``symbol`` and ``event`` spell the ids.
        """
        if self.kept is None:
            raise ConfigError("replay(..., keep_events=True) keeps the events for analysis")
        ev = self.kept
        out = {name: np.ascontiguousarray(ev[name]) for name in COLUMNS}
        venues = np.array(self.names.get("venues", [""]), dtype=object)
        symbols = np.array(self.names.get("symbols", [""]), dtype=object)
        exps = np.asarray(self.names.get("exponents", np.zeros((1, 2), np.int64)))
        out["venue_name"] = venues[np.minimum(ev["venue"], len(venues) - 1)]
        out["symbol"] = symbols[np.minimum(ev["instrument"], len(symbols) - 1)]
        out["event"] = np.array([t.name.lower() for t in EventType],
                                dtype=object)[ev["event_type"]]
        inst = np.minimum(ev["instrument"], exps.shape[0] - 1)
        out["price_exp"], out["qty_exp"] = exps[inst, 0], exps[inst, 1]
        return out

    def to_pandas(self):
        """The events as a pandas DataFrame (optional dependency ``pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ConfigError("to_pandas needs pandas: pip install meltica_nb[analysis]") from None
        return pd.DataFrame(self.columns())

    def to_arrow(self):
        """The events as a pyarrow Table (optional dependency ``pyarrow``)."""
        try:
            import pyarrow as pa
        except ImportError:
            raise ConfigError("to_arrow needs pyarrow: pip install meltica_nb[analysis]") from None
        cols = self.columns()
        return pa.table({k: (v.tolist() if v.dtype == object else v) for k, v in cols.items()})


def empty_events() -> np.ndarray:
    """No events (the ``kept`` of a replay that kept some but saw none)."""
    return np.zeros(0, CANONICAL_EVENT)
