"""Kraken frames (WebSocket v1 and v2) to records: byte scanner for books, orjson for the rest.

:meth:`KrakenParser.parse_batch` joins a batch of frames into one byte buffer and runs
:func:`~meltica_nb.kernels.kraken_scan_kernels.scan_batch` over it: book snapshots and updates,
the hot messages, become DEPTH_UPDATE rows, BOOK_LEVEL levels and a checksum per row without a
Python object per level. Every other frame is parsed by the *reference* path here (orjson),
which handles books too, and yields exactly what the scanner would (a property test holds the
two to each other on every recorded message):

* ``book`` -> one DEPTH_UPDATE row (bids first, then asks, each side in array order;
  ``is_snapshot`` for ``as``/``bs`` or ``type: snapshot``; ``first_id = final_id = 0``,
  ``prev_final_id = -1``) and its checksum (-1 when the frame carries none, as v1 snapshots).
  v2 prices and quantities arrive as JSON numbers: the scanner reads their text; here orjson
  gives floats, whose shortest ``repr`` is the same decimal for the <= 15 significant digits
  Kraken sends.
* ``trade`` -> one TRADE per trade (side BUY for ``b``/``buy``). v2: ``trade_id`` is the
  (contiguous) sequence. v1 sends no id: the sequence is the trade time in ns, raised by 1 ns
  where trades share a time, so each instrument's v1 trades are strictly increasing
  (``seq_first = 0``: ordered as monotonic, never held for gaps);
* ``ticker`` -> TICKER (best bid/ask with their quantities, last price, 24 h volume, open);
* events and acks (``heartbeat``, ``systemStatus``/``status``, ``subscriptionStatus``,
  ``pong``, ``{"method": ...}`` replies) -> :attr:`FrameStatus.CONTROL`, no record.

Frames never raise: each gets a :class:`FrameStatus`, counted in :meth:`KrakenParser.stats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import orjson

from meltica_nb.errors import ConfigError, MelticaError, ProtocolError
from meltica_nb.fixedpoint import to_mantissa
from meltica_nb.kernels import binance_scan_kernels as bscan
from meltica_nb.kernels import kraken_scan_kernels as scan
from meltica_nb.schema import (
    BOOK_LEVEL,
    CANONICAL_EVENT,
    DEPTH_UPDATE,
    SCHEMA_VERSION,
    EventType,
    Kind,
    Side,
)
from meltica_nb.venues.frame_status import FrameCounts, FrameStatus, ParserCounts, status_counts
from meltica_nb.venues.kraken.symbols import KrakenSymbols
from meltica_nb.venues.records import concat_events
from meltica_nb.venues.scratch import grow

__all__ = ["FrameStatus", "KrakenParseResult", "KrakenParser", "ParserStats"]


_N_STATUS = len(FrameStatus)
_OK, _FALLBACK = int(FrameStatus.OK), int(FrameStatus.FALLBACK)  # plain ints: numpy is faster
_NO_EVENTS = np.zeros(0, CANONICAL_EVENT)  # read-only below: building a union dtype is slow
_NO_EVENTS.flags.writeable = False
_V1_EVENTS = frozenset({"heartbeat", "systemStatus", "subscriptionStatus", "pong"})
_V2_CONTROL_CHANNELS = frozenset({"heartbeat", "status"})


@dataclass(frozen=True, slots=True)
class KrakenParseResult(FrameCounts):
    """Records of one batch. From ``parse_batch``/``scan`` the arrays are views into the
    parser's buffers, valid until its next call. ``depth`` rows are in frame order."""

    events: np.ndarray      # CANONICAL_EVENT: trades and tickers
    depth: np.ndarray       # DEPTH_UPDATE: book messages; level_off indexes ``levels``
    levels: np.ndarray      # BOOK_LEVEL
    checksums: np.ndarray   # int64 per depth row, -1 = none
    status: np.ndarray      # int8 FrameStatus per frame
    counts: np.ndarray      # int64 per FrameStatus


@dataclass(frozen=True, slots=True)
class ParserStats(ParserCounts):
    """Counters of a parser since it was built (those of :class:`ParserCounts`, then these)."""

    scanned: int        # book frames the byte scanner parsed
    book_rows: int
    events: int


class _Parsed(NamedTuple):
    """One frame through the reference path."""

    status: FrameStatus
    events: Sequence = ()   # CANONICAL_EVENT one-record arrays
    rows: Sequence = ()     # (is_snapshot, bids, asks, checksum, exchange_ns, instrument, recv)


class KrakenParser:
    """Parse the frames of one Kraken connection (v1 or v2, told apart per frame).

    ``symbols`` resolves pair names and exponents; ``venue_id`` is stamped on every record.
    Not thread-safe: one parser per connection thread.
    """

    def __init__(self, symbols: KrakenSymbols, venue_id: int) -> None:
        if isinstance(venue_id, bool) or not isinstance(venue_id, int) or not (
                1 <= venue_id <= 0xFFFF):
            raise ConfigError(f"venue_id must be a registry venue id, got {venue_id!r}")
        self.symbols = symbols
        self.venue_id = venue_id
        self._st = np.zeros(scan.STATE_SIZE, np.int64)
        self._stack = np.zeros(bscan.MAX_DEPTH, np.uint8)
        self._totals = np.zeros(_N_STATUS, np.int64)
        self._count_buf = np.zeros(_N_STATUS, np.int64)  # the counts of an all-book batch
        self._last_trade: dict[int, int] = {}  # instrument -> sequence of its last v1 trade
        self._counts = {"scanned": 0, "fallback": 0, "rows": 0, "levels": 0, "events": 0}
        self._cap = self._lv_cap = 0
        self._grow(256, 4096)
        self._one_len = np.zeros(1, np.int64)   # a single frame's length and receive time
        self._one_recv = np.zeros(1, np.int64)

    def _grow(self, n: int, n_levels: int) -> None:
        frames = grow(self._cap, n, DEPTH_UPDATE, np.int64, np.int8, np.int64)
        if frames is not None:
            self._cap, arrays = frames
            self._depth, self._checksums, self._status, self._row = arrays
        levels = grow(self._lv_cap, n_levels, BOOK_LEVEL, (np.int64, scan.SPAN_FIELDS))
        if levels is not None:
            self._lv_cap, (self._levels, self._spans) = levels

    # -- batches ------------------------------------------------------------------------------

    def parse_batch(self, frames: Sequence[bytes], recv_ns: Sequence[int]) -> KrakenParseResult:
        """Parse websocket ``frames`` received at ``recv_ns`` (ns, one per frame)."""
        return self._parse(frames, recv_ns, fall_back=True)

    def scan(self, frames: Sequence[bytes], recv_ns: Sequence[int]) -> KrakenParseResult:
        """The byte scanner alone (tests, benchmarks): other frames stay FALLBACK."""
        return self._parse(frames, recv_ns, fall_back=False)

    def _parse(self, frames, recv_ns, fall_back: bool) -> KrakenParseResult:
        if not isinstance(frames, list):
            frames = list(frames)
        n = len(frames)
        buf, lengths, recv = self._lay_out(frames, recv_ns)
        if n > self._cap or buf.shape[0] // 8 + 16 > self._lv_cap:
            self._grow(n, buf.shape[0] // 8 + 16)
        t = self.symbols.table()
        nd, nl = scan.scan_batch(
            self._depth, self._levels, self._checksums, self._status, self._row, buf, lengths,
            recv, self.venue_id, t.slots, t.sym_bytes, t.sym_len, t.sym_inst, t.price_exp,
            t.qty_exp, self._spans, self._st, self._stack)
        status = self._status[:n]
        depth, levels, checksums = self._depth[:nd], self._levels[:nl], self._checksums[:nd]
        self._counts["scanned"] += nd
        if nd == n:  # every frame a book message: the common case, no status scan needed
            counts = self._count_buf
            counts[_OK] = n
            if fall_back:
                self._totals[_OK] += n
                self._add(0, nd, nl, 0)
            return KrakenParseResult(_NO_EVENTS, depth, levels, checksums, status, counts)
        events = _NO_EVENTS
        fallback = np.flatnonzero(status == _FALLBACK)
        if fall_back:
            events, depth, levels, checksums = self._fall_back(
                fallback, frames, recv, (depth, levels, checksums, self._row[:n]))
        counts = np.bincount(status, minlength=_N_STATUS).astype(np.int64)
        if fall_back:
            self._totals += counts
            self._add(fallback.shape[0], depth.shape[0], levels.shape[0], events.shape[0])
        return KrakenParseResult(events, depth, levels, checksums, status, counts)

    def _lay_out(self, frames: list, recv_ns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The frames end to end as the scanner reads them: (bytes, each frame's length, its
        receive time). One frame, a quiet feed's batch, fills two kept one-element arrays."""
        n = len(frames)
        if n == 1 and isinstance(recv_ns, list | tuple) and len(recv_ns) == 1:
            self._one_len[0] = len(frames[0])
            self._one_recv[0] = recv_ns[0]
            return np.frombuffer(frames[0], np.uint8), self._one_len, self._one_recv
        recv = np.asarray(recv_ns, np.int64)
        if recv.shape != (n,):
            raise ConfigError(f"recv_ns must hold one time per frame: {recv.shape} for {n}")
        buf = np.frombuffer(b"".join(frames), np.uint8)  # any bytes-like frame joins as is
        return buf, np.fromiter(map(len, frames), np.int64, n), recv

    def _add(self, fallback: int, rows: int, levels: int, events: int) -> None:
        c = self._counts
        c["fallback"] += fallback
        c["rows"] += rows
        c["levels"] += levels
        c["events"] += events

    def _fall_back(self, fallback, frames, recv, scanned):
        """Parse ``fallback`` frames with orjson; merge their book rows in frame order."""
        events, rows, row_frames = [], [], []
        for f in fallback.tolist():
            parsed = self.reference(frames[f], int(recv[f]))
            self._status[f] = parsed.status
            events.extend(parsed.events)
            rows.extend(parsed.rows)
            row_frames.extend([f] * len(parsed.rows))
        out_events = concat_events(events) if events else _NO_EVENTS
        if not rows:
            return (out_events, *scanned[:3])
        return (out_events, *self._merge_rows(scanned, rows, row_frames))

    def _merge_rows(self, scanned, rows: list, row_frames: list):
        depth, levels, checksums, frame_rows = scanned
        extra_depth, extra_levels, extra_sums = _rows_to_arrays(rows, self.venue_id)
        extra_depth["level_off"] += levels.shape[0]
        extra_depth["ingest_ns"] = [r[6] for r in rows]
        scanned_frames = np.flatnonzero(frame_rows >= 0)
        order = np.argsort(np.concatenate([scanned_frames, row_frames]), kind="stable")
        all_depth = np.concatenate([depth, extra_depth])[order]
        all_sums = np.concatenate([checksums, extra_sums])[order]
        return all_depth, np.concatenate([levels, extra_levels]), all_sums

    # -- the reference path -------------------------------------------------------------------

    def reference(self, frame: bytes, recv_ns: int = 0) -> _Parsed:
        """Parse one frame with orjson (the reference the scanner is tested against)."""
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return _Parsed(FrameStatus.MALFORMED)
        try:
            if isinstance(msg, list):
                return self._v1(msg, recv_ns)
            if isinstance(msg, dict):
                return self._v2(msg, recv_ns)
        except MelticaError:  # a missing or wrong field, a decimal that does not fit
            return _Parsed(FrameStatus.BAD_VALUE)
        return _Parsed(FrameStatus.UNKNOWN)

    def _pair(self, name: Any):
        pair = self.symbols.get(name) if isinstance(name, str) else None
        if pair is None or "/" not in name:
            return None
        return self.symbols.registry.instrument(pair.instrument)

    def _v1(self, msg: list, recv_ns: int) -> _Parsed:
        if len(msg) < 4 or not isinstance(msg[-2], str) or not isinstance(msg[0], int):
            return _Parsed(FrameStatus.UNKNOWN)
        channel, info = msg[-2], self._pair(msg[-1])
        kind = "book" if channel.startswith("book-") else channel
        if kind not in ("book", "trade", "ticker"):
            return _Parsed(FrameStatus.UNKNOWN)
        if info is None:
            return _Parsed(FrameStatus.UNKNOWN_SYMBOL)
        payload = msg[1:-2]
        if kind == "book":
            return _Parsed(FrameStatus.OK, rows=[_v1_book(payload, info, recv_ns)])
        if len(payload) != 1:
            raise _bad()
        if kind == "trade":
            return _Parsed(FrameStatus.OK, events=[self._v1_trade(t, info, recv_ns)
                                                   for t in _list(payload[0])])
        return _Parsed(FrameStatus.OK, events=[self._v1_ticker(payload[0], info, recv_ns)])

    def _v2(self, msg: dict, recv_ns: int) -> _Parsed:
        if msg.get("event") in _V1_EVENTS or "method" in msg:
            return _Parsed(FrameStatus.CONTROL)
        channel = msg.get("channel")
        if channel in _V2_CONTROL_CHANNELS:
            return _Parsed(FrameStatus.CONTROL)
        if channel not in ("book", "trade", "ticker") or msg.get("type") not in (
                "snapshot", "update"):
            return _Parsed(FrameStatus.UNKNOWN)
        entries = _list(msg.get("data"))
        infos = [self._pair(_dict(e).get("symbol")) for e in entries]
        if not entries or any(i is None for i in infos):
            return _Parsed(FrameStatus.UNKNOWN_SYMBOL if entries else FrameStatus.BAD_VALUE)
        if channel == "book":
            snapshot = msg["type"] == "snapshot"
            return _Parsed(FrameStatus.OK, rows=[_v2_book(e, i, snapshot, recv_ns)
                                                 for e, i in zip(entries, infos, strict=True)])
        make = self._v2_trade if channel == "trade" else self._v2_ticker
        return _Parsed(FrameStatus.OK, events=[make(e, i, recv_ns)
                                               for e, i in zip(entries, infos, strict=True)])

    def _event(self, event_type: EventType, info, recv_ns: int, exchange_ns: int, seq: int):
        ev = np.zeros(1, CANONICAL_EVENT)
        ev["ingest_ns"], ev["exchange_ns"], ev["seq_provider"] = recv_ns, exchange_ns, seq
        ev["instrument"], ev["venue"] = info.id, self.venue_id
        ev["event_type"], ev["kind"] = event_type, Kind.MARKET_DATA
        ev["schema_version"] = SCHEMA_VERSION
        return ev

    def _v1_trade(self, t: Any, info, recv_ns: int):
        t = _list(t)
        if len(t) < 4 or t[3] not in ("b", "s"):
            raise _bad()
        exchange_ns = _text_ns(t[2])
        seq = max(exchange_ns, self._last_trade.get(info.id, 0) + 1)
        self._last_trade[info.id] = seq
        ev = self._event(EventType.TRADE, info, recv_ns, exchange_ns, seq)
        ev["price"], ev["quantity"] = _px(t[0], info), _qty(t[1], info)
        ev["side"] = Side.BUY if t[3] == "b" else Side.SELL
        return ev

    def _v2_trade(self, t: dict, info, recv_ns: int):
        if t.get("side") not in ("buy", "sell"):
            raise _bad()
        trade_id = _int(t.get("trade_id"))
        ev = self._event(EventType.TRADE, info, recv_ns, _iso_ns(t.get("timestamp")), trade_id)
        ev["price"], ev["quantity"] = _px(t.get("price"), info), _qty(t.get("qty"), info)
        ev["trade_id"], ev["seq_first"] = trade_id, trade_id
        ev["side"] = Side.BUY if t["side"] == "buy" else Side.SELL
        return ev

    def _v1_ticker(self, tk: Any, info, recv_ns: int):
        tk = _dict(tk)
        ev = self._event(EventType.TICKER, info, recv_ns, 0, 0)
        ev["bid_price"], ev["bid_qty"] = _px(_at(tk, "b", 0), info), _qty(_at(tk, "b", 2), info)
        ev["ask_price"], ev["ask_qty"] = _px(_at(tk, "a", 0), info), _qty(_at(tk, "a", 2), info)
        ev["last_price"], ev["volume"] = _px(_at(tk, "c", 0), info), _qty(_at(tk, "v", 1), info)
        ev["open_price"] = _px(_at(tk, "o", 1), info)
        return ev

    def _v2_ticker(self, tk: dict, info, recv_ns: int):
        ev = self._event(EventType.TICKER, info, recv_ns, 0, 0)
        ev["bid_price"], ev["bid_qty"] = _px(tk.get("bid"), info), _qty(tk.get("bid_qty"), info)
        ev["ask_price"], ev["ask_qty"] = _px(tk.get("ask"), info), _qty(tk.get("ask_qty"), info)
        last = _px(tk.get("last"), info)
        ev["last_price"], ev["volume"] = last, _qty(tk.get("volume"), info)
        ev["open_price"] = last - _px(tk.get("change"), info, signed=True)
        return ev

    # -- observability ------------------------------------------------------------------------

    def stats(self) -> ParserStats:
        t, c = self._totals, self._counts
        return ParserStats(scanned=c["scanned"], fallback=c["fallback"], book_rows=c["rows"],
                           levels=c["levels"], events=c["events"], **status_counts(t))


# -- reference helpers ---------------------------------------------------------------------------

def _bad() -> ProtocolError:
    """A field of a known Kraken message is missing or has the wrong shape (BAD_VALUE)."""
    return ProtocolError("a Kraken message field is missing or malformed")


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise _bad()
    return value


def _dict(value: Any) -> dict:
    if not isinstance(value, dict):
        raise _bad()
    return value


def _at(obj: dict, key: str, index: int) -> Any:
    value = _list(obj.get(key))
    if len(value) <= index:
        raise _bad()
    return value[index]


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad()
    return value


def _text(value: Any) -> str:
    """Decimal text of a v1 string or a v2 JSON number (shortest repr of the float)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad()
    return repr(value)


def _decimal(value: Any, exponent: int, signed: bool = False) -> int:
    mantissa = to_mantissa(_text(value), exponent)
    if mantissa < 0 and not signed:
        raise _bad()
    return mantissa


def _px(value: Any, info, signed: bool = False) -> int:
    return _decimal(value, info.price_exp, signed)


def _qty(value: Any, info) -> int:
    return _decimal(value, info.qty_exp)


def _text_ns(value: Any) -> int:
    if not isinstance(value, str):
        raise _bad()
    return to_mantissa(value, 9)


def _iso_ns(value: Any) -> int:
    if value is None:
        return 0
    if not isinstance(value, str) or not value.endswith("Z") or "T" not in value:
        raise _bad()
    try:
        day, _, clock = value[:-1].partition("T")
        whole, _, frac = clock.partition(".")
        if len(frac) > 9 or (frac and not frac.isdigit()):
            raise _bad()
        base = datetime.fromisoformat(f"{day}T{whole}+00:00")
    except ValueError:
        raise ProtocolError(f"not an ISO 8601 UTC time: {value!r}") from None
    return int(base.timestamp()) * 1_000_000_000 + int(frac.ljust(9, "0") or 0)


def _levels(entries: Any, info, v2: bool) -> list[tuple[int, int]]:
    out = []
    for entry in _list(entries):
        if v2:
            e = _dict(entry)
            if set(e) != {"price", "qty"}:
                raise _bad()
            price, qty = e["price"], e["qty"]
        else:
            e = _list(entry)
            if len(e) not in (3, 4) or (len(e) == 4 and e[3] != "r"):
                raise _bad()
            price, qty = e[0], e[1]
        px = _px(price, info)
        if px <= 0:
            raise _bad()
        out.append((px, _qty(qty, info)))
    return out


def _v1_book(payload: list, info, recv_ns: int) -> tuple:
    """(is_snapshot, bids, asks, checksum, exchange_ns, instrument, recv_ns) of a v1 book."""
    bids, asks, checksum, newest, snapshot, update = [], [], -1, 0, False, False
    for obj in payload:
        for key, value in _dict(obj).items():
            if key in ("as", "bs", "a", "b"):
                snapshot, update = snapshot or len(key) == 2, update or len(key) == 1
                (asks if key[0] == "a" else bids).extend(_levels(value, info, False))
                newest = max([newest, *(_text_ns(_list(e)[2]) for e in value)])
            elif key == "c" and isinstance(value, str) and value.isdigit() and len(value) <= 10:
                checksum = int(value)
            else:
                raise _bad()
    if snapshot == update or checksum > 0xFFFFFFFF:
        raise _bad()
    return snapshot, bids, asks, checksum, newest, info.id, recv_ns


def _v2_book(entry: dict, info, snapshot: bool, recv_ns: int) -> tuple:
    checksum = entry.get("checksum", -1)
    if checksum != -1 and (_int(checksum) < 0 or checksum > 0xFFFFFFFF):
        raise _bad()
    bids = _levels(entry.get("bids", []), info, True)
    asks = _levels(entry.get("asks", []), info, True)
    return snapshot, bids, asks, checksum, _iso_ns(entry.get("timestamp")), info.id, recv_ns


def _rows_to_arrays(rows: list, venue: int):
    """Reference rows -> (DEPTH_UPDATE rows, BOOK_LEVEL levels, checksums)."""
    depth = np.zeros(len(rows), DEPTH_UPDATE)
    pairs = [lv for r in rows for lv in (*r[1], *r[2])]
    levels = np.zeros(len(pairs), BOOK_LEVEL)
    if pairs:
        levels["price"], levels["quantity"] = zip(*pairs, strict=True)
    sizes = np.array([len(r[1]) + len(r[2]) for r in rows], np.int64)
    depth["level_off"] = np.cumsum(sizes) - sizes
    depth["n_bids"] = [len(r[1]) for r in rows]
    depth["n_asks"] = [len(r[2]) for r in rows]
    depth["is_snapshot"] = [r[0] for r in rows]
    depth["exchange_ns"] = [r[4] for r in rows]
    depth["instrument"] = [r[5] for r in rows]
    depth["venue"] = venue
    depth["prev_final_id"] = -1
    return depth, levels, np.array([r[3] for r in rows], np.int64)
