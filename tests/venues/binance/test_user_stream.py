"""User-stream frames: execution reports go on, bad frames are dead letters, others counted."""

from __future__ import annotations

import orjson

from meltica_nb.dead_letter_queue import DeadLetterReason
from meltica_nb.engine import Engine
from meltica_nb.exec_reports import VenueReport
from meltica_nb.venues.binance.config import BinanceConfig
from meltica_nb.venues.binance.trader import BinanceTrader

from .test_orders import EXECUTION


def make_trader():
    engine = Engine()
    config = BinanceConfig(symbols=("BTC-USDT",), api_key="k" * 64, api_secret="s" * 64)
    trader = BinanceTrader(engine, config)
    engine.add_trader(trader)
    return engine, trader


def test_frames_are_sorted_into_reports_dead_letters_and_other_events():
    engine, trader = make_trader()
    seen: list[VenueReport] = []
    trader.stream.on_report = seen.append
    frames = [orjson.dumps(EXECUTION), b'{"e":"executionReport","X":"NEW"}', b"{not json",
              b'{"e":"balanceUpdate","a":"BTC","d":"1.0"}', b"[1,2]",
              orjson.dumps({**EXECUTION, "X": "FUNNY"})]
    kinds = [trader.stream._on_frame(f) for f in frames]
    assert kinds == ["report", "malformed", "malformed", "other", "other", "malformed"]
    assert [r.exchange_order_id for r in seen] == [4293153]
    stats = trader.stream.stats()
    assert (stats.reports, stats.malformed, stats.other_events) == (1, 3, 2)
    letters = engine.dlq.drain_texts()
    assert [t.reason for t in letters] == [DeadLetterReason.MALFORMED] * 3
    assert letters[1].raw.startswith(b"{not json") and "ProtocolError" in letters[0].detail


def test_listen_key_expiry_ends_the_session():
    _, trader = make_trader()
    assert trader.stream._on_frame(b'{"e":"listenKeyExpired","E":1,"listenKey":"x"}') == \
        "expired"
