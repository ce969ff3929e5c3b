"""The baselines do their job: every event reaches every consumer; bare readers read."""

import pytest

from bench.baselines.bare_ws import READERS, read_frames
from bench.baselines.fanout import fanout_events, run_fanout
from bench.baselines.styles import NAIVE, STYLES, TUNED
from bench.bench_fanout import engine_feed
from meltica_nb.sim import ExchangeSimulator
from meltica_nb.sim.market import MarketConfig


@pytest.mark.parametrize("style", STYLES, ids=lambda s: s.name)
def test_fanout_delivers_every_event_to_every_consumer(style, no_thread_leak):
    events = fanout_events(engine_feed(512), style)
    assert isinstance(events[0], style.event)
    result = run_fanout(events, 3, style)
    assert result["complete"] and result["seconds"] >= result["publish_seconds"] > 0


def test_styles_differ_in_decoder_objects_and_queue():
    assert NAIVE.loads(b'{"a": 1}') == TUNED.loads(b'{"a": 1}') == {"a": 1}
    assert not hasattr(NAIVE.event(1, 1, 1, 1, 1, 1), "__slots__")
    assert hasattr(TUNED.event(1, 1, 1, 1, 1, 1), "__slots__")
    assert type(NAIVE.make_queue()).__name__ == "Queue"
    assert type(TUNED.make_queue()).__name__ == "SimpleQueue"


@pytest.mark.parametrize("reader", list(READERS))
def test_bare_readers_read_a_simulator_over_loopback(reader, no_thread_leak):
    with ExchangeSimulator("spot", config=MarketConfig.fast(updates_per_s=400.0)) as sim:
        result = read_frames(f"{sim.ws_url}/stream?streams=btcusdt@bookTicker/btcusdt@trade",
                             20, reader)
    assert result["frames"] == 20 and result["rate"] > 0
