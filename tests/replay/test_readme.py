"""The README's replay example runs as written (on the test recordings)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from .conftest import NEXT_DAY, SLOW, SPOT

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(SLOW, reason="the continuation needs the whole first file")
def test_the_readme_replay_example_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    section = text.split("## Replay and backtests", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace('"btcusdt_20240808.jsonl.gz"', repr(str(
        SPOT / "binance_spot_btcusdt_20240808_hftbacktest.jsonl.gz")))
    code = code.replace('"btcusdt_20240809.jsonl.gz"', repr(str(NEXT_DAY)))
    script = tmp_path / "readme_example.py"  # a real file: njit(cache=True) needs one
    script.write_text(code)
    scope = runpy.run_path(str(script))
    result = scope["result"]
    assert result.consumers["mean_trade"].state[0] == result.events["trade"]
    assert result.instruments["binance:BTC-USDT"].resyncs == 0
    assert len(scope["columns"]["price"]) == sum(result.events.values())
