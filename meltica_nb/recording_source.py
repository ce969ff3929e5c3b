"""Recorded lines, read in bounded chunks: plain, gzip or zstd files, in sequence or merged.

A recording is normalized JSON Lines, one ``{"recv_ns": <int|null>, "stream": <str>,
"raw": <str>}`` object per line (the format of the project's data set): ``raw`` is the message
exactly as received, ``stream`` a label (a stream name, ``rest:<url>`` for a REST response,
``event:<name>`` for a control message) and ``recv_ns`` the receive time (null: the previous
line's). The compression is read from the first bytes, never from the name, and a name that
promises one compression over content of another is an error.

:class:`RecordingSource` yields :class:`LineChunk` columns of at most ``chunk_lines`` lines, so
memory stays flat whatever the file size: decompression reads ``block_bytes`` at a time, and
only the partial last line of a block is carried over. Several files are read either one
after another (a day split in parts continues seamlessly) or merged by receive time (files of
several venues, each in receive order), a chunk at a time: every line up to the earliest
"last time" among the files' current chunks is released in time order, ties by file order.

Bad input never raises out of a line: a line that is not JSON (``"invalid JSON"``, or
``"truncated line"`` when it ends early), or lacks a string ``raw`` (``"not a recorded line"``)
becomes a :data:`BAD` line carrying the reason. A broken container (wrong compression header,
a compressed stream that ends early) raises :class:`~meltica_nb.errors.RecordingFormatError`
naming the file and the last line read; the caller decides to skip the file or stop.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path

import numpy as np
import orjson

from meltica_nb.errors import ConfigError, RecordingFormatError
from meltica_nb.kernels import recording_kernels as rk

__all__ = ["BAD", "CONTROL", "FRAME", "REST", "LineChunk", "RecordingSource", "open_recording"]

#: Line kinds.
FRAME, REST, CONTROL, BAD = 0, 1, 2, 3

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SUFFIX_MAGIC = {".gz": GZIP_MAGIC, ".zst": ZSTD_MAGIC}


@dataclass(frozen=True, slots=True)
class LineChunk:
    """Recorded lines in receive order, column-wise.

    ``raw[i]`` is the message of a FRAME line, the response body of a REST line, the control
    message of a CONTROL line, or the reason of a BAD line; ``label[i]`` its stream label;
    ``source[i]`` the index of its file; ``line[i]`` its 1-based line number there.
    """

    source: np.ndarray   # int32
    line: np.ndarray     # int64
    recv_ns: np.ndarray  # int64
    kind: np.ndarray     # int8
    raw: list
    label: list

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def part(self, start: int, stop: int) -> LineChunk:
        """Lines ``start`` to ``stop`` (slices: no per-line copy)."""
        return LineChunk(self.source[start:stop], self.line[start:stop],
                         self.recv_ns[start:stop], self.kind[start:stop],
                         self.raw[start:stop], self.label[start:stop])

    def take(self, order: np.ndarray) -> LineChunk:
        """The lines at ``order`` (a permutation or selection), in that order."""
        idx = order.tolist()
        return LineChunk(self.source[order], self.line[order], self.recv_ns[order],
                         self.kind[order], [self.raw[i] for i in idx],
                         [self.label[i] for i in idx])


def _join(chunks: Sequence[LineChunk]) -> LineChunk:
    if len(chunks) == 1:
        return chunks[0]
    return LineChunk(np.concatenate([c.source for c in chunks]),
                     np.concatenate([c.line for c in chunks]),
                     np.concatenate([c.recv_ns for c in chunks]),
                     np.concatenate([c.kind for c in chunks]),
                     list(chain.from_iterable(c.raw for c in chunks)),
                     list(chain.from_iterable(c.label for c in chunks)))


def open_recording(path: str | Path) -> io.BufferedIOBase:
    """Open ``path`` for reading decompressed bytes (gzip / zstd by magic bytes, else plain).

    Raises RecordingFormatError when the name's suffix (.gz, .zst) promises a compression
    the first bytes do not show, and ConfigError when the file cannot be opened.
    """
    path = Path(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - handed to the caller, which closes it
    except OSError as exc:
        raise ConfigError(f"cannot open recording {path}: {exc.strerror}") from None
    try:
        return _decompressed(raw, path)
    except BaseException:
        raw.close()
        raise


def _magic(raw: io.BufferedReader, path: Path) -> bytes:
    """The first bytes; a format error when the suffix promises another compression."""
    head = raw.peek(4)[:4]
    want = _SUFFIX_MAGIC.get(path.suffix)
    if want is not None and not head.startswith(want):
        raise RecordingFormatError(str(path), 0, "compression",
                                   f"named {path.suffix} but starts with {head.hex() or 'nothing'}")
    return head


def _decompressed(raw: io.BufferedReader, path: Path) -> io.BufferedIOBase:
    head = _magic(raw, path)
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head.startswith(ZSTD_MAGIC):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=False)
    return raw


_STREAM_ERRORS = (EOFError, OSError, zlib.error)


class _Decoder:
    """Incremental decompression that hands out everything it decoded before a fault.

    (``GzipFile.read`` drops the data of the read call that meets a truncated stream.)
    ``decode(data)`` returns the bytes decoded so far; ``finish()`` raises EOFError when
    the compressed stream ended before its end mark.
    """

    def __init__(self, head: bytes):
        self.kind = "gzip" if head.startswith(GZIP_MAGIC) else (
            "zstd" if head.startswith(ZSTD_MAGIC) else "plain")
        self._obj = self._new()

    def _new(self):
        if self.kind == "gzip":
            return zlib.decompressobj(31)
        if self.kind == "zstd":
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj()
        return None

    def decode(self, data: bytes) -> bytes:
        if self._obj is None or not data:
            return data
        out = [self._obj.decompress(data)]
        while self._obj.eof and self._obj.unused_data:  # concatenated members / frames
            rest = self._obj.unused_data
            self._obj = self._new()
            out.append(self._obj.decompress(rest))
        return b"".join(out)

    def finish(self) -> None:
        if self._obj is not None and not self._obj.eof:
            raise EOFError("the compressed stream ends before its end mark")


def _blocks(raw: io.BufferedReader, path: Path, block_bytes: int
            ) -> Iterator[tuple[bytes, bool]]:
    """(block, at_end) pairs of decompressed bytes; container faults become format errors."""
    decoder = _Decoder(_magic(raw, path))
    step = max(block_bytes // 8, 1) if decoder.kind != "plain" else block_bytes
    while True:
        data = raw.read(step)
        try:
            block = decoder.decode(data)
            if not data:
                decoder.finish()
        except _STREAM_ERRORS as exc:
            yield b"", True
            raise _container_error(path, exc) from None
        if block or not data:
            yield block, not data
        if not data:
            return


def _container_error(path: Path, exc: BaseException) -> RecordingFormatError:
    kind = "truncated compressed stream" if isinstance(exc, EOFError) else "compression"
    return RecordingFormatError(str(path), 0, kind, str(exc) or type(exc).__name__)


class _FileLines:
    """One file's lines as chunks; remembers the line number for error messages."""

    def __init__(self, path: Path, index: int, chunk_lines: int, block_bytes: int,
                 keep_labels: bool = False):
        self.path, self.index = path, index
        self.chunk_lines, self.block_bytes = chunk_lines, block_bytes
        self.keep_labels = keep_labels
        self.lines_read = 0
        self.position = 0  # compressed bytes read so far (progress)
        self._last_ns = 0

    def chunks(self) -> Iterator[LineChunk]:
        """Chunks of exactly ``chunk_lines`` lines (the last one of the file: the rest), so
        where a chunk ends depends on the content only, never on block sizes."""
        try:
            raw = open(self.path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ConfigError(f"cannot open recording {self.path}: {exc.strerror}") from None
        pending: list[LineChunk] = []
        fault = None
        with raw:
            try:
                for piece in self._chunks(raw):
                    pending.append(piece)
                    while sum(map(len, pending)) >= self.chunk_lines:
                        joined = _join(pending)
                        yield joined.part(0, self.chunk_lines)
                        pending = [joined.part(self.chunk_lines, len(joined))]
            except RecordingFormatError as exc:
                fault = exc  # the lines read before it are replayed first
        self.position = self.path.stat().st_size
        pending = [c for c in pending if len(c)]
        if pending:
            yield _join(pending)
        if fault is not None:
            raise fault

    def _chunks(self, raw) -> Iterator[LineChunk]:
        carry = b""
        try:
            for block, at_end in _blocks(raw, self.path, self.block_bytes):
                self.position = raw.tell()
                data = carry + block if carry else block
                buf = np.frombuffer(data, np.uint8)
                ends = np.flatnonzero(buf == 10)
                starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
                cut = int(ends[-1]) + 1 if ends.shape[0] else 0
                if at_end and cut < len(data):  # a last line without its newline
                    starts = np.append(starts[:ends.shape[0]], cut)
                    ends = np.append(ends, len(data))
                    cut = len(data)
                carry = data[cut:]
                for i in range(0, ends.shape[0], self.chunk_lines):
                    j = min(i + self.chunk_lines, ends.shape[0])
                    chunk = self._decode(data, buf, starts[i:j], ends[i:j],
                                         at_end and j == ends.shape[0])
                    if len(chunk):
                        yield chunk
        except RecordingFormatError as exc:
            line = self.lines_read + 1 if self.lines_read else 0  # 0: before any line
            raise RecordingFormatError(exc.source, line, exc.kind, _detail(exc)) from None

    def _decode(self, data: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                ends_file: bool) -> LineChunk:
        """Scan the lines in one kernel call; orjson decides the lines it could not."""
        n = starts.shape[0]
        arena = np.empty(max(int((ends - starts).sum()), 1), np.uint8)
        out = np.zeros((n, 6), np.int64)
        used = rk.scan_lines(buf, starts, ends, arena, out)
        kind = out[:, 0].astype(np.int8)
        recv = out[:, 1].copy()
        raws: list = [b""] * n
        labels: list = [""] * n
        for i in np.flatnonzero(kind == rk.FALLBACK).tolist():
            last = ends_file and i == n - 1
            kind[i], recv[i], labels[i], raws[i] = _line(data[starts[i]:ends[i]], last)
        self._fill(data, arena[:used], out, kind, raws, labels)
        first = self.lines_read + 1
        self.lines_read += n
        keep = np.flatnonzero(kind != rk.BLANK)
        chunk = LineChunk(np.full(n, self.index, np.int32), np.arange(first, first + n),
                          self._carry_time(recv), kind, raws, labels)
        return chunk if keep.shape[0] == n else chunk.take(keep)

    def _fill(self, data, arena, out, kind, raws, labels) -> None:
        """Raw bytes of every scanned line; labels of non-frame lines (and of all lines when
        ``keep_labels``: venue detection reads them)."""
        scanned = (kind >= 0) & (out[:, 0] >= 0)
        _slices(arena.tobytes(), out[:, 4], out[:, 5], np.flatnonzero(scanned), raws)
        wanted = scanned if self.keep_labels else scanned & (kind != FRAME)
        texts: list = [b""] * len(labels)
        _slices(data, out[:, 2], out[:, 3], np.flatnonzero(wanted), texts)
        for i in np.flatnonzero(wanted).tolist():
            labels[i] = texts[i].decode()

    def _carry_time(self, recv: np.ndarray) -> np.ndarray:
        """A line without a receive time (null, or a bad line) takes the previous one's."""
        known = recv >= 0
        idx = np.maximum.accumulate(np.where(known, np.arange(recv.shape[0]), -1))
        out = np.where(idx >= 0, recv[np.maximum(idx, 0)], self._last_ns)
        if out.shape[0]:
            self._last_ns = int(out[-1])
        return out


def _slices(mem: bytes, offsets: np.ndarray, lengths: np.ndarray, rows: np.ndarray,
            out: list) -> None:
    """``out[i] = mem[offsets[i]:offsets[i] + lengths[i]]`` for every ``i`` in ``rows``
    (one list comprehension when every row is wanted, the usual case)."""
    starts, ends = offsets.tolist(), (offsets + lengths).tolist()
    if rows.shape[0] == len(out):
        out[:] = [mem[a:b] for a, b in zip(starts, ends, strict=True)]
        return
    for i in rows.tolist():
        out[i] = mem[starts[i]:ends[i]]


def _line(text: bytes, last: bool) -> tuple[int, int, str, bytes]:
    """(kind, recv_ns or -1, label, raw) of one line through orjson (the fallback path)."""
    if not text.strip():
        return rk.BLANK, -1, "", b""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        short = last and not text.rstrip().endswith(b"}")
        reason = "truncated line" if short else "invalid JSON"
        return BAD, -1, "", f"{reason}: {exc}".encode()
    raw = obj.get("raw") if type(obj) is dict else None
    ns = obj.get("recv_ns") if raw is not None else None
    if type(raw) is not str or not (ns is None or (type(ns) is int and 0 <= ns < 2**63)):
        return BAD, -1, "", b"not a recorded line: no string 'raw' / int64 'recv_ns' >= 0"
    label = obj.get("stream")
    label = label if type(label) is str else ""
    return _kind_of(label), -1 if ns is None else ns, label, raw.encode()


def _detail(exc: RecordingFormatError) -> str:
    """The detail part of a format error's message (after ``where: kind: ``)."""
    text = str(exc)
    marker = f"{exc.kind}: "
    return text.split(marker, 1)[1] if marker in text else ""


def _kind_of(label: str) -> int:
    if label.startswith("rest:"):
        return REST
    if label.startswith("event:"):
        return CONTROL
    return FRAME


class RecordingSource:
    """Recorded lines of ``paths``, in sequence (default) or merged by receive time.

    Parameters
    ----------
    paths : recording files (plain, .gz or .zst; compression detected from content).
    merge : False reads the files one after another; True interleaves them by ``recv_ns``.
    chunk_lines : most lines per chunk (per file when merging).
    block_bytes : decompressed bytes read at a time.
    """

    def __init__(self, paths: Sequence[str | Path], *, merge: bool = False,
                 chunk_lines: int = 4096, block_bytes: int = 1 << 20):
        if isinstance(paths, str | Path):
            paths = [paths]
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ConfigError("a replay needs at least one recording")
        if chunk_lines < 1 or block_bytes < 1:
            raise ConfigError("chunk_lines and block_bytes must be >= 1")
        self.merge = merge
        self.chunk_lines = chunk_lines
        self.block_bytes = block_bytes
        self._readers: list[_FileLines] = []
        self._opened: dict[int, tuple[_FileLines, list[LineChunk], Iterator[LineChunk]]] = {}

    def preview(self, index: int, n_lines: int) -> LineChunk:
        """The first ``n_lines`` lines of file ``index`` (what venue detection looks at).

        The file stays open where the preview stopped: :meth:`continuing` reads on from there
        instead of decoding those lines again."""
        reader = _FileLines(self.paths[index], index, min(n_lines, self.chunk_lines),
                            self.block_bytes, keep_labels=True)
        taken: list[LineChunk] = []
        chunks = reader.chunks()
        try:
            for chunk in chunks:
                taken.append(chunk)
                if sum(map(len, taken)) >= n_lines:
                    break
        except RecordingFormatError:
            if not taken:
                raise
            # lines were read: the replay itself meets (and reports) the fault later
            return _join(taken)
        self._opened[index] = (reader, list(taken), chunks)
        return _join(taken) if taken else _empty(index)

    @classmethod
    def continuing(cls, previewed: Sequence[RecordingSource], *, merge: bool = False,
                   chunk_lines: int = 4096) -> RecordingSource:
        """One source over the first file of each of ``previewed`` (sources whose file 0 was
        previewed), in that order. A file whose preview was cut into chunks of this
        ``chunk_lines`` goes on from where its preview stopped (the same chunks as a fresh
        read: where a chunk ends depends on the content only); any other starts over."""
        source = cls([p.paths[0] for p in previewed], merge=merge, chunk_lines=chunk_lines)
        for i, p in enumerate(previewed):
            opened = p._opened.pop(0, None)
            if opened is not None and opened[0].chunk_lines == chunk_lines:
                source._opened[i] = opened
        return source

    def chunks(self, on_error=None) -> Iterator[LineChunk]:
        """Every line as chunks. A broken file is passed to ``on_error`` (which may raise to
        stop) and the other files go on; without ``on_error`` the error is raised."""
        self._readers, streams = [], []
        for i, path in enumerate(self.paths):
            reader, stream = self._reader(i, path)
            self._readers.append(reader)
            streams.append(self._guarded(stream, on_error))
        if not self.merge:
            for stream in streams:
                yield from stream
            return
        yield from _merged(streams)

    def _reader(self, index: int, path: Path) -> tuple[_FileLines, Iterator[LineChunk]]:
        """File ``index``'s reader and its chunks: a new one, or the one left by a preview."""
        opened = self._opened.pop(index, None)
        if opened is None:
            reader = _FileLines(path, index, self.chunk_lines, self.block_bytes)
            return reader, reader.chunks()
        reader, taken, rest = opened
        stream = chain(taken, rest)
        if reader.index != index:  # lines decoded so far carry the preview's file index
            reader.index = index
            stream = (replace(c, source=np.full(len(c), index, np.int32)) for c in stream)
        reader.keep_labels = False
        return reader, stream

    def progress(self) -> tuple[int, int]:
        """(bytes read, bytes in all files), compressed, for a progress bar's ETA."""
        return (sum(r.position for r in self._readers),
                sum(p.stat().st_size for p in self.paths))

    @staticmethod
    def _guarded(chunks: Iterator[LineChunk], on_error) -> Iterator[LineChunk]:
        try:
            yield from chunks
        except RecordingFormatError as exc:
            if on_error is None:
                raise
            on_error(exc)


def _empty(index: int) -> LineChunk:
    return LineChunk(np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64),
                     np.zeros(0, np.int8), [], [])


def _merged(streams: list[Iterator[LineChunk]]) -> Iterator[LineChunk]:
    """Interleave per-file chunk streams by receive time, one bounded chunk at a time.

    Each file's lines are in receive order, so every buffered line up to the smallest "last
    receive time" of the files still open can be released: no later line of any file can be
    earlier. A stable sort on (time, file) orders them.
    """
    held: dict[int, LineChunk] = {}
    for i, stream in enumerate(streams):
        chunk = next(stream, None)
        if chunk is not None:
            held[i] = chunk
    while held:
        first = min(held, key=lambda i: (int(held[i].recv_ns[-1]), i))
        bound = int(held[first].recv_ns[-1])
        parts = []
        for i in sorted(held):
            chunk = held[i]
            cut = len(chunk) if i == first else int(
                np.searchsorted(chunk.recv_ns, bound, side="right"))
            parts.append(chunk.part(0, cut))
            rest = chunk.part(cut, len(chunk))
            held[i] = rest if len(rest) else next(streams[i], None)
            if held[i] is None:
                del held[i]
        batch = _join(parts)
        yield batch.take(np.lexsort((batch.source, batch.recv_ns)))

