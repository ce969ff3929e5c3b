"""FrameArena: the batch's frame bytes back to back; parsers read them in place.

Frames come in one by one (websocket-client's path) and as blocks the splitter located in the
read buffer (headers between them stay in the arena, the offsets skip them); whatever the mix
and however often the arrays grow, the arena reads back as exactly the frames added, in order.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_nb.kernels.ws_frame_kernels import split_text_frames
from meltica_nb.venues.frame_arena import FrameArena


def _wire(payloads: list[bytes]) -> bytearray:
    """Unmasked final text frames with 7- or 16-bit lengths, as a server sends them."""
    out = bytearray()
    for p in payloads:
        n = len(p)
        out += bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + n.to_bytes(2, "big")
        out += p
    return out


PAYLOADS = st.lists(st.binary(min_size=0, max_size=300), max_size=6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), PAYLOADS), max_size=6))
def test_the_arena_reads_back_every_frame_added_in_order(steps):
    arena = FrameArena(frames=2, nbytes=8)  # tiny: every step grows something
    want, stamps = [], []
    offsets, lengths = np.empty(16, np.int64), np.empty(16, np.int64)
    for t, (split, payloads) in enumerate(steps):
        if split:
            src = _wire(payloads)
            found, consumed, _ = split_text_frames(np.frombuffer(src, np.uint8), 1 << 20,
                                                   np.zeros(0, np.uint8), offsets, lengths)
            assert found == len(payloads) and consumed == len(src)
            arena.add_split(src, offsets, lengths, found, consumed, 100 + t)
        else:
            for p in payloads:
                arena.add(p, 100 + t)
        want += payloads
        stamps += [100 + t] * len(payloads)
    assert len(arena) == len(want) and list(arena) == want
    assert arena.recv().tolist() == stamps
    assert arena.payload_bytes == sum(map(len, want))
    buf = arena.buf
    assert [buf[o:o + n].tobytes() for o, n in zip(arena.offsets[:arena.n].tolist(),
                                                   arena.lengths[:arena.n].tolist(),
                                                   strict=True)] == want


def test_clear_keeps_the_arrays_and_indexing_is_checked():
    arena = FrameArena()
    arena.add(b"abc", 1)
    arena.add(b"de", 2)
    assert arena[-1] == b"de" and arena[0] == b"abc"
    with pytest.raises(IndexError):
        arena[2]
    buf = arena.buf
    arena.clear()
    assert len(arena) == 0 and list(arena) == [] and arena.payload_bytes == 0
    arena.add(b"x", 3)
    assert arena.buf is buf and list(arena) == [b"x"]
