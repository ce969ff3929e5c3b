"""``meltica sim`` (server.main): one JSON object once it serves, runs until Ctrl-C, exits 0."""

import os
import signal
import subprocess
import sys
import threading

import orjson
import pytest

from meltica_nb.sim import ExchangeSimulator
from meltica_nb.sim.server import main

from .helpers import get, recv_json, ws_client


class _Urls:
    def __init__(self, summary):
        self.ws_url, self.rest_url = summary["ws_url"], summary["rest_url"]


def test_sim_command_serves_until_sigint_and_prints_one_json_object():
    cmd = [sys.executable, "-m", "meltica_nb.sim", "--json", "--fast", "--seed", "3",
           "--faults", "dup=0.01"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        summary = orjson.loads(proc.stdout.readline())
        assert summary["ws_url"].startswith("ws://127.0.0.1:")
        assert summary["rest_url"].startswith("http://127.0.0.1:")
        urls = _Urls(summary)
        with ws_client(urls, "/ws/btcusdt@trade") as ws:
            assert recv_json(ws)["e"] == "trade"
        assert get(urls.rest_url + "/api/v3/ping")[0] == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out == b""  # nothing after the one summary line
    assert b"connections" in err


def test_main_in_process_with_duration(capsys, no_thread_leak):
    assert main(["--json", "--fast", "--duration", "0.1"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1 and "ws_url" in orjson.loads(out)
    assert not [t for t in threading.enumerate() if t.name.startswith("sim:")]


def test_bad_arguments_and_non_loopback_hosts_are_refused(capsys):
    assert main(["--faults", "explode=1", "--duration", "0"]) == 2
    assert "explode" in capsys.readouterr().err
    with pytest.raises(ValueError):
        ExchangeSimulator(host="0.0.0.0")


def _summary(capsys, *args):
    assert main(["--json", "--fast", "--duration", "0", *args]) == 0
    return orjson.loads(capsys.readouterr().out)


def test_summary_prints_api_key_and_secret_random_unless_seeded(capsys, no_thread_leak):
    first, second = _summary(capsys), _summary(capsys)
    assert {"ws_url", "rest_url", "market", "api_key", "api_secret"} == set(first)
    assert len(first["api_key"]) == len(first["api_secret"]) == 64
    assert first["api_key"] != second["api_key"]
    seeded = [_summary(capsys, "--seed", "5") for _ in range(2)]
    assert seeded[0]["api_key"] == seeded[1]["api_key"] != first["api_key"]
    assert seeded[0]["api_secret"] == seeded[1]["api_secret"]


def test_bad_balance_argument_is_refused(capsys):
    assert main(["--balance", "USDT=plenty", "--duration", "0"]) == 2
    assert "balances" in capsys.readouterr().err
