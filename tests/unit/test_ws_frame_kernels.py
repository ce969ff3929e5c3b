"""The text-frame splitter against a byte-by-byte reading of RFC 6455 frames.

Whatever the mix (text, control, continuation, binary, masked frames; 7-, 16- and 64-bit
lengths; payloads with and without the data prefix) and wherever the bytes are cut, the kernel
returns exactly the leading run of complete, final, unmasked text frames that start with the
prefix, and says whether it stopped because the bytes ran out.
"""

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_nb.kernels.ws_frame_kernels import split_text_frames


def frame(opcode: int, payload: bytes, fin: bool = True, masked: bool = False) -> bytes:
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = bytes([(0x80 if fin else 0) | opcode, mask_bit | n])
    elif n < 1 << 16:
        head = bytes([(0x80 if fin else 0) | opcode, mask_bit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([(0x80 if fin else 0) | opcode, mask_bit | 127]) + struct.pack("!Q", n)
    return head + (b"\x00" * 4 if masked else b"") + payload


FRAMES = st.lists(st.tuples(
    st.sampled_from(["text", "text", "text", "ping", "cont", "binary", "masked", "open"]),
    st.sampled_from([0, 1, 5, 125, 126, 300, 65535, 65536, 70_000]),
    st.sampled_from(["A", "A", "B"])), max_size=8)
NO_PREFIX = np.zeros(0, np.uint8)
OPCODE = {"text": 0x1, "ping": 0x9, "cont": 0x0, "binary": 0x2, "masked": 0x1, "open": 0x1}


def reference(parts, cut: int, limit: int, prefix: bytes):
    """(payload spans, consumed, short) read frame by frame, as the docstring promises."""
    spans, pos = [], 0
    for kind, payload, raw in parts:
        head = len(raw) - len(payload)
        if cut - pos < 2:
            return spans, pos, True
        if kind != "text":  # the first two bytes tell
            return spans, pos, False
        if cut - pos < head:
            return spans, pos, True
        if len(payload) > limit:
            return spans, pos, False
        if cut - pos < len(raw):
            return spans, pos, True
        if not payload.startswith(prefix):
            return spans, pos, False
        spans.append((pos + head, len(payload)))
        pos += len(raw)
    return spans, pos, True


@settings(max_examples=400, deadline=None)
@given(FRAMES, st.integers(0, 100), st.sampled_from([70_000, 1000]),
       st.sampled_from([b"", b"A", b"AA"]))
def test_split_equals_the_frame_by_frame_reading(spec, cut_pct, limit, prefix):
    parts = []
    for kind, n, letter in spec:
        payload = letter.encode() * n
        raw = frame(OPCODE[kind], payload, fin=kind != "open", masked=kind == "masked")
        parts.append((kind, payload, raw))
    data = b"".join(raw for _, _, raw in parts)
    cut = len(data) * cut_pct // 100
    offsets, lengths = np.empty(16, np.int64), np.empty(16, np.int64)
    found, consumed, short = split_text_frames(np.frombuffer(data[:cut], np.uint8), limit,
                                               np.frombuffer(prefix, np.uint8), offsets, lengths)
    spans, pos, ref_short = reference(parts, cut, limit, prefix)
    assert list(zip(offsets[:found].tolist(), lengths[:found].tolist(), strict=True)) == spans
    assert (consumed, bool(short)) == (pos, ref_short)


def test_a_full_output_stops_the_split_without_calling_it_short():
    data = b"".join(frame(0x1, b"x" * 10) for _ in range(5))
    offsets, lengths = np.empty(3, np.int64), np.empty(3, np.int64)
    found, consumed, short = split_text_frames(np.frombuffer(data, np.uint8), 100, NO_PREFIX,
                                               offsets, lengths)
    assert (found, consumed, short) == (3, 36, False)
    assert offsets.tolist() == [2, 14, 26] and lengths.tolist() == [10, 10, 10]


def test_a_64_bit_length_with_its_top_bit_set_is_left_to_websocket_client():
    data = bytes([0x81, 127]) + (1 << 63).to_bytes(8, "big") + b"x" * 10
    offsets, lengths = np.empty(4, np.int64), np.empty(4, np.int64)
    found = split_text_frames(np.frombuffer(data, np.uint8), 1 << 62, NO_PREFIX, offsets, lengths)
    assert found == (0, 0, False)
