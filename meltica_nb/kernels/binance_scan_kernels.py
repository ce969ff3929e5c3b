"""Binance byte scanner: the hot streams straight from frame bytes to records, no JSON objects.

One :func:`scan_batch` call parses a batch of frames held in one byte arena (``frame_off`` /
``frame_len`` into ``buf``) and writes CANONICAL_EVENT records (``@trade``, ``@aggTrade``,
``@bookTicker``) or DEPTH_UPDATE rows plus BOOK_LEVEL levels (``@depth``, spot and USD-M, and
REST depth snapshots in :data:`MODE_SNAPSHOT`), with an exact int64 mantissa for every price and
quantity (:func:`~meltica_nb.kernels.decimal_kernels.parse_decimal`, never a float).

The scanner is a strict JSON reader that knows a few keys. Members may come in any order,
with whitespace wherever JSON allows it, inside the combined-stream wrapper
(``{"stream": ..., "data": {...}}``) or bare. Values of other keys are skipped generically
(strings with escapes, nested arrays and objects, numbers, ``true``/``false``/``null``) and
still validated. It gives up on anything it does not fully understand, and then writes nothing
for the frame:

* :data:`FALLBACK`: the frame may be fine, but the orjson path must decide: other event types,
  acks, escapes or non-ASCII bytes in a key or a used string, exponent or >18-digit numbers,
  a wrong value type, a duplicate key, an unknown symbol, a decimal that does not fit the
  instrument's exponent, nesting deeper than :data:`MAX_DEPTH`, a missing field.
* :data:`MALFORMED`: the bytes are certainly not JSON (truncated, a missing ':' or ',', a bad
  number or literal, trailing bytes); orjson would reject them too.

Before that general reader, a stream frame is tried against the compact layouts Binance
actually sends (bookTicker, trade, spot depthUpdate: the wrapper, members in their usual
order, no whitespace), read in one pass with the decimals converted on the way (about 2.5x
fewer ns per frame); any difference from the layout declines to the general reader, so both
write the same records (see "fast paths" below).

The property test in ``tests/venues/binance`` holds the scanner to the orjson reference parser
of :mod:`meltica_nb.venues.binance.parsing` on every recorded message and on generated variants
(compact-layout variants included).

Per-frame scratch lives in caller-owned arrays: ``st`` (:data:`STATE_SIZE` int64: key bitmask,
value type tags, values or (start, end) spans), ``spans`` (``[n, 4]`` int64: the byte spans of
each level's price and quantity until the symbol, hence the exponents, is known) and ``stack``
(:data:`MAX_DEPTH` uint8 for skipping nested values). Every function is a plain ``@njit`` over
arrays and integers (compiled without reference counting, see ``_kernel``) and runs unchanged
under ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from meltica_nb.kernels.decimal_kernels import OK as DECIMAL_OK
from meltica_nb.kernels.decimal_kernels import parse_decimal
from meltica_nb.schema import SCHEMA_VERSION, EventType, Flag, Kind, Side

__all__ = [
    "FALLBACK",
    "MALFORMED",
    "MAX_DEPTH",
    "MODE_SNAPSHOT",
    "MODE_STREAM",
    "OK",
    "SPAN_FIELDS",
    "STATE_SIZE",
    "add_totals",
    "count_statuses",
    "fnv1a64_limbs",
    "frame_offsets",
    "lookup_symbol",
    "scan_batch",
]

#: The frame was parsed and its record written.
OK = 0
#: Not understood by the scanner; nothing written; the orjson path decides.
FALLBACK = 1
#: Certainly not JSON (truncated or broken structure); nothing written.
MALFORMED = 2

#: Frames are websocket messages: trade, aggTrade, bookTicker, depthUpdate, wrapped or bare.
MODE_STREAM = 0
#: Frames are REST depth snapshots (``lastUpdateId``, ``bids``, ``asks``) of one instrument.
MODE_SNAPSHOT = 1

#: Deepest nesting of a skipped value; deeper frames fall back (orjson allows 1024).
MAX_DEPTH = 32
#: Columns of ``spans``: price start, price end, quantity start, quantity end.
SPAN_FIELDS = 4

# -- internal codes ------------------------------------------------------------------------

_E_FB = -1   # position result: fall back
_E_MAL = -2  # position result: malformed

# key ids (bit positions in st[_SEEN])
_K_NONE = -1
_K_e, _K_E, _K_s, _K_U, _K_u, _K_pu, _K_T, _K_t = 0, 1, 2, 3, 4, 5, 6, 7
_K_a, _K_b, _K_B, _K_A, _K_p, _K_q, _K_m = 8, 9, 10, 11, 12, 13, 14
_K_LAST, _K_BIDS, _K_ASKS, _K_DATA, _K_CTRL = 15, 16, 17, 18, 19
_N_KEYS = 20

# value kinds a key accepts
_VK_STR, _VK_INT, _VK_BOOL, _VK_LEVELS, _VK_MIXED = 1, 2, 3, 4, 5
_KEY_KIND = np.array([_VK_STR, _VK_INT, _VK_STR, _VK_INT, _VK_INT, _VK_INT, _VK_INT, _VK_INT,
                      _VK_MIXED, _VK_MIXED, _VK_STR, _VK_STR, _VK_STR, _VK_STR, _VK_BOOL,
                      _VK_INT, _VK_LEVELS, _VK_LEVELS, 0, 0], np.int64)

# type tags of stored values
_T_INT, _T_STR, _T_LEVELS, _T_BOOL = 1, 2, 3, 4

# state slots
_SEEN, _TOP, _DATA, _NSPANS = 0, 1, 2, 3
_TYPE = 8
_VAL = _TYPE + _N_KEYS
#: int64 slots of the per-frame state array ``st``.
STATE_SIZE = _VAL + 2 * _N_KEYS

# message types
_M_NONE, _M_DEPTH, _M_TRADE, _M_AGG, _M_BBO, _M_SNAPSHOT = 0, 1, 2, 3, 4, 5
_WHAT_EVENT, _WHAT_DEPTH = 1, 2

# one-byte keys of the stream mode
_KEY1 = np.full(256, _K_NONE, np.int64)
for _ch, _kid in zip("eEsUuTtabBApqm", (_K_e, _K_E, _K_s, _K_U, _K_u, _K_T, _K_t, _K_a, _K_b,
                                         _K_B, _K_A, _K_p, _K_q, _K_m), strict=True):
    _KEY1[ord(_ch)] = _kid


def _word(text: bytes) -> np.ndarray:
    return np.frombuffer(text, np.uint8).copy()


_W_DATA, _W_RESULT, _W_ERROR = _word(b"data"), _word(b"result"), _word(b"error")
_W_LAST, _W_BIDS, _W_ASKS = _word(b"lastUpdateId"), _word(b"bids"), _word(b"asks")
_W_DEPTH, _W_TRADE = _word(b"depthUpdate"), _word(b"trade")
_W_AGG, _W_BOOK = _word(b"aggTrade"), _word(b"bookTicker")
_W_TRUE, _W_FALSE, _W_NULL = _word(b"true"), _word(b"false"), _word(b"null")

# ASCII
_QUOTE, _BSLASH, _COMMA, _MINUS, _DOT, _COLON = 34, 92, 44, 45, 46, 58
_LBRACK, _RBRACK, _LBRACE, _RBRACE = 91, 93, 123, 125

# ms -> ns must fit int64
_MAX_MS = 9_223_372_036_854

# record constants
_TRADE, _BBO = int(EventType.TRADE), int(EventType.BBO)
_MARKET_DATA = int(Kind.MARKET_DATA)
_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_BUYER_MAKER = int(Flag.BUYER_MAKER)
_SCHEMA = SCHEMA_VERSION

assert DECIMAL_OK == 0

#: Every function here is compiled without Numba's reference counting (``_nrt=False``). None
#: allocates, and the scanner is many small helpers that pass ``buf`` / ``st`` along: with NRT
#: each call keeps an atomic incref/decref pair per array argument that inlining does not
#: remove (measured: 1.3 us vs 0.29 us per bookTicker frame).
_kernel = njit(cache=True, _nrt=False)


# -- lexing --------------------------------------------------------------------------------

@_kernel
def _ws(buf, i, end):
    """Index of the first non-whitespace byte at or after ``i`` (``end`` if none)."""
    while i < end:
        c = buf[i]
        if c != 32 and c != 10 and c != 13 and c != 9:
            return i
        i += 1
    return i


@_kernel
def _is_digit(c):
    return 48 <= c <= 57


@_kernel
def _digits(buf, i, end):
    """Index of the first non-digit at or after ``i``."""
    while i < end and 48 <= buf[i] <= 57:
        i += 1
    return i


@_kernel
def _plain_string(buf, i, end):
    """``i`` at an opening quote -> index of the closing quote.

    Only plain printable ASCII is accepted: an escape, a control or a non-ASCII byte falls back
    (the decoded text would differ from the bytes, or orjson must judge the UTF-8).
    """
    i += 1
    while i < end:
        c = buf[i]
        if c == _QUOTE:
            return i
        if c == _BSLASH or c < 32 or c >= 128:
            return _E_FB
        i += 1
    return _E_MAL


@_kernel
def _hex_digit(c):
    return 48 <= c <= 57 or 65 <= c <= 70 or 97 <= c <= 102


@_kernel
def _skip_unicode_escape(buf, i, end):
    """``i`` after ``\\u`` -> index after the four hex digits; surrogates fall back."""
    if i + 4 > end:
        return _E_MAL
    for k in range(4):
        if not _hex_digit(buf[i + k]):
            return _E_FB
    c = buf[i]
    if (c == 100 or c == 68) and buf[i + 1] >= 56:  # \uD800..\uDFFF (pairs are orjson's job)
        return _E_FB
    return i + 4


@_kernel
def _skip_escape(buf, i, end):
    """``i`` after a backslash -> index after the escape."""
    if i >= end:
        return _E_MAL
    c = buf[i]
    if c == 117:
        return _skip_unicode_escape(buf, i + 1, end)
    if c == 34 or c == 92 or c == 47 or c == 98 or c == 102 or c == 110 or c == 114 or c == 116:
        return i + 1
    return _E_FB


@_kernel
def _skip_string(buf, i, end):
    """``i`` at an opening quote -> index after the closing quote (escapes allowed)."""
    i += 1
    while i < end:
        c = buf[i]
        if c == _QUOTE:
            return i + 1
        if c == _BSLASH:
            i = _skip_escape(buf, i + 1, end)
            if i < 0:
                return i
            continue
        if c < 32 or c >= 128:
            return _E_FB
        i += 1
    return _E_MAL


@_kernel
def _skip_number(buf, i, end):
    """A JSON number at ``i`` -> index after it.

    Exponents and more than 18 digits fall back (orjson may turn them into inf or a float).
    """
    j = i + 1 if buf[i] == _MINUS else i
    if j >= end or not _is_digit(buf[j]):
        return _E_MAL
    k = j + 1 if buf[j] == 48 else _digits(buf, j, end)
    ndig = k - j
    if k < end and buf[k] == _DOT:
        m = _digits(buf, k + 1, end)
        if m == k + 1:
            return _E_MAL
        ndig += m - k - 1
        k = m
    if k < end and (buf[k] == 101 or buf[k] == 69):
        return _E_FB
    return _E_FB if ndig > 18 else k


@_kernel
def _parse_int(buf, i, end):
    """A JSON integer at ``i`` -> ``(index after it, value)``; fractions fall back."""
    neg = buf[i] == _MINUS
    j = i + 1 if neg else i
    k = _digits(buf, j, end)
    if k == j or (buf[j] == 48 and k - j > 1):
        return _E_MAL, 0
    if k - j > 18 or (k < end and (buf[k] == _DOT or buf[k] == 101 or buf[k] == 69)):
        return _E_FB, 0
    v = 0
    for p in range(j, k):
        v = v * 10 + (int(buf[p]) - 48)
    return k, -v if neg else v


@_kernel
def _word_at(buf, i, end, word):
    """Index after ``word`` if the bytes at ``i`` spell it, else malformed."""
    n = word.shape[0]
    if i + n > end:
        return _E_MAL
    for k in range(n):
        if buf[i + k] != word[k]:
            return _E_MAL
    return i + n


@_kernel
def _literal(buf, i, end):
    """``true`` / ``false`` / ``null`` at ``i`` -> ``(index after, 1 / 0 / 2)``."""
    c = buf[i]
    if c == 116:
        return _word_at(buf, i, end, _W_TRUE), 1
    if c == 102:
        return _word_at(buf, i, end, _W_FALSE), 0
    if c == 110:
        return _word_at(buf, i, end, _W_NULL), 2
    return _E_MAL, 0


@_kernel
def _skip_scalar(buf, i, end):
    """A string, number or literal at ``i`` -> index after it."""
    c = buf[i]
    if c == _QUOTE:
        return _skip_string(buf, i, end)
    if c == _MINUS or _is_digit(c):
        return _skip_number(buf, i, end)
    p, _ = _literal(buf, i, end)
    return p


# -- skipping nested values ----------------------------------------------------------------

_S_VALUE, _S_KEY, _S_AFTER = 0, 1, 2


@_kernel
def _open(buf, i, end, stack, depth):
    """Push the container at ``i`` -> ``(index, depth, state)``; an empty one closes at once."""
    if depth >= stack.shape[0]:
        return _E_FB, depth, _S_AFTER
    c = buf[i]
    stack[depth] = c
    i = _ws(buf, i + 1, end)
    if i >= end:
        return _E_MAL, depth, _S_AFTER
    if buf[i] == c + 2:  # '{' + 2 == '}', '[' + 2 == ']'
        return i + 1, depth, _S_AFTER
    return i, depth + 1, _S_KEY if c == _LBRACE else _S_VALUE


@_kernel
def _value_step(buf, i, end, stack, depth):
    """At a value -> after it, or inside the container it opens."""
    c = buf[i]
    if c in (_LBRACE, _LBRACK):
        return _open(buf, i, end, stack, depth)
    return _skip_scalar(buf, i, end), depth, _S_AFTER


@_kernel
def _key_step(buf, i, end):
    """At a member of a skipped object -> at its value."""
    if buf[i] != _QUOTE:
        return _E_MAL
    i = _skip_string(buf, i, end)
    if i < 0:
        return i
    i = _ws(buf, i, end)
    if i >= end or buf[i] != _COLON:
        return _E_MAL
    return i + 1


@_kernel
def _after_step(buf, i, end, stack, depth):
    """After a value inside a container -> next member or value, or close the container."""
    c = buf[i]
    top = stack[depth - 1]
    if c == _COMMA:
        return i + 1, depth, _S_KEY if top == _LBRACE else _S_VALUE
    if c == top + 2:
        return i + 1, depth - 1, _S_AFTER
    return _E_MAL, depth, _S_AFTER


@_kernel
def _skip_value(buf, i, end, stack):
    """Any JSON value at ``i`` -> index after it, validated, without recursion."""
    depth = 0
    state = _S_VALUE
    while True:
        if state == _S_AFTER and depth == 0:
            return i
        i = _ws(buf, i, end)
        if i >= end:
            return _E_MAL
        if state == _S_VALUE:
            i, depth, state = _value_step(buf, i, end, stack, depth)
        elif state == _S_KEY:
            i = _key_step(buf, i, end)
            state = _S_VALUE
        else:
            i, depth, state = _after_step(buf, i, end, stack, depth)
        if i < 0:
            return i


# -- the member loop -----------------------------------------------------------------------

@_kernel
def _span_eq(buf, s, e, word):
    """True when ``buf[s:e]`` spells ``word``."""
    n = word.shape[0]
    if e - s != n:
        return False
    k = 0
    while k < n and buf[s + k] == word[k]:
        k += 1
    return k == n


@_kernel
def _snapshot_key(buf, s, e):
    if e - s == 1 and buf[s] == 69:
        return _K_E
    if _span_eq(buf, s, e, _W_LAST):
        return _K_LAST
    if _span_eq(buf, s, e, _W_BIDS):
        return _K_BIDS
    if _span_eq(buf, s, e, _W_ASKS):
        return _K_ASKS
    return _K_NONE


@_kernel
def _wrapper_key(buf, s, e):
    if _span_eq(buf, s, e, _W_DATA):
        return _K_DATA
    if _span_eq(buf, s, e, _W_RESULT) or _span_eq(buf, s, e, _W_ERROR):
        return _K_CTRL
    return _K_NONE


@_kernel
def _key_id(buf, s, e, mode, level):
    """Key id of the key text ``buf[s:e]`` (``_K_NONE`` for keys the scanner skips)."""
    if mode == MODE_SNAPSHOT:
        return _snapshot_key(buf, s, e)
    n = e - s
    if n == 1:
        return _KEY1[buf[s]]
    if n == 2:
        return _K_pu if buf[s] == 112 and buf[s + 1] == 117 else _K_NONE
    if level == 0:
        return _wrapper_key(buf, s, e)
    return _K_NONE


@_kernel
def _key(buf, i, end, mode, level):
    """At a member -> ``(index of its value, key id)``."""
    if buf[i] != _QUOTE:
        return _E_MAL, _K_NONE
    q = _plain_string(buf, i, end)
    if q < 0:
        return q, _K_NONE
    kid = _key_id(buf, i + 1, q, mode, level)
    i = _ws(buf, q + 1, end)
    if i >= end or buf[i] != _COLON:
        return _E_MAL, _K_NONE
    i = _ws(buf, i + 1, end)
    if i >= end:
        return _E_MAL, _K_NONE
    return i, kid


@_kernel
def _store(st, kid, tag, a, b):
    st[_TYPE + kid] = tag
    st[_VAL + 2 * kid] = a
    st[_VAL + 2 * kid + 1] = b


@_kernel
def _take_str(buf, i, end, st, kid):
    if buf[i] != _QUOTE:
        return _E_FB
    q = _plain_string(buf, i, end)
    if q < 0:
        return q
    _store(st, kid, _T_STR, i + 1, q)
    return q + 1


@_kernel
def _take_int(buf, i, end, st, kid):
    c = buf[i]
    if c != _MINUS and not _is_digit(c):
        return _E_FB
    p, v = _parse_int(buf, i, end)
    if p >= 0:
        _store(st, kid, _T_INT, v, 0)
    return p


@_kernel
def _take_bool(buf, i, end, st, kid):
    c = buf[i]
    if c != 116 and c != 102:
        return _E_FB
    p, v = _literal(buf, i, end)
    if p >= 0:
        _store(st, kid, _T_BOOL, v, 0)
    return p


@_kernel
def _level_string(buf, i, end, sep):
    """At a quoted decimal inside a level -> ``(start, closing quote, index after sep)``."""
    i = _ws(buf, i, end)
    if i >= end:
        return _E_MAL, 0, 0
    if buf[i] != _QUOTE:
        return _E_FB, 0, 0
    q = _plain_string(buf, i, end)
    if q < 0:
        return q, 0, 0
    j = _ws(buf, q + 1, end)
    if j >= end:
        return _E_MAL, 0, 0
    if buf[j] != sep:
        return _E_FB, 0, 0
    return i + 1, q, j + 1


@_kernel
def _level(buf, i, end, spans, n):
    """At ``["price","qty"]`` -> index after it; the two spans go to ``spans[n]``."""
    if buf[i] != _LBRACK or n >= spans.shape[0]:
        return _E_FB
    ps, pe, i = _level_string(buf, i + 1, end, _COMMA)
    if ps < 0:
        return ps
    qs, qe, i = _level_string(buf, i, end, _RBRACK)
    if qs < 0:
        return qs
    spans[n, 0] = ps
    spans[n, 1] = pe
    spans[n, 2] = qs
    spans[n, 3] = qe
    return i


@_kernel
def _take_levels(buf, i, end, st, spans, kid):
    """At ``[[..], ...]`` -> index after it; spans of its levels appended to ``spans``."""
    if buf[i] != _LBRACK:
        return _E_FB
    first = st[_NSPANS]
    n = first
    i = _ws(buf, i + 1, end)
    if i < end and buf[i] == _RBRACK:
        _store(st, kid, _T_LEVELS, first, 0)
        return i + 1
    while i < end:
        i = _level(buf, i, end, spans, n)
        if i < 0:
            return i
        n += 1
        i = _ws(buf, i, end)
        if i < end and buf[i] == _RBRACK:
            st[_NSPANS] = n
            _store(st, kid, _T_LEVELS, first, n - first)
            return i + 1
        if i < end and buf[i] != _COMMA:
            return _E_MAL
        i = _ws(buf, i + 1, end)
    return _E_MAL


@_kernel
def _take(buf, i, end, kid, st, spans):
    """Read the value of a tracked key by the kind the key (or, for a/b, the value) has."""
    kind = _KEY_KIND[kid]
    c = buf[i]
    if kind == _VK_MIXED:
        kind = _VK_STR if c == _QUOTE else (_VK_LEVELS if c == _LBRACK else _VK_INT)
    if kind == _VK_STR:
        return _take_str(buf, i, end, st, kid)
    if kind == _VK_INT:
        return _take_int(buf, i, end, st, kid)
    if kind == _VK_BOOL:
        return _take_bool(buf, i, end, st, kid)
    return _take_levels(buf, i, end, st, spans, kid)


@_kernel
def _member(buf, i, end, kid, st, spans, stack, level):
    """The value of one member at ``i`` -> index after it."""
    if kid < 0:
        if buf[i] == _QUOTE:
            return _skip_string(buf, i, end)  # the common unknown value: "stream":"..."
        return _skip_value(buf, i, end, stack)
    if kid == _K_CTRL:
        return _E_FB
    bit = 1 << kid
    if st[_SEEN] & bit:
        return _E_FB  # duplicate key: orjson keeps the last one
    st[_SEEN] |= bit
    if level == 0:
        st[_TOP] = 1
    return _take(buf, i, end, kid, st, spans)


@_kernel
def _enter_data(buf, i, end, st):
    """At the wrapper's ``data`` value -> ``(index, level, a member follows)``."""
    if buf[i] != _LBRACE or st[_DATA] != 0:
        return _E_FB, 0, False
    st[_DATA] = 1
    i = _ws(buf, i + 1, end)
    if i >= end:
        return _E_MAL, 0, False
    if buf[i] == _RBRACE:
        return i + 1, 0, False
    return i, 1, True


@_kernel
def _after_member(buf, i, end, level):
    """After a member value -> ``(index of the next key, level, object closed)``."""
    while True:
        i = _ws(buf, i, end)
        if i >= end:
            return _E_MAL, level, True
        c = buf[i]
        if c == _COMMA:
            i = _ws(buf, i + 1, end)
            return (i if i < end else _E_MAL), level, False
        if c != _RBRACE:
            return _E_MAL, level, True
        if level == 0:
            return i + 1, 0, True
        level = 0
        i += 1


@_kernel
def _scan_object(buf, i, end, st, spans, stack, mode):
    """``i`` at the top-level '{' -> index after its '}'; payload members land in ``st``.

    The wrapper's ``data`` object is walked in place (level 1), so a wrapped message is read
    in one pass.
    """
    i = _ws(buf, i + 1, end)
    if i >= end:
        return _E_MAL
    if buf[i] == _RBRACE:
        return i + 1
    level = 0
    while True:
        i, kid = _key(buf, i, end, mode, level)
        if i < 0:
            return i
        if kid == _K_DATA:
            i, level, more = _enter_data(buf, i, end, st)
            if i < 0:
                return i
            if more:
                continue
        else:
            i = _member(buf, i, end, kid, st, spans, stack, level)
            if i < 0:
                return i
        i, level, done = _after_member(buf, i, end, level)
        if i < 0 or done:
            return i


@_kernel
def _scan_frame(buf, start, end, st, spans, stack, mode):
    """Validate one frame and collect its members -> OK / FALLBACK / MALFORMED."""
    st[_SEEN] = 0
    st[_TOP] = 0
    st[_DATA] = 0
    st[_NSPANS] = 0
    i = _ws(buf, start, end)
    if i >= end:
        return MALFORMED
    if buf[i] != _LBRACE:
        return FALLBACK
    i = _scan_object(buf, i, end, st, spans, stack, mode)
    if i < 0:
        return FALLBACK if i == _E_FB else MALFORMED
    if _ws(buf, i, end) != end:
        return MALFORMED
    if st[_DATA] != 0 and st[_TOP] != 0:
        return FALLBACK  # payload keys beside a data object: orjson reads data only
    return OK


# -- symbols -------------------------------------------------------------------------------

@_kernel
def fnv1a64_limbs(buf, start, end):
    """64-bit FNV-1a of ``buf[start:end]`` as ``(high 32 bits, low 32 bits)``.

    Computed on 32-bit limbs in int64 so it never relies on wrapping multiplication, and
    gives the same numbers compiled and as plain Python. ``prime = 2**40 + 0x1B3``.
    """
    hi = 0xCBF29CE4
    lo = 0x84222325
    for i in range(start, end):
        lo = lo ^ int(buf[i])
        t_lo = lo * 0x1B3
        t_hi = hi * 0x1B3 + (t_lo >> 32) + ((lo & 0xFFFFFF) << 8)
        lo = t_lo & 0xFFFFFFFF
        hi = t_hi & 0xFFFFFFFF
    return hi, lo


@_kernel
def _same_symbol(buf, start, n, sym_bytes, sym_len, row):
    if sym_len[row] != n:
        return False
    k = 0
    while k < n and buf[start + k] == sym_bytes[row, k]:
        k += 1
    return k == n


@_kernel
def lookup_symbol(buf, start, end, slots, sym_bytes, sym_len, sym_inst):
    """Instrument id of the symbol spelled ``buf[start:end]`` (exact bytes), 0 if unknown."""
    n = end - start
    if n <= 0 or n > sym_bytes.shape[1]:
        return 0
    hi, lo = fnv1a64_limbs(buf, start, end)
    mask = slots.shape[0] - 1
    j = lo & mask
    while slots[j, 2] >= 0:
        row = slots[j, 2]
        if (slots[j, 0] == hi and slots[j, 1] == lo
                and _same_symbol(buf, start, n, sym_bytes, sym_len, row)):
            return sym_inst[row]
        j = (j + 1) & mask
    return 0


# -- records -------------------------------------------------------------------------------

@_kernel
def _has(st, kid, tag):
    return ((st[_SEEN] >> kid) & 1) != 0 and st[_TYPE + kid] == tag


@_kernel
def _optional(st, kid, tag):
    """True when ``kid`` is absent or holds a ``tag`` value."""
    return ((st[_SEEN] >> kid) & 1) == 0 or st[_TYPE + kid] == tag


@_kernel
def _val(st, kid):
    return st[_VAL + 2 * kid]


@_kernel
def _decimal(buf, st, kid, exponent):
    return parse_decimal(buf, st[_VAL + 2 * kid], st[_VAL + 2 * kid + 1], exponent)


@_kernel
def _event_ns(st):
    """``(ok, exchange_ns)`` from the optional ``E`` (ms); 0 when absent."""
    if ((st[_SEEN] >> _K_E) & 1) == 0:
        return True, 0
    ms = st[_VAL + 2 * _K_E]
    if ms < -_MAX_MS or ms > _MAX_MS:
        return False, 0
    return True, ms * 1_000_000


@_kernel
def _classify(buf, st):
    """Message type from ``e`` (or, without ``e``, the bookTicker shape u/b/a)."""
    if ((st[_SEEN] >> _K_e) & 1) == 0:
        shape = (1 << _K_u) | (1 << _K_b) | (1 << _K_a)
        return _M_BBO if (st[_SEEN] & shape) == shape else _M_NONE
    s = st[_VAL + 2 * _K_e]
    e = st[_VAL + 2 * _K_e + 1]
    if _span_eq(buf, s, e, _W_DEPTH):
        return _M_DEPTH
    if _span_eq(buf, s, e, _W_TRADE):
        return _M_TRADE
    if _span_eq(buf, s, e, _W_AGG):
        return _M_AGG
    if _span_eq(buf, s, e, _W_BOOK):
        return _M_BBO
    return _M_NONE


@_kernel
def _header(out, k, recv, exchange_ns, seq, inst, venue, event_type):
    out[k]["ingest_ns"] = recv
    out[k]["exchange_ns"] = exchange_ns
    out[k]["seq_provider"] = seq
    out[k]["instrument"] = inst
    out[k]["venue"] = venue
    out[k]["event_type"] = event_type
    out[k]["kind"] = _MARKET_DATA
    out[k]["schema_version"] = _SCHEMA


@_kernel
def _trade_ready(st, id_key):
    return (_has(st, id_key, _T_INT) and _has(st, _K_p, _T_STR) and _has(st, _K_q, _T_STR)
            and _has(st, _K_T, _T_INT) and _has(st, _K_m, _T_BOOL))


@_kernel
def _emit_trade(out, k, buf, st, id_key, inst, venue, recv, pexp, qexp):
    """trade / aggTrade -> TRADE record ``out[k]`` (id ``t`` or ``a``, time ``T``)."""
    if not _trade_ready(st, id_key):
        return FALLBACK
    ms = _val(st, _K_T)
    ps, price = _decimal(buf, st, _K_p, pexp)
    qs, qty = _decimal(buf, st, _K_q, qexp)
    if ps != DECIMAL_OK or qs != DECIMAL_OK or ms < -_MAX_MS or ms > _MAX_MS:
        return FALLBACK
    _write_trade(out, k, recv, ms, _val(st, id_key), inst, venue, price, qty,
                 _val(st, _K_m) != 0)
    return OK


@_kernel
def _write_trade(out, k, recv, ms, tid, inst, venue, price, qty, maker):
    """The TRADE record ``out[k]``: trade id ``tid`` at ``ms``; ``maker``: the buyer was the
    maker (the aggressor sold)."""
    _header(out, k, recv, ms * 1_000_000, tid, inst, venue, _TRADE)
    out[k]["seq_first"] = tid
    out[k]["price"] = price
    out[k]["quantity"] = qty
    out[k]["trade_id"] = tid
    out[k]["flags"] = _BUYER_MAKER if maker else 0
    out[k]["side"] = _SELL if maker else _BUY


@_kernel
def _bbo_ready(st):
    return (_has(st, _K_u, _T_INT) and _has(st, _K_b, _T_STR) and _has(st, _K_B, _T_STR)
            and _has(st, _K_a, _T_STR) and _has(st, _K_A, _T_STR))


@_kernel
def _emit_bbo(out, k, buf, st, inst, venue, recv, pexp, qexp):
    """bookTicker -> BBO record ``out[k]`` (sequence ``u``, time ``E`` when sent)."""
    if not _bbo_ready(st):
        return FALLBACK
    ok, ns = _event_ns(st)
    s1, bid = _decimal(buf, st, _K_b, pexp)
    s2, bid_qty = _decimal(buf, st, _K_B, qexp)
    s3, ask = _decimal(buf, st, _K_a, pexp)
    s4, ask_qty = _decimal(buf, st, _K_A, qexp)
    if not ok or s1 != DECIMAL_OK or s2 != DECIMAL_OK or s3 != DECIMAL_OK or s4 != DECIMAL_OK:
        return FALLBACK
    _write_bbo(out, k, recv, ns, _val(st, _K_u), inst, venue, (bid, bid_qty, ask, ask_qty))
    return OK


@_kernel
def _write_bbo(out, k, recv, ns, seq, inst, venue, top):
    """The BBO record ``out[k]``; ``top`` = (bid, bid qty, ask, ask qty)."""
    _header(out, k, recv, ns, seq, inst, venue, _BBO)
    out[k]["bid_price"] = top[0]
    out[k]["bid_qty"] = top[1]
    out[k]["ask_price"] = top[2]
    out[k]["ask_qty"] = top[3]


@_kernel
def _convert_levels(out_levels, at, buf, spans, first, n, pexp, qexp):
    """Mantissas of ``n`` level spans from ``spans[first]`` into ``out_levels[at:]``."""
    for j in range(n):
        ps, px = parse_decimal(buf, spans[first + j, 0], spans[first + j, 1], pexp)
        qs, qty = parse_decimal(buf, spans[first + j, 2], spans[first + j, 3], qexp)
        if ps != DECIMAL_OK or qs != DECIMAL_OK:
            return False
        out_levels[at + j]["price"] = px
        out_levels[at + j]["quantity"] = qty
    return True


@_kernel
def _emit_book(out_depth, r, out_levels, lev, buf, st, spans, ids, inst, venue, recv, exps):
    """One DEPTH_UPDATE row + its levels (bids first). ``ids`` = (bids key, asks key, first id,
    final id, prev final id, is_snapshot); ``exps`` = (price exp, qty exp).
    Returns ``(status, levels used)``."""
    bids_key, asks_key, first_id, final_id, prev_id, snapshot = ids
    ok, ns = _event_ns(st)
    nb = st[_VAL + 2 * bids_key + 1]
    na = st[_VAL + 2 * asks_key + 1]
    if not ok or lev + nb + na > out_levels.shape[0]:
        return FALLBACK, 0
    if not (_convert_levels(out_levels, lev, buf, spans, _val(st, bids_key), nb, exps[0], exps[1])
            and _convert_levels(out_levels, lev + nb, buf, spans, _val(st, asks_key), na,
                                exps[0], exps[1])):
        return FALLBACK, 0
    _write_depth_row(out_depth, r, recv, ns, (first_id, final_id, prev_id, snapshot), lev, nb,
                     na, inst, venue)
    return OK, nb + na


@_kernel
def _write_depth_row(out_depth, r, recv, ns, ids, lev, nb, na, inst, venue):
    """The DEPTH_UPDATE row ``out_depth[r]``: ``ids`` = (first id, final id, prev final id,
    is_snapshot), its ``nb`` bids then ``na`` asks from ``out_levels[lev]``."""
    d = out_depth[r]
    d["ingest_ns"] = recv
    d["exchange_ns"] = ns
    d["first_id"] = ids[0]
    d["final_id"] = ids[1]
    d["prev_final_id"] = ids[2]
    d["level_off"] = lev
    d["n_bids"] = nb
    d["n_asks"] = na
    d["instrument"] = inst
    d["venue"] = venue
    d["is_snapshot"] = ids[3]


@_kernel
def _book_ids(st, message):
    """``(ready, ids)`` for :func:`_emit_book`: a diff (U, u, pu) or a snapshot (lastUpdateId)."""
    if message == _M_SNAPSHOT:
        ready = (_has(st, _K_LAST, _T_INT) and _has(st, _K_BIDS, _T_LEVELS)
                 and _has(st, _K_ASKS, _T_LEVELS) and _optional(st, _K_E, _T_INT))
        last = _val(st, _K_LAST)
        return ready, (_K_BIDS, _K_ASKS, last, last, -1, 1)
    ready = (_has(st, _K_U, _T_INT) and _has(st, _K_u, _T_INT) and _has(st, _K_b, _T_LEVELS)
             and _has(st, _K_a, _T_LEVELS) and _optional(st, _K_E, _T_INT)
             and _optional(st, _K_pu, _T_INT))
    prev = _val(st, _K_pu) if _has(st, _K_pu, _T_INT) else -1
    return ready, (_K_b, _K_a, _val(st, _K_U), _val(st, _K_u), prev, 0)


@_kernel
def _message(buf, st, mode, instrument, slots, sym_bytes, sym_len, sym_inst):
    """``(message type, instrument id)``; ``(_M_NONE, 0)`` when the scanner cannot emit it."""
    if mode == MODE_SNAPSHOT:
        return _M_SNAPSHOT, instrument
    message = _classify(buf, st)
    if message == _M_NONE or not _has(st, _K_s, _T_STR):
        return _M_NONE, 0
    inst = lookup_symbol(buf, _val(st, _K_s), st[_VAL + 2 * _K_s + 1],
                         slots, sym_bytes, sym_len, sym_inst)
    return (message, inst) if inst > 0 else (_M_NONE, 0)


@_kernel
def _emit(out_events, out_depth, out_levels, ne, nd, nl, buf, st, spans, message, inst, venue,
          recv, exps):
    """Write the frame's record -> ``(status, what was written, levels used)``."""
    if message in (_M_DEPTH, _M_SNAPSHOT):
        ready, ids = _book_ids(st, message)
        if not ready or nd >= out_depth.shape[0]:
            return FALLBACK, 0, 0
        status, used = _emit_book(out_depth, nd, out_levels, nl, buf, st, spans, ids, inst,
                                  venue, recv, exps)
        return status, _WHAT_DEPTH, used
    if ne >= out_events.shape[0]:
        return FALLBACK, 0, 0
    if message == _M_BBO:
        status = _emit_bbo(out_events, ne, buf, st, inst, venue, recv, exps[0], exps[1])
    else:
        id_key = _K_t if message == _M_TRADE else _K_a
        status = _emit_trade(out_events, ne, buf, st, id_key, inst, venue, recv, exps[0], exps[1])
    return status, _WHAT_EVENT, 0


# -- fast paths ----------------------------------------------------------------------------
#
# Binance sends each hot stream message in one compact layout (the combined-stream wrapper,
# the members in a fixed order, no whitespace). The fast paths read exactly that layout in one
# pass, converting the decimals as they go; anything else (another order, whitespace, an
# escape, a sign, an exponent, a long number, an unknown symbol, a decimal finer than the
# instrument's exponent, a trailing byte) declines, and the general reader above decides. A
# declined frame has written nothing that counts: a record is written only once every field
# was read, and levels beyond the used count are scratch. What a fast path accepts is
# well-formed JSON, so it writes exactly the record the general reader would have written.
# Each step takes the position the previous one returned and passes a failure (-1) on, so a
# layout reads as a straight chain of steps checked once at its end.

_W_WRAP = _word(b'{"stream":"')
_W_BBO_HEAD = _word(b'","data":{"u":')
_W_TRADE_HEAD = _word(b'","data":{"e":"trade","E":')
_W_DEPTH_HEAD = _word(b'","data":{"e":"depthUpdate","E":')
_W_SYM = _word(b',"s":"')
_W_BID = _word(b'","b":"')
_W_BID_QTY, _W_ASK, _W_ASK_QTY = _word(b',"B":"'), _word(b',"a":"'), _word(b',"A":"')
_W_TID, _W_PRICE, _W_QTY = _word(b'","t":'), _word(b',"p":"'), _word(b',"q":"')
_W_TIME, _W_MAKER, _W_MATCH = _word(b',"T":'), _word(b',"m":'), _word(b',"M":')
_W_FIRST, _W_FINAL = _word(b'","U":'), _word(b',"u":')
_W_BID_LEVELS, _W_ASK_LEVELS = _word(b',"b":['), _word(b',"a":[')
_W_LEVEL, _W_LEVEL_QTY = _word(b'["'), _word(b',"')
_W_CLOSE = _word(b'}}')


@_kernel
def _lit(buf, i, end, word):
    """Index after ``word`` if the bytes at ``i`` spell it, else -1 (also when ``i`` < 0)."""
    n = word.shape[0]
    if i < 0 or i + n > end:
        return -1
    for k in range(n):
        if buf[i + k] != word[k]:
            return -1
    return i + n


_POW10 = np.array([10**e for e in range(19)], np.int64)


@_kernel
def _fold_digits(buf, i, end, v, most):
    """Up to ``most`` digits at ``i`` folded into ``v`` -> ``(index after them, v)``."""
    stop = min(end, i + most)
    while i < stop:
        d = int(buf[i]) - 48
        if d < 0 or d > 9:
            break
        v = v * 10 + d
        i += 1
    return i, v


@_kernel
def _fast_uint(buf, i, end):
    """1 to 18 digits, no leading zero, at ``i`` -> ``(index after, value)``; ``(-1, 0)``."""
    if i < 0:
        return -1, 0
    k, v = _fold_digits(buf, i, end, 0, 19)
    n = k - i
    if n == 0 or n > 18 or (n > 1 and buf[i] == 48):
        return -1, 0
    return k, v


@_kernel
def _fast_fraction(buf, i, end, v, exponent):
    """Fraction digits at ``i`` folded into ``v`` -> ``(index after the digits it read,
    mantissa)``; ``(-1, 0)`` without digits. Below the exponent only zeros are read: a
    non-zero digit there is left for the caller, which then does not find its closing quote."""
    j, v = _fold_digits(buf, i, end, v, exponent)
    k = j
    while k < end and buf[k] == 48:  # zeros below the instrument's resolution
        k += 1
    if k == i:
        return -1, 0
    return k, v * _POW10[exponent - (j - i)]


@_kernel
def _fast_decimal(buf, i, end, exponent):
    """``digits[.digits]"`` at ``i`` (after the opening quote) -> ``(index after the closing
    quote, mantissa at exponent)``; ``(-1, 0)`` for any other text or more than 18 digits."""
    if i < 0 or exponent < 0 or exponent > 17:
        return -1, 0
    k, v = _fold_digits(buf, i, end, 0, 19 - exponent)
    if k == i or k - i + exponent > 18:
        return -1, 0
    if k < end and buf[k] == _DOT:
        k, v = _fast_fraction(buf, k + 1, end, v, exponent)
    else:
        v = v * _POW10[exponent]
    if k < 0 or k >= end or buf[k] != _QUOTE:
        return -1, 0
    return k + 1, v


@_kernel
def _fast_bool(buf, i, end):
    """``true`` / ``false`` at ``i`` -> ``(index after, 1 / 0)``; ``(-1, 0)`` otherwise."""
    if i < 0 or i >= end:
        return -1, 0
    if buf[i] == 116:
        return _lit(buf, i, end, _W_TRUE), 1
    return _lit(buf, i, end, _W_FALSE), 0


@_kernel
def _fast_symbol(buf, i, end, syms):
    """A known symbol's text at ``i`` (after its opening quote) -> ``(index of the closing
    quote, instrument)``; ``(-1, 0)`` when unknown or not plain."""
    if i < 0:
        return -1, 0
    q = _plain_string(buf, i - 1, end)
    if q < 0:
        return -1, 0
    inst = lookup_symbol(buf, i, q, syms[0], syms[1], syms[2], syms[3])
    return (q, inst) if inst > 0 else (-1, 0)


@_kernel
def _fast_bbo(out, k, buf, i, end, recv, venue, syms):
    """The bookTicker layout after the stream name -> True when ``out[k]`` is written."""
    i, seq = _fast_uint(buf, _lit(buf, i, end, _W_BBO_HEAD), end)
    i, inst = _fast_symbol(buf, _lit(buf, i, end, _W_SYM), end, syms)
    pexp, qexp = syms[4][inst], syms[5][inst]
    i, bid = _fast_decimal(buf, _lit(buf, i, end, _W_BID), end, pexp)
    i, bid_qty = _fast_decimal(buf, _lit(buf, i, end, _W_BID_QTY), end, qexp)
    i, ask = _fast_decimal(buf, _lit(buf, i, end, _W_ASK), end, pexp)
    i, ask_qty = _fast_decimal(buf, _lit(buf, i, end, _W_ASK_QTY), end, qexp)
    if _lit(buf, i, end, _W_CLOSE) != end:
        return False
    _write_bbo(out, k, recv, 0, seq, inst, venue, (bid, bid_qty, ask, ask_qty))
    return True


@_kernel
def _fast_trade(out, k, buf, i, end, recv, venue, syms):
    """The trade layout after the stream name -> True when ``out[k]`` is written."""
    i, _ = _fast_uint(buf, _lit(buf, i, end, _W_TRADE_HEAD), end)
    i, inst = _fast_symbol(buf, _lit(buf, i, end, _W_SYM), end, syms)
    i, tid = _fast_uint(buf, _lit(buf, i, end, _W_TID), end)
    i, price = _fast_decimal(buf, _lit(buf, i, end, _W_PRICE), end, syms[4][inst])
    i, qty = _fast_decimal(buf, _lit(buf, i, end, _W_QTY), end, syms[5][inst])
    i, ms = _fast_uint(buf, _lit(buf, i, end, _W_TIME), end)
    i, maker = _fast_bool(buf, _lit(buf, i, end, _W_MAKER), end)
    i, _ = _fast_bool(buf, _lit(buf, i, end, _W_MATCH), end)
    if _lit(buf, i, end, _W_CLOSE) != end or ms > _MAX_MS:
        return False
    _write_trade(out, k, recv, ms, tid, inst, venue, price, qty, maker != 0)
    return True


@_kernel
def _fast_level(out_levels, at, buf, i, end, pexp, qexp):
    """``["price","qty"]`` at ``i`` into ``out_levels[at]`` -> index after it, or -1."""
    i, px = _fast_decimal(buf, _lit(buf, i, end, _W_LEVEL), end, pexp)
    i, qty = _fast_decimal(buf, _lit(buf, i, end, _W_LEVEL_QTY), end, qexp)
    if i < 0 or i >= end or buf[i] != _RBRACK or at >= out_levels.shape[0]:
        return -1
    out_levels[at]["price"] = px
    out_levels[at]["quantity"] = qty
    return i + 1


@_kernel
def _fast_levels(out_levels, at, buf, i, end, pexp, qexp):
    """Levels after a list's '[' -> ``(index after its ']', levels written)``; ``(-1, 0)``."""
    if i < 0 or i >= end:
        return -1, 0
    n = 0
    if buf[i] != _RBRACK:
        while i >= 0:
            i = _fast_level(out_levels, at + n, buf, i, end, pexp, qexp)
            n += 1
            if i < 0 or i >= end or buf[i] != _COMMA:
                break
            i += 1
    if i < 0 or i >= end or buf[i] != _RBRACK:
        return -1, 0
    return i + 1, n


@_kernel
def _fast_depth(out_depth, r, out_levels, lev, buf, i, end, recv, venue, syms):
    """The spot depthUpdate layout after the stream name -> levels used, or -1."""
    i, ms = _fast_uint(buf, _lit(buf, i, end, _W_DEPTH_HEAD), end)
    i, inst = _fast_symbol(buf, _lit(buf, i, end, _W_SYM), end, syms)
    pexp, qexp = syms[4][inst], syms[5][inst]
    i, first_id = _fast_uint(buf, _lit(buf, i, end, _W_FIRST), end)
    i, final_id = _fast_uint(buf, _lit(buf, i, end, _W_FINAL), end)
    i, nb = _fast_levels(out_levels, lev, buf, _lit(buf, i, end, _W_BID_LEVELS), end, pexp, qexp)
    i, na = _fast_levels(out_levels, lev + nb, buf, _lit(buf, i, end, _W_ASK_LEVELS), end, pexp,
                         qexp)
    if _lit(buf, i, end, _W_CLOSE) != end or ms > _MAX_MS:
        return -1
    _write_depth_row(out_depth, r, recv, ms * 1_000_000, (first_id, final_id, -1, 0), lev, nb,
                     na, inst, venue)
    return nb + na


@_kernel
def _fast_frame(out_events, out_depth, out_levels, ne, nd, nl, buf, start, end, recv, venue,
                syms):
    """A frame in one of the fast layouts -> ``(what was written, levels used)``; ``(0, 0)``
    when it is in none (the general reader decides)."""
    i = _lit(buf, start, end, _W_WRAP)
    if i < 0:
        return 0, 0
    q = _plain_string(buf, i - 1, end)  # the stream name
    if q < 0 or q + 11 >= end:
        return 0, 0
    head = buf[q + 11]  # after '","data":{"': 'u' (bookTicker) or 'e' (then the type's text)
    if ne < out_events.shape[0]:
        if head == 117 and _fast_bbo(out_events, ne, buf, q, end, recv, venue, syms):
            return _WHAT_EVENT, 0
        if head == 101 and _fast_trade(out_events, ne, buf, q, end, recv, venue, syms):
            return _WHAT_EVENT, 0
    if head == 101 and nd < out_depth.shape[0]:
        used = _fast_depth(out_depth, nd, out_levels, nl, buf, q, end, recv, venue, syms)
        if used >= 0:
            return _WHAT_DEPTH, used
    return 0, 0


@_kernel
def _scan_one(out_events, out_depth, out_levels, ne, nd, nl, buf, start, end, recv, venue,
              mode, instrument, syms, st, spans, stack):
    """One frame -> ``(status, what was written, levels used)``: a fast layout first (stream
    mode), else the general reader."""
    if mode == MODE_STREAM:
        what, used = _fast_frame(out_events, out_depth, out_levels, ne, nd, nl, buf, start,
                                 end, recv, venue, syms)
        if what != 0:
            return OK, what, used
    status = _scan_frame(buf, start, end, st, spans, stack, mode)
    if status != OK:
        return status, 0, 0
    message, inst = _message(buf, st, mode, instrument, syms[0], syms[1], syms[2], syms[3])
    if message == _M_NONE:
        return FALLBACK, 0, 0
    exps = (int(syms[4][inst]), int(syms[5][inst]))
    return _emit(out_events, out_depth, out_levels, ne, nd, nl, buf, st, spans, message, inst,
                 venue, recv, exps)


@njit(cache=True, _nrt=False, nogil=True)
def scan_batch(out_events, out_depth, out_levels, out_status, out_event, out_row,
               buf, frame_off, frame_len, recv_ns, venue, mode, instrument,
               slots, sym_bytes, sym_len, sym_inst, price_exp, qty_exp, st, spans, stack):
    """Parse frames ``buf[frame_off[f] : frame_off[f] + frame_len[f]]`` -> ``(events, depth rows,
    levels)`` written.

    Outputs, in frame order: ``out_events`` (CANONICAL_EVENT; must be zero-filled, only the
    fields of the event type are written), ``out_depth`` (DEPTH_UPDATE) with levels in
    ``out_levels`` (BOOK_LEVEL), ``out_status[f]`` (OK / FALLBACK / MALFORMED),
    ``out_event[f]`` / ``out_row[f]``: index of the frame's event / depth row, or -1. A frame
    that is not OK writes nothing. ``mode`` is :data:`MODE_STREAM` (instrument from ``"s"``
    via the symbol table) or :data:`MODE_SNAPSHOT` (every frame is ``instrument``'s REST
    snapshot). ``price_exp`` / ``qty_exp`` are indexed by instrument id. Scratch: ``st``
    (:data:`STATE_SIZE`), ``spans`` (``[max levels per frame, SPAN_FIELDS]``), ``stack``.
    """
    ne = 0
    nd = 0
    nl = 0
    syms = (slots, sym_bytes, sym_len, sym_inst, price_exp, qty_exp)
    for f in range(frame_off.shape[0]):
        start = frame_off[f]
        end = start + frame_len[f]
        out_event[f] = -1
        out_row[f] = -1
        status = MALFORMED
        what = 0
        used = 0
        if 0 <= start <= end <= buf.shape[0]:
            status, what, used = _scan_one(out_events, out_depth, out_levels, ne, nd, nl, buf,
                                           start, end, recv_ns[f], venue, mode, instrument,
                                           syms, st, spans, stack)
        if status == OK and what == _WHAT_EVENT:
            out_event[f] = ne
            ne += 1
        elif status == OK:
            out_row[f] = nd
            nd += 1
            nl += used
        out_status[f] = status
    return ne, nd, nl


# -- batch bookkeeping ---------------------------------------------------------------------
#
# What the parser does around a scan, a kernel call each instead of a few NumPy calls (each
# costs microseconds on a batch of a few hundred frames).

@_kernel
def frame_offsets(frame_len, out):
    """``out[f]``: where frame ``f`` starts in the frames joined back to back."""
    at = 0
    for f in range(frame_len.shape[0]):
        out[f] = at
        at += frame_len[f]


@_kernel
def count_statuses(status, counts):
    """``counts[s]``: frames with status ``s`` (statuses beyond ``counts`` are not counted)."""
    counts[:] = 0
    for f in range(status.shape[0]):
        s = status[f]
        if 0 <= s < counts.shape[0]:
            counts[s] += 1


@_kernel
def add_totals(counts, events, status_totals, type_totals):
    """Add a batch's status ``counts`` and its events by type to the running totals (types
    beyond ``type_totals`` are not counted)."""
    for s in range(counts.shape[0]):
        status_totals[s] += counts[s]
    for k in range(events.shape[0]):
        t = events[k]["event_type"]
        if t < type_totals.shape[0]:
            type_totals[t] += 1
