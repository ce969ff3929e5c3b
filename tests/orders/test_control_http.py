"""The operators' HTTP control API: real HTTP on 127.0.0.1, every status code it promises."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from waiting import wait_until

from meltica_nb.control_http import ControlHttp, control_token

from .helpers import Recorder, binance_config, resting_buy, trading_engine

TOKEN = "test-token-123"
ROOT = Path(__file__).resolve().parents[2]


def call(port: int, method: str, path: str, body=None, token: str | None = TOKEN):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        data = body if isinstance(body, bytes | type(None)) else orjson.dumps(body)
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, orjson.loads(response.read())
    finally:
        conn.close()


def test_status_codes_of_every_endpoint(sim):
    tape = Recorder()
    engine, trader = trading_engine(sim, {"strat": tape})
    with ControlHttp(engine.control, lambda: engine.running, 0, TOKEN) as api:
        port = api.port
        assert call(port, "POST", "/subscribe", {"consumer": "strat"})[0] == 503  # not started
        with engine:
            assert wait_until(lambda: trader.stream.connected)
            sim.pause()
            qty, price = resting_buy(sim)
            order = {"consumer": "strat", "client_order_id": "h1", "instrument": "BTC-USDT",
                     "side": "BUY", "type": "LIMIT", "quantity": qty, "price": price}
            assert call(port, "POST", "/subscribe", {"consumer": "strat"}, token=None)[0] == 401
            assert call(port, "POST", "/subscribe", {"consumer": "strat"}, token="x")[0] == 401
            status, body = call(port, "POST", "/subscribe",
                                {"consumer": "strat", "instruments": ["ETH-USDT"]})
            assert (status, body["success"], body["command"]) == (202, True, "Subscribe")
            status, body = call(port, "POST", "/orders", order)
            assert (status, body["status"], body["error_code"]) == (409, "suppressed",
                                                                    "TRADING_DISABLED")
            assert call(port, "POST", "/trading-mode",
                        {"consumer": "strat", "enabled": True})[0] == 202
            status, body = call(port, "POST", "/orders", order)
            assert status == 202 and body["result"]["client_order_id"] == "h1"
            status, body = call(port, "GET", "/orders/h1?consumer=strat")
            assert status == 202 and body["result"]["status"] == "ACK"
            assert call(port, "DELETE", "/orders/h1?consumer=strat")[0] == 202
            assert wait_until(lambda: call(port, "GET", "/orders/h1?consumer=strat")[1]
                              ["result"]["status"] == "CANCELLED")
            status, body = call(port, "POST", "/orders", order)
            assert (status, body["error_code"]) == (409, "DUPLICATE_ORDER")
            assert call(port, "POST", "/unsubscribe", {"consumer": "nobody"})[0] == 409
            assert call(port, "POST", "/subscribe", b"{not json")[0] == 400
            assert call(port, "POST", "/subscribe", [1, 2])[0] == 400
            assert call(port, "POST", "/subscribe", {"instruments": ["BTC-USDT"]})[0] == 400
            assert call(port, "GET", "/subscribe")[0] == 405
            assert call(port, "PUT", "/orders/h1?consumer=strat")[0] == 405
            assert call(port, "POST", "/nowhere", {})[0] == 404
            assert call(port, "POST", "/subscribe", b"x" * 70_000)[0] == 400  # too large
        assert call(port, "POST", "/subscribe", {"consumer": "strat"})[0] == 503  # stopped
    assert api.requests >= 20


def test_token_comes_from_env_or_file_or_is_generated(tmp_path):
    assert control_token({"MELTICA_CONTROL_TOKEN": " abc "}) == ("abc", False)
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert control_token({"MELTICA_CONTROL_TOKEN_FILE": str(path)}) == ("from-file", False)
    token, generated = control_token({})
    assert generated and len(token) >= 24 and token != control_token({})[0]


def test_meltica_run_serves_the_control_api_and_trades(sim, tmp_path):
    sim_config = binance_config(sim)
    toml = tmp_path / "meltica.toml"
    toml.write_text(f"""
[[binance]]
symbols = ["BTC-USDT"]
channels = ["trade"]
ws_url = "{sim_config.ws_url}"
rest_url = "{sim_config.rest_url}"

[binance.trading]
recv_window_ms = 10000

[consumers.strat]
target = "builtins:len"
trading = true
""")
    env = {**os.environ, "MELTICA_BINANCE_API_KEY": sim.credentials.api_key,
           "MELTICA_BINANCE_API_SECRET": sim.credentials.api_secret,
           "MELTICA_CONTROL_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "meltica_nb.cli", "run", "--config", str(toml), "--duration",
         "4", "--control-port", "0", "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = _control_port(proc)
        assert wait_until(lambda: call(port, "POST", "/subscribe",
                                       {"consumer": "strat"})[0] == 202, timeout=120)
        sim.pause()
        qty, price = resting_buy(sim)
        status, body = call(port, "POST", "/orders", {
            "consumer": "strat", "client_order_id": "cli1", "instrument": "BTC-USDT",
            "side": "BUY", "type": "LIMIT", "quantity": qty, "price": price})
        assert status == 202, body
        assert wait_until(lambda: sim.stats()["trading"]["open_orders"] == 1)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert orjson.loads(out)["unreturned_slots"] == 0
    assert sim.credentials.api_secret.encode() not in out + err


def _control_port(proc) -> int:
    """Read stderr until the control API announces its port."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        if "control API on" in line:
            return int(line.rsplit(":", 1)[1])
        if not line and proc.poll() is not None:
            break
    pytest.fail("meltica run never announced its control port")
