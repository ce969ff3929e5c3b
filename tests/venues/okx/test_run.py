"""``meltica run`` with an ``[[okx]]`` feed against the simulator's OKX protocol."""

from __future__ import annotations

import orjson
import pytest

from meltica_nb import cli
from meltica_nb.errors import ConfigError
from meltica_nb.run_config import engine_from_toml
from meltica_nb.sim.market import MarketConfig
from meltica_nb.sim.server import ExchangeSimulator


def test_run_with_an_okx_feed(tmp_path, monkeypatch, capsys, no_thread_leak):
    (tmp_path / "okx_strategy.py").write_text(
        "seen = []\n\ndef on_events(events):\n    seen.append(len(events))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with ExchangeSimulator(config=MarketConfig.fast(), venue="okx") as sim:
        config = tmp_path / "meltica.toml"
        config.write_text(f"""
[[okx]]
symbols = ["BTC-USDT", "ETH-USDT"]
channels = ["books", "trades", "bbo-tbt", "tickers"]
ws_url = "{sim.ws_url}"
rest_url = "{sim.rest_url}"

[consumers.tape]
target = "okx_strategy:on_events"
events = ["trade", "bbo", "book_snapshot"]
mode = "batch"
""")
        assert cli.main(["run", "--config", str(config), "--duration", "1.5", "--json"]) == 0
    summary = orjson.loads(capsys.readouterr().out)
    import okx_strategy

    assert sum(okx_strategy.seen) == summary["delivered"] > 0
    assert summary["events"]["book_snapshot"] > 0 and summary["snapshots"] == 2
    assert summary["unreturned_slots"] == 0 and summary["resyncs"] == 0


def test_okx_table_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[okx]]\nsymbols = ["BTC-USDT"]\ncolour = "red"\n')
    with pytest.raises(ConfigError, match=r"\[\[okx\]\]"):
        engine_from_toml(bad)
    bad.write_text('[[okx]]\nsymbols = ["BTC-USDT"]\nchannels = ["candle1m"]\n')
    with pytest.raises(ConfigError, match="not an OKX subscription"):
        engine_from_toml(bad)
