"""FrameArena: the WsFrame byte arena of one batch, frames back to back with their positions.

The connection collects a batch of data frames here and hands it to ``on_frames``; the parsers
read the frames where they lie (``buf`` at ``offsets``/``lengths``), so a burst of 50 frames
costs a couple of block copies instead of 50 ``bytes`` objects, 50 Python calls and a join
before the scanner sees them. Frames the kernel split out of the read buffer
(:meth:`add_split`) are copied in one block with the headers between them; a frame read by
websocket-client is added on its own (:meth:`add`).

It also reads as a sequence of ``bytes`` (``len``, indexing, iteration) for everything that
looks at single frames: dead letters, the recorder, a parser's fallback path. The arena is the
connection's and is refilled for the next batch: keep no reference to it past ``on_frames``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["FrameArena"]


class FrameArena:
    """Frame bytes in ``buf``; frame ``i`` is ``buf[offsets[i]:offsets[i] + lengths[i]]``,
    received at ``recv_ns[i]``."""

    __slots__ = ("buf", "lengths", "n", "offsets", "payload_bytes", "recv_ns", "size")

    def __init__(self, frames: int = 256, nbytes: int = 1 << 16) -> None:
        self.buf = np.empty(nbytes, np.uint8)
        self.offsets = np.empty(frames, np.int64)
        self.lengths = np.empty(frames, np.int64)
        self.recv_ns = np.empty(frames, np.int64)
        self.n = self.size = self.payload_bytes = 0

    def clear(self) -> None:
        """Empty the arena for the next batch (its arrays are kept)."""
        self.n = self.size = self.payload_bytes = 0

    def add(self, data: bytes, stamp: int) -> None:
        """Append one frame received at ``stamp``."""
        k = len(data)
        self._room(1, k)
        at = self.size
        self.buf[at:at + k] = np.frombuffer(data, np.uint8)
        self.offsets[self.n], self.lengths[self.n], self.recv_ns[self.n] = at, k, stamp
        self.n += 1
        self.size += k
        self.payload_bytes += k

    def add_split(self, src: bytearray, offsets: np.ndarray, lengths: np.ndarray, found: int,
                  consumed: int, stamp: int) -> None:
        """Append the ``found`` frames a splitter located in ``src[:consumed]`` (payload ``k``
        at ``offsets[k]``, ``lengths[k]`` bytes), all received at ``stamp``."""
        self._room(found, consumed)
        at, n = self.size, self.n
        self.buf[at:at + consumed] = np.frombuffer(src, np.uint8, consumed)
        np.add(offsets[:found], at, out=self.offsets[n:n + found])
        self.lengths[n:n + found] = lengths[:found]
        self.recv_ns[n:n + found] = stamp
        self.n = n + found
        self.size = at + consumed
        self.payload_bytes += int(lengths[:found].sum())

    def recv(self) -> np.ndarray:
        """Receive times of the frames (a view)."""
        return self.recv_ns[:self.n]

    def _room(self, frames: int, nbytes: int) -> None:
        """Grow the arrays (doubling) so ``frames`` more frames of ``nbytes`` bytes fit."""
        if self.size + nbytes > self.buf.shape[0]:
            self.buf = _grown(self.buf, self.size, self.size + nbytes)
        if self.n + frames > self.offsets.shape[0]:
            need = self.n + frames
            self.offsets = _grown(self.offsets, self.n, need)
            self.lengths = _grown(self.lengths, self.n, need)
            self.recv_ns = _grown(self.recv_ns, self.n, need)

    # -- the sequence of frames ----------------------------------------------------------------

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> bytes:
        if not -self.n <= i < self.n:
            raise IndexError(f"frame {i} of a batch of {self.n}")
        i %= self.n
        at = int(self.offsets[i])
        return self.buf[at:at + int(self.lengths[i])].tobytes()

    def __iter__(self) -> Iterator[bytes]:
        return (self[i] for i in range(self.n))


def _grown(a: np.ndarray, used: int, need: int) -> np.ndarray:
    """A copy of ``a[:used]`` in an array of at least ``need`` (and twice the old) entries."""
    out = np.empty(max(need, 2 * a.shape[0]), a.dtype)
    out[:used] = a[:used]
    return out
