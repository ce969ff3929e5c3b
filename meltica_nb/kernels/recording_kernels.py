"""Recording line kernel: normalized JSON Lines to receive times, labels and raw bytes.

A recorded line is ``{"recv_ns":<int|null>,"stream":"<label>","raw":"<escaped text>"}``;
decoding it with orjson and re-encoding ``raw`` costs about 2 us, more than parsing the frame
inside it. :func:`scan_lines` reads a batch of lines of exactly that compact shape in one
call: the receive time, the label's position, the kind of line by its label prefix, and the
``raw`` text unescaped into a byte arena, ready for the venue parser. Any other shape
(spaces, other key order, ``\\u`` escapes, broken JSON) is marked :data:`FALLBACK` and left
to the orjson path, which decides what the line is, so the two paths never disagree on a
line the kernel accepts.
"""

import numpy as np
from numba import njit

#: Line kinds written by scan_lines (FRAME, REST, CONTROL as in recording_source).
FRAME, REST, CONTROL = 0, 1, 2
#: The line is not of the compact shape: decode it with orjson.
FALLBACK = -1
#: The line holds only whitespace.
BLANK = -2
#: recv_ns of a line whose recv_ns is null (the caller carries the previous time forward).
NO_TIME = -1

_PREFIX = np.frombuffer(b'{"recv_ns":', np.uint8)
_NULL = np.frombuffer(b"null", np.uint8)
_STREAM = np.frombuffer(b',"stream":"', np.uint8)
_RAW = np.frombuffer(b',"raw":"', np.uint8)
_REST = np.frombuffer(b"rest:", np.uint8)
_EVENT = np.frombuffer(b"event:", np.uint8)

#: JSON escape letter -> byte (0: not handled here, fall back).
_ESCAPES = np.zeros(256, np.uint8)
for _letter, _byte in ((b'"', b'"'), (b"\\", b"\\"), (b"/", b"/"), (b"b", b"\b"),
                       (b"f", b"\f"), (b"n", b"\n"), (b"r", b"\r"), (b"t", b"\t")):
    _ESCAPES[_letter[0]] = _byte[0]
del _letter, _byte


@njit(cache=True)
def _match(buf, p, end, literal):
    """Position after ``literal`` at ``p``, or -1."""
    n = literal.shape[0]
    if p < 0 or p + n > end:
        return -1
    for j in range(n):
        if buf[p + j] != literal[j]:
            return -1
    return p + n


@njit(cache=True)
def _time(buf, p, end):
    """(recv_ns or NO_TIME, position after it); position -1 if neither digits nor null."""
    q = _match(buf, p, end, _NULL)
    if q >= 0:
        return NO_TIME, q
    value = 0
    q = p
    while q < end and 48 <= buf[q] <= 57:
        if q - p == 19 or (q - p == 18 and buf[p] > 56):  # past int64: leave it to orjson
            return NO_TIME, -1
        value = value * 10 + (int(buf[q]) - 48)
        q += 1
    if q == p:
        return NO_TIME, -1
    return value, q


@njit(cache=True)
def _label_end(buf, p, end):
    """Position of the quote closing a label without escapes, or -1."""
    while p < end:
        c = buf[p]
        if c == 34:
            return p
        if c == 92 or c < 32:
            return -1
        p += 1
    return -1


@njit(cache=True)
def _unescape(buf, p, end, arena, w):
    """Copy the JSON string body at ``p`` into ``arena[w:]``; (position after the closing
    quote or -1, new w)."""
    while p < end:
        c = buf[p]
        if c == 34:
            return p + 1, w
        if c == 92:
            if p + 1 >= end or _ESCAPES[buf[p + 1]] == 0:
                return -1, w
            arena[w] = _ESCAPES[buf[p + 1]]
            p += 2
        elif c < 32:
            return -1, w
        else:
            arena[w] = c
            p += 1
        w += 1
    return -1, w


@njit(cache=True)
def _blank(buf, p, end):
    for q in range(p, end):
        c = buf[q]
        if c != 32 and c != 13 and c != 9:
            return False
    return True


@njit(cache=True)
def _kind(buf, start, end):
    if _match(buf, start, end, _REST) >= 0:
        return REST
    if _match(buf, start, end, _EVENT) >= 0:
        return CONTROL
    return FRAME


@njit(cache=True)
def _scan_one(buf, s, e, arena, w, out, i):
    """One line into row ``i`` of ``out`` (kind, recv, label off/len, raw off/len); new w."""
    ns, p = _time(buf, _match(buf, s, e, _PREFIX), e)
    p = _match(buf, p, e, _STREAM)
    label_end = _label_end(buf, p, e) if p >= 0 else -1
    q = _match(buf, label_end + 1, e, _RAW) if label_end >= 0 else -1
    out[i, 1] = NO_TIME
    if q < 0:
        out[i, 0] = BLANK if _blank(buf, s, e) else FALLBACK
        return w
    after, w2 = _unescape(buf, q, e, arena, w)
    if after < 0 or after >= e or buf[after] != 125 or not _blank(buf, after + 1, e):
        out[i, 0] = FALLBACK
        return w
    out[i, 0] = _kind(buf, p, label_end)
    out[i, 1] = ns
    out[i, 2] = p
    out[i, 3] = label_end - p
    out[i, 4] = w
    out[i, 5] = w2 - w
    return w2


@njit(cache=True)
def scan_lines(buf, starts, ends, arena, out):
    """Scan lines ``buf[starts[i]:ends[i]]`` into ``out[i] = (kind, recv_ns, label_off,
    label_len, raw_off, raw_len)`` (int64); raw bytes go to ``arena`` (as large as the
    lines). Returns the arena bytes used."""
    w = 0
    for i in range(starts.shape[0]):
        w = _scan_one(buf, starts[i], ends[i], arena, w, out, i)
    return w
