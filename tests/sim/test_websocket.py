"""The websocket server over real sockets, with websocket-client as the engine uses it."""


import pytest
import websocket
from waiting import wait_until

from meltica_nb.sim import BinanceLimits

from .helpers import ClientBook, close, connect, get, recv_json, recv_reply, send_json, ws_client


def test_raw_stream_path_sends_bare_payloads(sim):
    with ws_client(sim, "/ws/btcusdt@trade") as ws:
        trade = recv_json(ws)
    assert trade["e"] == "trade" and trade["s"] == "BTCUSDT"


def test_combined_streams_are_wrapped_and_all_delivered(sim):
    streams = ["btcusdt@depth@100ms", "ethusdt@trade", "btcusdt@bookTicker", "btcusdt@aggTrade"]
    seen = set()
    with ws_client(sim, "/stream?streams=" + "/".join(streams)) as ws:
        for _ in range(2000):
            msg = recv_json(ws)
            assert set(msg) == {"stream", "data"}
            seen.add(msg["stream"])
            if seen == set(streams):
                break
    assert seen == set(streams)
    assert sim.stats()["frames_sent"]["ethusdt@trade"] >= 1


def test_subscribe_ack_list_and_unsubscribe(make_sim):
    sim = make_sim(limits=BinanceLimits(ping_interval=None, max_messages_per_s=100))
    with ws_client(sim, "/ws") as ws:
        send_json(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "ethusdt@depth"],
                       "id": 1})
        assert recv_json(ws) == {"result": None, "id": 1}
        first = recv_json(ws)
        assert first["e"] in ("trade", "depthUpdate")
        send_json(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2})
        assert recv_reply(ws, 2) == {"result": ["btcusdt@trade", "ethusdt@depth"], "id": 2}
        send_json(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 3})
        assert recv_reply(ws, 3) == {"result": None, "id": 3}
        send_json(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 4})
        assert recv_reply(ws, 4)["result"] == ["ethusdt@depth"]
        send_json(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@nothing"], "id": 5})
        error = recv_reply(ws, 5)
        assert error["error"]["code"] == 2 and error["error"]["msg"].startswith("Invalid request")
        ws.send("{oops")
        assert recv_reply(ws, None)["error"]["code"] == 3
    stats = sim.stats()
    assert stats["subscribe_requests"] == 2 and stats["connections"]["total"] == 1


def test_stream_limit_per_connection(make_sim):
    sim = make_sim(limits=BinanceLimits(ping_interval=None, max_streams=4))
    with ws_client(sim, "/ws/btcusdt@trade") as ws:
        send_json(ws, {"method": "SUBSCRIBE", "id": 1,
                       "params": ["a@trade", "b@trade", "c@trade", "d@trade"]})
        assert "too many streams" in recv_reply(ws, 1)["error"]["msg"]
    with pytest.raises(websocket.WebSocketBadStatusException) as bad:
        connect(sim, "/stream?streams=" + "/".join(f"s{i}@trade" for i in range(5)))
    assert bad.value.status_code == 400
    with pytest.raises(websocket.WebSocketBadStatusException) as missing:
        connect(sim, "/nowhere")
    assert missing.value.status_code == 404


def test_more_than_five_messages_per_second_closes_the_connection(sim):
    ws = connect(sim, "/ws")
    try:
        for i in range(8):
            send_json(ws, {"method": "LIST_SUBSCRIPTIONS", "id": i})
        replies, close_code = [], None
        while close_code is None:
            frame = ws.recv_data_frame(control_frame=True)[1]
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                close_code = int.from_bytes(frame.data[:2], "big")
            elif frame.opcode == websocket.ABNF.OPCODE_TEXT:
                replies.append(frame.data)
    except websocket.WebSocketConnectionClosedException:
        close_code = -1
    finally:
        close(ws)
    assert len(replies) == 5 and close_code in (1008, -1)
    assert sim.stats()["disconnects"]["rate_limit"] == 1


def test_server_pings_and_counts_pongs(make_sim):
    sim = make_sim(limits=BinanceLimits(ping_interval=0.05, ping_timeout=1.0))
    with ws_client(sim, "/ws") as ws:
        opcode = None
        while opcode != websocket.ABNF.OPCODE_PING:
            opcode = ws.recv_data_frame(control_frame=True)[0]  # answered with a pong
        ws.recv_data_frame(control_frame=True)
        stats = sim.stats()
    assert stats["pings_sent"] >= 1 and stats["pongs_received"] >= 1


def test_no_pong_disconnects(make_sim):
    sim = make_sim(limits=BinanceLimits(ping_interval=0.05, ping_timeout=0.1))
    ws = connect(sim, "/ws")
    try:
        # we never read: no pong
        wait_until(lambda: sim.stats()["disconnects"].get("pong_timeout"), 3, 0.02,
                   what="the simulator to drop a client that never answers its pings")
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            for _ in range(100):
                ws.recv_data_frame(control_frame=True)
    finally:
        close(ws)


def test_depth_diffs_applied_to_the_rest_snapshot_reproduce_the_book(sim):
    """Binance's procedure: buffer diffs, snapshot, drop stale, apply; then compare."""
    path = "/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker"
    with ws_client(sim, path) as ws:
        def diff():
            while True:
                msg = recv_json(ws)
                if msg["stream"] == "btcusdt@depth@100ms":
                    return msg["data"]
                tickers.append(msg["data"])

        tickers = []
        buffered = [diff()]
        status, _, snapshot = get(sim.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=5000")
        assert status == 200 and snapshot["lastUpdateId"] >= buffered[0]["U"]
        while buffered[-1]["u"] <= snapshot["lastUpdateId"]:
            buffered.append(diff())
        for a, b in zip(buffered, buffered[1:], strict=False):
            assert b["U"] == a["u"] + 1
        book = ClientBook(snapshot)
        live = [e for e in buffered if e["u"] > snapshot["lastUpdateId"]]
        assert live[0]["U"] <= snapshot["lastUpdateId"] + 1 <= live[0]["u"]
        checked = _apply_and_check(book, live, tickers, diff, 30)
        sim.pause()
        target = sim.book("BTCUSDT", 5000)
        while book.update_id < target["lastUpdateId"]:
            book.apply(diff())
    assert checked > 0
    assert book.update_id == target["lastUpdateId"]
    assert book.top(5000) == {"bids": target["bids"], "asks": target["asks"]}
    assert len(target["bids"]) >= 150


def _apply_and_check(book, events, tickers, more, extra):
    """Apply diffs; bookTickers whose u is a diff's final u must show the book's top."""
    checked = 0
    for _ in range(extra):
        events.append(more())
    for event in events:
        prev = book.update_id
        book.apply(event)
        assert event["U"] == prev + 1 or event is events[0]
        for ticker in tickers:
            if ticker["u"] == event["u"]:
                top = book.top(1)
                assert [ticker["b"], ticker["B"]] == top["bids"][0]
                assert [ticker["a"], ticker["A"]] == top["asks"][0]
                checked += 1
    return checked


def test_usdm_streams_carry_pu_and_depth_0ms(make_sim):
    sim = make_sim(market="usdm")
    with ws_client(sim, "/stream?streams=btcusdt@depth@0ms") as ws:
        events = [recv_json(ws)["data"] for _ in range(10)]
    assert all(b["pu"] == a["u"] for a, b in zip(events, events[1:], strict=False))
    assert {"e", "E", "T", "s", "U", "u", "pu", "b", "a"} == set(events[0])
    status, _, snap = get(sim.rest_url + "/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
    assert status == 200 and {"lastUpdateId", "E", "T", "bids", "asks"} == set(snap)
