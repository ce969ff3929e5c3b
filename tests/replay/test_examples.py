"""The backtest example trades on a real recording and reports its fills and PnL."""

import importlib.util
from decimal import Decimal
from pathlib import Path

import orjson

from .conftest import SPOT

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "backtest_quotes.py"


def test_the_quoting_backtest_reports_fills_that_add_up(recording, capsys):
    spec = importlib.util.spec_from_file_location("backtest_quotes", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    path = recording(SPOT / "binance_spot_btcusdt_20240808_hftbacktest.jsonl.gz")
    assert example.main([str(path), "--latency-ms", "5"]) == 0
    *fills, summary = capsys.readouterr().out.strip().splitlines()
    summary = orjson.loads(summary)
    assert summary["fills"] == len(fills) > 0
    signed = sum(Decimal(f.split()[2]) * (1 if f.split()[1] == "BUY" else -1) for f in fills)
    assert signed == Decimal(summary["inventory_btc"])
