"""OKX byte scanner: ``books`` / ``books5`` pushes straight from frame bytes to book rows.

:func:`scan_books` reads a batch of frames held in one byte arena and, for every frame that is
an order-book push (``{"arg":{"channel":"books"|"books5","instId":..},"action":..,
"data":[{"asks":[..],"bids":[..],"ts":"..","checksum":..,"prevSeqId":..,"seqId":..}]}``,
members in any order, other members skipped), writes one DEPTH_UPDATE row, its levels
(BOOK_LEVEL as int64 ``[m, 2]``, bids first then asks, although OKX sends asks first) and each
level's text form (``price_decimals << 8 | size_decimals``, see
:mod:`meltica_nb.kernels.okx_book_kernels`), the row's checksum (0 when absent) and its
channel. No Python object is built per level.

Every other frame, and any book frame the scanner does not fully understand (escapes, a
non-canonical decimal such as ``"01.5"`` or ``"1e3"``, more decimals than the exponent, an
unknown instrument, a missing field, broken JSON), gets :data:`FALLBACK` and nothing written:
the orjson path of :mod:`meltica_nb.venues.okx.parsing` decides what it is. The test in
``tests/venues/okx`` holds both paths to identical records on every recorded message.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from meltica_nb.kernels.binance_scan_kernels import (
    _fold_digits,
    _parse_int,
    _plain_string,
    _skip_value,
    _span_eq,
    _word_at,
    _ws,
    lookup_symbol,
)

__all__ = ["BOOKS", "BOOKS5", "FALLBACK", "MAX_DEPTH", "OK", "scan_books"]

#: The frame was a book push; its row is written.
OK = 0
#: Not a book push the scanner understands: the orjson path decides.
FALLBACK = 1

#: Channel of a row (``out_kind``).
BOOKS = 0
BOOKS5 = 1

#: Nesting the generic value skipper follows.
MAX_DEPTH = 32

_kernel = njit(cache=True, _nrt=False)
#: The per-level helpers are inlined at the Numba level (a call per string costs more than
#: reading it).
_inline = njit(cache=True, _nrt=False, inline="always")


def _word(text: bytes) -> np.ndarray:
    return np.frombuffer(text, np.uint8).copy()


_W_ARG, _W_ACTION, _W_DATA = _word(b"arg"), _word(b"action"), _word(b"data")
_W_CHANNEL, _W_INST = _word(b"channel"), _word(b"instId")
_W_BOOKS, _W_BOOKS5 = _word(b"books"), _word(b"books5")
_W_SNAPSHOT, _W_UPDATE = _word(b"snapshot"), _word(b"update")
_W_ASKS, _W_BIDS, _W_TS = _word(b"asks"), _word(b"bids"), _word(b"ts")
_W_CHECKSUM, _W_SEQ, _W_PREV = _word(b"checksum"), _word(b"seqId"), _word(b"prevSeqId")

# a book push byte for byte as OKX writes it (the tight path; member values in between)
_T_CHANNEL, _T_INST = _word(b'{"arg":{"channel":"books'), _word(b'","instId":"')
_T_ACTION, _T_ASKS = _word(b'},"action":'), _word(b',"data":[{"asks":')
_T_BIDS, _T_TS, _T_CHECKSUM = _word(b',"bids":'), _word(b',"ts":'), _word(b',"checksum":')
_T_PREV, _T_SEQ, _T_END = _word(b',"prevSeqId":'), _word(b',"seqId":'), _word(b"}]}")

_QUOTE, _COMMA, _COLON, _DOT = 34, 44, 58, 46
_LBRACK, _RBRACK, _LBRACE, _RBRACE = 91, 93, 123, 125
_MAX_MS = 9_223_372_036_854

# frame scratch: st[...]
_CHANNEL, _INST_S, _INST_E, _ACTION, _TS, _CHECKSUM, _SEQ, _PREV = 0, 1, 2, 3, 4, 5, 6, 7
_ASK_OFF, _ASK_N, _BID_OFF, _BID_N, _SEEN = 8, 9, 10, 11, 12
_EXPS = 13  # the instrument's price and quantity exponents (2 slots)
STATE_SIZE = 15
_HAS_TS, _HAS_ASKS, _HAS_BIDS, _HAS_SEQ, _HAS_PREV = 1, 2, 4, 8, 16

_POW10 = np.array([10**k for k in range(19)], np.int64)


@_inline
def _string(buf, i, end):
    """At a plain string -> ``(start, end)`` of its text and the index after it; -1 if not."""
    i = _ws(buf, i, end)
    if i >= end or buf[i] != _QUOTE:
        return -1, -1, -1
    q = _plain_string(buf, i, end)
    if q < 0:
        return -1, -1, -1
    return i + 1, q, q + 1


@_inline
def _key(buf, i, end):
    """At a member -> key ``(start, end)`` and the index of its value; -1 if malformed."""
    s, e, i = _string(buf, i, end)
    if s < 0:
        return -1, -1, -1
    i = _ws(buf, i, end)
    if i >= end or buf[i] != _COLON:
        return -1, -1, -1
    return s, e, _ws(buf, i + 1, end)


@_inline
def _next(buf, i, end, close):
    """After a value -> ``(index of the next member, done)``; -1 if malformed."""
    i = _ws(buf, i, end)
    if i >= end:
        return -1, False
    if buf[i] == _COMMA:
        return i + 1, False
    if buf[i] == close:
        return i + 1, True
    return -1, False


# -- decimals ------------------------------------------------------------------------------

@_inline
def _decimal(buf, s, e, exponent):
    """Read canonical decimal text ``0|[1-9][0-9]*`` (``.[0-9]+``)? from ``s`` up to the first
    byte that cannot continue it: ``(that index, mantissa, decimals)``.

    Decimals are -1 when the text will not do here: not canonical (it could not be rebuilt as
    received), more decimals than ``exponent``, or a value that might not fit an int64 (more
    than 18 digits at the exponent; the orjson path then decides exactly).
    """
    k, v = _fold_digits(buf, s, e, 0, e)  # every digit up to e
    whole = k - s
    if whole == 0 or (buf[s] == 48 and whole > 1) or whole + exponent > 18:
        return k, 0, -1
    if k == e or buf[k] != _DOT:
        return k, v * _POW10[exponent], 0
    m, v = _fold_digits(buf, k + 1, e, v, e)
    decimals = m - k - 1
    if decimals == 0 or decimals > exponent:
        return m, 0, -1
    return m, v * _POW10[exponent - decimals], decimals


@_inline
def _value(buf, s, e, exponent):
    """``(mantissa, decimals)`` of the whole span ``buf[s:e]`` as :func:`_decimal` reads it
    (decimals -1: not one canonical decimal)."""
    k, v, decimals = _decimal(buf, s, e, exponent)
    return (v, decimals) if k == e else (0, -1)


@_inline
def _level(buf, i, end, out_levels, out_texts, n, exps):
    """At ``["px","sz","0","n"]`` -> index after it, the level written at ``n``; -1 if not."""
    if buf[i] != _LBRACK or n >= out_levels.shape[0]:
        return -1
    ps, pe, i = _string(buf, i + 1, end)
    if ps < 0:
        return -1
    i, done = _next(buf, i, end, _RBRACK)
    ss, se, i = _string(buf, i, end) if i > 0 and not done else (-1, -1, -1)
    if ss < 0:
        return -1
    while True:
        i, done = _next(buf, i, end, _RBRACK)
        if i < 0 or done:
            break
        _, _, i = _string(buf, i, end)
        if i < 0:
            return -1
    if i < 0:
        return -1
    price, pd = _value(buf, ps, pe, exps[0])
    size, sd = _value(buf, ss, se, exps[1])
    if pd < 0 or sd < 0:
        return -1
    out_levels[n, 0] = price
    out_levels[n, 1] = size
    out_texts[n] = (pd << 8) | sd
    return i


@_inline
def _rest_of_level(buf, i, end):
    """After the size's closing quote, the remaining ``,"..."`` strings written tightly and the
    closing bracket -> the index after it; -1 for anything else."""
    while i + 1 < end and buf[i] == _COMMA and buf[i + 1] == _QUOTE:
        q = _plain_string(buf, i + 1, end)
        if q < 0:
            return -1
        i = q + 1
    return i + 1 if i < end and buf[i] == _RBRACK else -1


@_inline
def _tight_level(buf, i, end, out_levels, out_texts, n, exps):
    """:func:`_level` for the way OKX writes a level (``["px","sz","0","n"]``: no spaces, the
    two numbers plain digits and a dot): index after it, level written at ``n``; -1 when the
    level looks any different (then :func:`_level` decides, with the same result)."""
    if i + 1 >= end or buf[i] != _LBRACK or buf[i + 1] != _QUOTE or n >= out_levels.shape[0]:
        return -1
    pe, price, pd = _decimal(buf, i + 2, end, exps[0])
    if pe + 2 >= end or buf[pe] != _QUOTE or buf[pe + 1] != _COMMA or buf[pe + 2] != _QUOTE:
        return -1
    se, size, sd = _decimal(buf, pe + 3, end, exps[1])
    if se >= end or buf[se] != _QUOTE or pd < 0 or sd < 0:
        return -1
    i = _rest_of_level(buf, se + 1, end)
    if i < 0:
        return -1
    out_levels[n, 0] = price
    out_levels[n, 1] = size
    out_texts[n] = (pd << 8) | sd
    return i


@_kernel
def _levels(buf, i, end, out_levels, out_texts, n, exps):
    """At a level array -> ``(index after it, levels written)``; -1 if not understood."""
    if i >= end or buf[i] != _LBRACK:
        return -1, 0
    start = n
    j = _ws(buf, i + 1, end)
    if j < end and buf[j] == _RBRACK:
        return j + 1, 0
    i = j
    while True:
        i = _ws(buf, i, end)
        tight = _tight_level(buf, i, end, out_levels, out_texts, n, exps)
        i = tight if tight >= 0 else _level(buf, i, end, out_levels, out_texts, n, exps)
        if i < 0:
            return -1, 0
        n += 1
        i, done = _next(buf, i, end, _RBRACK)
        if i < 0:
            return -1, 0
        if done:
            return i, n - start


# -- members -------------------------------------------------------------------------------

@_kernel
def _arg(buf, i, end, st):
    """The ``arg`` object: channel and instId spans."""
    if i >= end or buf[i] != _LBRACE:
        return -1
    i += 1
    while True:
        ks, ke, i = _key(buf, i, end)
        if ks < 0:
            return -1
        s, e, i = _string(buf, i, end)
        if s < 0:
            return -1
        if _span_eq(buf, ks, ke, _W_CHANNEL):
            st[_CHANNEL] = BOOKS if _span_eq(buf, s, e, _W_BOOKS) else (
                BOOKS5 if _span_eq(buf, s, e, _W_BOOKS5) else -1)
        elif _span_eq(buf, ks, ke, _W_INST):
            st[_INST_S] = s
            st[_INST_E] = e
        i, done = _next(buf, i, end, _RBRACE)
        if i < 0 or done:
            return i


@_kernel
def _int_member(buf, i, end, st, slot, flag):
    i, v = _parse_int(buf, _ws(buf, i, end), end)
    if i < 0:
        return -1
    st[slot] = v
    st[_SEEN] |= flag
    return i


@_kernel
def _ts(buf, i, end, st):
    s, e, i = _string(buf, i, end)
    if s < 0 or e == s or e - s > 13:
        return -1
    v = 0
    for k in range(s, e):
        c = buf[k]
        if not 48 <= c <= 57:
            return -1
        v = v * 10 + (int(c) - 48)
    st[_TS] = v
    st[_SEEN] |= _HAS_TS
    return i


@_kernel
def _side(buf, i, end, st, out_levels, out_texts, nl, exps, off_slot, flag):
    st[off_slot] = nl + st[_ASK_N] + st[_BID_N]
    i, n = _levels(buf, i, end, out_levels, out_texts, st[off_slot], exps)
    st[off_slot + 1] = n
    st[_SEEN] |= flag
    return i


@_kernel
def _data_member(buf, ks, ke, i, end, st, stack, out_levels, out_texts, nl, exps):
    if _span_eq(buf, ks, ke, _W_ASKS) and not st[_SEEN] & _HAS_ASKS:
        return _side(buf, i, end, st, out_levels, out_texts, nl, exps, _ASK_OFF, _HAS_ASKS)
    if _span_eq(buf, ks, ke, _W_BIDS) and not st[_SEEN] & _HAS_BIDS:
        return _side(buf, i, end, st, out_levels, out_texts, nl, exps, _BID_OFF, _HAS_BIDS)
    if _span_eq(buf, ks, ke, _W_TS):
        return _ts(buf, i, end, st)
    if _span_eq(buf, ks, ke, _W_CHECKSUM):
        return _int_member(buf, i, end, st, _CHECKSUM, 0)
    if _span_eq(buf, ks, ke, _W_SEQ):
        return _int_member(buf, i, end, st, _SEQ, _HAS_SEQ)
    if _span_eq(buf, ks, ke, _W_PREV):
        return _int_member(buf, i, end, st, _PREV, _HAS_PREV)
    return _skip_value(buf, i, end, stack)


@_kernel
def _data(buf, i, end, st, stack, out_levels, out_texts, nl, exps):
    """``data: [ { ... } ]`` with exactly one object."""
    if i >= end or buf[i] != _LBRACK:
        return -1
    i = _ws(buf, i + 1, end)
    if i >= end or buf[i] != _LBRACE:
        return -1
    i += 1
    while True:
        ks, ke, i = _key(buf, i, end)
        if ks < 0:
            return -1
        i = _data_member(buf, ks, ke, i, end, st, stack, out_levels, out_texts, nl, exps)
        if i < 0:
            return -1
        i, done = _next(buf, i, end, _RBRACE)
        if i < 0:
            return -1
        if done:
            break
    i = _ws(buf, i, end)
    return i + 1 if i < end and buf[i] == _RBRACK else -1


@_kernel
def _exps_of(buf, st, table, price_exp, qty_exp, exps):
    """Instrument of the arg's instId (0 if unknown) and its exponents into ``exps``."""
    if st[_INST_S] < 0:
        return 0
    inst = lookup_symbol(buf, st[_INST_S], st[_INST_E], table[0], table[1], table[2], table[3])
    exps[0] = price_exp[inst]
    exps[1] = qty_exp[inst]
    return inst


@_kernel
def _top_member(buf, ks, ke, i, end, st, stack, out_levels, out_texts, nl, lookup, exps):
    """One member of the frame object; the data member needs arg before it (OKX's order)."""
    if _span_eq(buf, ks, ke, _W_ARG):
        i = _arg(buf, i, end, st)
        if i > 0 and st[_CHANNEL] >= 0:
            st[_SEEN] |= 32 if _exps_of(buf, st, lookup[0], lookup[1], lookup[2], exps) else 0
        return i
    if _span_eq(buf, ks, ke, _W_ACTION):
        s, e, i = _string(buf, i, end)
        update = 0 if _span_eq(buf, s, e, _W_UPDATE) else -1
        st[_ACTION] = 1 if _span_eq(buf, s, e, _W_SNAPSHOT) else update
        return i
    if _span_eq(buf, ks, ke, _W_DATA) and st[_SEEN] & 32:
        return _data(buf, i, end, st, stack, out_levels, out_texts, nl, exps)
    return -1


@_kernel
def _reset(st):
    st[:_EXPS] = 0
    st[_CHANNEL] = -1
    st[_INST_S] = -1
    st[_ACTION] = -2  # absent
    st[_PREV] = -1
    st[_SEQ] = -1


@_kernel
def _scan_frame(buf, start, end, st, stack, out_levels, out_texts, nl, lookup, exps):
    """One frame: True when it is a complete book push (levels written from ``nl``)."""
    _reset(st)
    i = _ws(buf, start, end)
    if i >= end or buf[i] != _LBRACE:
        return False
    i += 1
    while True:
        ks, ke, i = _key(buf, i, end)
        if ks < 0:
            return False
        i = _top_member(buf, ks, ke, i, end, st, stack, out_levels, out_texts, nl, lookup, exps)
        if i < 0:
            return False
        i, done = _next(buf, i, end, _RBRACE)
        if i < 0:
            return False
        if done:
            break
    return _ws(buf, i, end) == end and _complete(st)


@_kernel
def _after(buf, i, end, word):
    """Index after ``word`` when the bytes at ``i >= 0`` spell it; -1 otherwise."""
    return _word_at(buf, i, end, word) if i >= 0 else -1


@_kernel
def _tight_head(buf, i, end, st, lookup, exps):
    """``{"arg":{"channel":"books[5]","instId":"..."},"action":"..."`` -> the index after it,
    with channel, instrument (known) and action in ``st``; -1 for anything else."""
    i = _after(buf, i, end, _T_CHANNEL)
    if i < 0 or i >= end:
        return -1
    books5 = buf[i] == 53  # "books5"
    st[_CHANNEL] = BOOKS5 if books5 else BOOKS
    i = _after(buf, i + 1 if books5 else i, end, _T_INST)
    q = _plain_string(buf, i - 1, end) if i > 0 else -1
    if q < 0:
        return -1
    st[_INST_S] = i
    st[_INST_E] = q
    if not _exps_of(buf, st, lookup[0], lookup[1], lookup[2], exps):
        return -1
    st[_SEEN] |= 32
    i = _after(buf, q + 1, end, _T_ACTION)
    s, e, i = _string(buf, i, end) if i > 0 else (-1, -1, -1)
    if s < 0:
        return -1
    update = 0 if _span_eq(buf, s, e, _W_UPDATE) else -1
    st[_ACTION] = 1 if _span_eq(buf, s, e, _W_SNAPSHOT) else update
    return i


@_kernel
def _tight_sides(buf, i, end, st, out_levels, out_texts, nl, exps):
    """``,"data":[{"asks":[..],"bids":[..]`` -> the index after it (levels written); -1 if
    it differs."""
    i = _after(buf, i, end, _T_ASKS)
    if i < 0:
        return -1
    i = _side(buf, i, end, st, out_levels, out_texts, nl, exps, _ASK_OFF, _HAS_ASKS)
    i = _after(buf, i, end, _T_BIDS)
    if i < 0:
        return -1
    return _side(buf, i, end, st, out_levels, out_texts, nl, exps, _BID_OFF, _HAS_BIDS)


@_kernel
def _tight_tail(buf, i, end, st):
    """``,"ts":"..","checksum":..`` (then ``,"prevSeqId":..,"seqId":..`` or not) ``}]}`` ->
    True when the frame ends there."""
    i = _after(buf, i, end, _T_TS)
    i = _ts(buf, i, end, st) if i > 0 else -1
    i = _after(buf, i, end, _T_CHECKSUM)
    i = _int_member(buf, i, end, st, _CHECKSUM, 0) if 0 < i < end else -1
    if 0 < i < end and buf[i] == _COMMA:
        i = _after(buf, i, end, _T_PREV)
        i = _int_member(buf, i, end, st, _PREV, _HAS_PREV) if 0 < i < end else -1
        i = _after(buf, i, end, _T_SEQ)
        i = _int_member(buf, i, end, st, _SEQ, _HAS_SEQ) if 0 < i < end else -1
    return _after(buf, i, end, _T_END) == end


@_kernel
def _tight_frame(buf, start, end, st, out_levels, out_texts, nl, lookup, exps):
    """A book push laid out exactly as OKX sends it (members in OKX's order, no spaces,
    ``prevSeqId`` and ``seqId`` both or neither), read by the same member readers as
    :func:`_scan_frame` without its key-by-key dispatch: True when read. False for any other
    layout; then :func:`_scan_frame` reads the frame from the start.
    """
    _reset(st)
    i = _tight_head(buf, start, end, st, lookup, exps)
    i = _tight_sides(buf, i, end, st, out_levels, out_texts, nl, exps) if i > 0 else -1
    return i > 0 and _tight_tail(buf, i, end, st) and _complete(st)


@_kernel
def _complete(st):
    need = _HAS_TS | _HAS_ASKS | _HAS_BIDS | 32
    if st[_SEEN] & need != need or st[_TS] > _MAX_MS:
        return False
    if st[_CHANNEL] == BOOKS:
        return st[_ACTION] >= 0
    return st[_ACTION] == -2 or st[_ACTION] == 1


@_kernel
def _reverse(levels, texts, a, b):
    b -= 1
    while a < b:
        for c in range(2):
            t = levels[a, c]
            levels[a, c] = levels[b, c]
            levels[b, c] = t
        t = texts[a]
        texts[a] = texts[b]
        texts[b] = t
        a += 1
        b -= 1


@_kernel
def _bids_first(levels, texts, st, nl):
    """OKX sends asks before bids: rotate the frame's levels to bids then asks."""
    na, nb = st[_ASK_N], st[_BID_N]
    if st[_ASK_OFF] < st[_BID_OFF] and na and nb:
        _reverse(levels, texts, nl, nl + na + nb)
        _reverse(levels, texts, nl, nl + nb)
        _reverse(levels, texts, nl + nb, nl + na + nb)


@_kernel
def _write_row(out_depth, out_checksum, out_kind, d, st, inst, venue, recv, nl):
    row = out_depth[d]
    row["ingest_ns"] = recv
    row["exchange_ns"] = st[_TS] * 1_000_000
    seq = st[_SEQ] if st[_SEEN] & _HAS_SEQ else -1
    row["first_id"] = seq
    row["final_id"] = seq
    row["prev_final_id"] = st[_PREV] if st[_SEEN] & _HAS_PREV else -1
    row["level_off"] = nl
    row["n_bids"] = st[_BID_N]
    row["n_asks"] = st[_ASK_N]
    row["instrument"] = inst
    row["venue"] = venue
    row["is_snapshot"] = 1 if st[_CHANNEL] == BOOKS5 or st[_ACTION] == 1 else 0
    out_checksum[d] = st[_CHECKSUM]
    out_kind[d] = st[_CHANNEL]


@njit(cache=True, _nrt=False, nogil=True)  # the feed's lock guards its arrays
def scan_books(out_depth, out_levels, out_texts, out_checksum, out_kind, out_frame, out_status,
               buf, frame_len, recv_ns, venue, slots, sym_bytes, sym_len, sym_inst, price_exp,
               qty_exp, st, stack):
    """Scan the ``frame_len.shape[0]`` frames laid end to end in ``buf``; return
    ``(rows written, levels written)``.

    ``out_frame[d]`` is the frame of row ``d``; ``out_status[f]`` is OK or FALLBACK. ``st``
    (:data:`STATE_SIZE` int64) and ``stack`` (:data:`MAX_DEPTH` uint8) are scratch.
    """
    lookup = ((slots, sym_bytes, sym_len, sym_inst), price_exp, qty_exp)
    exps = st[_EXPS:]
    d = 0
    nl = 0
    end = 0
    for f in range(frame_len.shape[0]):
        start = end
        end = start + frame_len[f]
        if not (_tight_frame(buf, start, end, st, out_levels, out_texts, nl, lookup, exps)
                or _scan_frame(buf, start, end, st, stack, out_levels, out_texts, nl, lookup,
                               exps)):
            out_status[f] = FALLBACK
            continue
        inst = lookup_symbol(buf, st[_INST_S], st[_INST_E], slots, sym_bytes, sym_len, sym_inst)
        _bids_first(out_levels, out_texts, st, nl)
        _write_row(out_depth, out_checksum, out_kind, d, st, inst, venue, recv_ns[f], nl)
        out_frame[d] = f
        out_status[f] = OK
        nl += st[_ASK_N] + st[_BID_N]
        d += 1
    return d, nl
