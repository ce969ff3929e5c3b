"""``meltica record``: a live session captured to files that ``meltica backtest`` replays.

The recorder hooks a running feed where its input arrives: the frame callback the connection
calls (``feed.on_frames``), the REST snapshot hand-off (``feed.on_snapshot``) and the offline
set-up with the venue's exchangeInfo (``feed.prepare_from``). Each becomes a normalized JSON
Lines record ``{"recv_ns", "stream", "raw"}`` with the bytes as received, written *before*
the feed processes them, under one lock, so the file's order is exactly the order the feed
applied them: replaying it rebuilds the same books and the same events. Stream labels and
REST URLs come from the venue's replay entry (:mod:`meltica_nb.replay_venue`).

Files rotate by size or by time (``<prefix>-<n>.jsonl[.gz|.zst]``); each file starts with the
recorded exchangeInfo, so every part names its symbols, and the parts replayed in sequence
continue one another. With ``canonical=True`` the recorder writes canonical record files
instead: every event the feeds publish, with its book levels (an
:class:`~meltica_nb.event_tape.EventTape` on ``engine.publish``), which replay without parsing.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from .canonical_file import CanonicalWriter
from .engine import Engine
from .errors import ConfigError
from .event_tape import EventTape
from .replay_venue import venue_named

__all__ = ["CanonicalRecording", "LineRecording", "Recorder", "Rotation", "add_arguments",
           "run_record"]

_SUFFIX = {"gz": ".jsonl.gz", "zst": ".jsonl.zst", "none": ".jsonl"}
_CANONICAL_SUFFIX = {"gz": ".canon.gz", "zst": ".canon.zst", "none": ".canon"}


@dataclass(frozen=True)
class Rotation:
    """When to start the next file: after ``max_bytes`` written or ``max_seconds`` open
    (0 = never for that limit)."""

    max_bytes: int = 256 << 20
    max_seconds: float = 3600.0

    def due(self, written: int, opened: float, now: float) -> bool:
        return bool((self.max_bytes and written >= self.max_bytes)
                    or (self.max_seconds and now - opened >= self.max_seconds))


class _Rotating:
    """Numbered files in a directory, a new one when the rotation policy says so."""

    def __init__(self, directory: str | Path, prefix: str, suffix: str, rotation: Rotation):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix, self.suffix, self.rotation = prefix, suffix, rotation
        self.paths: list[Path] = []
        self.written = 0
        self.opened = 0.0

    def next_path(self) -> Path:
        path = self.directory / f"{self.prefix}-{len(self.paths):05d}{self.suffix}"
        self.paths.append(path)
        self.written, self.opened = 0, time.monotonic()
        return path

    def due(self) -> bool:
        return self.rotation.due(self.written, self.opened, time.monotonic())


class LineRecording(_Rotating):
    """Rotating normalized JSON Lines files; ``header`` lines open every file."""

    def __init__(self, directory, prefix: str = "recording", compression: str = "gz",
                 rotation: Rotation | None = None):
        if compression not in _SUFFIX:
            raise ConfigError(f"compression must be one of {sorted(_SUFFIX)}")
        super().__init__(directory, prefix, _SUFFIX[compression], rotation or Rotation())
        self.compression = compression
        self.headers: list[bytes] = []
        self.lines = 0
        self._fh = None

    def _open(self):
        path = self.next_path()
        if self.compression == "gz":
            self._fh = gzip.open(path, "wb", compresslevel=6)  # noqa: SIM115 - see close()
        elif self.compression == "zst":
            import zstandard

            raw = open(path, "wb")  # noqa: SIM115 - closed with the stream writer
            self._fh = zstandard.ZstdCompressor().stream_writer(raw, closefd=True)
        else:
            self._fh = open(path, "wb")  # noqa: SIM115 - closed by close()/rotation
        for line in self.headers:
            self._put(line)

    def _put(self, line: bytes) -> None:
        self._fh.write(line)
        self.written += len(line)
        self.lines += 1

    def write(self, recv_ns: int, label: str, raw: bytes, header: bool = False) -> None:
        """One record; ``header`` ones are repeated at the start of every later file."""
        line = orjson.dumps({"recv_ns": int(recv_ns), "stream": label,
                             "raw": bytes(raw).decode("utf-8", "replace")}) + b"\n"
        if header:
            self.headers.append(line)
        if self._fh is None or (self.due() and not header):
            self.close()
            self._open()
            if header:
                return  # _open wrote it
        self._put(line)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class CanonicalRecording(_Rotating):
    """Rotating canonical record files fed by an EventTape on ``engine.publish``."""

    def __init__(self, directory, engine: Engine, prefix: str = "recording",
                 compression: str = "none", rotation: Rotation | None = None):
        if compression not in _CANONICAL_SUFFIX:
            raise ConfigError(f"compression must be one of {sorted(_CANONICAL_SUFFIX)}")
        super().__init__(directory, prefix, _CANONICAL_SUFFIX[compression],
                         rotation or Rotation())
        self.engine = engine
        self.tape = EventTape(engine.book_table, mark_replayed=False)
        self.records = 0

    def record(self, events) -> None:
        if self.tape.writer is None or self.due():
            self.close()
            self.tape.writer = CanonicalWriter(self.next_path(), self.engine.registry,
                                               self.engine.book_table.k)
        self.tape.record(events)
        self.written += events.nbytes
        self.records += events.shape[0]

    def close(self) -> None:
        if self.tape.writer is not None:
            self.tape.writer.close()
            self.tape.writer = None


class Recorder:
    """Hooks feeds (JSON Lines) or an engine's publish (canonical) to a recording."""

    def __init__(self, recording: LineRecording | CanonicalRecording):
        self.recording = recording
        self.lock = threading.Lock()

    def attach_engine(self, engine: Engine) -> None:
        """Canonical: every published batch goes to the recording first."""
        publish = engine.publish

        def recorded_publish(records):
            with self.lock:
                self.recording.record(records)
            return publish(records)

        engine.publish = recorded_publish

    def attach_feed(self, feed, venue) -> None:
        """JSON Lines: the feed's frames, snapshots and exchangeInfo, before it uses them
        (a feed without REST snapshots or offline set-up, OKX or Kraken, has frames only)."""
        on_frames = feed.on_frames
        rec = self.recording

        def recorded_frames(frames, recv_ns):
            with self.lock:
                for frame, ns in zip(frames, recv_ns, strict=True):
                    rec.write(ns, venue.stream_label(frame), frame)
                return on_frames(frames, recv_ns)

        feed.on_frames = recorded_frames
        if hasattr(feed, "on_snapshot") and hasattr(feed, "prepare_from"):
            self._attach_rest(feed, venue)

    def _attach_rest(self, feed, venue) -> None:
        """The REST depth snapshots and the exchangeInfo of a Binance-style feed."""
        on_snapshot, prepare_from = feed.on_snapshot, feed.prepare_from
        rec = self.recording

        def recorded_snapshot(symbol, body, recv_ns):
            with self.lock:
                rec.write(recv_ns, "rest:" + venue.snapshot_url(feed, symbol), body)
                return on_snapshot(symbol, body, recv_ns)

        def recorded_prepare(info):
            with self.lock:
                rec.write(feed.clock.now_ns(), "rest:" + venue.exchange_info_url(feed), info,
                          header=True)
            return prepare_from(info)

        feed.on_snapshot, feed.prepare_from = recorded_snapshot, recorded_prepare

    def close(self) -> None:
        with self.lock:
            self.recording.close()


def add_arguments(parser) -> None:
    """The options of ``meltica record``."""
    parser.add_argument("--out", required=True, help="directory of the recording files")
    parser.add_argument("--venue", default="binance",
                        help="binance, binance-futures, okx or kraken (with --sim: the "
                             "simulator's market)")
    parser.add_argument("--symbols", default="BTC-USDT", help="comma-separated BASE-QUOTE")
    parser.add_argument("--channels", default="depth@100ms,bookTicker,trade",
                        help="comma-separated channels")
    parser.add_argument("--sim", action="store_true",
                        help="record the bundled simulator on loopback (no network)")
    parser.add_argument("--ws-url", default="", help="websocket base (default: the venue's)")
    parser.add_argument("--rest-url", default="", help="REST base (default: the venue's)")
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: Ctrl-C)")
    parser.add_argument("--rotate-mb", type=float, default=256.0, help="new file after MB")
    parser.add_argument("--rotate-s", type=float, default=3600.0, help="new file after seconds")
    parser.add_argument("--compress", choices=sorted(_SUFFIX), default="gz")
    parser.add_argument("--canonical", action="store_true", help="write canonical record files")
    parser.add_argument("--prefix", default="recording", help="file name prefix")
    parser.add_argument("--json", action="store_true", help="print one JSON summary object")


def run_record(args) -> tuple[dict, str]:
    """Run and record the session the arguments describe; (summary, text)."""
    from .session import run_session
    from .sim.market import MarketConfig
    from .sim.server import ExchangeSimulator

    venue = venue_named(args.venue)
    if not hasattr(venue, "live_feed"):
        raise ConfigError(f"meltica record does not record {args.venue} yet (replay only)")
    rotation = Rotation(int(args.rotate_mb * (1 << 20)), args.rotate_s)
    market = "usdm" if args.venue == "binance-futures" else "spot"
    sim_venue = args.venue if args.venue in ("okx", "kraken") else "binance"
    sim = ExchangeSimulator(market, config=MarketConfig.fast(),
                            venue=sim_venue).start() if args.sim else None
    try:
        engine = Engine()
        if args.canonical:
            recording = CanonicalRecording(args.out, engine, args.prefix, args.compress,
                                           rotation)
        else:
            recording = LineRecording(args.out, args.prefix, args.compress, rotation)
        recorder = Recorder(recording)
        urls = (sim.ws_url, sim.rest_url) if sim else (args.ws_url, args.rest_url)
        feed = venue.live_feed(engine, args.symbols.split(","), args.channels.split(","), *urls)
        if args.canonical:
            recorder.attach_engine(engine)
        else:
            recorder.attach_feed(feed, venue)
        engine.add_feed(feed)
        try:
            summary = run_session(engine, args.duration, quiet=args.json)
        finally:
            recorder.close()
    finally:
        if sim is not None:
            sim.stop()
    summary["files"] = [str(p) for p in recording.paths]
    summary["recorded"] = getattr(recording, "lines", getattr(recording, "records", 0))
    text = "\n".join(f"{key}: {value}" for key, value in summary.items())
    return summary, text
