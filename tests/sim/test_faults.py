"""Each fault kind, injected at a high rate with a fixed seed, is seen by a real client."""

import time
import urllib.error
import urllib.request

import orjson
import pytest
import websocket

from .helpers import close, connect

FRAME_FAULTS = {
    "drop": "drop=0.3",
    "dup": "dup=0.3",
    "reorder": "reorder=0.3",
    "malformed": "malformed=0.3",
    "oversized": "oversized=0.2",
    "stall": "stall=0.2:150ms",
    "disconnect": "disconnect=0.05",
}


def _frames(ws, limit):
    """(text, arrival time) per frame; None once the server dropped the connection."""
    for _ in range(limit):
        try:
            yield ws.recv(), time.monotonic()
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            yield None
            return


def _seen(kind, frames) -> bool:
    prev_u, prev_t = None, None
    for item in frames:
        if item is None:
            return kind == "disconnect"
        text, arrived = item
        if kind == "stall" and prev_t is not None and arrived - prev_t >= 0.12:
            return True
        prev_t = arrived
        if kind == "oversized" and len(text) >= 2 * 1024 * 1024:
            return True
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError:
            if kind == "malformed":
                return True
            continue
        if event.get("e") != "depthUpdate":
            continue
        if prev_u is not None and _anomaly(kind, prev_u, event):
            return True
        prev_u = event["u"]
    return False


def _anomaly(kind, prev_u, event) -> bool:
    return {"drop": event["U"] > prev_u + 1, "dup": event["u"] == prev_u,
            "reorder": event["u"] < prev_u}.get(kind, False)


@pytest.mark.parametrize("kind", list(FRAME_FAULTS))
def test_frame_fault_is_observed(make_sim, kind):
    sim = make_sim(faults=FRAME_FAULTS[kind], seed=11)
    ws = connect(sim, "/ws/btcusdt@depth@100ms")
    try:
        assert _seen(kind, _frames(ws, 400)), kind
    finally:
        close(ws)
    assert sim.stats()["faults"][kind] >= 1
    if kind == "disconnect":
        assert sim.stats()["disconnects"]["fault_disconnect"] >= 1


@pytest.mark.parametrize(("kind", "codes"), [("rest429", {429}), ("rest5xx", {500, 502, 503})])
def test_rest_fault_is_observed(make_sim, kind, codes):
    sim = make_sim(faults=f"{kind}=0.5", seed=11)
    statuses = []
    for _ in range(20):
        try:
            with urllib.request.urlopen(sim.rest_url + "/api/v3/ping", timeout=5) as resp:
                statuses.append(resp.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
            if exc.code == 429:
                assert exc.headers["Retry-After"] == "1"
    assert set(statuses) & codes and 200 in statuses
    assert sim.stats()["faults"][kind] == sum(s in codes for s in statuses)


def test_no_faults_without_a_spec(sim):
    ws = connect(sim, "/ws/btcusdt@depth@100ms")
    try:
        for kind in ("drop", "dup", "reorder", "malformed"):
            assert not _seen(kind, _frames(ws, 10))
    finally:
        close(ws)
    assert sim.stats()["faults"] == {}
