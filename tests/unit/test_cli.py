"""The ``meltica`` command line: one JSON object on stdout with --json; Ctrl-C drains."""

import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from meltica_nb import cli


def test_demo_json_summary(capsys, no_thread_leak):
    assert cli.main(["demo", "--duration", "1.5", "--rate", "2000", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    summary = orjson.loads(out[0])
    assert summary["events"]["trade"] > 0 and summary["events"]["bbo"] > 0
    assert set(summary["latency_us"]) == {"p50", "p99", "p999"}
    assert summary["unreturned_slots"] == 0 and summary["errors"] == 0
    assert summary["delivered"] + summary["coalesced"] + summary["dropped"] == sum(
        summary["events"][k] for k in ("trade", "bbo")) + summary["events"]["bbo"]
    assert summary["pool_high_water"]["CanonicalEvent"] > 0


def test_demo_text_summary(capsys, no_thread_leak):
    assert cli.main(["demo", "--duration", "1.2", "--rate", "1000"]) == 0
    captured = capsys.readouterr()
    assert "unreturned_slots: 0" in captured.out
    assert "ev/s" in captured.err  # the live view


def test_bench_json(capsys):
    assert cli.main(["bench", "--quick", "--events", "4096", "--json"]) == 0
    rows = orjson.loads(capsys.readouterr().out)["pool"]
    assert [row["batch"] for row in rows] == [1, 64, 4096]
    assert all(row["engine_slots_per_s"]["median"] > 0 for row in rows)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_drains_and_exits_cleanly():
    """Ctrl-C (SIGINT) to ``meltica demo`` stops it with every slot returned."""
    proc = subprocess.Popen([sys.executable, "-m", "meltica_nb.cli", "demo", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        time.sleep(4.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    summary = orjson.loads(out)
    assert summary["unreturned_slots"] == 0
    assert b"interrupted, draining" in err


def test_sim_is_dispatched_with_its_own_options(capsys, no_thread_leak):
    assert cli.main(["sim", "--json", "--duration", "0.3"]) == 0
    urls = orjson.loads(capsys.readouterr().out)
    assert urls["ws_url"].startswith("ws://127.0.0.1:")
    assert urls["rest_url"].startswith("http://127.0.0.1:")
