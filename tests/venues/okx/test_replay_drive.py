"""OkxFeed driven without a connection (as a replay driver does): the recording end to end."""

from __future__ import annotations

import threading
from collections import Counter

from meltica_nb.dead_letter_queue import DeadLetterReason
from meltica_nb.engine import Engine
from meltica_nb.schema import EventType
from meltica_nb.sim.okx import checksum
from meltica_nb.venues.okx.config import OkxConfig
from meltica_nb.venues.okx.connection import OkxConnection
from meltica_nb.venues.okx.feed import OkxFeed
from tests.venues.okx.helpers import RECORDED, book_frame, recorded_frames

BAD = [b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"upd',
       b'{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[]}']


def test_on_frames_replays_the_recording_into_the_engine(no_thread_leak):
    engine = Engine()
    got: Counter[int] = Counter()
    lock = threading.Lock()

    def tape(events):
        with lock:
            got.update(events["event_type"].tolist())

    engine.add_consumer("tape", tape, mode="batch")
    feed = OkxFeed(engine, OkxConfig(symbols=RECORDED, channels=("books", "trades", "tickers")))
    feed.load_instruments(None)  # no REST: exponent 8 for every instrument
    frames, recv = recorded_frames()
    frames[100:100] = BAD
    recv[100:100] = [recv[100]] * 2
    engine.start()
    try:
        for i in range(0, len(frames), 50):
            feed.on_frames(frames[i:i + 50], recv[i:i + 50])
    finally:
        report = engine.stop(5.0)
    assert report.clean and report.count == 0
    stats = feed.stats()
    assert (stats.checksum_ok, stats.checksum_fail, stats.resubscribes) == (290, 0, 0)
    assert (stats.malformed, stats.unknown) == (1, 1)
    assert stats.parser.control == 18 and stats.parser.trades >= 74
    assert stats.parser.tickers == 28 and 1 <= got[EventType.TICKER] <= 28  # latest-wins
    assert got[EventType.TRADE] == stats.parser.trades  # trades are never coalesced
    assert got[EventType.BOOK_SNAPSHOT] >= 1 and got[EventType.BBO] >= 1
    reasons = [t.reason for t in engine.dlq.texts()]
    assert sorted(reasons) == [DeadLetterReason.MALFORMED, DeadLetterReason.UNKNOWN_MESSAGE]


def test_a_book_failing_again_without_progress_is_resubscribed_with_backoff():
    engine = Engine()
    config = OkxConfig(symbols=("BTC-USDT",), backoff_base_s=0.5, backoff_cap_s=2.0)
    feed = OkxFeed(engine, config)
    feed.load_instruments(None)
    feed.connection = OkxConnection(config, feed.on_frames)  # not run: its queue is inspected
    bad = book_frame("BTC-USDT", [["1.5", "1"]], [["1.6", "1"]], action="snapshot",
                     checksum=12345, seq=1, prev=-1)
    good = book_frame("BTC-USDT", [["1.5", "1"]], [["1.6", "1"]], action="snapshot",
                      checksum=checksum([["1.5", "1"]], [["1.6", "1"]]), seq=2, prev=-1)
    for frame in (bad, bad, bad, good, bad):
        feed.on_frames([frame], [1])
    delays = [round(due - feed.connection._now(), 1) for due, _ in feed.connection._delayed]
    assert feed.stats().resubscribes == 4
    assert delays[0] <= 0.0 and 0.3 <= delays[1] <= 0.5 and 0.7 <= delays[2] <= 1.0
    assert delays[3] <= 0.0  # the good snapshot was progress: at once again
