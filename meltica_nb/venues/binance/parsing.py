"""Binance frames to records: one byte-scanner call per batch, orjson for everything else.

:meth:`BinanceParser.parse_batch` joins a batch of websocket frames into one byte buffer and
hands it to :func:`~meltica_nb.kernels.binance_scan_kernels.scan_batch`, which turns the hot
streams (trade, aggTrade, bookTicker, depthUpdate) into records without building a Python
object. Every frame the scanner passes on (:attr:`FrameStatus.FALLBACK`) is parsed again here
with orjson by the *reference* path, which yields exactly the records the scanner would have,
and also handles ``24hrTicker`` (TICKER), ``kline`` (KLINE) and subscription acks (CONTROL).

Records (all prices and quantities exact mantissas at the instrument's exponents):

* trade / aggTrade -> TRADE: ``seq_provider = seq_first = trade_id`` = ``t`` / ``a``; ``side``
  SELL and :attr:`Flag.BUYER_MAKER` when ``m`` (the buyer was the maker, so the aggressor
  sold), else BUY; ``exchange_ns = T * 1e6``.
* bookTicker -> BBO: ``seq_provider = u``, ``seq_first = 0`` (monotonic only); ``exchange_ns``
  from ``E`` when sent (USD-M), else 0.
* depthUpdate -> DEPTH_UPDATE row + BOOK_LEVEL levels (bids then asks): ``first_id = U``,
  ``final_id = u``, ``prev_final_id = pu`` or -1, ``exchange_ns = E * 1e6``.
* 24hrTicker -> TICKER (``c b B a A v q o``; bid/ask are 0 where USD-M omits them),
  ``seq_provider = E``; kline -> KLINE (``k.o h l c v``, ``kline_open_ns = k.t * 1e6``,
  ``kline_trades = k.n``, KLINE_CLOSED if ``k.x``), ``seq_provider = E``.
* REST depth snapshots (:meth:`BinanceParser.parse_snapshot`) -> one DEPTH_UPDATE row with
  ``is_snapshot = 1`` and ``first_id = final_id = lastUpdateId``.

``ingest_ns`` is the frame's receive time; ``trace_id`` and ``routing_version`` stay 0 for the
ingest stage and the orchestrator to stamp. Frames never raise: each gets a
:class:`FrameStatus`, counted in :meth:`BinanceParser.stats`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import orjson

from meltica_nb.errors import ConfigError, MelticaError
from meltica_nb.fixedpoint import to_mantissa, to_mantissa_array
from meltica_nb.kernels import binance_scan_kernels as scan
from meltica_nb.schema import (
    BOOK_LEVEL,
    CANONICAL_EVENT,
    DEPTH_UPDATE,
    EventType,
    Flag,
    Side,
)
from meltica_nb.venues.binance.symbols import BinanceSymbols, SymbolTable
from meltica_nb.venues.frame_arena import FrameArena
from meltica_nb.venues.frame_status import FrameCounts, FrameStatus, ParserCounts, status_counts
from meltica_nb.venues.records import concat_events, market_event

__all__ = [
    "MARKETS",
    "BinanceParser",
    "FrameStatus",
    "ParseResult",
    "ParserStats",
    "concat_events",
]

#: Binance markets a parser can be built for.
MARKETS = ("spot", "usdm")


_N_STATUS = len(FrameStatus)


@dataclass(frozen=True, slots=True)
class ParseResult(FrameCounts):
    """Records of one batch, in frame order.

    From ``parse_batch`` / ``parse_arena`` / ``scan`` the arrays are views into the parser's
    reusable buffers, valid until its next such call (copy what you keep); the one-frame
    results of ``parse_snapshot`` and the reference methods own their arrays. ``frame_event[f]`` /
    ``frame_depth[f]`` index frame ``f``'s event / depth row, or -1; ``counts[s]`` is the
    number of frames with status ``s``.
    """

    events: np.ndarray       # CANONICAL_EVENT
    depth: np.ndarray        # DEPTH_UPDATE; level_off indexes ``levels``
    levels: np.ndarray       # BOOK_LEVEL
    status: np.ndarray       # int8 FrameStatus per frame
    frame_event: np.ndarray  # int32 per frame
    frame_depth: np.ndarray  # int32 per frame
    counts: np.ndarray       # int64 per FrameStatus
    n_fallback: int          # frames the scanner handed to orjson


@dataclass(frozen=True, slots=True)
class ParserStats(ParserCounts):
    """Counters of a parser since it was built (those of :class:`ParserCounts`, then these)."""

    trades: int
    bbo: int
    tickers: int
    klines: int
    depth_updates: int
    snapshots: int


class _Parsed(NamedTuple):
    """One frame through the orjson path."""

    status: int
    event: np.ndarray | None = None   # 1 CANONICAL_EVENT
    depth: np.ndarray | None = None   # 1 DEPTH_UPDATE (level_off 0)
    levels: np.ndarray | None = None  # its BOOK_LEVELs


# -- the orjson reference path: field converters -------------------------------------------

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_ABSENT = object()
_REQUIRED = object()
_BAD = object()
_NO_LEVELS = np.zeros(0, BOOK_LEVEL)


def _c_int(value: Any, exps: tuple) -> Any:
    if type(value) is not int or not _I64_MIN <= value <= _I64_MAX:
        return _BAD
    return value


def _c_ms(value: Any, exps: tuple) -> Any:
    """Milliseconds -> ns; must fit int64."""
    if type(value) is not int or not _I64_MIN <= value * 1_000_000 <= _I64_MAX:
        return _BAD
    return value * 1_000_000


def _c_bool(value: Any, exps: tuple) -> Any:
    return value if type(value) is bool else _BAD


def _decimal(value: Any, exponent: int) -> Any:
    if type(value) is not str:
        return _BAD
    try:
        return to_mantissa(value, exponent)
    except MelticaError:
        return _BAD


def _c_price(value: Any, exps: tuple) -> Any:
    return _decimal(value, exps[0])


def _c_qty(value: Any, exps: tuple) -> Any:
    return _decimal(value, exps[1])


def _c_quote(value: Any, exps: tuple) -> Any:
    return _decimal(value, exps[2])


def _c_levels(value: Any, exps: tuple) -> Any:
    """``[["price", "qty"], ...]`` -> BOOK_LEVEL array."""
    if type(value) is not list:
        return _BAD
    if not all(type(lv) is list and len(lv) == 2 for lv in value):
        return _BAD
    if not value:
        return _NO_LEVELS
    if not all(type(lv[0]) is str and type(lv[1]) is str for lv in value):
        return _BAD
    out = np.zeros(len(value), BOOK_LEVEL)
    try:
        out["price"] = to_mantissa_array([lv[0] for lv in value], exps[0])
        out["quantity"] = to_mantissa_array([lv[1] for lv in value], exps[1])
    except MelticaError:
        return _BAD
    return out


def _c_object(value: Any, exps: tuple) -> Any:
    return value if type(value) is dict else _BAD


_Spec = tuple[tuple[str, str, Callable[[Any, tuple], Any], Any], ...]


def _fields(msg: Mapping, spec: _Spec, exps: tuple) -> dict | None:
    """Convert the fields ``spec`` names -> ``{name: value}``, or None if one is missing/bad."""
    out = {}
    for name, key, conv, default in spec:
        value = msg.get(key, _ABSENT)
        if value is _ABSENT:
            if default is _REQUIRED:
                return None
            out[name] = default
            continue
        value = conv(value, exps)
        if value is _BAD:
            return None
        out[name] = value
    return out


_R = _REQUIRED
_TRADE_SPEC: _Spec = (("id", "t", _c_int, _R), ("price", "p", _c_price, _R),
                      ("quantity", "q", _c_qty, _R), ("ns", "T", _c_ms, _R),
                      ("maker", "m", _c_bool, _R))
_AGG_SPEC: _Spec = (("id", "a", _c_int, _R),) + _TRADE_SPEC[1:]
_BBO_SPEC: _Spec = (("seq", "u", _c_int, _R), ("bid_price", "b", _c_price, _R),
                    ("bid_qty", "B", _c_qty, _R), ("ask_price", "a", _c_price, _R),
                    ("ask_qty", "A", _c_qty, _R), ("ns", "E", _c_ms, 0))
_DEPTH_SPEC: _Spec = (("first", "U", _c_int, _R), ("final", "u", _c_int, _R),
                      ("prev", "pu", _c_int, -1), ("ns", "E", _c_ms, 0),
                      ("bids", "b", _c_levels, _R), ("asks", "a", _c_levels, _R))
_SNAPSHOT_SPEC: _Spec = (("final", "lastUpdateId", _c_int, _R), ("ns", "E", _c_ms, 0),
                         ("bids", "bids", _c_levels, _R), ("asks", "asks", _c_levels, _R))
_TICKER_SPEC: _Spec = (("seq", "E", _c_int, _R), ("ns", "E", _c_ms, _R),
                       ("last_price", "c", _c_price, _R), ("bid_price", "b", _c_price, 0),
                       ("bid_qty", "B", _c_qty, 0), ("ask_price", "a", _c_price, 0),
                       ("ask_qty", "A", _c_qty, 0), ("volume", "v", _c_qty, _R),
                       ("quote_volume", "q", _c_quote, _R), ("open_price", "o", _c_price, _R))
_KLINE_SPEC: _Spec = (("seq", "E", _c_int, _R), ("ns", "E", _c_ms, _R),
                      ("k", "k", _c_object, _R))
_KLINE_BODY_SPEC: _Spec = (("kline_open_ns", "t", _c_ms, _R), ("kline_open", "o", _c_price, _R),
                           ("kline_high", "h", _c_price, _R), ("kline_low", "l", _c_price, _R),
                           ("kline_close", "c", _c_price, _R), ("volume", "v", _c_qty, _R),
                           ("kline_trades", "n", _c_int, _R), ("closed", "x", _c_bool, _R))
del _R


def _control(msg: dict) -> bool:
    """A reply to a request: ``{"result": null, "id": 1}`` or ``{"error": {...}, "id": 1}``."""
    return "id" in msg and ("result" in msg or "error" in msg)


def _message_kind(payload: dict) -> str | None:
    """Message name by ``e``, or "bookTicker" for spot's bare ``{u, s, b, B, a, A}``."""
    if "e" in payload:
        name = payload["e"]
        return name if type(name) is str else None
    if "u" in payload and "b" in payload and "a" in payload:
        return "bookTicker"
    return None


# -- the parser ----------------------------------------------------------------------------

_N_TYPES = 16  # room for every EventType


class BinanceParser:
    """Parse Binance frames of one connection into records (see the module docstring).

    ``symbols`` resolves ``"s"`` to instruments and exponents; ``venue_id`` is stamped on every
    record; ``market`` is ``"spot"`` or ``"usdm"``. Not thread-safe: one parser per
    connection thread. Symbols added to ``symbols`` later are picked up at the next batch.
    """

    def __init__(self, symbols: BinanceSymbols, venue_id: int, market: str = "spot") -> None:
        if market not in MARKETS:
            raise ConfigError(f"unknown Binance market {market!r}; use one of {MARKETS}")
        if isinstance(venue_id, bool) or not isinstance(venue_id, int) or not (
                1 <= venue_id <= 0xFFFF):
            raise ConfigError(f"venue_id must be a registry venue id in 1..65535, got {venue_id!r}")
        self.symbols = symbols
        self.venue_id = venue_id
        self.market = market
        self._table: SymbolTable = symbols.table()
        self._version = symbols.version
        self._status_totals = np.zeros(_N_STATUS, np.int64)
        self._type_totals = np.zeros(_N_TYPES, np.int64)
        self._totals = {"fallback": 0, "depth_updates": 0, "snapshots": 0, "levels": 0}
        self._counts = np.zeros(_N_STATUS, np.int64)  # a batch's frames per status
        self._st = np.zeros(scan.STATE_SIZE, np.int64)
        self._stack = np.zeros(scan.MAX_DEPTH, np.uint8)
        self._n_cap = 0
        self._lv_cap = 0
        self._levels = self._levels_alt = _NO_LEVELS
        self._grow(256, 4096)

    # -- buffers --------------------------------------------------------------------------

    def _grow(self, n: int, n_levels: int) -> None:
        """Make room for ``n`` frames and ``n_levels`` levels (buffers only ever grow)."""
        if n > self._n_cap:
            self._n_cap = max(n, 2 * self._n_cap)
            self._events = np.zeros(self._n_cap, CANONICAL_EVENT)
            self._events_alt = np.zeros(self._n_cap, CANONICAL_EVENT)
            self._event_words = self._events.view(np.uint64)
            self._depth = np.zeros(self._n_cap, DEPTH_UPDATE)
            self._depth_alt = np.zeros(self._n_cap, DEPTH_UPDATE)
            self._status = np.zeros(self._n_cap, np.int8)
            self._frame_event = np.zeros(self._n_cap, np.int32)
            self._frame_depth = np.zeros(self._n_cap, np.int32)
            self._offsets = np.zeros(self._n_cap, np.int64)
        if n_levels > self._lv_cap:
            self._lv_cap = max(n_levels, 2 * self._lv_cap)
            self._levels = _grown(self._levels, self._lv_cap)
            self._levels_alt = _grown(self._levels_alt, self._lv_cap)
            self._spans = np.zeros((self._lv_cap, scan.SPAN_FIELDS), np.int64)

    def _refresh_symbols(self) -> None:
        if self.symbols.version != self._version:
            self._version = self.symbols.version
            self._table = self.symbols.table()

    # -- batches --------------------------------------------------------------------------

    def parse_batch(self, frames: Sequence[bytes] | FrameArena,
                    recv_ns: Sequence[int] | np.ndarray) -> ParseResult:
        """Parse websocket ``frames`` received at ``recv_ns`` (ns, one per frame); the frames
        of a connection's FrameArena are read where they lie."""
        if isinstance(frames, FrameArena):
            n = frames.n
            return self.parse_arena(frames.buf[:frames.size], frames.offsets[:n],
                                    frames.lengths[:n], recv_ns)
        try:
            joined = b"".join(frames)
        except TypeError:
            frames = [f.encode() if isinstance(f, str) else bytes(f) for f in frames]
            joined = b"".join(frames)
        n = len(frames)
        lengths = np.fromiter(map(len, frames), np.int64, n)
        return self._parse(np.frombuffer(joined, np.uint8), lengths, recv_ns, frames)

    def parse_arena(self, buf: np.ndarray | bytes, offsets: np.ndarray, lengths: np.ndarray,
                    recv_ns: np.ndarray) -> ParseResult:
        """Parse frames already in a byte arena (frame ``f``: ``lengths[f]`` bytes at
        ``offsets[f]``), e.g. the WsFrame arena, without copying them."""
        if not isinstance(buf, np.ndarray):
            buf = np.frombuffer(buf, np.uint8)
        return self._parse(buf.view(np.uint8), np.asarray(lengths, np.int64), recv_ns, None,
                           np.asarray(offsets, np.int64))

    def scan(self, frames: Sequence[bytes], recv_ns: Sequence[int] | np.ndarray) -> ParseResult:
        """The byte scanner alone: frames it does not understand keep status FALLBACK and
        produce nothing (for tests and benchmarks; not counted in :meth:`stats`)."""
        joined = b"".join(frames)
        lengths = np.fromiter(map(len, frames), np.int64, len(frames))
        return self._parse(np.frombuffer(joined, np.uint8), lengths, recv_ns, frames,
                           fall_back=False)

    def _parse(self, buf: np.ndarray, lengths: np.ndarray, recv_ns, frames,
               offsets: np.ndarray | None = None, fall_back: bool = True) -> ParseResult:
        if buf.flags.writeable:  # one compiled scanner: joined frames (bytes) are read-only,
            buf = buf.view()     # and a writable arena would make Numba compile it again,
            buf.flags.writeable = False  # cold for a minute, inside the connection thread
        n = lengths.shape[0]
        recv = recv_ns if isinstance(recv_ns, np.ndarray) and recv_ns.dtype == np.int64 else (
            np.asarray(recv_ns, np.int64))
        if recv.shape != (n,):
            raise ConfigError(f"recv_ns must hold one time per frame: {recv.shape} for {n} frames")
        self._refresh_symbols()
        max_levels = buf.shape[0] // 8 + n + 16  # a level takes at least 9 bytes
        if n > self._n_cap or max_levels > self._lv_cap:
            self._grow(n, max_levels)
        if offsets is None:
            offsets = self._offsets[:n]
            scan.frame_offsets(lengths, offsets)
        self._event_words[: n * 16] = 0
        t = self._table
        ne, nd, nl = scan.scan_batch(
            self._events, self._depth, self._levels, self._status, self._frame_event,
            self._frame_depth, buf, offsets, lengths, recv, self.venue_id, scan.MODE_STREAM, 0,
            t.slots, t.sym_bytes, t.sym_len, t.sym_inst, t.price_exp, t.qty_exp, self._st,
            self._spans, self._stack)
        status = self._status[:n]
        counts = self._counts
        scan.count_statuses(status, counts)
        n_fallback = int(counts[FrameStatus.FALLBACK])
        if n_fallback and fall_back:
            fallback = np.flatnonzero(status == FrameStatus.FALLBACK)
            ne, nd, nl = self._fall_back(fallback, buf, offsets, lengths, recv, frames,
                                         (ne, nd, nl))
            scan.count_statuses(status, counts)
        result = ParseResult(self._events[:ne], self._depth[:nd], self._levels[:nl], status,
                             self._frame_event[:n], self._frame_depth[:n], counts,
                             n_fallback if fall_back else 0)
        if fall_back:
            self._count(counts, result.events, nd, nl, n_fallback)
        return result

    def _count(self, counts, events, n_depth, n_levels, n_fallback, snapshots=0) -> None:
        scan.add_totals(counts, events, self._status_totals, self._type_totals)
        totals = self._totals
        totals["fallback"] += n_fallback
        totals["depth_updates"] += n_depth - snapshots
        totals["snapshots"] += snapshots
        totals["levels"] += n_levels

    # -- fallback: the orjson path, merged back in frame order ----------------------------

    def _fall_back(self, fallback, buf, offsets, lengths, recv, frames, sizes):
        extra = []
        for f in fallback.tolist():
            frame = frames[f] if frames is not None else (
                buf[offsets[f]: offsets[f] + lengths[f]].tobytes())
            parsed = self._reference(frame, int(recv[f]))
            self._status[f] = parsed.status
            if parsed.event is not None or parsed.depth is not None:
                extra.append((f, parsed))
        ne, nd, nl = sizes
        n = lengths.shape[0]
        events = [(f, p.event) for f, p in extra if p.event is not None]
        books = [(f, p) for f, p in extra if p.depth is not None]
        if events:
            ne = self._merge_events(n, events, ne)
        if books:
            nd, nl = self._merge_books(n, books, nd, nl)
        return ne, nd, nl

    def _merge_events(self, n: int, extra: list, ne: int) -> int:
        frame_event = self._frame_event[:n]
        where, scanned, has, rank = _frame_ranks(frame_event, extra)
        total = ne + len(extra)
        out = self._events_alt[:total]
        out[rank[scanned]] = self._events[frame_event[scanned]]
        out[rank[where]] = concat_events([e for _, e in extra])
        frame_event[:] = np.where(has, rank, -1)
        self._events, self._events_alt = self._events_alt, self._events
        self._event_words = self._events.view(np.uint64)
        return total

    def _merge_books(self, n: int, extra: list, nd: int, nl: int) -> tuple[int, int]:
        frame_depth = self._frame_depth[:n]
        where, scanned, has, rank = _frame_ranks(frame_depth, extra)
        rows = np.concatenate([p.depth for _, p in extra])
        levels = np.concatenate([p.levels for _, p in extra])
        self._grow(0, nl + levels.shape[0])
        self._levels[nl: nl + levels.shape[0]] = levels
        sizes = rows["n_bids"].astype(np.int64) + rows["n_asks"]
        rows["level_off"] = nl + np.cumsum(sizes) - sizes
        total = nd + len(extra)
        out = self._depth_alt[:total]
        out[rank[scanned]] = self._depth[frame_depth[scanned]]
        out[rank[where]] = rows
        frame_depth[:] = np.where(has, rank, -1)
        n_levels = _repack_levels(out, self._levels, self._levels_alt)
        self._depth, self._depth_alt = self._depth_alt, self._depth
        self._levels, self._levels_alt = self._levels_alt, self._levels
        return total, n_levels

    # -- snapshots ------------------------------------------------------------------------

    def parse_snapshot(self, body: bytes, symbol: str, recv_ns: int) -> ParseResult:
        """A REST depth snapshot of ``symbol`` (``"BTCUSDT"``, ``"btcusdt"`` or ``"BTC-USDT"``).

        Returns a one-frame result in fresh arrays (not the batch buffers). An unregistered
        symbol is a ConfigError: the caller asked for that book.
        """
        inst = self.symbols[symbol].instrument
        self._refresh_symbols()
        body = bytes(body)
        buf = np.frombuffer(body, np.uint8)
        n_levels = len(body) // 8 + 16
        out = _SnapshotOut(n_levels)
        if self._spans.shape[0] < n_levels:
            self._spans = np.zeros((n_levels, scan.SPAN_FIELDS), np.int64)
        t = self._table
        scan.scan_batch(out.events, out.depth, out.levels, out.status, out.frame_event,
                        out.frame_depth, buf, np.zeros(1, np.int64),
                        np.array([len(body)], np.int64), np.array([recv_ns], np.int64),
                        self.venue_id, scan.MODE_SNAPSHOT, inst, t.slots, t.sym_bytes,
                        t.sym_len, t.sym_inst, t.price_exp, t.qty_exp, self._st, self._spans,
                        self._stack)
        status = int(out.status[0])
        if status == FrameStatus.FALLBACK:
            parsed = self._reference_snapshot(body, inst, int(recv_ns))
        elif status == FrameStatus.OK:
            used = int(out.depth[0]["n_bids"]) + int(out.depth[0]["n_asks"])
            parsed = _Parsed(status, depth=out.depth, levels=out.levels[:used])
        else:
            parsed = _Parsed(status)
        return self._single(parsed, int(status == FrameStatus.FALLBACK))

    def parse_snapshot_reference(self, body: bytes, symbol: str, recv_ns: int = 0
                                 ) -> ParseResult:
        """:meth:`parse_snapshot` through orjson only (for tests and benchmarks; not counted)."""
        inst = self.symbols[symbol].instrument
        self._refresh_symbols()
        return _parsed_result(self._reference_snapshot(bytes(body), inst, int(recv_ns)), 0)

    def _reference_snapshot(self, body: bytes, inst: int, recv_ns: int) -> _Parsed:
        try:
            msg = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _Parsed(FrameStatus.MALFORMED)
        if type(msg) is not dict or "lastUpdateId" not in msg:
            return _Parsed(FrameStatus.UNKNOWN)
        fields = _fields(msg, _SNAPSHOT_SPEC, self._exps(inst))
        if fields is None:
            return _Parsed(FrameStatus.BAD_VALUE)
        return self._book(recv_ns, inst, fields, fields["final"], -1, 1)

    def _single(self, parsed: _Parsed, fallback: int) -> ParseResult:
        result = _parsed_result(parsed, fallback)
        snapshots = result.depth.shape[0]
        self._count(result.counts, result.events, snapshots, result.levels.shape[0], fallback,
                    snapshots=snapshots)
        return result

    # -- the orjson reference path ---------------------------------------------------------

    def parse_reference(self, frame: bytes, recv_ns: int = 0) -> ParseResult:
        """One frame through orjson only: the records :meth:`parse_batch` must produce.

        Used by the property test and the benchmark; not counted in :meth:`stats`.
        """
        self._refresh_symbols()
        return _parsed_result(self._reference(frame, int(recv_ns)), 0)

    def _reference(self, frame: bytes, recv_ns: int) -> _Parsed:
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return _Parsed(FrameStatus.MALFORMED)
        if type(msg) is not dict:
            return _Parsed(FrameStatus.UNKNOWN)
        if _control(msg):
            return _Parsed(FrameStatus.CONTROL)
        data = msg.get("data")
        payload = data if type(data) is dict else msg
        builder = self._BUILDERS.get(_message_kind(payload))
        if builder is None:
            return _Parsed(FrameStatus.UNKNOWN)
        symbol = payload.get("s")
        if type(symbol) is not str:
            return _Parsed(FrameStatus.BAD_VALUE)
        inst = self._table.instruments.get(symbol, 0)
        if inst == 0:
            return _Parsed(FrameStatus.UNKNOWN_SYMBOL)
        return builder(self, payload, recv_ns, inst)

    def _exps(self, inst: int) -> tuple[int, int, int]:
        t = self._table
        return int(t.price_exp[inst]), int(t.qty_exp[inst]), int(t.quote_exp[inst])

    def _event(self, recv_ns: int, event_type: EventType, ns: int, seq: int, inst: int,
               **payload: int) -> _Parsed:
        return _Parsed(FrameStatus.OK, event=market_event(self.venue_id, recv_ns, event_type,
                                                          ns, seq, inst, **payload))

    def _trade(self, payload: dict, recv_ns: int, inst: int, spec: _Spec = _TRADE_SPEC
               ) -> _Parsed:
        f = _fields(payload, spec, self._exps(inst))
        if f is None:
            return _Parsed(FrameStatus.BAD_VALUE)
        maker = f["maker"]
        return self._event(recv_ns, EventType.TRADE, f["ns"], f["id"], inst, seq_first=f["id"],
                           price=f["price"], quantity=f["quantity"], trade_id=f["id"],
                           flags=Flag.BUYER_MAKER if maker else 0,
                           side=Side.SELL if maker else Side.BUY)

    def _agg_trade(self, payload: dict, recv_ns: int, inst: int) -> _Parsed:
        return self._trade(payload, recv_ns, inst, _AGG_SPEC)

    def _bbo(self, payload: dict, recv_ns: int, inst: int) -> _Parsed:
        f = _fields(payload, _BBO_SPEC, self._exps(inst))
        if f is None:
            return _Parsed(FrameStatus.BAD_VALUE)
        return self._event(recv_ns, EventType.BBO, f.pop("ns"), f.pop("seq"), inst, **f)

    def _ticker(self, payload: dict, recv_ns: int, inst: int) -> _Parsed:
        f = _fields(payload, _TICKER_SPEC, self._exps(inst))
        if f is None:
            return _Parsed(FrameStatus.BAD_VALUE)
        return self._event(recv_ns, EventType.TICKER, f.pop("ns"), f.pop("seq"), inst, **f)

    def _kline(self, payload: dict, recv_ns: int, inst: int) -> _Parsed:
        exps = self._exps(inst)
        top = _fields(payload, _KLINE_SPEC, exps)
        f = None if top is None else _fields(top["k"], _KLINE_BODY_SPEC, exps)
        if f is None:
            return _Parsed(FrameStatus.BAD_VALUE)
        flags = Flag.KLINE_CLOSED if f.pop("closed") else 0
        return self._event(recv_ns, EventType.KLINE, top["ns"], top["seq"], inst, flags=flags,
                           **f)

    def _depth_update(self, payload: dict, recv_ns: int, inst: int) -> _Parsed:
        f = _fields(payload, _DEPTH_SPEC, self._exps(inst))
        if f is None:
            return _Parsed(FrameStatus.BAD_VALUE)
        return self._book(recv_ns, inst, f, f["first"], f["prev"], 0)

    def _book(self, recv_ns: int, inst: int, f: dict, first: int, prev: int,
              snapshot: int) -> _Parsed:
        row = np.zeros(1, DEPTH_UPDATE)
        row["ingest_ns"] = recv_ns
        row["exchange_ns"] = f["ns"]
        row["first_id"] = first
        row["final_id"] = f["final"]
        row["prev_final_id"] = prev
        row["n_bids"] = f["bids"].shape[0]
        row["n_asks"] = f["asks"].shape[0]
        row["instrument"] = inst
        row["venue"] = self.venue_id
        row["is_snapshot"] = snapshot
        return _Parsed(FrameStatus.OK, depth=row, levels=np.concatenate([f["bids"], f["asks"]]))

    _BUILDERS: Mapping[str | None, Callable[..., _Parsed]] = {
        "trade": _trade, "aggTrade": _agg_trade, "bookTicker": _bbo,
        "depthUpdate": _depth_update, "24hrTicker": _ticker, "kline": _kline,
    }

    # -- counters --------------------------------------------------------------------------

    def stats(self) -> ParserStats:
        """Counters since the parser was built."""
        by_type = self._type_totals.tolist()
        return ParserStats(
            trades=by_type[EventType.TRADE], bbo=by_type[EventType.BBO],
            tickers=by_type[EventType.TICKER], klines=by_type[EventType.KLINE],
            **status_counts(self._status_totals), **self._totals)

    def __repr__(self) -> str:
        return (f"BinanceParser(market={self.market!r}, venue_id={self.venue_id}, "
                f"symbols={len(self.symbols)})")


class _SnapshotOut:
    """Fresh one-frame output arrays for a snapshot."""

    def __init__(self, n_levels: int) -> None:
        self.events = np.zeros(1, CANONICAL_EVENT)
        self.depth = np.zeros(1, DEPTH_UPDATE)
        self.levels = np.zeros(n_levels, BOOK_LEVEL)
        self.status = np.zeros(1, np.int8)
        self.frame_event = np.zeros(1, np.int32)
        self.frame_depth = np.zeros(1, np.int32)


def _frame_ranks(frame_index: np.ndarray, extra: list):
    """Merge order of scanner outputs and fallback outputs, in frame order.

    Returns ``(where, scanned, has, rank)``: the fallback frames, the frames the scanner wrote,
    which frames have an output, and each frame's output position.
    """
    where = np.array([f for f, _ in extra], np.int64)
    has = frame_index >= 0
    scanned = np.flatnonzero(has)
    has[where] = True
    return where, scanned, has, np.cumsum(has) - 1


def _grown(levels: np.ndarray, capacity: int) -> np.ndarray:
    """A BOOK_LEVEL buffer of ``capacity`` starting with the contents of ``levels``."""
    out = np.zeros(capacity, BOOK_LEVEL)
    out[: levels.shape[0]] = levels
    return out


def _repack_levels(rows: np.ndarray, src: np.ndarray, dst: np.ndarray) -> int:
    """Copy each row's levels from ``src`` into ``dst`` in row order; fix ``level_off``."""
    sizes = rows["n_bids"].astype(np.int64) + rows["n_asks"]
    starts = np.cumsum(sizes) - sizes
    total = int(sizes.sum())
    index = np.repeat(rows["level_off"] - starts, sizes) + np.arange(total)
    dst[:total] = src[index]
    rows["level_off"] = starts
    return total


def _one_result(events, depth, levels, status, n_fallback) -> ParseResult:
    frame_event = np.full(1, 0 if events.shape[0] else -1, np.int32)
    frame_depth = np.full(1, 0 if depth.shape[0] else -1, np.int32)
    counts = np.bincount(status, minlength=_N_STATUS)
    return ParseResult(events, depth, levels, status, frame_event, frame_depth, counts,
                       n_fallback)


def _parsed_result(parsed: _Parsed, n_fallback: int) -> ParseResult:
    """A one-frame :class:`ParseResult` in fresh arrays from a :class:`_Parsed`."""
    events = parsed.event if parsed.event is not None else np.zeros(0, CANONICAL_EVENT)
    depth = parsed.depth if parsed.depth is not None else np.zeros(0, DEPTH_UPDATE)
    levels = parsed.levels if parsed.levels is not None else np.zeros(0, BOOK_LEVEL)
    return _one_result(events, depth, levels, np.array([parsed.status], np.int8), n_fallback)
