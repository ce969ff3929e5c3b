"""Exact fixed-point money: decimal text <-> int64 mantissa, never floats.

Prices and quantities are int64 *mantissas* with a per-instrument *exponent* (decimals kept):
``value = mantissa * 10**-exponent``.  A float cannot hold ``0.1`` exactly, and one rounded
price is enough to break an order-book checksum or send a wrong order, so money enters and
leaves the engine only as decimal text converted exactly by the Numba kernels in
:mod:`meltica_nb.kernels.decimal_kernels`.  Nothing is ever rounded: text with more decimals
than the instrument allows is an error, as is a value that overflows int64.

Every error names the offending value and the exponent, because a bad field in a venue feed
is found from the message alone::

    >>> to_mantissa("67000.01000000", 8)
    6700001000000
    >>> from_mantissa(1050, 2)
    '10.50'

and ``to_mantissa("1.234", 2)`` raises DecimalOverflowError("'1.234' does not fit exponent 2:
more decimal places than the instrument allows").
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

from meltica_nb.errors import ConfigError, DecimalOverflowError, DecimalSyntaxError
from meltica_nb.kernels.decimal_kernels import (
    INEXACT,
    OK,
    OVERFLOW,
    SYNTAX,
    format_decimal,
    parse_decimal,
    parse_decimal_batch,
)

__all__ = [
    "MAX_EXPONENT",
    "from_mantissa",
    "normalize",
    "to_mantissa",
    "to_mantissa_array",
]

#: Largest supported exponent: 10**18 is the largest power of ten below the int64 maximum.
MAX_EXPONENT = 18

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_SHOWN_CHARS = 64  # longest value quoted verbatim in an error message


def _check_exponent(exponent: int) -> int:
    """Return ``exponent`` as an int, or raise ConfigError unless it is an integer in 0..18."""
    if isinstance(exponent, bool):
        raise ConfigError(f"exponent must be an int in 0..{MAX_EXPONENT}, got {exponent!r}")
    try:
        value = operator.index(exponent)
    except TypeError:
        raise ConfigError(
            f"exponent must be an int in 0..{MAX_EXPONENT}, got {type(exponent).__name__}"
        ) from None
    if not 0 <= value <= MAX_EXPONENT:
        raise ConfigError(f"exponent must be in 0..{MAX_EXPONENT}, got {value}")
    return value


def _shown(text: str | bytes) -> str:
    """The value as quoted in messages: repr of its text, shortened if very long."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("ascii", "backslashreplace")
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "..."
    return repr(text)


def _to_bytes(text: str | bytes, exponent: int | None) -> bytes:
    """ASCII bytes of ``text``; a non-text argument (notably a float) is refused."""
    if isinstance(text, bytes | bytearray):
        return bytes(text)
    if not isinstance(text, str):
        at = "" if exponent is None else f" (exponent {exponent})"
        raise ConfigError(
            f"decimal value must be str or bytes, got {type(text).__name__} {text!r}{at}: "
            "money is passed as decimal text, never as float"
        )
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise _error(SYNTAX, text, exponent) from None


def _error(status: int, text: str | bytes, exponent: int | None, where: str = "") -> Exception:
    """The exception for a non-OK kernel status, naming the value and exponent."""
    shown = _shown(text)
    at = "" if exponent is None else f" (exponent {exponent})"
    if status == INEXACT:
        return DecimalOverflowError(
            f"{shown}{where} does not fit exponent {exponent}: "
            "more decimal places than the instrument allows"
        )
    if status == OVERFLOW:
        return DecimalOverflowError(
            f"{shown}{where} does not fit exponent {exponent}: the mantissa overflows int64"
        )
    return DecimalSyntaxError(
        f"{shown}{where} is not a decimal number{at}: expected [+-]digits[.digits][e[+-]digits]"
    )


def to_mantissa(text: str | bytes, exponent: int) -> int:
    """Exact int64 mantissa of decimal ``text`` at ``exponent`` (``value * 10**exponent``).

    Accepts ``[+-]digits[.digits][e[+-]digits]`` (e.g. ``"0.00100000"``, ``".5"``, ``"1e-5"``).
    Raises DecimalSyntaxError for non-decimal text, DecimalOverflowError when the value has a
    non-zero digit below ``10**-exponent`` or overflows int64, ConfigError for a bad exponent.
    """
    exponent = _check_exponent(exponent)
    buf = np.frombuffer(_to_bytes(text, exponent), dtype=np.uint8)
    status, mantissa = parse_decimal(buf, 0, buf.shape[0], exponent)
    if status != OK:
        raise _error(int(status), text, exponent)
    return int(mantissa)


def from_mantissa(mantissa: int, exponent: int) -> str:
    """Canonical decimal text of ``mantissa * 10**-exponent``: exactly ``exponent`` decimals.

    ``from_mantissa(1050, 2) == "10.50"``, ``from_mantissa(-5, 3) == "-0.005"``.  Raises
    ConfigError for a bad exponent or a non-integer mantissa, DecimalOverflowError for a
    mantissa outside int64.
    """
    exponent = _check_exponent(exponent)
    if isinstance(mantissa, bool | float) or not hasattr(mantissa, "__index__"):
        raise ConfigError(f"mantissa must be an int, got {type(mantissa).__name__} {mantissa!r}")
    value = operator.index(mantissa)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise DecimalOverflowError(f"mantissa {value} (exponent {exponent}) is outside int64")
    out = np.empty(21 + exponent, dtype=np.uint8)
    length = format_decimal(out, value, exponent)
    return out[:length].tobytes().decode("ascii")


def to_mantissa_array(texts: Sequence[str | bytes], exponent: int) -> np.ndarray:
    """Mantissas of many decimal texts as an int64 array, parsed by one kernel call.

    Raises like :func:`to_mantissa` for the first bad value, naming it and its index.
    """
    exponent = _check_exponent(exponent)
    texts = list(texts)
    encoded = [_to_bytes(text, exponent) for text in texts]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    buf = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    mantissas = np.empty(len(encoded), dtype=np.int64)
    status = np.empty(len(encoded), dtype=np.int8)
    if parse_decimal_batch(mantissas, status, buf, starts, ends, exponent):
        first = int(np.flatnonzero(status != OK)[0])
        raise _error(int(status[first]), texts[first], exponent, f" (index {first})")
    return mantissas


def normalize(text: str | bytes) -> str:
    """Decimal text without trailing fractional zeros or a trailing '.' (for venue checksums).

    ``"67000.01000000" -> "67000.01"``, ``"5.000" -> "5"``, ``"100" -> "100"``,
    ``"1.50e-5" -> "1.5e-5"``.  Sign, integer digits and exponent part are kept as sent; a
    coefficient left without digits becomes ``"0"``.  Raises DecimalSyntaxError for text that
    is not a decimal number.
    """
    raw = _to_bytes(text, None)
    buf = np.frombuffer(raw, dtype=np.uint8)
    status, _ = parse_decimal(buf, 0, buf.shape[0], 0)
    if status == SYNTAX:
        raise _error(SYNTAX, text, None)
    s = raw.decode("ascii")
    mark = max(s.find("e"), s.find("E"))
    coeff, tail = (s, "") if mark < 0 else (s[:mark], s[mark:])
    if "." in coeff:
        coeff = coeff.rstrip("0").rstrip(".")
        if coeff in ("", "+", "-"):
            coeff += "0"
    return coeff + tail
