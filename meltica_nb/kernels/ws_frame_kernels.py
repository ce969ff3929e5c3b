"""WebSocket frame kernels: find the complete text frames in a buffer of received bytes.

websocket-client parses every frame in Python (header, length, payload, an ABNF object and
its validation): ~10 us a frame, the read ceiling of ~100k frames/s and, in a burst of 50
frames, half a millisecond before the first one reaches the parser. Market data arrives as
unfragmented, unmasked text frames, so the connection lets this kernel split those out of the
bytes it has already read (:meth:`~meltica_nb.venues.ws_session.ChunkedWebSocket.take_text`)
and leaves anything else (control frames, fragments, binary frames, a frame that is not
complete yet) to websocket-client, which then reads on from exactly that byte.
"""

import numpy as np
from numba import njit

#: First header byte of a final, unextended text frame (FIN, RSV 0, opcode 1).
FIN_TEXT = 0x81
#: Second-byte length codes announcing a 16-bit and a 64-bit extended length.
LEN16 = 126
LEN64 = 127


@njit(cache=True, _nrt=False)
def split_text_frames(buf, limit, prefix, offsets, lengths):
    """Find the complete FIN text frames at the start of ``buf`` whose payload starts with
    ``prefix`` (the venue's market data); return (found, consumed, short).

    Frame ``k`` has its payload at ``buf[offsets[k]:offsets[k] + lengths[k]]``; the first
    ``consumed`` bytes (whole frames) may be dropped from the buffer. Stops at the first frame
    websocket-client must see (control frames, continuations, binary, masked or extended
    frames, a payload longer than ``limit``: its own path reports that one), at a complete
    text frame without ``prefix`` (a reply: the connection reads it the general way), when
    ``offsets`` is full, or where the bytes run out; ``short`` is True in that last case (the
    next frame is not complete yet: reading more bytes may complete it).
    """
    end = buf.shape[0]
    pos = found = 0
    while found < offsets.shape[0]:
        head, length = frame_header(buf, pos, end)
        if head < 0:
            return found, pos, True
        if head == 0 or length > limit:
            break
        if end - pos - head < length:
            return found, pos, True
        if not _starts_with(buf, pos + head, length, prefix):
            break
        offsets[found] = pos + head
        lengths[found] = length
        found += 1
        pos += head + length
    return found, pos, False


@njit(cache=True, _nrt=False)
def _starts_with(buf, at, length, prefix):
    """True when the ``length`` bytes at ``at`` begin with ``prefix``."""
    if length < prefix.shape[0]:
        return False
    for i in range(prefix.shape[0]):  # noqa: SIM110 (no generators without the NRT)
        if buf[at + i] != prefix[i]:
            return False
    return True


@njit(cache=True, _nrt=False)
def frame_header(buf, pos, end):
    """(header bytes, payload length) of the frame at ``pos``; (-1, 0) if the header is cut
    short by ``end``, (0, 0) if it is not a final, unmasked text frame."""
    if end - pos < 2:
        return -1, 0
    if buf[pos] != FIN_TEXT or buf[pos + 1] & 0x80:
        return 0, 0
    code = np.int64(buf[pos + 1] & 0x7F)
    head = 2 if code < LEN16 else (4 if code == LEN16 else 10)
    if end - pos < head:
        return -1, 0
    if code < LEN16:
        return head, code
    length = np.int64(0)
    for k in range(pos + 2, pos + head):
        length = (length << 8) | np.int64(buf[k])
    return (head, length) if length >= 0 else (0, 0)  # a 64-bit length with its top bit set
