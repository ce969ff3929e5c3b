"""CRC32 kernel against zlib, whole and in pieces."""

import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_nb.kernels.checksum_kernels import crc32_signed, crc32_update


@settings(deadline=None)  # the first call compiles the kernel
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=300))
def test_crc32_matches_zlib_whole_and_split(data, cut):
    buf = np.frombuffer(data, np.uint8)
    cut = min(cut, len(data))
    assert crc32_update(0, buf, 0, len(data)) == zlib.crc32(data)
    assert crc32_update(crc32_update(0, buf, 0, cut), buf, cut, len(data)) == zlib.crc32(data)


def test_crc32_signed_folds_the_high_bit():
    data = b"3366.1:7.0:3366.8:9.0"  # an OKX-shaped checksum string
    unsigned = zlib.crc32(data)
    signed = crc32_signed(crc32_update(0, np.frombuffer(data, np.uint8), 0, len(data)))
    assert signed == (unsigned - 2**32 if unsigned >= 2**31 else unsigned)
    assert crc32_signed(0xFFFFFFFF) == -1
    assert crc32_signed(5) == 5
