"""Exact fixed-point decimal text <-> int64 mantissa kernels.

A price or quantity is an int64 *mantissa* with a per-instrument *exponent* (the number of
decimals kept): ``value = mantissa * 10**-exponent``.  These kernels turn ASCII decimal text
(as venues send it) into mantissas and back without ever touching a float, and never round:
text with a non-zero digit below the instrument's resolution is rejected (``INEXACT``).

Every kernel is a plain ``@njit`` function over ``uint8`` arrays and integers, so it also runs
unchanged as ordinary Python under ``NUMBA_DISABLE_JIT=1``.  Overflow is detected with explicit
bound checks *before* each multiply/add, never by relying on int64 wrap-around.  All int64 work
is done in negative space (``-9223372036854775808`` has no positive counterpart).

Accepted grammar (no whitespace)::

    [+|-] digits [. digits] [(e|E) [+|-] digits]      at least one mantissa digit in total
"""

from __future__ import annotations

from numba import njit

__all__ = [
    "INEXACT",
    "OK",
    "OVERFLOW",
    "SYNTAX",
    "format_decimal",
    "parse_decimal",
    "parse_decimal_batch",
]

#: The text was parsed exactly; the mantissa is valid.
OK = 0
#: The text is not a decimal number (empty, lone sign or '.', two dots, stray characters).
SYNTAX = 1
#: The value does not fit an int64 mantissa at the exponent.
OVERFLOW = 2
#: The value has a non-zero digit below 10**-exponent; it would need rounding.
INEXACT = 3


@njit(cache=True)
def _is_digit(c):
    """True for ASCII '0'..'9'."""
    return 48 <= c <= 57


@njit(cache=True)
def _is_sign(c):
    """True for ASCII '+' (43) or '-' (45)."""
    return c == 43 or c == 45


@njit(cache=True)
def _is_exp_mark(c):
    """True for ASCII 'e' (101) or 'E' (69)."""
    return c == 101 or c == 69


@njit(cache=True)
def _skip_digits(buf, i, end):
    """Index of the first non-digit in ``buf[i:end]`` (``end`` if all are digits)."""
    while i < end and _is_digit(buf[i]):
        i += 1
    return i


@njit(cache=True)
def _parse_exp(buf, i, end):
    """Parse the exponent after 'e' in ``buf[i:end]`` -> ``(status, value)``.

    The magnitude saturates at about 1e16: far beyond any int64 scale, so a saturated exponent
    still yields the right OVERFLOW / INEXACT / zero verdict without int64 overflow.
    """
    neg = False
    if i < end and _is_sign(buf[i]):
        neg = buf[i] == 45
        i += 1
    if i >= end:
        return SYNTAX, 0
    val = 0
    while i < end:
        c = buf[i]
        if not _is_digit(c):
            return SYNTAX, 0
        if val < 1_000_000_000_000_000:
            val = val * 10 + (int(c) - 48)
        i += 1
    if neg:
        val = -val
    return OK, val


@njit(cache=True)
def _scan(buf, start, end):
    """Syntax pass -> ``(status, negative, digits_start, dot, digits_end, exp10)``.

    ``buf[digits_start:digits_end]`` holds the mantissa digits and at most one '.', whose index
    is ``dot`` (-1 when there is none); ``exp10`` is the value after 'e' (0 when absent).
    """
    i = start
    neg = False
    if i < end and _is_sign(buf[i]):
        neg = buf[i] == 45
        i += 1
    ds = i
    i = _skip_digits(buf, i, end)
    dot = -1
    if i < end and buf[i] == 46:
        dot = i
        i = _skip_digits(buf, i + 1, end)
    de = i
    if de - ds - (1 if dot >= 0 else 0) == 0:
        return SYNTAX, False, 0, 0, 0, 0
    exp10 = 0
    if i < end:
        if not _is_exp_mark(buf[i]):
            return SYNTAX, False, 0, 0, 0, 0
        status, exp10 = _parse_exp(buf, i + 1, end)
        if status != OK:
            return SYNTAX, False, 0, 0, 0, 0
    return OK, neg, ds, dot, de, exp10


@njit(cache=True)
def _finish(acc, neg):
    """Turn the negative-space accumulator into the signed mantissa -> ``(status, mantissa)``."""
    if neg:
        return OK, acc
    if acc < -9223372036854775807:
        return OVERFLOW, 0
    return OK, -acc


@njit(cache=True)
def _scale_up(acc, k, neg):
    """Multiply the negative-space ``acc`` by ``10**k`` (k may be huge or <= 0), then finish."""
    if acc != 0:
        for _ in range(k):
            if acc < -922337203685477580:
                return OVERFLOW, 0
            acc *= 10
    return _finish(acc, neg)


@njit(cache=True)
def _accumulate(buf, ds, de, q, neg):
    """Fold the digits of ``buf[ds:de]`` (skipping '.') into a mantissa.

    ``q`` is the mantissa position (power of ten in units of 10**-exponent) of the first digit;
    each following digit sits one position lower.  Digits at negative positions must be zero.
    """
    acc = 0
    for i in range(ds, de):
        c = buf[i]
        if c == 46:
            continue
        d = int(c) - 48
        if q >= 0:
            if acc < -922337203685477580 or (acc == -922337203685477580 and d > 8):
                return OVERFLOW, 0
            acc = acc * 10 - d
        elif d != 0:
            return INEXACT, 0
        q -= 1
    return _scale_up(acc, q + 1, neg)


@njit(cache=True)
def parse_decimal(buf, start, end, exponent):
    """Parse ASCII decimal text ``buf[start:end]`` into ``(status, mantissa)``.

    ``value = mantissa * 10**-exponent``.  Trailing zeros below the resolution are accepted;
    a non-zero digit there gives INEXACT (never rounds).  ``mantissa`` is 0 unless status is OK.
    A range outside ``buf`` is reported as SYNTAX rather than read.
    """
    if start < 0 or end > buf.shape[0] or start > end:
        return SYNTAX, 0
    status, neg, ds, dot, de, exp10 = _scan(buf, start, end)
    if status != OK:
        return status, 0
    int_end = dot if dot >= 0 else de
    return _accumulate(buf, ds, de, int_end - ds - 1 + exp10 + exponent, neg)


@njit(cache=True)
def parse_decimal_batch(out_mantissa, out_status, buf, starts, ends, exponent):
    """Parse fields ``buf[starts[k]:ends[k]]`` into ``out_mantissa[k]`` / ``out_status[k]``.

    Processes ``k < min`` of the four array lengths and returns the number of fields whose
    status is not OK (their mantissa is written as 0).
    """
    n = min(out_mantissa.shape[0], out_status.shape[0], starts.shape[0], ends.shape[0])
    failures = 0
    for k in range(n):
        status, mantissa = parse_decimal(buf, starts[k], ends[k], exponent)
        out_mantissa[k] = mantissa
        out_status[k] = status
        if status != OK:
            failures += 1
    return failures


@njit(cache=True)
def _split_last(mantissa):
    """``(last_digit, rest)`` of ``abs(mantissa)``, safe for int64 min (no negation of it)."""
    if mantissa < 0:
        return -(mantissa % -10), mantissa // -10
    return mantissa % 10, mantissa // 10


@njit(cache=True)
def _count_digits(u):
    """Number of decimal digits of ``u >= 0`` (1 for 0)."""
    n = 1
    while u >= 10:
        u //= 10
        n += 1
    return n


@njit(cache=True)
def _write_digits(out, pos, last, rest, width, exponent):
    """Write ``width`` digits of ``rest*10 + last`` ending at ``out[pos]``, '.' after the
    ``exponent`` lowest ones; zero-pads on the left."""
    d = last
    for k in range(width):
        if k == exponent and k > 0:
            out[pos] = 46
            pos -= 1
        out[pos] = 48 + d
        pos -= 1
        d = rest % 10
        rest //= 10


@njit(cache=True)
def format_decimal(out, mantissa, exponent):
    """Write the canonical text of ``mantissa * 10**-exponent`` into ``out``; return its length.

    Canonical: optional '-', integer digits without leading zeros (a single '0' if none), and
    exactly ``exponent`` digits after '.' when ``exponent > 0``; never exponent notation.
    Returns -1 (writing nothing) if ``exponent < 0`` or ``out`` is too short; 21 + exponent
    bytes always suffice.
    """
    if exponent < 0:
        return -1
    last, rest = _split_last(mantissa)
    ndig = 1 if rest == 0 else 1 + _count_digits(rest)
    width = max(ndig, exponent + 1)
    n = width + (1 if exponent > 0 else 0) + (1 if mantissa < 0 else 0)
    if n > out.shape[0]:
        return -1
    _write_digits(out, n - 1, last, rest, width, exponent)
    if mantissa < 0:
        out[0] = 45
    return n
