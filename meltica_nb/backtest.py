"""``meltica backtest``: replay recordings, show progress on stderr, print the summary.

::

    meltica backtest day1.jsonl.gz day2.jsonl.gz --consumer mystrategy:on_bbo --json

Files continue one another (books carry over) unless ``--merge`` interleaves them by time
(several venues) or ``--workers N`` replays each file on its own in N processes
(:mod:`meltica_nb.parallel_replay`). The progress bar shows lines, frames, events/s and an
ETA from the compressed bytes read. The summary is readable text, or with ``--json`` one
object (:meth:`ReplayResult.to_dict`): ``frames``, ``events`` per type, ``parse_errors``,
``frames_per_s``, ``digest`` and ``instruments`` keyed ``"<venue>:<BASE-QUOTE>"`` with the top
levels as decimal strings. Bad input is counted and skipped; ``--strict`` stops at the first
and exits with status 2.
"""

from __future__ import annotations

import sys
import time

from .errors import ConfigError, RecordingError
from .replay import ReplayConsumer, ReplayProgress, replay
from .run_config import load_target

__all__ = ["ProgressBar", "add_arguments", "run_backtest", "summary_text"]

#: Exit status of a strict backtest stopped by bad input.
EXIT_BAD_INPUT = 2
#: Exit status of a backtest that could not start (missing file, unknown venue, bad option).
EXIT_CONFIG = 1


class ProgressBar:
    """A one-line progress bar on a text stream, redrawn at most every ``interval_s``."""

    def __init__(self, stream=None, interval_s: float = 0.2, width: int = 24):
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = interval_s
        self.width = width
        self._last = -1.0
        self.drawn = 0

    def __call__(self, p: ReplayProgress) -> None:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return
        self._last = now
        self.stream.write("\r" + self.line(p))
        self.stream.flush()
        self.drawn += 1

    def line(self, p: ReplayProgress) -> str:
        """``[#####.....]  42%  120,000 frames  350,000 events/s  ETA 3s``."""
        done = p.bytes_done / p.bytes_total if p.bytes_total else 0.0
        filled = int(self.width * min(done, 1.0))
        rate = p.events / p.elapsed_s if p.elapsed_s > 0 else 0.0
        eta = p.elapsed_s * (1 - done) / done if done > 0 else 0.0
        return (f"[{'#' * filled}{'.' * (self.width - filled)}] {100 * done:3.0f}%  "
                f"{p.frames:,} frames  {rate:,.0f} events/s  ETA {eta:,.0f}s")

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def add_arguments(parser) -> None:
    """The options of ``meltica backtest``."""
    parser.add_argument("files", nargs="+", help="recordings (.jsonl, .gz, .zst, canonical)")
    parser.add_argument("--consumer", action="append", default=[], metavar="MODULE:FUNCTION",
                        help="a consumer: fn(events) batch or fn(record, state) njit")
    parser.add_argument("--venue", default=None, help="venue of every file (default: detect)")
    parser.add_argument("--merge", action="store_true", help="interleave files by time")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad input")
    parser.add_argument("--levels", type=int, default=10, help="book levels per side shown")
    parser.add_argument("--batch-frames", type=int, default=256, help="frames per publish")
    parser.add_argument("--lossless", action="store_true",
                        help="every event reaches every consumer (no coalescing; slower)")
    parser.add_argument("--canonical-out", default=None, help="also write a canonical file")
    parser.add_argument("--workers", type=int, default=1,
                        help="replay each file on its own, in this many processes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print one JSON summary object")


def run_backtest(args) -> tuple[dict, str, int]:
    """Run the backtest the arguments describe; (summary, text, exit status)."""
    options = {"venue": args.venue, "merge": args.merge, "strict": args.strict,
               "levels": args.levels, "batch_frames": args.batch_frames,
               "lossless": args.lossless}
    if args.workers > 1:
        from .parallel_replay import ReplayJob, replay_parallel

        jobs = [ReplayJob((f,), options, tuple(args.consumer)) for f in args.files]
        combined = replay_parallel(jobs, workers=args.workers)
        return combined, summary_text(combined), 0
    bar = None if args.no_progress else ProgressBar()
    consumers = [ReplayConsumer(load_target(spec), name=spec) for spec in args.consumer]
    try:
        result = replay(args.files, consumers, progress=bar,
                        canonical_out=args.canonical_out, **options)
    except RecordingError as exc:
        print(f"meltica backtest: {exc}", file=sys.stderr)
        return {"error": str(exc), "kind": exc.kind}, f"error: {exc}", EXIT_BAD_INPUT
    except ConfigError as exc:  # unreadable file, unknown venue, bad option
        print(f"meltica backtest: {exc}", file=sys.stderr)
        return {"error": str(exc), "kind": "config"}, f"error: {exc}", EXIT_CONFIG
    finally:
        if bar is not None:
            bar.close()
    summary = result.to_dict()
    return summary, summary_text(summary), 0


def summary_text(summary: dict) -> str:
    """The readable form of a backtest summary."""
    lines = [f"{summary['frames']:,} frames, {summary.get('lines', 0):,} lines in "
             f"{summary['elapsed_s']:.2f} s ({summary['frames_per_s']:,.0f} frames/s)",
             "events: " + ", ".join(f"{k} {v:,}" for k, v in sorted(summary["events"].items())),
             f"parse errors: {summary['parse_errors']} {summary.get('errors_by_kind', {})}",
             f"digest: {summary['digest']}"]
    for key, book in summary["instruments"].items():
        lines.append(f"{key}: update id {book['update_id']}, applied {book['applied']}, "
                     f"resyncs {book['resyncs']}, checksum ok/fail {book['checksum_ok']}/"
                     f"{book['checksum_fail']}")
        for (bp, bq), (ap, aq) in zip(book["bids"], book["asks"], strict=False):
            lines.append(f"    {bq:>18} {bp:>18} | {ap:<18} {aq:<18}")
    for name, out in summary.get("consumers", {}).items():
        lines.append(f"consumer {name}: delivered {out['delivered']:,}, coalesced "
                     f"{out['coalesced']:,}, errors {out['errors']}"
                     + (f", state {out['state'][:8]}" if "state" in out else ""))
    lines.extend(f"  ! {e}" for e in summary.get("errors", [])[:10])
    return "\n".join(lines)
