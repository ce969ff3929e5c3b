"""Canonical record files: CanonicalEvent records as the feeds produced them, no parsing left.

A replay or ``meltica record --canonical`` writes what the feeds published; replaying the file
skips the JSON, the parser and the book procedure and publishes the records straight into the
dispatcher, which is what makes a canonical backtest several times faster than a raw one.

Layout (little-endian; optionally inside gzip or zstd, chosen by the ``.gz`` / ``.zst``
suffix when writing and detected by magic bytes when reading)::

    b"MLTCANON"  int64[4] (format version, schema version, record size, k)
    block*       int64[4] (kind, n, n_book, payload bytes) + payload

* kind 1, REGISTRY: an orjson object ``{"venues": [names by id], "instruments": [[symbol,
  price_exp, qty_exp] by id]}``; written before the first events and again whenever the
  registry grew, so ids in later blocks are always named.
* kind 2, EVENTS: ``n`` 128-byte CANONICAL_EVENT records, then the book levels of the
  ``n_book`` BOOK_SNAPSHOT events among them (in order) as int64 ``[n_book, 1 + 2k, 2]``
  (see :mod:`meltica_nb.kernels.canonical_kernels`). Book events' own ``book_row`` /
  ``book_slot`` are meaningless in a file: the reader restores the levels into its engine's
  BookTable and points the events there.

Blocks hold at most ``block_events`` records, so reading is bounded by one block.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from meltica_nb.errors import ConfigError, RecordingFormatError
from meltica_nb.kernels.canonical_kernels import book_positions
from meltica_nb.recording_source import open_recording
from meltica_nb.schema import CANONICAL_EVENT, SCHEMA_VERSION, EventType

__all__ = ["MAGIC", "CanonicalBlock", "CanonicalReader", "CanonicalWriter", "is_canonical",
           "join_events", "levels_array"]

MAGIC = b"MLTCANON"
FORMAT_VERSION = 1
REGISTRY, EVENTS = 1, 2
_HEADER_BYTES = 32
_BOOK = int(EventType.BOOK_SNAPSHOT)


def levels_array(n: int, k: int) -> np.ndarray:
    """Room for the levels of ``n`` book events at ``k`` levels per side."""
    return np.zeros((n, 1 + 2 * k, 2), np.int64)


def join_events(arrays: list[np.ndarray]) -> np.ndarray:
    """Join CANONICAL_EVENT arrays byte-wise (``np.concatenate`` would repack the union)."""
    raw = [np.ascontiguousarray(a).view(np.uint8).reshape(-1) for a in arrays]
    return np.concatenate([np.zeros(0, np.uint8), *raw]).view(CANONICAL_EVENT)


def _ints(*values: int) -> bytes:
    return np.array(values, np.int64).tobytes()


def registry_names(registry) -> dict:
    """The registry's names and exponents by id (what a REGISTRY block holds)."""
    venues = [registry.venue_name(i) for i in range(1, registry.n_venues + 1)]
    instruments = []
    for i in range(1, registry.n_instruments + 1):
        info = registry.instrument(i)
        instruments.append([info.symbol, info.price_exp, info.qty_exp])
    return {"venues": venues, "instruments": instruments}


class CanonicalWriter:
    """Append CanonicalEvent batches (with their book levels) to a canonical record file.

    Parameters
    ----------
    path : the file; ``.gz`` / ``.zst`` compress it.
    registry : names the ids in the records (written again whenever it grew).
    k : book levels per side kept (the engine's ``book_levels``).
    block_events : records per block (bounded reading).
    """

    def __init__(self, path: str | Path, registry, k: int, block_events: int = 4096):
        if block_events < 1 or k < 1:
            raise ConfigError("block_events and k must be >= 1")
        self.path = Path(path)
        self.registry = registry
        self.k = k
        self.block_events = block_events
        self.records = 0
        self._fh = _open_for_writing(self.path)
        self._fh.write(MAGIC + _ints(FORMAT_VERSION, SCHEMA_VERSION, CANONICAL_EVENT.itemsize, k))
        self._names_written = (0, 0)
        self._events: list[np.ndarray] = []
        self._levels: list[np.ndarray] = []
        self._pending = 0

    def write(self, events: np.ndarray, levels: np.ndarray) -> None:
        """Buffer ``events`` and the levels of their book events (``levels_array`` rows)."""
        self._events.append(np.array(events, CANONICAL_EVENT, copy=True))
        self._levels.append(np.array(levels, np.int64, copy=True))
        self._pending += events.shape[0]
        if self._pending >= self.block_events:
            self._write_blocks(full_only=True)

    def flush(self) -> None:
        """Write every buffered record (the last block may be short)."""
        self._write_blocks(full_only=False)

    def _write_blocks(self, full_only: bool) -> None:
        """Write the buffered records as blocks of ``block_events``; with ``full_only`` the
        rest stays buffered, so a file's blocks are full (fewer, larger reads and publishes)."""
        if not self._pending:
            return
        self._write_names()
        events = join_events(self._events)
        levels = np.concatenate(self._levels)
        is_book = events["event_type"] == _BOOK
        books_before = np.concatenate([[0], np.cumsum(is_book)])
        n = events.shape[0]
        cut = n - n % self.block_events if full_only else n
        for start in range(0, cut, self.block_events):
            stop = min(start + self.block_events, cut)
            block = events[start:stop]
            lv = levels[books_before[start]:books_before[stop]]
            self._fh.write(_ints(EVENTS, block.shape[0], lv.shape[0],
                                 block.nbytes + lv.nbytes))
            self._fh.write(block.tobytes())
            self._fh.write(lv.tobytes())
        self.records += cut
        self._events = [events[cut:]] if cut < n else []
        self._levels = [levels[books_before[cut]:]] if cut < n else []
        self._pending = n - cut

    def _write_names(self) -> None:
        counts = (self.registry.n_venues, self.registry.n_instruments)
        if counts == self._names_written:
            return
        payload = orjson.dumps(registry_names(self.registry))
        self._fh.write(_ints(REGISTRY, 0, 0, len(payload)) + payload)
        self._names_written = counts

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if self._fh is None:
            return
        self.flush()
        self._fh.close()
        self._fh = None

    def __enter__(self) -> CanonicalWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_for_writing(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "wb")
    if path.suffix == ".zst":
        import zstandard

        return zstandard.ZstdCompressor().stream_writer(open(path, "wb"), closefd=True)
    return open(path, "wb")  # noqa: SIM115 - closed by CanonicalWriter.close


@dataclass(frozen=True, slots=True)
class CanonicalBlock:
    """One EVENTS block: writable records, their book levels, the names in force, and the
    positions of its BOOK_SNAPSHOT events (``levels[j]`` belongs to ``events[book_idx[j]]``)."""

    events: np.ndarray
    levels: np.ndarray
    names: dict
    book_idx: np.ndarray


def is_canonical(path: str | Path) -> bool:
    """True when ``path`` (decompressed) starts with the canonical magic bytes."""
    try:
        with open_recording(path) as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except (OSError, EOFError, RecordingFormatError):
        return False


class CanonicalReader:
    """The EVENTS blocks of a canonical record file, in order (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.k = 0
        self._buffer = np.zeros(0, np.uint8)  # one block, records then levels
        self._book_idx = np.zeros(0, np.int64)  # the positions of its book events
        self._fh = None
        self._size = 0

    def blocks(self) -> Iterator[CanonicalBlock]:
        """Each EVENTS block; a truncated or foreign file raises RecordingFormatError.

        A block's ``events`` (and ``book_idx``) are buffers reused by the next block: use (or
        copy) them before asking for the next one."""
        self._size = self.path.stat().st_size
        try:
            with open_recording(self.path) as fh:
                self._fh = fh
                self._header(fh)
                yield from self._blocks(fh)
        except (EOFError, OSError, zlib.error) as exc:  # a broken compressed stream
            raise self._error(f"truncated or corrupt: {exc}") from None

    def _blocks(self, fh) -> Iterator[CanonicalBlock]:
        names: dict = {"venues": [], "instruments": []}
        while True:
            head = fh.read(_HEADER_BYTES)
            if not head:
                return
            kind, n, n_book, size = np.frombuffer(self._exact(head, _HEADER_BYTES),
                                                  np.int64).tolist()
            if kind == EVENTS:
                yield self._events(fh, n, n_book, size, names)
            elif kind == REGISTRY:
                names = orjson.loads(self._exact(fh.read(size), size))
            else:
                raise self._error(f"unknown block kind {kind}")

    def progress(self) -> tuple[int, int]:
        """(bytes read, file size); for a compressed file, decompressed bytes read."""
        try:
            done = self._fh.tell() if self._fh is not None else 0
        except (OSError, ValueError):
            done = 0
        return min(done, self._size), self._size

    def _header(self, fh) -> None:
        head = fh.read(len(MAGIC) + 32)
        if head[:len(MAGIC)] != MAGIC or len(head) < len(MAGIC) + 32:
            raise self._error("not a canonical record file (magic bytes)")
        version, schema, size, k = np.frombuffer(head[len(MAGIC):], np.int64).tolist()
        if (version, schema, size) != (FORMAT_VERSION, SCHEMA_VERSION, CANONICAL_EVENT.itemsize):
            raise self._error(f"format {version}, schema {schema}, record size {size}: "
                              f"this build reads {FORMAT_VERSION}, {SCHEMA_VERSION}, "
                              f"{CANONICAL_EVENT.itemsize}")
        self.k = k

    def _events(self, fh, n: int, n_book: int, size: int, names: dict) -> CanonicalBlock:
        """Read a block (records, then levels) in one call into the reused buffer."""
        cut = n * CANONICAL_EVENT.itemsize
        if size != cut + n_book * (1 + 2 * self.k) * 16:
            raise self._error(f"an events block of {size} bytes for {n} records and {n_book} "
                              f"books")
        if self._buffer.shape[0] < size:
            # room for a block of n records that are all books: the next blocks (as many
            # records, fewer books) fit too; pages never written are never mapped (np.empty,
            # and every byte used is read first)
            most = n * (CANONICAL_EVENT.itemsize + (1 + 2 * self.k) * 16)
            self._buffer = np.empty(max(size, most, 2 * self._buffer.shape[0]), np.uint8)
        self._read_into(fh, memoryview(self._buffer), size)
        events = self._buffer[:cut].view(CANONICAL_EVENT)
        levels = self._buffer[cut:size].view(np.int64).reshape(n_book, 1 + 2 * self.k, 2)
        if self._book_idx.shape[0] < n:
            self._book_idx = np.empty(n, np.int64)
        if book_positions(events, self._book_idx) != n_book:
            raise self._error("book levels do not match the book events of a block")
        return CanonicalBlock(events, levels, names, self._book_idx[:n_book])

    def _read_into(self, fh, view: memoryview, size: int) -> None:
        got = 0
        while got < size:
            n = fh.readinto(view[got:size])
            if not n:
                raise self._error(f"truncated: {got} of {size} bytes")
            got += n

    def _exact(self, data: bytes, size: int) -> bytes:
        if len(data) != size:
            raise self._error(f"truncated: {len(data)} of {size} bytes")
        return data

    def _error(self, detail: str) -> RecordingFormatError:
        return RecordingFormatError(str(self.path), 0, "canonical file", detail)
