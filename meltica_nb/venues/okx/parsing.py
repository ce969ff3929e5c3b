"""OKX v5 public frames to records: a byte scanner for book pushes, orjson for the rest.

:meth:`OkxParser.parse_batch` joins a batch of frames into one byte buffer and hands it to
:func:`~meltica_nb.kernels.okx_scan_kernels.scan_books`, which turns ``books`` and ``books5``
pushes into DEPTH_UPDATE rows, BOOK_LEVEL levels and the levels' text forms without a Python
object per level. Every other frame goes through the orjson path (:meth:`OkxParser.parse_reference`
is that path alone), which yields exactly the rows the scanner would have and also:

* ``trades`` -> TRADE per element of ``data``: ``seq_provider = seq_first = trade_id =
  tradeId``, ``side`` = the taker's side (BUY/SELL), :attr:`Flag.BUYER_MAKER` when the taker
  sold, ``exchange_ns = ts * 1e6``;
* ``bbo-tbt`` -> BBO (best level of each side), ``seq_provider`` = ``seqId`` (``ts`` when
  absent), ``seq_first = 0``;
* ``tickers`` -> TICKER (``last``, ``bidPx bidSz askPx askSz``, ``open24h``, ``vol24h`` as
  volume, ``volCcy24h`` as quote volume; empty texts read 0), ``seq_provider = ts``;
* ``{"event": ...}`` (subscribe acks, errors) and the text ``pong`` -> CONTROL, no record.

Book rows: ``first_id = final_id = seqId`` and ``prev_final_id = prevSeqId`` (-1 when absent,
as in recordings before 2023), ``is_snapshot`` for ``action: snapshot`` and every ``books5``
push; ``checksums[r]`` holds the row's checksum (0 when absent) and ``kinds[r]`` its channel
(:data:`BOOKS` or :data:`BOOKS5`). Frames never raise: each gets a :class:`FrameStatus`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import orjson

from meltica_nb.errors import ConfigError, MelticaError, ProtocolError
from meltica_nb.fixedpoint import to_mantissa
from meltica_nb.kernels import okx_scan_kernels as scan
from meltica_nb.schema import (
    BOOK_LEVEL,
    CANONICAL_EVENT,
    DEPTH_UPDATE,
    EventType,
    Flag,
    Side,
)
from meltica_nb.venues.frame_status import FrameCounts, FrameStatus, ParserCounts, status_counts
from meltica_nb.venues.okx.symbols import OkxSymbols
from meltica_nb.venues.records import concat_events, market_event
from meltica_nb.venues.scratch import grow

__all__ = ["BOOKS", "BOOKS5", "FrameStatus", "OkxParser", "OkxParseResult", "ParserStats"]

BOOKS = scan.BOOKS
BOOKS5 = scan.BOOKS5


_N_STATUS = len(FrameStatus)
_FALLBACK = int(FrameStatus.FALLBACK)  # numpy compares an IntEnum member slowly
_OK = int(FrameStatus.OK)
_N_TYPES = 16


@dataclass(frozen=True, slots=True)
class OkxParseResult(FrameCounts):
    """Records of one batch: events and book rows each in frame order.

    The arrays of ``parse_batch`` are views into reusable buffers, valid until the next call.
    ``levels[row.level_off:]`` holds each row's bids then asks, ``texts`` their text forms.
    """

    events: np.ndarray     # CANONICAL_EVENT
    depth: np.ndarray      # DEPTH_UPDATE
    levels: np.ndarray     # BOOK_LEVEL
    texts: np.ndarray      # int64 per level: price_decimals << 8 | size_decimals
    checksums: np.ndarray  # int64 per row (0: none)
    kinds: np.ndarray      # int8 per row: BOOKS or BOOKS5
    status: np.ndarray     # int8 FrameStatus per frame
    counts: np.ndarray     # int64 per FrameStatus
    n_fallback: int


@dataclass(frozen=True, slots=True)
class ParserStats(ParserCounts):
    """Counters of a parser since it was built (those of :class:`ParserCounts`, then these)."""

    scanned: int          # book frames the scanner parsed
    trades: int
    bbo: int
    tickers: int
    book_rows: int


class _Book(NamedTuple):
    row: np.ndarray       # 1 DEPTH_UPDATE (level_off 0)
    levels: np.ndarray    # BOOK_LEVEL
    texts: np.ndarray     # int64
    checksum: int
    kind: int


class _Parsed(NamedTuple):
    status: int
    events: tuple = ()
    book: _Book | None = None


_MAX_MS = 9_223_372_036_854
#: Why a builder gave up on a message (it becomes FrameStatus.BAD_VALUE, counted).
_BAD = "okx message: a field is missing or does not convert"
_CANONICAL = re.compile(rb"(0|[1-9][0-9]*)(\.[0-9]+)?")
_NO_EVENTS = np.zeros(0, CANONICAL_EVENT)


def _ms(value: Any) -> int:
    """OKX ``ts`` (milliseconds as text) -> ns."""
    if type(value) is not str or not value.isdigit() or not value.isascii() or (
            int(value) > _MAX_MS):
        raise ProtocolError(_BAD)
    return int(value) * 1_000_000


def _int(value: Any, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if type(value) is not int or not -(2**63) <= value < 2**63:
        raise ProtocolError(_BAD)
    return value


def _dec(value: Any, exponent: int, empty_is_zero: bool = False) -> int:
    if type(value) is not str:
        raise ProtocolError(_BAD)
    if empty_is_zero and value == "":
        return 0
    try:
        return to_mantissa(value, exponent)
    except MelticaError:
        raise ProtocolError(_BAD) from None


def _book_value(text: Any, exponent: int) -> tuple[int, int]:
    """(mantissa, decimals) of a book text that can be rebuilt exactly."""
    raw = text.encode("ascii", "replace") if type(text) is str else b""
    if not _CANONICAL.fullmatch(raw):
        raise ProtocolError(_BAD)
    decimals = len(raw.partition(b".")[2])
    if decimals > exponent:
        raise ProtocolError(_BAD)
    return _dec(text, exponent), decimals


def _levels(value: Any, exps: tuple) -> tuple[list, list]:
    """``[["px","sz","0","n"], ...]`` -> ([(price, size)], [text form])."""
    if type(value) is not list:
        raise ProtocolError(_BAD)
    pairs, texts = [], []
    for lv in value:
        if type(lv) is not list or len(lv) < 2 or not all(type(x) is str for x in lv):
            raise ProtocolError(_BAD)
        price, pd = _book_value(lv[0], exps[0])
        size, sd = _book_value(lv[1], exps[1])
        pairs.append((price, size))
        texts.append(pd << 8 | sd)
    return pairs, texts


def _action(channel: str, msg: dict) -> int:
    """1 for a snapshot, 0 for an update (books5: always a snapshot)."""
    action = msg.get("action")
    if channel == "books5" and action in (None, "snapshot"):
        return 1
    if channel == "books" and action in ("snapshot", "update"):
        return int(action == "snapshot")
    raise ProtocolError(_BAD)


def _one(data: Any) -> dict:
    if type(data) is not list or len(data) != 1 or type(data[0]) is not dict:
        raise ProtocolError(_BAD)
    return data[0]


class OkxParser:
    """Parse OKX public frames of one connection into records (see the module docstring).

    ``symbols`` resolves ``arg.instId``; ``venue_id`` is stamped on every record. Not
    thread-safe: one parser per connection thread.
    """

    def __init__(self, symbols: OkxSymbols, venue_id: int) -> None:
        if isinstance(venue_id, bool) or not isinstance(venue_id, int) or not (
                1 <= venue_id <= 0xFFFF):
            raise ConfigError(f"venue_id must be a registry venue id in 1..65535, got {venue_id!r}")
        self.symbols = symbols
        self.venue_id = venue_id
        self._version = -1
        self._table = None
        self._status_totals = np.zeros(_N_STATUS, np.int64)
        self._all_ok = np.zeros(_N_STATUS, np.int64)  # the counts of a batch of book pushes
        self._type_totals = np.zeros(_N_TYPES, np.int64)
        self._totals = {"scanned": 0, "fallback": 0, "book_rows": 0, "levels": 0}
        self._st = np.zeros(scan.STATE_SIZE, np.int64)
        self._stack = np.zeros(scan.MAX_DEPTH, np.uint8)
        self._n_cap = self._lv_cap = 0
        self._grow(64, 4096)

    def _grow(self, n: int, n_levels: int) -> None:
        if n <= self._n_cap and n_levels <= self._lv_cap:  # the usual case, checked cheaply
            return
        frames = grow(self._n_cap, n, DEPTH_UPDATE, np.int64, np.int8, np.int64, np.int8)
        if frames is not None:
            self._n_cap, arrays = frames
            self._depth, self._checksums, self._kinds, self._row_frame, self._status = arrays
        levels = grow(self._lv_cap, n_levels, BOOK_LEVEL, np.int64)
        if levels is not None:
            self._lv_cap, (self._levels, self._texts) = levels
            self._level_words = self._levels.view(np.int64).reshape(-1, 2)

    def _symbols(self):
        if self.symbols.version != self._version:
            self._version = self.symbols.version
            self._table = self.symbols.table()
        return self._table

    # -- batches --------------------------------------------------------------------------

    def parse_batch(self, frames: Sequence[bytes], recv_ns: Sequence[int]) -> OkxParseResult:
        """Parse ``frames`` received at ``recv_ns`` (ns, one per frame)."""
        n = len(frames)
        recv = np.asarray(recv_ns, np.int64)
        if recv.shape != (n,):
            raise ConfigError(f"recv_ns must hold one time per frame: {recv.shape} for {n}")
        joined = b"".join(frames)
        lengths = np.fromiter(map(len, frames), np.int64, n)
        self._grow(n, len(joined) // 9 + 16)
        t = self._symbols()
        nd, nl = scan.scan_books(
            self._depth, self._level_words, self._texts, self._checksums, self._kinds,
            self._row_frame, self._status, np.frombuffer(joined, np.uint8), lengths, recv,
            self.venue_id, t.slots, t.sym_bytes, t.sym_len, t.sym_inst, t.price_exp, t.qty_exp,
            self._st, self._stack)
        status = self._status[:n]
        self._totals["scanned"] += nd
        if nd == n:  # every frame a book push: rows already in frame order, no fallback
            self._all_ok[_OK] = n
            self._status_totals[_OK] += n
            self._totals["book_rows"] += nd
            self._totals["levels"] += nl
            return OkxParseResult(_NO_EVENTS, self._depth[:nd], self._levels[:nl],
                                  self._texts[:nl], self._checksums[:nd], self._kinds[:nd],
                                  status, self._all_ok, 0)
        result = self._with_fallback(frames, recv, status, nd, nl)
        self._count(result)
        return result

    def _with_fallback(self, frames, recv, status, nd: int, nl: int) -> OkxParseResult:
        """Run the frames the scanner handed back through the orjson path; merge the rows."""
        fallback = np.flatnonzero(status == _FALLBACK).tolist()
        events: list[np.ndarray] = []
        for f in fallback:
            parsed = self._reference(frames[f], int(recv[f]))
            status[f] = parsed.status
            events.extend(parsed.events)
            if parsed.book is not None:
                nd, nl = self._append_book(parsed.book, f, nd, nl)
        depth, checksums, kinds = self._in_frame_order(nd)
        return OkxParseResult(concat_events(events) if events else _NO_EVENTS, depth,
                              self._levels[:nl], self._texts[:nl], checksums, kinds, status,
                              np.bincount(status, minlength=_N_STATUS), len(fallback))

    def _append_book(self, book: _Book, frame: int, nd: int, nl: int) -> tuple[int, int]:
        m = book.levels.shape[0]
        self._grow(nd + 1, nl + m)
        self._levels[nl: nl + m] = book.levels
        self._texts[nl: nl + m] = book.texts
        self._depth[nd] = book.row[0]
        self._depth[nd]["level_off"] = nl
        self._checksums[nd] = book.checksum
        self._kinds[nd] = book.kind
        self._row_frame[nd] = frame
        return nd + 1, nl + m

    def _in_frame_order(self, nd: int):
        depth, checksums, kinds = self._depth[:nd], self._checksums[:nd], self._kinds[:nd]
        frames = self._row_frame[:nd]
        if nd > 1 and np.any(frames[1:] < frames[:-1]):
            order = np.argsort(frames, kind="stable")
            return depth[order], checksums[order], kinds[order]
        return depth, checksums, kinds

    def _count(self, result: OkxParseResult) -> None:
        self._status_totals += result.counts
        if result.events.shape[0]:
            self._type_totals += np.bincount(result.events["event_type"], minlength=_N_TYPES)
        self._totals["fallback"] += result.n_fallback
        self._totals["book_rows"] += result.depth.shape[0]
        self._totals["levels"] += result.levels.shape[0]

    # -- the orjson path --------------------------------------------------------------------

    def parse_reference(self, frame: bytes, recv_ns: int = 0) -> OkxParseResult:
        """One frame through orjson only: the records :meth:`parse_batch` must produce."""
        parsed = self._reference(frame, int(recv_ns))
        status = np.array([parsed.status], np.int8)
        events = concat_events(parsed.events) if parsed.events else _NO_EVENTS
        if parsed.book is None:
            book = _Book(np.zeros(0, DEPTH_UPDATE), np.zeros(0, BOOK_LEVEL),
                         np.zeros(0, np.int64), 0, 0)
            checksums, kinds = np.zeros(0, np.int64), np.zeros(0, np.int8)
        else:
            book = parsed.book
            checksums = np.array([book.checksum], np.int64)
            kinds = np.array([book.kind], np.int8)
        return OkxParseResult(events, book.row, book.levels, book.texts, checksums, kinds,
                              status, np.bincount(status, minlength=_N_STATUS), 0)

    def _reference(self, frame: bytes, recv_ns: int) -> _Parsed:
        if frame == b"pong":
            return _Parsed(FrameStatus.CONTROL)
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return _Parsed(FrameStatus.MALFORMED)
        if type(msg) is not dict:
            return _Parsed(FrameStatus.UNKNOWN)
        if "event" in msg:
            return _Parsed(FrameStatus.CONTROL)
        arg = msg.get("arg")
        channel = arg.get("channel") if type(arg) is dict else None
        builder = self._BUILDERS.get(channel) if type(channel) is str else None
        if builder is None or "data" not in msg:
            return _Parsed(FrameStatus.UNKNOWN)
        inst = self._symbols().instruments.get(arg.get("instId"), 0)
        if inst == 0:
            return _Parsed(FrameStatus.UNKNOWN_SYMBOL)
        try:
            return builder(self, msg, channel, recv_ns, inst)
        except ProtocolError:
            return _Parsed(FrameStatus.BAD_VALUE)

    def _exps_of(self, inst: int) -> tuple[int, int, int]:
        t = self._table
        return int(t.price_exp[inst]), int(t.qty_exp[inst]), int(t.quote_exp[inst])

    def _event(self, recv_ns: int, event_type: EventType, ns: int, seq: int, inst: int,
               **payload: int) -> np.ndarray:
        return market_event(self.venue_id, recv_ns, event_type, ns, seq, inst, **payload)

    def _book(self, msg: dict, channel: str, recv_ns: int, inst: int) -> _Parsed:
        snapshot = _action(channel, msg)
        d = _one(msg["data"])
        exps = self._exps_of(inst)
        if "asks" not in d or "bids" not in d:
            raise ProtocolError(_BAD)
        asks, ask_texts = _levels(d["asks"], exps)
        bids, bid_texts = _levels(d["bids"], exps)
        row = np.zeros(1, DEPTH_UPDATE)
        row["ingest_ns"] = recv_ns
        row["exchange_ns"] = _ms(d.get("ts"))
        seq = _int(d.get("seqId"), -1)
        row["first_id"] = row["final_id"] = seq
        row["prev_final_id"] = _int(d.get("prevSeqId"), -1)
        row["n_bids"], row["n_asks"] = len(bids), len(asks)
        row["instrument"], row["venue"], row["is_snapshot"] = inst, self.venue_id, snapshot
        levels = np.zeros(len(bids) + len(asks), BOOK_LEVEL)
        if levels.shape[0]:
            levels.view(np.int64).reshape(-1, 2)[:] = bids + asks
        kind = BOOKS if channel == "books" else BOOKS5
        return _Parsed(FrameStatus.OK, book=_Book(row, levels, np.array(
            bid_texts + ask_texts, np.int64), _int(d.get("checksum"), 0), kind))

    def _trades(self, msg: dict, channel: str, recv_ns: int, inst: int) -> _Parsed:
        data = msg["data"]
        if type(data) is not list or not data:
            raise ProtocolError(_BAD)
        px, qx, _ = self._exps_of(inst)
        events = []
        for t in data:
            if type(t) is not dict or t.get("side") not in ("buy", "sell"):
                raise ProtocolError(_BAD)
            tid = t.get("tradeId")
            if type(tid) is not str or not tid.isdigit() or not tid.isascii() or len(tid) > 18:
                raise ProtocolError(_BAD)
            sell = t["side"] == "sell"
            events.append(self._event(
                recv_ns, EventType.TRADE, _ms(t.get("ts")), int(tid), inst, seq_first=int(tid),
                price=_dec(t.get("px"), px), quantity=_dec(t.get("sz"), qx), trade_id=int(tid),
                side=Side.SELL if sell else Side.BUY, flags=Flag.BUYER_MAKER if sell else 0))
        return _Parsed(FrameStatus.OK, events=tuple(events))

    def _bbo(self, msg: dict, channel: str, recv_ns: int, inst: int) -> _Parsed:
        d = _one(msg["data"])
        px, qx, _ = self._exps_of(inst)
        sides = []
        for key in ("bids", "asks"):
            levels = d.get(key)
            if type(levels) is not list or len(levels) > 1:
                raise ProtocolError(_BAD)
            top = levels[0] if levels else ["", ""]
            if type(top) is not list or len(top) < 2:
                raise ProtocolError(_BAD)
            sides.append((_dec(top[0], px, True), _dec(top[1], qx, True)))
        ns = _ms(d.get("ts"))
        seq = _int(d.get("seqId"), ns // 1_000_000)
        (bp, bq), (ap, aq) = sides
        return _Parsed(FrameStatus.OK, events=(self._event(
            recv_ns, EventType.BBO, ns, seq, inst, bid_price=bp, bid_qty=bq, ask_price=ap,
            ask_qty=aq),))

    def _ticker(self, msg: dict, channel: str, recv_ns: int, inst: int) -> _Parsed:
        d = _one(msg["data"])
        px, qx, quote = self._exps_of(inst)
        ns = _ms(d.get("ts"))
        return _Parsed(FrameStatus.OK, events=(self._event(
            recv_ns, EventType.TICKER, ns, ns // 1_000_000, inst,
            last_price=_dec(d.get("last"), px), bid_price=_dec(d.get("bidPx"), px, True),
            bid_qty=_dec(d.get("bidSz"), qx, True), ask_price=_dec(d.get("askPx"), px, True),
            ask_qty=_dec(d.get("askSz"), qx, True), open_price=_dec(d.get("open24h"), px),
            volume=_dec(d.get("vol24h"), qx), quote_volume=_dec(d.get("volCcy24h"), quote)),))

    _BUILDERS = {"books": _book, "books5": _book, "trades": _trades, "bbo-tbt": _bbo,
                 "tickers": _ticker}

    # -- counters --------------------------------------------------------------------------

    def stats(self) -> ParserStats:
        by_type = self._type_totals.tolist()
        return ParserStats(
            trades=by_type[EventType.TRADE], bbo=by_type[EventType.BBO],
            tickers=by_type[EventType.TICKER], **status_counts(self._status_totals),
            **self._totals)

    def __repr__(self) -> str:
        return f"OkxParser(venue_id={self.venue_id}, instruments={len(self.symbols)})"
