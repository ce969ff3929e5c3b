"""Control Bus, through the real Engine: acks to the caller and, as critical records, to the
issuing consumer; every malformed command gets a failed ack with a clear message and code."""

import numpy as np
import pytest
from engine_util import ACK, T0, TRADE, Collector, make, wait_until

from meltica_nb.clock import ManualClock
from meltica_nb.concurrency import TaskGroup
from meltica_nb.control_bus import ControlAck
from meltica_nb.engine import Engine
from meltica_nb.schema import CommandType, ErrorCode, Flag, Kind


@pytest.fixture
def setup():
    engine = Engine(clock=ManualClock(T0))
    tape = Collector()
    consumer = engine.add_consumer("strat", tape, instruments=["BTC-USDT"], events=["trade"])
    return engine, consumer, tape


def acks(tape):
    ev = tape.events
    return ev[ev["event_type"] == ACK]


def test_subscribe_and_unsubscribe_ack_with_versions_bumping_by_one(setup):
    engine, consumer, tape = setup
    v0 = engine.router.version
    sub = engine.control.subscribe("strat", venues=["custom"], instruments="ETH-USDT",
                                   events=["trade", "bbo"])
    assert isinstance(sub, ControlAck)
    assert (sub.success, sub.command, sub.consumer, sub.error) == (True, "Subscribe", "strat",
                                                                   None)
    assert sub.routing_version == v0 + 1 == engine.router.version
    unsub = engine.control.unsubscribe("strat", venues=["custom"], instruments="ETH-USDT",
                                       events=["bbo", "trade"])
    assert unsub.success and unsub.routing_version == v0 + 2
    assert unsub.command_id == sub.command_id + 1
    assert unsub.error_code == ErrorCode.OK


def test_the_issuing_consumer_receives_its_acks_as_critical_records(setup):
    engine, consumer, tape = setup
    sub = engine.control.subscribe("strat", instruments=["ETH-USDT"])
    unsub = engine.control.unsubscribe("strat", instruments=["ETH-USDT"])
    assert consumer.critical.size() == 2  # the lossless ring, not the market-data ring
    consumer.poll()
    records = acks(tape)
    assert records["command_id"].tolist() == [sub.command_id, unsub.command_id]
    assert records["kind"].tolist() == [Kind.CONTROL_ACK] * 2
    assert records["command_type"].tolist() == [CommandType.SUBSCRIBE, CommandType.UNSUBSCRIBE]
    assert records["result_value"].tolist() == [sub.routing_version, unsub.routing_version]
    assert records["consumer_id"].tolist() == [consumer.index] * 2
    assert all(int(f) & Flag.SUCCESS for f in records["flags"])
    assert records["routing_version"].tolist() == [sub.routing_version, unsub.routing_version]
    assert engine.pools["CanonicalEvent"].in_use == 0


def test_only_the_issuing_consumer_gets_the_ack(setup):
    engine, consumer, tape = setup
    other_tape = Collector()
    other = engine.add_consumer("other", other_tape)  # subscribed to everything
    engine.control.subscribe("strat", events=["bbo"])
    consumer.poll()
    other.poll()
    assert len(acks(tape)) == 1 and len(other_tape) == 0


def test_a_new_subscription_routes_events_of_a_new_venue(setup):
    engine, consumer, tape = setup
    engine.publish(make(engine, TRADE, [1], venue="myvenue", instrument="SOL-USDT"))
    consumer.poll()
    assert len(tape) == 0
    assert engine.control.subscribe("strat", venues=["myvenue"], events=["trade"]).success
    engine.publish(make(engine, TRADE, [2], venue="myvenue", instrument="SOL-USDT"))
    consumer.poll()
    assert tape.seqs(TRADE) == [2]


def test_a_duplicate_subscribe_succeeds_without_a_flip(setup):
    engine, _, _ = setup
    first = engine.control.subscribe("strat", events=["bbo"])
    again = engine.control.subscribe("strat", events=["bbo"])
    assert again.success and again.routing_version == first.routing_version


BAD_COMMANDS = [
    ({"type": "Frobnicate", "consumer": "strat"}, ErrorCode.UNKNOWN_COMMAND,
     "unknown command 'Frobnicate'"),
    ({"type": ["Subscribe"], "consumer": "strat"}, ErrorCode.UNKNOWN_COMMAND, "unknown command"),
    ({"consumer": "strat"}, ErrorCode.UNKNOWN_COMMAND, "unknown command None"),
    ("Subscribe strat", ErrorCode.BAD_PAYLOAD, "a command must be a dict"),
    ({"type": "Subscribe", "consumer": "strat", "payload": {"events": ["tradez"]}},
     ErrorCode.BAD_PAYLOAD, "unknown event type 'tradez'"),
    ({"type": "Subscribe", "consumer": "strat", "payload": ["trade"]},
     ErrorCode.BAD_PAYLOAD, "payload must be an object"),
    ({"type": "Subscribe", "consumer": "strat", "payload": []},
     ErrorCode.BAD_PAYLOAD, "payload must be an object"),
    ({"type": "Subscribe", "consumer": "strat", "payload": {"symbols": ["BTC-USDT"], 1: 2}},
     ErrorCode.BAD_PAYLOAD, "unknown payload field"),
    ({"type": "Subscribe", "consumer": "strat", "payload": {"instruments": ["btcusdt"]}},
     ErrorCode.BAD_PAYLOAD, "not canonical"),
    ({"type": "Subscribe", "consumer": "strat", "payload": {"venues": []}},
     ErrorCode.BAD_PAYLOAD, "venues must be a non-empty list"),
    ({"type": "Subscribe", "consumer": "ghost", "payload": {}},
     ErrorCode.UNKNOWN_CONSUMER, "no consumer named 'ghost'"),
    ({"type": "Subscribe", "consumer": ["strat"]},
     ErrorCode.UNKNOWN_CONSUMER, "no consumer named ['strat']"),
    ({"type": "Unsubscribe", "consumer": "strat", "payload": {"events": ["bbo"]}},
     ErrorCode.NOT_SUBSCRIBED, "no active subscription matches"),
]


@pytest.mark.parametrize("command, code, message", BAD_COMMANDS)
def test_a_bad_command_gets_a_failed_ack_with_a_clear_message(setup, command, code, message):
    engine, consumer, tape = setup
    version = engine.router.version
    ack = engine.control.send(command)
    assert not ack.success
    assert ack.error_code == code
    assert message in ack.error
    assert ack.routing_version == version == engine.router.version  # nothing flipped
    consumer.poll()
    if isinstance(command, dict) and command.get("consumer") == "strat":
        (record,) = acks(tape)  # a known consumer hears about its failure too
        assert record["error_code"] == code
        assert not int(record["flags"]) & Flag.SUCCESS
        assert record["command_id"] == ack.command_id
    else:
        assert len(tape) == 0


def test_a_handler_may_issue_commands_from_its_own_thread(no_thread_leak):
    # The ack goes back into the issuing consumer's own rings; with its critical ring full it
    # spills instead of waiting for itself.
    engine = Engine(clock=ManualClock(T0))
    tape = Collector()
    issued = []

    def strategy(events):
        tape(events)
        trades = events[events["event_type"] == TRADE]
        if len(trades) and not issued:
            for _ in range(6):
                issued.append(engine.control.subscribe("strat", events=["bbo"]))

    engine.add_consumer("strat", strategy, critical_capacity=4)
    with engine:
        engine.publish(make(engine, TRADE, [1]))
        wait_until(lambda: len(acks(tape)) == 6, what="six acks")
    assert acks(tape)["command_id"].tolist() == [a.command_id for a in issued]
    assert np.all(acks(tape)["flags"] & Flag.SUCCESS)


def test_a_command_without_payload_subscribes_to_everything(setup):
    engine, consumer, tape = setup
    ack = engine.control.send({"type": "Subscribe", "consumer": "strat"})
    assert ack.success
    engine.publish(make(engine, TRADE, [1], instrument="ETH-USDT"))
    consumer.poll()
    assert tape.seqs(TRADE) == [1]


def test_concurrent_commands_reach_the_consumer_in_command_id_order(setup, no_thread_leak):
    engine, consumer, tape = setup
    returned = []

    def flip(_cancel, events):
        for _ in range(20):
            returned.append(engine.control.subscribe("strat", events=events).command_id)
            returned.append(engine.control.unsubscribe("strat", events=events).command_id)

    with TaskGroup("commanders") as group:
        group.start(flip, ["bbo"])
        group.start(flip, ["ticker"])
    while consumer.poll():
        pass
    ids = acks(tape)["command_id"].tolist()
    assert ids == sorted(returned) == list(range(1, 81))
    assert engine.router.version == 1 + 80  # every command flipped the table once
