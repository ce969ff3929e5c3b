"""Kraken byte scanner: WebSocket v1 and v2 ``book`` frames straight to depth rows.

One :func:`scan_batch` call reads a batch of frames held in one byte arena and writes, for
every book frame it fully understands, one DEPTH_UPDATE row, its BOOK_LEVEL levels (bids first,
then asks, each side in array order) and the frame's checksum (-1 when the frame carries none).
Prices and quantities become exact int64 mantissas at the instrument's exponents
(:func:`~meltica_nb.kernels.decimal_kernels.parse_decimal`, never a float); the checksum
string is rebuilt later from those mantissas and the pair's decimals, which is exact because
Kraken prints every level of a pair with the same number of decimals.

Shapes (from Kraken's v1 and v2 docs)::

    v1  [channelID, {"as":[[p,v,ts],..],"bs":[..]}, "book-10", "XBT/USD"]          snapshot
        [channelID, {"a":[[p,v,ts(,"r")],..]}(, {"b":[..],"c":"123"}), "book-10", "XBT/USD"]
    v2  {"channel":"book","type":"snapshot"|"update","data":[{"symbol":"BTC/USD",
         "bids":[{"price":1.5,"qty":2.0},..],"asks":[..],"checksum":123,"timestamp":".."}]}

``exchange_ns`` is the newest level timestamp (v1, seconds with microseconds) or the
message's ISO 8601 ``timestamp`` (v2), 0 when absent.

The scanner only ever says OK or :data:`FALLBACK`: anything else (trades, tickers, events,
escapes, unknown pairs, a decimal that does not fit the exponent, broken JSON) writes nothing
and is decided by the orjson reference path of :mod:`meltica_nb.venues.kraken.parsing`, which
the property test holds it to on every recorded message. The JSON lexing helpers are the
Binance scanner's (:mod:`meltica_nb.kernels.binance_scan_kernels`), shared, not copied.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from meltica_nb.kernels.binance_scan_kernels import (
    _E_FB,
    _digits,
    _kernel,
    _parse_int,
    _plain_string,
    _skip_value,
    _word,
    _ws,
    lookup_symbol,
)
from meltica_nb.kernels.decimal_kernels import OK as DECIMAL_OK
from meltica_nb.kernels.decimal_kernels import parse_decimal

__all__ = ["FALLBACK", "OK", "SPAN_FIELDS", "iso8601_ns", "scan_batch"]

#: The frame was a book message; its row, levels and checksum are written.
OK = 0
#: Not a book frame the scanner understands: nothing written, orjson decides.
FALLBACK = 1

#: Columns of the level scratch: price start, price end, qty start, qty end, side (0 bid).
SPAN_FIELDS = 5

_QUOTE, _COMMA, _COLON = 34, 44, 58
_LBRACK, _RBRACK, _LBRACE, _RBRACE = 91, 93, 123, 125
_BID, _ASK = 0, 1

# per-frame state slots (int64 scratch ``st``); the fast path's first level and level count
# of each side (``_FIRST + side``, ``_COUNT + side``; count -1: the side's key not seen, which
# the general path checks too)
_N, _SNAP, _CSUM, _TS, _SYM_S, _SYM_E, _UPDATE = 0, 1, 2, 3, 4, 5, 6
_FIRST, _COUNT = 7, 9
#: int64 slots of the per-frame state array.
STATE_SIZE = 11

_W_BOOK_PREFIX = _word(b"book-")
_W_BOOK = _word(b"book")
_W_SNAPSHOT, _W_UPDATE = _word(b"snapshot"), _word(b"update")
_W_AS, _W_BS, _W_A, _W_B, _W_C = _word(b"as"), _word(b"bs"), _word(b"a"), _word(b"b"), _word(b"c")
_W_CHANNEL, _W_TYPE, _W_DATA = _word(b"channel"), _word(b"type"), _word(b"data")
_W_SYMBOL, _W_BIDS, _W_ASKS = _word(b"symbol"), _word(b"bids"), _word(b"asks")
_W_CHECKSUM, _W_TIMESTAMP = _word(b"checksum"), _word(b"timestamp")
_W_PRICE, _W_QTY = _word(b"price"), _word(b"qty")

_MAX_CRC = 0xFFFFFFFF

#: Powers of ten, and the largest value each may multiply without leaving int64.
_POW10 = np.array([10**k for k in range(19)], np.int64)
_FITS = np.array([(2**63 - 1) // 10**k for k in range(19)], np.int64)


@_kernel
def _eq(buf, s, e, word):
    """True when ``buf[s:e]`` spells ``word``."""
    if e - s != word.shape[0]:
        return False
    k = 0
    while k < e - s and buf[s + k] == word[k]:
        k += 1
    return k == e - s


@_kernel
def _starts(buf, s, e, word):
    if e - s < word.shape[0]:
        return False
    return _eq(buf, s, s + word.shape[0], word)


@_kernel
def _expect(buf, i, end, c):
    """Index after byte ``c`` (whitespace first), or FALLBACK."""
    i = _ws(buf, i, end)
    if i >= end or buf[i] != c:
        return _E_FB
    return i + 1


@_kernel
def _string(buf, i, end):
    """At a (whitespace, then) plain string -> ``(index after, start, end)`` of its text."""
    i = _ws(buf, i, end)
    if i >= end or buf[i] != _QUOTE:
        return _E_FB, 0, 0
    close = _plain_string(buf, i, end)
    if close < 0:
        return _E_FB, 0, 0
    return close + 1, i + 1, close


@_kernel
def _number(buf, i, end):
    """At a JSON number -> ``(index after, start, end)``, by JSON's grammar exactly:
    ``-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?``."""
    i = _ws(buf, i, end)
    s = i
    if i < end and buf[i] == 45:
        i += 1
    if i >= end or not 48 <= buf[i] <= 57:
        return _E_FB, 0, 0
    i = i + 1 if buf[i] == 48 else _digits(buf, i, end)
    if i < end and buf[i] == 46:
        j = _digits(buf, i + 1, end)
        if j == i + 1:
            return _E_FB, 0, 0
        i = j
    if i < end and (buf[i] == 101 or buf[i] == 69):
        i += 1
        if i < end and (buf[i] == 43 or buf[i] == 45):
            i += 1
        j = _digits(buf, i, end)
        if j == i:
            return _E_FB, 0, 0
        i = j
    return i, s, i


@_kernel
def _key(buf, i, end):
    """At a member -> ``(index of its value, key start, key end)``."""
    i, ks, ke = _string(buf, i, end)
    if i < 0:
        return i, 0, 0
    i = _expect(buf, i, end, _COLON)
    return i, ks, ke


@_kernel
def _next(buf, i, end, close):
    """After a member/element -> ``(index, more follow)``: past ',' or past ``close``."""
    i = _ws(buf, i, end)
    if i >= end:
        return _E_FB, False
    if buf[i] == _COMMA:
        return i + 1, True
    if buf[i] == close:
        return i + 1, False
    return _E_FB, False


@_kernel
def _add_span(spans, st, side, ps, pe, qs, qe):
    n = st[_N]
    if n >= spans.shape[0]:
        return False
    spans[n, 0], spans[n, 1], spans[n, 2], spans[n, 3], spans[n, 4] = ps, pe, qs, qe, side
    st[_N] = n + 1
    return True


# -- v1 --------------------------------------------------------------------------------------

@_kernel
def _v1_level(buf, i, end, spans, st, side):
    """At ``["price","volume","ts"(,"r")]`` -> index after it (timestamp kept as the max)."""
    i = _expect(buf, i, end, _LBRACK)
    if i < 0:
        return i
    i, ps, pe = _string(buf, i, end)
    i = _expect(buf, i, end, _COMMA) if i >= 0 else i
    i, qs, qe = _string(buf, i, end) if i >= 0 else (i, 0, 0)
    i = _expect(buf, i, end, _COMMA) if i >= 0 else i
    i, ts, te = _string(buf, i, end) if i >= 0 else (i, 0, 0)
    if i < 0:
        return _E_FB
    status, ns = parse_decimal(buf, ts, te, 9)
    if status != DECIMAL_OK:
        return _E_FB
    st[_TS] = max(st[_TS], ns)
    i = _ws(buf, i, end)
    if i < end and buf[i] == _COMMA:  # the republish flag "r"
        i, fs, fe = _string(buf, i + 1, end)
        if i < 0 or fe - fs != 1 or buf[fs] != 114:
            return _E_FB
    if not _add_span(spans, st, side, ps, pe, qs, qe):
        return _E_FB
    return _expect(buf, i, end, _RBRACK)


@_kernel
def _levels(buf, i, end, spans, st, side, v2):
    """At ``[level, ...]`` (v1 arrays or v2 objects) -> index after it. A side's second key
    falls back: in one JSON object the last one counts, which orjson decides."""
    i = _expect(buf, i, end, _LBRACK)
    if i < 0 or st[_COUNT + side] >= 0:
        return _E_FB
    st[_COUNT + side] = 0
    j = _ws(buf, i, end)
    if j < end and buf[j] == _RBRACK:
        return j + 1
    more = True
    while more:
        i = _v2_level(buf, i, end, spans, st, side) if v2 else _v1_level(buf, i, end, spans,
                                                                           st, side)
        if i < 0:
            return i
        i, more = _next(buf, i, end, _RBRACK)
        if i < 0:
            return i
    return i


@_kernel
def _v1_checksum(buf, i, end, st):
    """At ``"123"`` -> index after it; the value (unsigned 32-bit) goes to the state."""
    i, s, e = _string(buf, i, end)
    if i < 0 or e == s or e - s > 10:
        return _E_FB
    v = 0
    for k in range(s, e):
        c = buf[k]
        if not 48 <= c <= 57:
            return _E_FB
        v = v * 10 + (int(c) - 48)
    if v > _MAX_CRC:
        return _E_FB
    st[_CSUM] = v
    return i


@_kernel
def _v1_member(buf, i, end, spans, st, ks, ke):
    """One member of a v1 book object -> index after its value."""
    if _eq(buf, ks, ke, _W_AS) or _eq(buf, ks, ke, _W_BS):
        st[_SNAP] = 1
        return _levels(buf, i, end, spans, st, _ASK if buf[ks] == 97 else _BID, False)
    if _eq(buf, ks, ke, _W_A) or _eq(buf, ks, ke, _W_B):
        st[_UPDATE] = 1
        return _levels(buf, i, end, spans, st, _ASK if buf[ks] == 97 else _BID, False)
    if _eq(buf, ks, ke, _W_C):
        return _v1_checksum(buf, i, end, st)
    return _E_FB


@_kernel
def _v1_object(buf, i, end, spans, st):
    """At ``{"as"|"bs"|"a"|"b"|"c": ...}`` -> index after it."""
    i = _expect(buf, i, end, _LBRACE)
    more = i >= 0
    while more:
        i, ks, ke = _key(buf, i, end)
        if i < 0:
            return i
        i = _v1_member(buf, i, end, spans, st, ks, ke)
        if i < 0:
            return i
        i, more = _next(buf, i, end, _RBRACE)
    return i


@_kernel
def _scan_v1(buf, start, end, spans, st):
    """A v1 book frame -> index after it; the pair span lands in the state."""
    i = _expect(buf, start, end, _LBRACK)
    if i < 0:
        return i
    i, _ = _parse_int(buf, _ws(buf, i, end), end)
    i = _expect(buf, i, end, _COMMA) if i >= 0 else i
    while i >= 0 and _ws(buf, i, end) < end and buf[_ws(buf, i, end)] == _LBRACE:
        i = _v1_object(buf, i, end, spans, st)
        i = _expect(buf, i, end, _COMMA) if i >= 0 else i
    if i < 0:
        return i
    i, cs, ce = _string(buf, i, end)
    if i < 0 or not _starts(buf, cs, ce, _W_BOOK_PREFIX):
        return _E_FB
    i, ss, se = _string(buf, _expect(buf, i, end, _COMMA), end)
    if i < 0 or st[_SNAP] == st[_UPDATE]:  # exactly one of snapshot / update keys
        return _E_FB
    st[_SYM_S], st[_SYM_E] = ss, se
    return _expect(buf, i, end, _RBRACK)


# -- v2 --------------------------------------------------------------------------------------

@_kernel
def _v2_level(buf, i, end, spans, st, side):
    """At ``{"price":n,"qty":n}`` (either order) -> index after it."""
    i = _expect(buf, i, end, _LBRACE)
    ps = pe = qs = qe = -1
    more = i >= 0
    while more:
        i, ks, ke = _key(buf, i, end)
        if i < 0:
            return i
        if _eq(buf, ks, ke, _W_PRICE) and ps < 0:
            i, ps, pe = _number(buf, i, end)
        elif _eq(buf, ks, ke, _W_QTY) and qs < 0:
            i, qs, qe = _number(buf, i, end)
        else:
            return _E_FB
        if i < 0:
            return i
        i, more = _next(buf, i, end, _RBRACE)
    if i < 0 or ps < 0 or qs < 0 or not _add_span(spans, st, side, ps, pe, qs, qe):
        return _E_FB
    return i


@_kernel
def _v2_checksum(buf, i, end, st):
    i = _ws(buf, i, end)
    if i >= end or not 48 <= buf[i] <= 57:
        return _E_FB
    i, v = _parse_int(buf, i, end)
    if i < 0 or v > _MAX_CRC:
        return _E_FB
    st[_CSUM] = v
    return i


@_kernel
def _v2_data_member(buf, i, end, spans, st, ks, ke, stack):
    if _eq(buf, ks, ke, _W_SYMBOL):
        i, st[_SYM_S], st[_SYM_E] = _string(buf, i, end)
        return i
    if _eq(buf, ks, ke, _W_BIDS):
        return _levels(buf, i, end, spans, st, _BID, True)
    if _eq(buf, ks, ke, _W_ASKS):
        return _levels(buf, i, end, spans, st, _ASK, True)
    if _eq(buf, ks, ke, _W_CHECKSUM):
        return _v2_checksum(buf, i, end, st)
    if _eq(buf, ks, ke, _W_TIMESTAMP):
        i, ts, te = _string(buf, i, end)
        ns = iso8601_ns(buf, ts, te) if i >= 0 else -1
        if ns < 0:
            return _E_FB
        st[_TS] = ns
        return i
    return _skip_value(buf, _ws(buf, i, end), end, stack)


@_kernel
def _v2_data(buf, i, end, spans, st, stack):
    """At ``[{...}]`` (one book entry) -> index after it."""
    i = _expect(buf, i, end, _LBRACK)
    i = _expect(buf, i, end, _LBRACE) if i >= 0 else i
    more = i >= 0
    while more:
        i, ks, ke = _key(buf, i, end)
        if i < 0:
            return i
        i = _v2_data_member(buf, i, end, spans, st, ks, ke, stack)
        if i < 0:
            return i
        i, more = _next(buf, i, end, _RBRACE)
    return _expect(buf, i, end, _RBRACK) if i >= 0 else i


@_kernel
def _v2_member(buf, i, end, spans, st, ks, ke, stack):
    if _eq(buf, ks, ke, _W_CHANNEL):
        i, s, e = _string(buf, i, end)
        return i if i >= 0 and _eq(buf, s, e, _W_BOOK) else _E_FB
    if _eq(buf, ks, ke, _W_TYPE):
        i, s, e = _string(buf, i, end)
        st[_SNAP] += 1 if i >= 0 and _eq(buf, s, e, _W_SNAPSHOT) else 0
        st[_UPDATE] += 1 if i >= 0 and _eq(buf, s, e, _W_UPDATE) else 0
        return i
    if _eq(buf, ks, ke, _W_DATA):
        return _v2_data(buf, i, end, spans, st, stack)
    return _skip_value(buf, _ws(buf, i, end), end, stack)


@_kernel
def _scan_v2(buf, start, end, spans, st, stack):
    """A v2 book frame -> index after it (channel "book" required)."""
    i = _expect(buf, start, end, _LBRACE)
    more = i >= 0
    seen_book = False
    while more:
        i, ks, ke = _key(buf, i, end)
        if i < 0:
            return i
        seen_book = seen_book or _eq(buf, ks, ke, _W_CHANNEL)
        i = _v2_member(buf, i, end, spans, st, ks, ke, stack)
        if i < 0:
            return i
        i, more = _next(buf, i, end, _RBRACE)
    if i < 0 or not seen_book or st[_SNAP] + st[_UPDATE] != 1 or st[_SYM_S] < 0:
        return _E_FB
    return i


# -- v1 fast path ----------------------------------------------------------------------------
#
# Nearly every frame of a v1 feed is a compact book message, as Kraken prints it:
#
#     [992,{"b":[["354.15000000","5.00000000","1618678133.365913"]],"c":"2583817756"},
#      "book-1000","XMR/USD"]
#
# The general path lexes it generically (whitespace anywhere, keys compared as words, every
# decimal through the full decimal grammar, and twice: once to validate, once to convert).
# The fast path reads exactly this shape in one pass: no whitespace, each side's key at most
# once, decimals ``[0-9]+(.[0-9]+)?``, each level kept as its digits (an integer) and its
# number of decimals, scaled to the instrument's exponents once the pair is known. Anything
# else, including a value that does not fit, sends the frame to the general path, which
# decides it exactly as before; so the fast path only ever accepts frames the general path
# reads the same way (the property tests hold both to the orjson reference).
#
# Its level scratch rows (the ``spans`` array): price digits, price decimals, quantity
# digits, quantity decimals. Its helpers are inlined into :func:`_fast_v1` (Numba IR
# inlining: a call between compiled functions is not free, and a level makes a dozen), but
# for the digit loop, which stays one compiled function: eight inlined copies of it doubled
# the scanner's first compilation (about 20 s more) and ran no faster.

_inline = njit(cache=True, _nrt=False, inline="always")

@_kernel
def _fast_digits(buf, k, v):
    """Digits from ``k`` folded into ``v`` -> ``(index of the first non-digit, value)``. No
    bound check per byte: :func:`_fast_v1` only reads frames whose last byte is ``]``."""
    while True:
        d = int(buf[k]) - 48
        if d < 0 or d > 9:
            return k, v
        v = v * 10 + d
        k += 1


@_inline
def _fast_decimal(buf, i, end):
    """At ``digits[.digits]`` closed by a quote -> ``(index of the quote, digits, decimals)``;
    more than 18 digits, or any other byte, gives ``_E_FB``."""
    if i >= end:
        return _E_FB, 0, 0
    k, v = _fast_digits(buf, i, 0)
    if k == i:
        return _E_FB, 0, 0
    decimals = 0
    if k < end and buf[k] == 46:
        dot = k
        k, v = _fast_digits(buf, k + 1, v)
        decimals = k - dot - 1
        if decimals == 0:
            return _E_FB, 0, 0
    if k >= end or buf[k] != _QUOTE or k - i - (1 if decimals else 0) > 18:
        return _E_FB, 0, 0
    return k, v, decimals


@_inline
def _scaled(digits, decimals, exponent):
    """``digits * 10**-decimals`` as a mantissa at ``exponent``, -1 when it does not fit
    (more decimals than the exponent keeps, or beyond int64: the general path decides)."""
    k = exponent - decimals
    if k < 0 or k > 18 or digits > _FITS[k]:
        return -1
    return digits * _POW10[k]


@_inline
def _fast_level(buf, i, end, spans, st):
    """At ``["price","volume","timestamp"(,"r")]`` -> index after it; the level goes to the
    scratch, the timestamp (ns) to the state's newest."""
    n = st[_N]
    if n >= spans.shape[0] or i + 2 > end or buf[i] != _LBRACK or buf[i + 1] != _QUOTE:
        return _E_FB
    i, spans[n, 0], spans[n, 1] = _fast_decimal(buf, i + 2, end)
    if i < 0 or i + 3 > end or buf[i + 1] != _COMMA or buf[i + 2] != _QUOTE:
        return _E_FB
    i, spans[n, 2], spans[n, 3] = _fast_decimal(buf, i + 3, end)
    if i < 0 or i + 3 > end or buf[i + 1] != _COMMA or buf[i + 2] != _QUOTE:
        return _E_FB
    i, seconds, decimals = _fast_decimal(buf, i + 3, end)
    ns = _scaled(seconds, decimals, 9) if i >= 0 else -1
    if ns < 0:
        return _E_FB
    st[_TS] = max(st[_TS], ns)
    st[_N] = n + 1
    i += 1
    if i + 4 <= end and buf[i] == _COMMA:  # the republish flag "r"
        if buf[i + 1] != _QUOTE or buf[i + 2] != 114 or buf[i + 3] != _QUOTE:
            return _E_FB
        i += 4
    return i + 1 if i < end and buf[i] == _RBRACK else _E_FB


@_inline
def _fast_side(buf, i, end, spans, st, side):
    """At ``[level,...]`` of one side (its first key in the frame) -> index after it."""
    if st[_COUNT + side] >= 0 or i >= end or buf[i] != _LBRACK:
        return _E_FB
    st[_FIRST + side] = st[_N]
    i += 1
    more = True
    while more:
        i = _fast_level(buf, i, end, spans, st)
        if i < 0 or i >= end:
            return _E_FB
        more = buf[i] == _COMMA
        i += 1
    st[_COUNT + side] = st[_N] - st[_FIRST + side]
    return i if buf[i - 1] == _RBRACK else _E_FB


@_inline
def _fast_checksum(buf, i, end, st):
    """At ``"123"`` (the first checksum of the frame) -> index after it."""
    if st[_CSUM] >= 0 or i >= end or buf[i] != _QUOTE:
        return _E_FB
    k, v, decimals = _fast_decimal(buf, i + 1, end)
    if k < 0 or decimals != 0 or k - i - 1 > 10 or v > _MAX_CRC:  # 1 to 10 digits
        return _E_FB
    st[_CSUM] = v
    return k + 1


@_inline
def _fast_member(buf, i, end, spans, st):
    """At ``"as"|"bs"|"a"|"b"|"c":value`` -> index after the value."""
    if i + 4 > end or buf[i] != _QUOTE:
        return _E_FB
    c = buf[i + 1]
    two = buf[i + 2] == 115  # "as" / "bs": a snapshot
    k = i + 3 if two else i + 2
    if k + 2 > end or buf[k] != _QUOTE or buf[k + 1] != _COLON:
        return _E_FB
    if c == 99 and not two:
        return _fast_checksum(buf, k + 2, end, st)
    if c != 97 and c != 98:
        return _E_FB
    st[_SNAP if two else _UPDATE] = 1
    return _fast_side(buf, k + 2, end, spans, st, _ASK if c == 97 else _BID)


@_inline
def _fast_object(buf, i, end, spans, st):
    """At ``{member,...}`` -> index after it."""
    i += 1
    more = True
    while more:
        i = _fast_member(buf, i, end, spans, st)
        if i < 0 or i >= end:
            return _E_FB
        more = buf[i] == _COMMA
        i += 1
    return i if buf[i - 1] == _RBRACE else _E_FB


@_kernel
def _fast_v1(buf, start, end, spans, st):
    """A compact v1 book frame -> True when read whole; the pair span lands in the state."""
    if (end - start < 2 or buf[start] != _LBRACK or buf[end - 1] != _RBRACK
            or not 49 <= buf[start + 1] <= 57):
        return False
    i = _digits(buf, start + 1, end)
    if i - start > 19:
        return False
    while i >= 0 and i + 1 < end and buf[i] == _COMMA and buf[i + 1] == _LBRACE:
        i = _fast_object(buf, i + 1, end, spans, st)
    if i < 0 or i >= end or buf[i] != _COMMA or st[_SNAP] == st[_UPDATE]:
        return False
    i, cs, ce = _string(buf, i + 1, end)
    if i < 0 or i >= end or buf[i] != _COMMA or not _starts(buf, cs, ce, _W_BOOK_PREFIX):
        return False
    i, st[_SYM_S], st[_SYM_E] = _string(buf, i + 1, end)
    return i + 1 == end and buf[i] == _RBRACK


@_kernel
def _fast_levels(out_levels, at, spans, st, side, pexp, qexp):
    """One side's levels from the scratch, in array order, from ``out_levels[at]`` -> the
    index after them, or -1 when a value does not fit."""
    first = st[_FIRST + side]
    for j in range(first, first + max(st[_COUNT + side], 0)):
        px = _scaled(spans[j, 0], spans[j, 1], pexp)
        qty = _scaled(spans[j, 2], spans[j, 3], qexp)
        if px <= 0 or qty < 0:
            return -1
        out_levels[at]["price"] = px
        out_levels[at]["quantity"] = qty
        at += 1
    return at


# -- timestamps ------------------------------------------------------------------------------

@_kernel
def _digits_value(buf, s, n):
    v = 0
    for k in range(s, s + n):
        c = buf[k]
        if not 48 <= c <= 57:
            return -1
        v = v * 10 + (int(c) - 48)
    return v


@_kernel
def _days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    y -= 1 if m <= 2 else 0
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@_kernel
def iso8601_ns(buf, s, e):
    """``YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`` in ``buf[s:e]`` -> ns since the epoch, -1 if not."""
    if e - s < 20 or buf[e - 1] != 90 or buf[s + 10] != 84:
        return -1
    if buf[s + 4] != 45 or buf[s + 7] != 45 or buf[s + 13] != 58 or buf[s + 16] != 58:
        return -1
    y, mo, d = _digits_value(buf, s, 4), _digits_value(buf, s + 5, 2), _digits_value(buf, s + 8, 2)
    h, mi = _digits_value(buf, s + 11, 2), _digits_value(buf, s + 14, 2)
    sec = _digits_value(buf, s + 17, 2)
    if min(y, mo, d, h, mi, sec) < 0 or not 1 <= mo <= 12 or not 1 <= d <= 31:
        return -1
    frac = 0
    n = e - 1 - (s + 19)
    if n > 0:
        if buf[s + 19] != 46 or n - 1 > 9 or n == 1:
            return -1
        frac = _digits_value(buf, s + 20, n - 1)
        if frac < 0:
            return -1
        for _ in range(9 - (n - 1)):
            frac *= 10
    elif n < 0:
        return -1
    days = _days_from_civil(y, mo, d)
    return ((days * 24 + h) * 60 + mi) * 60_000_000_000 + sec * 1_000_000_000 + frac


# -- records ---------------------------------------------------------------------------------

@_kernel
def _write_side(out_levels, at, buf, spans, n, side, pexp, qexp):
    """Mantissas of the ``side`` spans, in array order, from ``out_levels[at]``; -1 if one
    does not fit the exponents."""
    for j in range(n):
        if spans[j, 4] != side:
            continue
        ps, px = parse_decimal(buf, spans[j, 0], spans[j, 1], pexp)
        qs, qty = parse_decimal(buf, spans[j, 2], spans[j, 3], qexp)
        if ps != DECIMAL_OK or qs != DECIMAL_OK or px <= 0 or qty < 0:
            return -1
        out_levels[at]["price"] = px
        out_levels[at]["quantity"] = qty
        at += 1
    return at


@_kernel
def _general_levels(out_levels, nl, buf, spans, st, pexp, qexp):
    """The general path's levels, bids then asks -> ``(index of the first ask, end)``."""
    n = st[_N]
    mid = _write_side(out_levels, nl, buf, spans, n, _BID, pexp, qexp)
    top = _write_side(out_levels, mid, buf, spans, n, _ASK, pexp, qexp) if mid >= 0 else -1
    return mid, top


@_kernel
def _fast_levels_of(out_levels, nl, st, spans, pexp, qexp):
    """The fast path's levels, bids then asks -> ``(index of the first ask, end)``."""
    mid = _fast_levels(out_levels, nl, spans, st, _BID, pexp, qexp)
    top = _fast_levels(out_levels, mid, spans, st, _ASK, pexp, qexp) if mid >= 0 else -1
    return mid, top


@_kernel
def _row(out_depth, out_checksum, nd, st, inst, venue, recv, nl, mid, top):
    """The frame's DEPTH_UPDATE row and checksum."""
    row = out_depth[nd]
    row["ingest_ns"] = recv
    row["exchange_ns"] = st[_TS]
    row["first_id"] = 0
    row["final_id"] = 0
    row["prev_final_id"] = -1
    row["level_off"] = nl
    row["n_bids"] = mid - nl
    row["n_asks"] = top - mid
    row["instrument"] = inst
    row["venue"] = venue
    row["is_snapshot"] = st[_SNAP]
    out_checksum[nd] = st[_CSUM]


@_kernel
def _reset(st):
    for k in range(STATE_SIZE):
        st[k] = 0
    st[_CSUM] = -1
    st[_SYM_S] = -1
    st[_COUNT + _BID] = -1
    st[_COUNT + _ASK] = -1


@_kernel
def _general_frame(buf, start, end, spans, st, stack):
    """Validate one frame's shape -> True when it is a complete v1 or v2 book message."""
    i = _ws(buf, start, end)
    if i >= end:
        return False
    if buf[i] == _LBRACK:
        i = _scan_v1(buf, i, end, spans, st)
    elif buf[i] == _LBRACE:
        i = _scan_v2(buf, i, end, spans, st, stack)
    else:
        return False
    return i >= 0 and _ws(buf, i, end) == end


@_kernel
def _frame(out_depth, out_levels, out_checksum, nd, nl, buf, start, end, recv, venue, symbols,
           spans, st, stack):
    """One frame -> the levels it wrote (its row is ``out_depth[nd]``), -1 for FALLBACK."""
    _reset(st)
    fast = _fast_v1(buf, start, end, spans, st)
    if not fast:
        _reset(st)
        if not _general_frame(buf, start, end, spans, st, stack):
            return -1
    slots, sym_bytes, sym_len, sym_inst, price_exp, qty_exp = symbols
    inst = lookup_symbol(buf, st[_SYM_S], st[_SYM_E], slots, sym_bytes, sym_len, sym_inst)
    if inst == 0 or nl + st[_N] > out_levels.shape[0]:
        return -1
    pexp, qexp = np.int64(price_exp[inst]), np.int64(qty_exp[inst])
    if fast:  # a value it cannot scale is off Kraken's print: orjson decides
        mid, top = _fast_levels_of(out_levels, nl, st, spans, pexp, qexp)
    else:
        mid, top = _general_levels(out_levels, nl, buf, spans, st, pexp, qexp)
    if top < 0:
        return -1
    _row(out_depth, out_checksum, nd, st, inst, venue, recv, nl, mid, top)
    return top - nl


@njit(cache=True, _nrt=False, nogil=True)  # the feed's lock guards its arrays
def scan_batch(out_depth, out_levels, out_checksum, out_status, out_row, buf, frame_len,
               recv_ns, venue, slots, sym_bytes, sym_len, sym_inst, price_exp, qty_exp, spans,
               st, stack):
    """Scan the frames laid end to end in ``buf`` (``frame_len[f]`` bytes each) ->
    ``(rows, levels)``.

    Writes ``out_depth`` rows (DEPTH_UPDATE), their levels in ``out_levels`` (BOOK_LEVEL),
    ``out_checksum[row]`` (-1: none), ``out_status[f]`` (OK / FALLBACK) and ``out_row[f]``
    (the frame's row or -1). The pair is looked up in the symbol table (``slots`` ...
    ``sym_inst``); ``price_exp`` / ``qty_exp`` are indexed by instrument id. Scratch: ``spans``
    (``[max levels per frame, SPAN_FIELDS]``), ``st`` (:data:`STATE_SIZE`), ``stack``.
    """
    symbols = (slots, sym_bytes, sym_len, sym_inst, price_exp, qty_exp)
    nd = 0
    nl = 0
    end = 0
    for f in range(frame_len.shape[0]):
        start = end
        end = start + frame_len[f]
        out_row[f] = -1
        out_status[f] = FALLBACK
        if not 0 <= start <= end <= buf.shape[0]:
            continue
        used = _frame(out_depth, out_levels, out_checksum, nd, nl, buf, start, end, recv_ns[f],
                      venue, symbols, spans, st, stack)
        if used < 0:
            continue
        out_status[f] = OK
        out_row[f] = nd
        nd += 1
        nl += used
    return nd, nl
