"""CRC32 of a string joined from its pieces' CRCs (crc32_piece / crc32_append) against zlib."""

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_nb.kernels.checksum_kernels import CRC32_PIECE_MAX, crc32_append, crc32_piece

pieces = st.lists(st.binary(max_size=CRC32_PIECE_MAX), max_size=25)


@settings(deadline=None)  # the first call compiles the kernels
@given(pieces, st.integers(min_value=0, max_value=2**32 - 1))
def test_joined_pieces_give_the_crc_of_the_whole(parts, seed):
    prefix = seed.to_bytes(4, "little")  # joining onto the CRC of some text, not only of ""
    crc = zlib.crc32(prefix)
    for part in parts:
        crc = crc32_append(crc, crc32_piece(np.frombuffer(part, np.uint8), 0, len(part)))
    assert crc == zlib.crc32(prefix + b"".join(parts))


def test_a_piece_is_its_length_and_register_and_never_zero_unless_empty():
    text = b"6123450000012345678"  # one Kraken level's checksum text
    buf = np.frombuffer(b"xx" + text, np.uint8)
    piece = crc32_piece(buf, 2, buf.shape[0])
    assert piece >> 32 == len(text) and piece != 0
    assert crc32_append(0, piece) == zlib.crc32(text)
    assert crc32_piece(buf, 1, 1) == 0 and crc32_append(zlib.crc32(b"ab"), 0) == zlib.crc32(b"ab")


@pytest.mark.parametrize("n", [1, 8, 9, CRC32_PIECE_MAX])
def test_every_piece_length_up_to_the_maximum(n):
    text = bytes(range(48, 48 + n))
    piece = crc32_piece(np.frombuffer(text, np.uint8), 0, n)
    assert crc32_append(zlib.crc32(b"head"), piece) == zlib.crc32(b"head" + text)
