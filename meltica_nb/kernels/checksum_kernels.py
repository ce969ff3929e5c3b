"""CRC32 (IEEE 802.3, the polynomial zlib uses) over byte arrays, callable from kernels.

Venues that publish book checksums (OKX, Kraken) define them as the CRC32 of a string built
from the book's price and quantity *text*; their book kernels build that string into a
preallocated ``uint8`` buffer and call :func:`crc32_update` on it, so no Python ``bytes`` is
made per message. Incremental: feed pieces in order, starting from 0; the result equals
``zlib.crc32`` of the concatenated pieces (unsigned, ``0 <= crc < 2**32``). Eight bytes at a
time ("slicing-by-8"), in int64 arithmetic so it runs the same compiled and as plain Python.
"""

import numpy as np
from numba import njit


def _tables() -> np.ndarray:
    """Slicing-by-8 lookup tables of the reflected polynomial 0xEDB88320, int64 ``[8, 256]``.

    Row 0 is the classic byte table; row ``k`` advances a byte's CRC through ``k`` more zero
    bytes, so eight bytes are folded in with eight lookups and no per-byte shift chain.
    """
    table = np.zeros((8, 256), np.int64)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table[0, i] = c
    for k in range(1, 8):
        for i in range(256):
            prev = int(table[k - 1, i])
            table[k, i] = (prev >> 8) ^ int(table[0, prev & 0xFF])
    return table


#: Held as int32 (the same 32 bits; 8 KB instead of 16 stays in L1 beside the books): each
#: lookup is sign-extended and the XOR of them masked back to 32 bits.
CRC32_TABLES = _tables().astype(np.uint32).view(np.int32)


@njit(cache=True, nogil=True)
def _word(buf, i):
    """Four bytes from ``buf[i]`` as a little-endian int."""
    return (int(buf[i]) | (int(buf[i + 1]) << 8) | (int(buf[i + 2]) << 16)
            | (int(buf[i + 3]) << 24))


@njit(cache=True, nogil=True)
def crc32_update(crc, buf, start, end):
    """CRC32 of ``buf[start:end]`` continuing from ``crc`` (0 for a fresh checksum)."""
    t = CRC32_TABLES
    c = crc ^ 0xFFFFFFFF
    i = start
    while i + 8 <= end:
        one = c ^ _word(buf, i)
        two = _word(buf, i + 4)
        c = (int(t[7, one & 0xFF]) ^ int(t[6, (one >> 8) & 0xFF])
             ^ int(t[5, (one >> 16) & 0xFF]) ^ int(t[4, one >> 24]) ^ int(t[3, two & 0xFF])
             ^ int(t[2, (two >> 8) & 0xFF]) ^ int(t[1, (two >> 16) & 0xFF])
             ^ int(t[0, two >> 24])) & 0xFFFFFFFF
        i += 8
    while i < end:
        c = (int(t[0, (c ^ int(buf[i])) & 0xFF]) & 0xFFFFFFFF) ^ (c >> 8)
        i += 1
    return c ^ 0xFFFFFFFF


@njit(cache=True, nogil=True)
def crc32_signed(crc):
    """The unsigned CRC as a signed 32-bit value (OKX publishes its checksum signed)."""
    return crc - 0x100000000 if crc >= 0x80000000 else crc


# -- printing the checksum text ---------------------------------------------------------------
#
# The checksum strings are made of decimal text rebuilt from int64 mantissas. A division by a
# power of ten known only at run time is a hardware divide (tens of cycles, 40-100 of them
# per message); by a constant it is a multiply, so :func:`div_pow10` picks the constant.

#: No helper here allocates; inlined into the venues' text builders (a call per value would
#: cost more than the value's work).
_inline = njit(cache=True, _nrt=False, inline="always")

#: Powers of ten up to 10**18.
POW10 = np.array([10**k for k in range(19)], np.int64)
#: "00" .. "99": two digits per step when printing.
_PAIRS = np.array([ord(c) for k in range(100) for c in f"{k:02d}"], np.uint8)
_ZERO = 48
_DOT = 46


@_inline
def div_pow10(v, k):
    """``v // 10**k`` for ``0 <= k <= 18`` (``v >= 0``), by a constant divisor."""
    if k < 6:
        if k < 3:
            return v if k == 0 else (v // 10 if k == 1 else v // 100)
        return v // 1000 if k == 3 else (v // 10_000 if k == 4 else v // 100_000)
    if k < 12:
        if k < 9:
            return v // 10**6 if k == 6 else (v // 10**7 if k == 7 else v // 10**8)
        return v // 10**9 if k == 9 else (v // 10**10 if k == 10 else v // 10**11)
    if k < 15:
        return v // 10**12 if k == 12 else (v // 10**13 if k == 13 else v // 10**14)
    if k < 17:
        return v // 10**15 if k == 15 else v // 10**16
    return v // 10**17 if k == 17 else v // 10**18


@_inline
def _put_fixed(buf, end, value, width):
    """Exactly ``width`` digits of ``value`` (zero padded) ending just before ``end``."""
    k = end
    stop = end - width
    while k - 2 >= stop:
        two = (value % 100) * 2
        value //= 100
        buf[k - 1] = _PAIRS[two + 1]
        buf[k - 2] = _PAIRS[two]
        k -= 2
    if k > stop:
        buf[k - 1] = _ZERO + value % 10


@_inline
def _n_digits(v):
    """Digits of ``v >= 0`` (1 for 0): a few comparisons, no loop over the powers of ten."""
    if v < 10**8:
        if v < 10**4:
            return 1 + (v >= 10) + (v >= 100) + (v >= 1000)
        return 5 + (v >= 10**5) + (v >= 10**6) + (v >= 10**7)
    if v < 10**16:
        if v < 10**12:
            return 9 + (v >= 10**9) + (v >= 10**10) + (v >= 10**11)
        return 13 + (v >= 10**13) + (v >= 10**14) + (v >= 10**15)
    return 17 + (v >= 10**17) + (v >= 10**18)


@_inline
def put_digits(buf, pos, value):
    """The decimal digits of ``value`` at ``buf[pos:]``; return the end. 0 writes nothing."""
    if value <= 0:
        return pos
    n = _n_digits(value)
    _put_fixed(buf, pos + n, value, n)
    return pos + n


@_inline
def put_decimal(buf, pos, value, decimals):
    """``value`` as a decimal with ``decimals`` places (``12.50`` for 1250, 2; ``0.05`` for 5,
    2; ``7`` for 7, 0) at ``buf[pos:]``; return the end."""
    whole = div_pow10(value, decimals)
    if whole == 0:
        buf[pos] = _ZERO
        pos += 1
    else:
        pos = put_digits(buf, pos, whole)
    if decimals == 0:
        return pos
    buf[pos] = _DOT
    end = pos + 1 + decimals
    _put_fixed(buf, end, value - whole * POW10[decimals], decimals)
    return end


# -- checksums from cached pieces ------------------------------------------------------------
#
# A book checksum string is a join of per-level pieces (OKX ``:px:sz``, Kraken's digits) that
# mostly stay the same from one message to the next. CRC32 is linear, so the register after a
# piece is the register before it advanced through ``n`` zero bytes, XOR the piece's own
# register (its CRC from a zero register): ``r' = shift_n(r) ^ L(piece)``. A book that keeps
# ``L`` and ``n`` beside each level checksums its top levels with four table lookups per level
# instead of re-reading their text (the zlib ``crc32_combine`` identity, with the shift by
# ``n`` bytes tabulated).

#: Longest piece the shift tables cover, in bytes.
MAX_PIECE = 40


def _shift_tables(max_len: int) -> np.ndarray:
    """``[max_len + 1, 4, 256]`` int32: row ``n, b, v`` is the register ``v << 8b`` advanced
    through ``n`` zero bytes (the shift is linear: a register's is the XOR of its bytes')."""
    byte_table = CRC32_TABLES[0].view(np.uint32).astype(np.int64)
    reg = (np.arange(256, dtype=np.int64)[None, :] << (8 * np.arange(4, dtype=np.int64))[:, None])
    out = np.zeros((max_len + 1, 4, 256), np.int64)
    for n in range(max_len + 1):
        out[n] = reg
        reg = byte_table[reg & 0xFF] ^ (reg >> 8)
    return out.astype(np.uint32).view(np.int32)


CRC32_SHIFT = _shift_tables(MAX_PIECE)


@njit(cache=True, nogil=True)
def crc32_piece(buf, start, end):
    """The register of ``buf[start:end]`` from a zero register (``L`` above; no pre/post XOR)."""
    return crc32_update(0xFFFFFFFF, buf, start, end) ^ 0xFFFFFFFF


@_inline
def crc32_append(reg, piece, n):
    """The register after a piece of ``n <= MAX_PIECE`` bytes whose own register is ``piece``,
    from register ``reg``. A checksum starts at ``reg = 0xFFFFFFFF`` and ends ``reg ^ 0xFFFFFFFF``.
    """
    t = CRC32_SHIFT
    return ((int(t[n, 0, reg & 0xFF]) ^ int(t[n, 1, (reg >> 8) & 0xFF])
             ^ int(t[n, 2, (reg >> 16) & 0xFF]) ^ int(t[n, 3, reg >> 24])) & 0xFFFFFFFF) ^ piece

