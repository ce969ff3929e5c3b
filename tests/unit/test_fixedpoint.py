"""Exact fixed-point conversion: meltica_nb.fixedpoint and its decimal kernels.

Runs both jitted and under NUMBA_DISABLE_JIT=1 (kernels as plain Python).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from meltica_nb.errors import (
    ConfigError,
    DecimalError,
    DecimalOverflowError,
    DecimalSyntaxError,
)
from meltica_nb.fixedpoint import from_mantissa, normalize, to_mantissa, to_mantissa_array
from meltica_nb.kernels.decimal_kernels import (
    INEXACT,
    OK,
    OVERFLOW,
    SYNTAX,
    format_decimal,
    parse_decimal,
    parse_decimal_batch,
)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

int64s = st.integers(min_value=INT64_MIN, max_value=INT64_MAX)
exponents = st.integers(min_value=0, max_value=18)


def _buf(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8)


def _expected(text: str, exponent: int) -> int | type[DecimalError]:
    """Oracle: the exact mantissa per decimal.Decimal, or the error class to expect.

    The 'e' part is read as a Python int, since Decimal() refuses exponents beyond ~1e18;
    Decimal's own extras (NaN, Infinity, '_', whitespace, non-ASCII digits) are not decimal text.
    """
    coeff_text, _, exp_text = text.replace("E", "e").partition("e")
    if not text.isascii() or "_" in text or text.strip() != text:
        return DecimalSyntaxError
    if "e" in text.lower() and not re.fullmatch(r"[+-]?[0-9]+", exp_text):
        return DecimalSyntaxError
    try:
        coeff_value = Decimal(coeff_text)
    except InvalidOperation:
        return DecimalSyntaxError
    if not coeff_value.is_finite():
        return DecimalSyntaxError
    sign, digits, exp = coeff_value.as_tuple()
    coeff = int("".join(map(str, digits)))
    shift = exp + int(exp_text or "0") + exponent
    if coeff == 0:
        return 0
    if shift > 40 or shift < -len(digits):  # beyond int64, or a non-zero digit lost
        return DecimalOverflowError
    if shift >= 0:
        value = coeff * 10**shift
    elif coeff % 10**-shift:
        return DecimalOverflowError
    else:
        value = coeff // 10**-shift
    value = -value if sign else value
    return value if INT64_MIN <= value <= INT64_MAX else DecimalOverflowError


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize(
    ("text", "exponent", "mantissa"),
    [
        ("67000.01000000", 8, 6_700_001_000_000),  # Binance price
        ("0.00100000", 8, 100_000),  # Binance quantity
        ("0.00100000", 3, 1),
        ("0.10000000", 2, 10),  # trailing zeros beyond the exponent
        ("-12.340", 3, -12_340),
        ("-0.5", 1, -5),
        ("-0", 0, 0),
        ("+1", 0, 1),
        ("+1", 4, 10_000),
        ("1e-5", 5, 1),
        ("1e-5", 8, 1_000),
        ("1.5E+3", 0, 1_500),
        ("1.5e3", 2, 150_000),
        ("25E-1", 1, 25),
        ("0e999", 0, 0),
        ("000123.4500", 2, 12_345),  # leading zeros
        ("00000000000000000000000000001", 0, 1),
        (".5", 1, 5),
        ("-.5", 2, -50),
        ("5.", 0, 5),
        ("5.", 2, 500),
        ("0", 18, 0),
        ("1", 18, 10**18),
        ("9.223372036854775807", 18, INT64_MAX),
        (b"42.1", 1, 421),  # bytes straight from the wire
    ],
)
def test_to_mantissa_examples(text: str | bytes, exponent: int, mantissa: int) -> None:
    assert to_mantissa(text, exponent) == mantissa
    assert type(to_mantissa(text, exponent)) is int


@pytest.mark.parametrize(
    ("mantissa", "exponent", "text"),
    [
        (1050, 2, "10.50"),
        (-5, 3, "-0.005"),
        (0, 0, "0"),
        (0, 3, "0.000"),
        (7, 0, "7"),
        (-7, 1, "-0.7"),
        (6_700_001_000_000, 8, "67000.01000000"),
        (INT64_MAX, 0, "9223372036854775807"),
        (INT64_MIN, 0, "-9223372036854775808"),
        (INT64_MIN, 18, "-9.223372036854775808"),
        (1, 18, "0.000000000000000001"),
        (np.int64(-42), 1, "-4.2"),
    ],
)
def test_from_mantissa_examples(mantissa: int, exponent: int, text: str) -> None:
    assert from_mantissa(mantissa, exponent) == text


def test_int64_boundaries() -> None:
    assert to_mantissa("9223372036854775807", 0) == INT64_MAX
    assert to_mantissa("-9223372036854775808", 0) == INT64_MIN
    assert to_mantissa("-9.223372036854775808", 18) == INT64_MIN
    with pytest.raises(DecimalOverflowError, match="overflows int64"):
        to_mantissa("9223372036854775808", 0)
    with pytest.raises(DecimalOverflowError, match="overflows int64"):
        to_mantissa("-9223372036854775809", 0)
    assert to_mantissa("92233720368.54775807", 8) == INT64_MAX
    with pytest.raises(DecimalOverflowError, match="overflows int64"):
        to_mantissa("92233720368.54775808", 8)
    with pytest.raises(DecimalOverflowError, match="'100000000000' does not fit exponent 8"):
        to_mantissa("100000000000", 8)
    with pytest.raises(DecimalOverflowError, match="overflows int64"):
        to_mantissa("1e11", 8)
    with pytest.raises(DecimalOverflowError, match="overflows int64"):
        to_mantissa("1e999999999999999999999999", 0)


# --------------------------------------------------------------------------- errors


NOT_DECIMAL = (
    ["", "-", "+", ".", "-.", "1..2", "1.2.3", "..5", "--1", "+-1", "1-", " 1", "1 ", "1,5"]
    + ["abc", "0x10", "1e", "1e+", "e5", ".e5", "1e5.5", "1e--5", "NaN", "inf", "1_000"]
    + ["\u0661", "\uff11"]  # non-ASCII digits Decimal would accept
)


@pytest.mark.parametrize("text", NOT_DECIMAL)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(DecimalSyntaxError) as info:
        to_mantissa(text, 2)
    assert str(info.value) == (
        f"{text!r} is not a decimal number (exponent 2): expected [+-]digits[.digits][e[+-]digits]"
    )


def test_inexact_message() -> None:
    with pytest.raises(DecimalOverflowError) as info:
        to_mantissa("1.234", 2)
    assert str(info.value) == (
        "'1.234' does not fit exponent 2: more decimal places than the instrument allows"
    )
    with pytest.raises(DecimalOverflowError, match="more decimal places"):
        to_mantissa("1e-9", 8)
    with pytest.raises(DecimalOverflowError, match="more decimal places"):
        to_mantissa("0.5", 0)


def test_overflow_message() -> None:
    with pytest.raises(DecimalOverflowError) as info:
        to_mantissa(b"99999999999999999999", 0)
    assert str(info.value) == (
        "'99999999999999999999' does not fit exponent 0: the mantissa overflows int64"
    )


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(DecimalSyntaxError, match=r"^'1{64}\.\.\.' is not"):
        to_mantissa("1" * 100 + "x", 0)


@pytest.mark.parametrize("exponent", [-1, 19, 2.0, "2", True, None])
def test_bad_exponent_is_config_error(exponent: object) -> None:
    with pytest.raises(ConfigError, match="exponent"):
        to_mantissa("1", exponent)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="exponent"):
        from_mantissa(1, exponent)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="exponent"):
        to_mantissa_array(["1"], exponent)  # type: ignore[arg-type]


def test_numpy_integer_exponent_is_accepted() -> None:
    assert to_mantissa("1.5", np.int8(1)) == 15


def test_float_is_refused() -> None:
    with pytest.raises(ConfigError, match="never as float"):
        to_mantissa(0.1, 2)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mantissa must be an int"):
        from_mantissa(1.0, 2)  # type: ignore[arg-type]


def test_from_mantissa_outside_int64() -> None:
    with pytest.raises(DecimalOverflowError, match="outside int64"):
        from_mantissa(INT64_MAX + 1, 0)
    with pytest.raises(DecimalOverflowError, match="outside int64"):
        from_mantissa(INT64_MIN - 1, 0)


# --------------------------------------------------------------------------- arrays


def test_to_mantissa_array() -> None:
    got = to_mantissa_array(["67000.01000000", b"0.001", "-1", "1e-8", "0"], 8)
    assert got.dtype == np.int64
    assert got.tolist() == [6_700_001_000_000, 100_000, -100_000_000, 1, 0]
    assert to_mantissa_array([], 2).shape == (0,)


def test_to_mantissa_array_names_first_bad_value() -> None:
    with pytest.raises(DecimalSyntaxError, match=r"^'1\.\.2' \(index 2\) is not a decimal number"):
        to_mantissa_array(["1", "2", "1..2", "1.234"], 2)
    with pytest.raises(DecimalOverflowError) as info:
        to_mantissa_array(["1", "1.234", "x"], 2)
    assert str(info.value) == (
        "'1.234' (index 1) does not fit exponent 2: more decimal places than the instrument allows"
    )
    with pytest.raises(DecimalSyntaxError, match=r"^'' \(index 0\)"):
        to_mantissa_array(["", "1"], 2)


# --------------------------------------------------------------------------- kernels


def test_kernel_statuses() -> None:
    assert (OK, SYNTAX, OVERFLOW, INEXACT) == (0, 1, 2, 3)
    buf = _buf("xx-1.50yy")
    assert tuple(parse_decimal(buf, 2, 7, 2)) == (OK, -150)
    assert tuple(parse_decimal(buf, 2, 7, 1)) == (OK, -15)
    assert tuple(parse_decimal(buf, 2, 7, 0))[0] == INEXACT
    assert tuple(parse_decimal(buf, 2, 8, 2))[0] == SYNTAX
    assert tuple(parse_decimal(buf, 3, 3, 2)) == (SYNTAX, 0)  # empty field
    assert tuple(parse_decimal(buf, 5, 3, 2)) == (SYNTAX, 0)  # reversed range
    assert tuple(parse_decimal(buf, -1, 3, 2)) == (SYNTAX, 0)  # outside the buffer
    assert tuple(parse_decimal(buf, 2, 99, 2)) == (SYNTAX, 0)
    assert tuple(parse_decimal(_buf("1" * 20), 0, 20, 0)) == (OVERFLOW, 0)


def test_format_decimal_reports_short_buffer() -> None:
    out = np.zeros(4, dtype=np.uint8)
    assert format_decimal(out, 12345, 0) == -1
    assert format_decimal(out, 1, -1) == -1
    assert not out.any()
    assert format_decimal(out, -123, 2) == -1  # "-1.23" needs 5 bytes
    assert not out.any()
    assert format_decimal(out, -12, 1) == 4  # "-1.2" fits exactly
    assert out.tobytes() == b"-1.2"
    big = np.zeros(21 + 18, dtype=np.uint8)
    n = format_decimal(big, INT64_MIN, 18)
    assert big[:n].tobytes() == b"-9.223372036854775808"


def test_batch_counts_failures() -> None:
    texts = [b"1.5", b"", b"2", b"1.25", b"9" * 30]
    buf = np.frombuffer(b"".join(texts), dtype=np.uint8)
    ends = np.cumsum([len(t) for t in texts]).astype(np.int64)
    starts = ends - np.array([len(t) for t in texts], dtype=np.int64)
    mantissa = np.full(len(texts), 77, dtype=np.int64)
    status = np.full(len(texts), 9, dtype=np.int8)
    assert parse_decimal_batch(mantissa, status, buf, starts, ends, 1) == 3
    assert status.tolist() == [OK, SYNTAX, OK, INEXACT, OVERFLOW]
    assert mantissa.tolist() == [15, 0, 20, 0, 0]


# --------------------------------------------------------------------------- normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("67000.01000000", "67000.01"),
        ("0.00100000", "0.001"),
        ("5.000", "5"),
        ("5.", "5"),
        ("100", "100"),
        ("0.0", "0"),
        (".000", "0"),
        ("-.0", "-0"),
        ("-1.50", "-1.5"),
        ("1.50e-5", "1.5e-5"),
        ("1.0E10", "1E10"),
        ("10e10", "10e10"),
        (b"2.50", "2.5"),
        ("1.234", "1.234"),
    ],
)
def test_normalize(text: str | bytes, expected: str) -> None:
    assert normalize(text) == expected


def test_normalize_rejects_non_decimal() -> None:
    with pytest.raises(DecimalSyntaxError, match=r"^'1\.2\.0' is not a decimal number: "):
        normalize("1.2.0")


# --------------------------------------------------------------------------- properties


@given(int64s, exponents)
def test_round_trip(mantissa: int, exponent: int) -> None:
    text = from_mantissa(mantissa, exponent)
    assert to_mantissa(text, exponent) == mantissa
    assert text == f"{Decimal(mantissa).scaleb(-exponent):f}"


decimal_texts = st.builds(
    lambda sign, whole, dot, frac, exp: sign + whole + dot + frac + exp,
    st.sampled_from(["", "-", "+"]),
    st.text("0123456789", max_size=22),
    st.sampled_from([".", ""]),
    st.text("0123456789", max_size=22),
    st.one_of(
        st.just(""),
        st.builds(
            lambda e, s, n: e + s + str(n),
            st.sampled_from("eE"),
            st.sampled_from(["", "-", "+"]),
            st.one_of(st.integers(0, 45), st.integers(0, 10**30)),
        ),
    ),
)
junk_texts = st.text("0123456789.+-eE", max_size=30)


def _check_against_decimal(text: str, exponent: int) -> None:
    expected = _expected(text, exponent)
    if isinstance(expected, int):
        assert to_mantissa(text, exponent) == expected
    else:
        with pytest.raises(expected) as info:
            to_mantissa(text, exponent)
        assert type(info.value) is expected
        quoted = repr(text if len(text) <= 64 else text[:64] + "...")  # long values are cut
        assert re.match(re.escape(quoted), str(info.value))
        assert f"exponent {exponent}" in str(info.value)


@settings(max_examples=400)
@given(decimal_texts, exponents)
@example(text="0000000000000000.0000000000000001e1000000000000000000000000000000", exponent=0)
def test_agrees_with_decimal(text: str, exponent: int) -> None:
    _check_against_decimal(text, exponent)


@settings(max_examples=300)
@given(junk_texts, exponents)
def test_agrees_with_decimal_on_junk(text: str, exponent: int) -> None:
    _check_against_decimal(text, exponent)


@given(st.lists(st.one_of(decimal_texts, junk_texts), max_size=20), exponents)
def test_batch_agrees_with_scalar(texts: list[str], exponent: int) -> None:
    raw = [t.encode("ascii") for t in texts]
    lengths = np.array([len(r) for r in raw], dtype=np.int64)
    ends = np.cumsum(lengths).astype(np.int64)
    starts = ends - lengths
    buf = np.frombuffer(b"".join(raw), dtype=np.uint8)
    mantissa = np.empty(len(raw), dtype=np.int64)
    status = np.empty(len(raw), dtype=np.int8)
    failures = parse_decimal_batch(mantissa, status, buf, starts, ends, exponent)
    scalar = [tuple(int(x) for x in parse_decimal(_buf(t), 0, len(t), exponent)) for t in texts]
    assert list(zip(status.tolist(), mantissa.tolist(), strict=True)) == scalar
    assert failures == sum(s != OK for s, _ in scalar)
    if failures == 0:
        assert to_mantissa_array(texts, exponent).tolist() == [m for _, m in scalar]
    else:
        with pytest.raises(DecimalError):
            to_mantissa_array(texts, exponent)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=8), exponents)
def test_decimal_strategy_values(value: Decimal, exponent: int) -> None:
    _check_against_decimal(str(value), exponent)
