"""CRC32 (IEEE 802.3, the polynomial zlib uses) over byte arrays, callable from kernels.

Venues that publish book checksums (OKX, Kraken) define them as the CRC32 of a string built
from the book's price and quantity *text*; their book kernels build that string into a
preallocated ``uint8`` buffer and call :func:`crc32_update` on it, so no Python ``bytes`` is
made per message. Incremental: feed pieces in order, starting from 0; the result equals
``zlib.crc32`` of the concatenated pieces (unsigned, ``0 <= crc < 2**32``).
"""

import numpy as np
from numba import njit


def _table() -> np.ndarray:
    """The 256-entry lookup table of the reflected polynomial 0xEDB88320."""
    table = np.zeros(256, np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table[i] = c
    return table


CRC32_TABLE = _table()


@njit(cache=True, nogil=True)
def crc32_update(crc, buf, start, end):
    """CRC32 of ``buf[start:end]`` continuing from ``crc`` (0 for a fresh checksum)."""
    c = np.uint32(crc) ^ np.uint32(0xFFFFFFFF)
    for i in range(start, end):
        c = CRC32_TABLE[(c ^ np.uint32(buf[i])) & np.uint32(0xFF)] ^ (c >> np.uint32(8))
    return np.int64(c ^ np.uint32(0xFFFFFFFF))


@njit(cache=True, nogil=True)
def crc32_signed(crc):
    """The unsigned CRC as a signed 32-bit value (OKX publishes its checksum signed)."""
    return crc - 0x100000000 if crc >= 0x80000000 else crc
