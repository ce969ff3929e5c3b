"""``meltica backtest`` as a user runs it: a subprocess, the JSON shape, the progress bar."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import orjson

from meltica_nb.backtest import ProgressBar, summary_text
from meltica_nb.replay import ReplayProgress, replay

ROOT = Path(__file__).resolve().parents[2]
USDM = ROOT / "tests/data/binance-futures/binance_usdm_cryptofeed_20210722.jsonl.gz"
SPOT = ROOT / "tests/data/binance/binance_spot_cryptofeed_20211012.jsonl.gz"


def backtest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meltica_nb.cli", "backtest", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_json_summary_has_the_documented_shape():
    proc = backtest(str(USDM), "--json", "--consumer", "meltica_nb.demo:spread_stats")
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stdout)  # exactly one JSON object on stdout
    assert summary["frames"] == 1535 and summary["parse_errors"] == 0
    assert summary["events"] == {"trade": 91, "bbo": 842, "book_snapshot": 753, "kline": 67}
    assert summary["frames_per_s"] > 0 and len(summary["digest"]) == 32
    assert sorted(summary["instruments"]) == ["binance-futures:AKRO-USDT",
                                              "binance-futures:CTK-USDT",
                                              "binance-futures:KEEP-USDT",
                                              "binance-futures:SUSHI-USDT"]
    for book in summary["instruments"].values():
        assert len(book["bids"]) == len(book["asks"]) == 10
        assert all(isinstance(p, str) and isinstance(q, str) for p, q in book["bids"])
        assert float(book["bids"][0][0]) < float(book["asks"][0][0])
        assert {"update_id", "applied", "resyncs", "checksum_ok", "checksum_fail"} <= set(book)
        assert book["resyncs"] == 0 and book["applied"] > 0
    consumer = summary["consumers"]["meltica_nb.demo:spread_stats"]
    assert consumer["mode"] == "njit" and consumer["state"][0] == consumer["delivered"] > 0
    assert summary["digest"] == replay([USDM]).digest  # the CLI is the library
    assert "frames" in proc.stderr and "ETA" in proc.stderr  # the progress bar


def test_text_summary_and_named_venue():
    proc = backtest(str(SPOT), "--venue", "binance", "--levels", "2", "--no-progress",
                    "--lossless")
    assert proc.returncode == 0, proc.stderr
    assert "265 frames" in proc.stdout and "binance:NKN-USDT: update id 499870179" in proc.stdout
    assert "ETA" not in proc.stderr


def test_progress_bar_draws_rate_and_eta():
    out = io.StringIO()
    bar = ProgressBar(out, interval_s=0.0, width=10)
    bar(ReplayProgress(lines=10, frames=9, events=2000, bytes_done=50, bytes_total=100,
                       elapsed_s=1.0))
    bar.close()
    assert out.getvalue() == "\r[#####.....]  50%  9 frames  2,000 events/s  ETA 1s\n"


def test_summary_text_lists_books_and_errors():
    summary = replay([SPOT], levels=1).to_dict()
    summary["errors"] = ["x.jsonl:3: invalid JSON"]
    text = summary_text(summary)
    assert "binance:RUNE-EUR" in text and "! x.jsonl:3: invalid JSON" in text


def test_workers_replay_each_file_in_its_own_process():
    proc = backtest(str(SPOT), str(USDM), "--workers", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stdout)
    assert summary["frames"] == 265 + 1535 and len(summary["jobs"]) == 2
    assert summary["jobs"][0]["digest"] == replay([SPOT]).digest
    assert "binance:NKN-USDT" in summary["instruments"]
    assert "binance-futures:SUSHI-USDT" in summary["instruments"]


def test_a_missing_file_is_a_clear_error_not_a_traceback(tmp_path):
    proc = backtest(str(tmp_path / "missing.jsonl"), "--json", "--no-progress")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot open recording" in orjson.loads(proc.stdout)["error"]
