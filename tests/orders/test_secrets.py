"""Credentials never reach a log line, an ack, an exception text or a record."""

from __future__ import annotations

import logging

from waiting import wait_until

from meltica_nb.errors import MelticaError
from meltica_nb.venues.binance.config import BinanceConfig
from meltica_nb.venues.binance.orders import BinanceOrders
from meltica_nb.venues.binance.rest import BinanceRest
from meltica_nb.venues.binance.trader import TradingConfig

from .helpers import EXEC, Recorder, resting_buy, trading_session


def test_secrets_never_appear_in_logs_acks_errors_or_records(sim, caplog):
    caplog.set_level(logging.DEBUG)
    key, secret = sim.credentials.api_key, sim.credentials.api_secret
    texts: list[str] = []
    tape = Recorder()
    with trading_session(sim, {"s": tape}, TradingConfig(time_offset_ms=-120_000),
                         enable=["s"]) as (engine, trader):
        qty, price = resting_buy(sim)
        ack = engine.control.submit_order("s", "k1", "BTC-USDT", "BUY", "LIMIT", qty, price)
        assert ack.venue_code == -1021
        texts += [repr(ack), repr(trader.config), str(trader.config.api_secret),
                  repr(engine.stats()), repr(trader.stats())]
        listen_key = trader.api.create_listen_key()
        sim.drop_user_streams()  # reconnect: logged, with the listenKey nowhere
        assert wait_until(lambda: trader.stats().user_stream.sessions >= 2)
        assert wait_until(lambda: len(tape.of_type(EXEC)) == 1)
    # a venue that cannot be reached: the errors are raised and logged, redacted
    down = BinanceConfig(rest_url="http://127.0.0.1:9", api_key=key, api_secret=secret,
                         rest_max_retries=0)
    rest = BinanceRest(down)
    try:
        BinanceOrders(down, rest, lambda: 0).new_order({"symbol": "BTCUSDT"})
    except MelticaError as exc:
        texts += [str(exc), repr(exc)]
    finally:
        rest.close()
    records = tape.events.tobytes()
    # the engine's side only: the simulator (the venue) and its server library log requests
    ours = "\n".join(r.getMessage() for r in caplog.records
                     if not r.name.startswith(("meltica_nb.sim", "websockets")))
    everything = "\n".join(texts) + ours
    assert "binance user stream disconnected" in ours
    for credential in (key, secret, listen_key):
        assert credential not in everything
        assert credential.encode() not in records
