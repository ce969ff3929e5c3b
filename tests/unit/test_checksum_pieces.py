"""CRC32 of a string joined from its pieces' registers (crc32_piece / crc32_append) vs zlib."""

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_nb.kernels.checksum_kernels import MAX_PIECE, crc32_append, crc32_piece

pieces = st.lists(st.binary(max_size=MAX_PIECE), max_size=25)


def join(prefix: bytes, parts) -> int:
    """zlib's CRC of ``prefix`` continued over ``parts`` by their piece registers."""
    reg = zlib.crc32(prefix) ^ 0xFFFFFFFF
    for part in parts:
        reg = crc32_append(reg, crc32_piece(np.frombuffer(part, np.uint8), 0, len(part)),
                           len(part))
    return reg ^ 0xFFFFFFFF


@settings(deadline=None)  # the first call compiles the kernels
@given(pieces, st.integers(min_value=0, max_value=2**32 - 1))
def test_joined_pieces_give_the_crc_of_the_whole(parts, seed):
    prefix = seed.to_bytes(4, "little")  # joining onto the CRC of some text, not only of ""
    assert join(prefix, parts) == zlib.crc32(prefix + b"".join(parts))


def test_an_empty_piece_changes_nothing():
    assert crc32_piece(np.frombuffer(b"xy", np.uint8), 1, 1) == 0
    assert join(b"ab", [b""]) == zlib.crc32(b"ab")


@pytest.mark.parametrize("n", [1, 8, 9, MAX_PIECE])
def test_every_piece_length_up_to_the_maximum(n):
    text = bytes(range(48, 48 + n))
    assert join(b"head", [text]) == zlib.crc32(b"head" + text)
