"""replay(): recordings through the live chain, synchronously, on the recording's own clock.

The same objects as a live engine, minus the threads and the network: each recording's venue
feed (built offline from the recorded lines, see :mod:`meltica_nb.replay_venue`) parses the
recorded frames with its live parser and keeps its books with its live book procedure; its
events go through :meth:`Engine.publish` into the live dispatcher (ordering, routing,
fan-out into every consumer's rings); after each publish every consumer is polled on the same
thread, which runs its handler exactly as its own thread would. A :class:`ManualClock` set to
each batch's receive time replaces the wall clock, so lateness, staleness and every stamped
time follow the recording. REST depth snapshots come only from the recording's ``rest:``
lines; a replay never opens a socket.

Batching is part of the result: frames go to the feed ``batch_frames`` at a time (as a live
connection hands over a backlog), and a consumer's market-data ring coalesces BBO, book,
ticker and kline events latest-wins per stream within what one publish put in it. Trades are
never coalesced, and ring capacity is checked against the batch size so nothing is dropped.
With ``lossless=True`` the consumers' rings keep every event (no latest-wins) and, drained
after each publish, drop none: every consumer sees every event the feeds produced.
Everything the feeds publish is counted, digested and optionally kept or written to a
canonical record file by the :class:`~meltica_nb.event_tape.EventTape`.

Canonical record files (:mod:`meltica_nb.canonical_file`) replay without the feeds: their
records are published as they are, their book levels restored into the BookTable first.

Bad input (a wrong compression header, a truncated or non-JSON line, a frame the parser
refuses) becomes a :class:`~meltica_nb.errors.RecordingError` naming file and line: by
default counted (by kind, the first ``max_errors_kept`` messages kept), put in the DLQ and
skipped; with ``strict=True`` the first one is raised.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meltica_nb.canonical_file import CanonicalReader, CanonicalWriter, is_canonical
from meltica_nb.clock import ManualClock
from meltica_nb.dead_letter_queue import DeadLetterReason
from meltica_nb.engine import Engine
from meltica_nb.errors import (
    ConfigError,
    RecordedMessageError,
    RecordingError,
    RecordingFormatError,
)
from meltica_nb.event_tape import EventTape
from meltica_nb.kernels.canonical_kernels import (
    book_positions,
    latest_ingest,
    restore_levels,
)
from meltica_nb.paper_trader import PaperTrader
from meltica_nb.recording_source import BAD, FRAME, REST, LineChunk, RecordingSource
from meltica_nb.replay_result import ConsumerOutput, FinalBook, InstrumentSummary, ReplayResult
from meltica_nb.replay_trading import OrderEntry, ReplayStrategy
from meltica_nb.replay_venue import detect_venue, venue_named
from meltica_nb.schema import BOOK_LEVEL, CANONICAL_EVENT

__all__ = ["ReplayConfig", "ReplayConsumer", "ReplayEngine", "ReplayProgress", "replay"]

_NO_STATUS = np.zeros(0, np.int8)


@dataclass(frozen=True)
class ReplayConfig:
    """How a replay reads, batches and reports.

    Parameters
    ----------
    batch_frames : recorded frames handed to a feed per call (one publish each).
    chunk_lines : lines read and decoded at a time (memory is bounded by this).
    preview_lines : first lines of each file read to detect its venue and its symbols.
    merge : interleave the files by receive time (several venues) instead of one after another.
    strict : raise the first bad-input error instead of counting it and going on.
    venue : the venue of every file ("binance", "binance-futures", "okx", "kraken"); None
        detects it.
    levels : book levels per side reported for each instrument.
    keep_events : keep every produced event for :meth:`ReplayResult.columns` / pandas / Arrow.
    canonical_out : write every produced event to this canonical record file.
    ring_capacity : each consumer's ring size (at least twice ``batch_frames``).
    max_errors_kept : error messages kept in the result (all are counted).
    engine : EngineConfig keys for the replay engine (pools, dispatcher, book_levels ...).
    lossless : deliver every event (the consumers' rings do not coalesce).
    trading_venue : the venue whose replayed market fills the orders of ReplayStrategy
        consumers (see :mod:`meltica_nb.replay_trading`).
    order_latency_ms : how long, in recording time, an order or cancel takes to reach it.
    """

    batch_frames: int = 256
    chunk_lines: int = 4096
    preview_lines: int = 5000
    merge: bool = False
    strict: bool = False
    venue: str | None = None
    levels: int = 10
    keep_events: bool = False
    canonical_out: str | Path | None = None
    ring_capacity: int = 8192
    max_errors_kept: int = 100
    engine: dict | None = None
    lossless: bool = False
    trading_venue: str = "binance"
    order_latency_ms: float = 5.0

    def __post_init__(self) -> None:
        for name in ("batch_frames", "chunk_lines", "preview_lines", "levels",
                     "ring_capacity"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"replay {name} must be an integer >= 1, got {value!r}")
        if self.ring_capacity < 2 * self.batch_frames:
            raise ConfigError(f"ring_capacity {self.ring_capacity} must hold the events of one "
                              f"batch (2 per frame): at least {2 * self.batch_frames}")
        if self.venue is not None:
            venue_named(self.venue)


@dataclass(frozen=True)
class ReplayConsumer:
    """A consumer of a replay: what ``Engine.add_consumer`` takes.

    Parameters
    ----------
    fn : the handler: ``fn(events)`` (batch), ``fn(record, state)`` (njit) or ``fn(record)``.
    name : its name in the result (default: the function's name).
    mode : "batch", "njit" or "python"; None means "njit" for a two-argument function and
        "batch" for a one-argument one.
    events, instruments, venues : what it subscribes to, by name (None: everything).
    state : the njit handler's state array, returned in the result.
    state_size : length of the int64 state an njit consumer gets when ``state`` is None.
    """

    fn: Callable
    name: str | None = None
    mode: str | None = None
    events: Sequence[str] | None = None
    instruments: Sequence[str] | None = None
    venues: Sequence[str] | None = None
    state: np.ndarray | None = None
    state_size: int = 16

    def resolved_mode(self) -> str:
        if self.mode is not None:
            return self.mode
        target = getattr(self.fn, "py_func", self.fn)
        try:
            n_args = len(inspect.signature(target).parameters)
        except (TypeError, ValueError):
            n_args = 1
        return "njit" if n_args == 2 else "batch"


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """Where a running replay is (handed to the ``progress`` callback after each chunk)."""

    lines: int
    frames: int
    events: int
    bytes_done: int
    bytes_total: int
    elapsed_s: float


class ReplayEngine(Engine):
    """An Engine whose every published batch also goes on the replay's :class:`EventTape`."""

    tape: EventTape | None = None

    def publish(self, records: np.ndarray) -> int:
        """Record the batch on the tape (flags it REPLAYED), then publish it as live."""
        return self.publish_recorded(records, None)

    def publish_recorded(self, records: np.ndarray, levels: np.ndarray | None) -> int:
        """:meth:`publish` with the table levels of the batch's book events, when the caller
        has them (see :meth:`EventTape.record`)."""
        if self.tape is not None:
            records = self.tape.record(records, levels)
        return super().publish(records)


class _Replay:
    """One replay run: engine, feeds, consumers, error policy, counters."""

    def __init__(self, paths: Sequence[Path], consumers: Sequence, config: ReplayConfig,
                 progress: Callable[[ReplayProgress], None] | None):
        self.paths = list(paths)
        self.config = config
        self.progress = progress
        self.clock = ManualClock()
        self.engine = ReplayEngine(config.engine, clock=self.clock)
        writer = None
        if config.canonical_out is not None:
            writer = CanonicalWriter(config.canonical_out, self.engine.registry,
                                     self.engine.book_table.k)
        self.tape = EventTape(self.engine.book_table, config.keep_events, writer)
        self.engine.tape = self.tape
        if any(isinstance(c, ReplayStrategy) for c in consumers):
            self.engine.add_trader(PaperTrader(self.engine, config.trading_venue,
                                               config.order_latency_ms))
        self.consumers = [self._add_strategy(c) if isinstance(c, ReplayStrategy)
                          else self._add_consumer(_as_consumer(c)) for c in consumers]
        self.lines = self.frames = self.snapshots = 0
        self.errors_by_kind: dict[str, int] = {}
        self.errors: list[str] = []
        self.venues: list = []        # entry per surviving file
        self.feeds: dict[str, object] = {}
        self.used_paths: list[Path] = []
        self._started = 0.0

    def _add_consumer(self, spec: ReplayConsumer) -> tuple[str, object, np.ndarray | None]:
        mode = spec.resolved_mode()
        state = spec.state
        if mode == "njit" and state is None:
            state = np.zeros(spec.state_size, np.int64)
        name = spec.name or getattr(spec.fn, "__name__", "consumer")
        while name in self.engine.consumers:
            name += "_"
        consumer = self.engine.add_consumer(
            name, spec.fn, venues=spec.venues, instruments=spec.instruments,
            events=spec.events, mode=mode, state=state, wait="yielding",
            ring_capacity=self.config.ring_capacity, batch_size=1024,
            coalesce=not self.config.lossless)
        return name, consumer, state

    def _add_strategy(self, spec: ReplayStrategy) -> tuple[str, object, None]:
        """A trading consumer: its handler made with its OrderEntry, its switch on."""
        name = spec.name or getattr(spec.make, "__name__", "strategy")
        while name in self.engine.consumers:
            name += "_"
        handler = spec.make(OrderEntry(self.engine.control, name))
        consumer = self.engine.add_consumer(
            name, handler, venues=spec.venues, instruments=spec.instruments,
            events=spec.subscribed_events(), mode="batch", wait="yielding",
            ring_capacity=self.config.ring_capacity, batch_size=1024,
            coalesce=not self.config.lossless)
        ack = self.engine.control.set_trading_mode(name, True)
        if not ack.success:
            raise ConfigError(f"replay strategy {name!r}: {ack.error}")
        return name, consumer, None

    # -- error policy ----------------------------------------------------------------------

    def error(self, exc: RecordingError) -> None:
        """Count, keep and dead-letter one bad input; raise it when strict."""
        if self.config.strict:
            raise exc
        self.errors_by_kind[exc.kind] = self.errors_by_kind.get(exc.kind, 0) + 1
        if len(self.errors) < self.config.max_errors_kept:
            self.errors.append(str(exc))
        reason = (DeadLetterReason.UNKNOWN_MESSAGE if exc.kind == "unknown message"
                  else DeadLetterReason.MALFORMED)
        self.engine.dlq.offer_text(reason, str(exc))

    # -- driving ---------------------------------------------------------------------------

    def clock_to(self, ns: int) -> None:
        if ns > self.clock.now_ns():
            self.clock.set(ns)

    def drain(self) -> None:
        """Deliver everything the rings hold, on this thread (the paper venue's too)."""
        for consumer in self.engine.consumers.values():
            while consumer.has_pending() and consumer.poll():
                pass  # has_pending first: most polls would find nothing (two kernel calls)

    def run(self) -> ReplayResult:
        self.engine.dispatcher.warm_up()
        for consumer in self.engine.consumers.values():
            consumer.warm_up()  # compiles njit handlers: not part of the replay's time
        self.tape.warm_up()
        try:
            driver = _CanonicalDriver(self) if _all_canonical(self.paths) else _LineDriver(self)
            self._started = time.perf_counter()  # after the drivers' own warm-up
            driver.run()
            self.engine.dispatcher.flush_all()
            self.drain()
        finally:
            if self.tape.writer is not None:
                self.tape.writer.close()
            report = self.engine.stop(1.0)
        return self.result(time.perf_counter() - self._started, report.count)

    def report_progress(self, position: Callable[[], tuple[int, int]]) -> None:
        """Hand the progress callback where the replay is; ``position()`` gives (bytes done,
        bytes in all) and is only asked when there is a callback."""
        if self.progress is not None:
            bytes_done, bytes_total = position()
            self.progress(ReplayProgress(self.lines, self.frames, int(self.tape.counts.sum()),
                                         bytes_done, bytes_total,
                                         time.perf_counter() - self._started))

    # -- the result ------------------------------------------------------------------------

    def result(self, elapsed: float, unreturned: int) -> ReplayResult:
        registry = self.engine.registry
        return ReplayResult(
            lines=self.lines, frames=self.frames, snapshots=self.snapshots,
            events=self.tape.by_type(), parse_errors=sum(self.errors_by_kind.values()),
            errors_by_kind=dict(self.errors_by_kind), errors=tuple(self.errors),
            elapsed_s=elapsed, digest=self.tape.digest(), instruments=self.instruments(),
            consumers={name: ConsumerOutput(name, c.stats(),
                                            None if s is None else s.copy())
                       for name, c, s in self.consumers},
            unreturned_slots=unreturned, sources=tuple(str(p) for p in self.used_paths),
            kept=self.tape.kept(), names=_names(registry), ordering=self.ordering())

    def ordering(self) -> dict:
        """What the dispatcher's ordering stage released, and dropped as already seen."""
        stats = self.engine.dispatcher.stats().ordering
        return {"released": stats.released, "duplicates": stats.duplicates,
                "gaps_skipped": stats.gaps_skipped, "expired": stats.expired}

    def instruments(self) -> dict[str, InstrumentSummary]:
        registry = self.engine.registry
        books: dict[tuple[str, int], FinalBook] = {}
        for venue in {id(v): v for v in self.venues}.values():
            books.update(venue.final_books(self.feeds[venue.name], self.config.levels))
        if not self.venues:
            books = self._books_from_tape()
        return {f"{name}:{registry.instrument(inst).symbol}":
                InstrumentSummary.of(name, registry.instrument(inst), book)
                for (name, inst), book in sorted(books.items())}

    def _books_from_tape(self) -> dict[tuple[str, int], FinalBook]:
        """Canonical replays have no books of their own: the last book event of each."""
        k, levels = self.tape.k, self.config.levels
        out = {}
        for (venue, inst), (lv, update_id, count) in self.tape.last_books.items():
            nb, na = int(lv[0, 0]), int(lv[0, 1])
            bids = lv[1:1 + nb].copy().view(BOOK_LEVEL).reshape(-1)[:levels]
            asks = lv[1 + k:1 + k + na].copy().view(BOOK_LEVEL).reshape(-1)[:levels]
            out[self.engine.registry.venue_name(venue), inst] = FinalBook(
                bids, asks, update_id, count, 0, 0, 0)
        return out


class _LineDriver:
    """Recorded JSON Lines through the venue feeds."""

    def __init__(self, run: _Replay):
        self.run_ = run
        self.cfg = run.config
        self._sources: list[RecordingSource] = []

    def run(self) -> None:
        r = self.run_
        previews = self._previews()
        r.venues = [venue_named(self.cfg.venue) if self.cfg.venue else
                    detect_venue(pv, str(path)) for path, pv in zip(r.used_paths, previews,
                                                                     strict=True)]
        for venue in {id(v): v for v in r.venues}.values():
            mine = [pv for v, pv in zip(r.venues, previews, strict=True) if v is venue]
            r.feeds[venue.name] = venue.build(r.engine, mine)
        source = RecordingSource.continuing(self._sources, merge=self.cfg.merge,
                                            chunk_lines=self.cfg.chunk_lines)
        for chunk in source.chunks(on_error=r.error):
            self.chunk(chunk)
            r.engine.dispatcher.flush()
            r.drain()
            r.report_progress(source.progress)

    def _previews(self) -> list[LineChunk]:
        """The first lines of every readable file; an unreadable one is an error, skipped."""
        r = self.run_
        out = []
        for path in r.paths:
            source = RecordingSource([path])
            try:
                preview = source.preview(0, self.cfg.preview_lines)
            except RecordingFormatError as exc:
                r.error(exc)
                continue
            r.used_paths.append(path)
            self._sources.append(source)  # the replay reads on from where the preview stopped
            out.append(preview)
        if not out:
            raise ConfigError("no readable recording among " + ", ".join(map(str, r.paths)))
        return out

    def chunk(self, chunk: LineChunk) -> None:
        """Every line of a chunk, in order: runs of frames of one file's venue as batches."""
        r = self.run_
        r.lines += len(chunk)
        key = chunk.source.astype(np.int64) * 4 + chunk.kind
        starts = np.flatnonzero(np.diff(key)) + 1
        bounds = [0, *starts.tolist(), len(chunk)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            kind = int(chunk.kind[a])
            if kind == FRAME:
                for s in range(a, b, self.cfg.batch_frames):
                    self.frames(chunk, s, min(b, s + self.cfg.batch_frames))
            elif kind == REST:
                for i in range(a, b):
                    self.rest(chunk, i)
            elif kind == BAD:
                for i in range(a, b):
                    self.bad_line(chunk, i)
            # CONTROL lines (subscription replies, connection events) carry no market data

    def frames(self, chunk: LineChunk, a: int, b: int) -> None:
        r = self.run_
        file = int(chunk.source[a])
        venue = r.venues[file]
        recv = chunk.recv_ns[a:b]
        r.clock_to(int(recv.max()))
        status = r.feeds[venue.name].on_frames(chunk.raw[a:b], recv)
        r.frames += b - a
        r.drain()
        status = _NO_STATUS if status is None else np.asarray(status)
        bad = np.flatnonzero(_bad_statuses(venue)[status])
        for i in bad.tolist():
            r.error(RecordedMessageError(
                str(r.used_paths[file]), int(chunk.line[a + i]),
                venue.frame_errors[int(status[i])], _excerpt(chunk.raw[a + i])))

    def rest(self, chunk: LineChunk, i: int) -> None:
        r = self.run_
        file = int(chunk.source[i])
        venue = r.venues[file]
        symbol = venue.snapshot_symbol(chunk.label[i][5:])
        if symbol is None:
            return  # exchangeInfo and other responses: read in the preview, not replayed
        where = (str(r.used_paths[file]), int(chunk.line[i]))
        r.clock_to(int(chunk.recv_ns[i]))
        try:
            ok = r.feeds[venue.name].on_snapshot(symbol, chunk.raw[i], int(chunk.recv_ns[i]))
        except ConfigError as exc:
            r.error(RecordedMessageError(*where, "unknown symbol", str(exc)))
            return
        r.drain()
        if ok:
            r.snapshots += 1
        else:
            r.error(RecordedMessageError(*where, "bad snapshot", _excerpt(chunk.raw[i])))

    def bad_line(self, chunk: LineChunk, i: int) -> None:
        r = self.run_
        kind, _, detail = chunk.raw[i].decode(errors="replace").partition(": ")
        r.error(RecordingFormatError(str(r.used_paths[int(chunk.source[i])]),
                                     int(chunk.line[i]), kind, detail))


class _CanonicalDriver:
    """Canonical record files: records published as they are, book levels restored first."""

    def __init__(self, run: _Replay):
        self.run_ = run
        self._names_seen: dict | None = None
        self._vmap = self._imap = None
        self._identity = True
        table = run.engine.book_table
        none = np.zeros(0, CANONICAL_EVENT)
        with table.lock:  # compiles the block kernels now: not part of the replay's time
            restore_levels(none, np.zeros(0, np.int64),
                           np.zeros((0, 1 + 2 * table.k, 2), np.int64), table.k,
                           table.bids_raw, table.asks_raw, table.n_bids, table.n_asks,
                           table.generation, table.head)
        book_positions(none, np.zeros(0, np.int64))
        latest_ingest(none)

    def run(self) -> None:
        r = self.run_
        table = r.engine.book_table
        step = min(4096, r.config.ring_capacity // 2)
        for path in r.paths:
            reader = CanonicalReader(path)
            r.used_paths.append(path)
            try:
                for block in reader.blocks():
                    self._names(block.names)
                    events = self._remapped(block.events)
                    if reader.k != table.k:
                        raise ConfigError(f"{path}: written with book_levels={reader.k}, the "
                                          f"replay engine has {table.k}")
                    with table.lock:
                        restore_levels(events, block.book_idx, block.levels, table.k,
                                       table.bids_raw, table.asks_raw, table.n_bids,
                                       table.n_asks, table.generation, table.head)
                    self.publish(events, block.book_idx, block.levels, step)
                    r.report_progress(reader.progress)
            except RecordingFormatError as exc:
                r.error(exc)

    def publish(self, events: np.ndarray, book_idx: np.ndarray, levels: np.ndarray,
                step: int) -> None:
        """The block in parts of ``step``, each with its book events' (restored) levels."""
        if events.shape[0] <= step:  # the usual case: a block is one part
            self._publish_part(events, levels)
            return
        books_at = np.searchsorted(book_idx, np.arange(0, events.shape[0] + step, step))
        for part_no, s in enumerate(range(0, events.shape[0], step)):
            self._publish_part(events[s:s + step],
                               levels[books_at[part_no]:books_at[part_no + 1]])

    def _publish_part(self, part: np.ndarray, levels: np.ndarray) -> None:
        """One publish at the part's latest receive time, then every consumer drained."""
        r = self.run_
        r.clock_to(int(latest_ingest(part)))
        r.engine.publish_recorded(part, levels)
        r.lines += part.shape[0]
        r.drain()

    def _names(self, names: dict) -> None:
        """Register the file's venues and instruments; map the file's ids to ours."""
        if names is self._names_seen:
            return
        self._names_seen = names
        reg = self.run_.engine.registry
        self._vmap = np.array([0] + [reg.venue_id(v) for v in names["venues"]], np.uint16)
        self._imap = np.array([0] + [reg.instrument_id(s, price_exp=p, qty_exp=q)
                                     for s, p, q in names["instruments"]], np.uint16)
        self._identity = bool((self._vmap == np.arange(self._vmap.shape[0])).all()
                              and (self._imap == np.arange(self._imap.shape[0])).all())

    def _remapped(self, events: np.ndarray) -> np.ndarray:
        if not self._identity:  # the usual case: a fresh registry gives the file's own ids
            events["venue"] = self._vmap[events["venue"]]
            events["instrument"] = self._imap[events["instrument"]]
        return events


@functools.cache
def _bad_statuses(venue) -> np.ndarray:
    """``lut[status]``: True for the frame statuses ``venue`` names as bad input."""
    lut = np.zeros(256, np.bool_)
    lut[list(venue.frame_errors)] = True
    return lut


def _excerpt(raw: bytes) -> str:
    text = bytes(raw[:120]).decode(errors="replace")
    return text + ("..." if len(raw) > 120 else "")


def _all_canonical(paths: Sequence[Path]) -> bool:
    flags = [is_canonical(p) for p in paths]
    if any(flags) and not all(flags):
        raise ConfigError("replay canonical record files and JSON Lines recordings separately")
    return all(flags)


def _names(registry) -> dict:
    venues = [""] + [registry.venue_name(i) for i in range(1, registry.n_venues + 1)]
    infos = [registry.instrument(i) for i in range(1, registry.n_instruments + 1)]
    return {"venues": venues, "symbols": [""] + [i.symbol for i in infos],
            "exponents": np.array([(0, 0)] + [(i.price_exp, i.qty_exp) for i in infos],
                                  np.int64)}


def _as_consumer(spec) -> ReplayConsumer:
    if isinstance(spec, ReplayConsumer):
        return spec
    if callable(spec):
        return ReplayConsumer(spec)
    raise ConfigError(f"a replay consumer is a function or a ReplayConsumer, got {spec!r}")


def replay(sources, consumers: Sequence = (), *,
           progress: Callable[[ReplayProgress], None] | None = None,
           **options) -> ReplayResult:
    """Replay recordings through the live chain; see the module docstring.

    ``sources``: a path or a list of paths (JSON Lines, plain/.gz/.zst, or canonical record
    files). ``consumers``: functions (``fn(events)`` batch, ``fn(record, state)`` njit) or
    :class:`ReplayConsumer` specs. ``options``: :class:`ReplayConfig` fields.
    """
    paths = [Path(sources)] if isinstance(sources, str | Path) else [Path(p) for p in sources]
    if not paths:
        raise ConfigError("replay needs at least one recording")
    try:
        config = ReplayConfig(**options)
    except TypeError as exc:
        raise ConfigError(f"replay: {exc}") from None
    return _Replay(paths, consumers, config, progress).run()
