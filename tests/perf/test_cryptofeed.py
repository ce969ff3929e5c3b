"""cryptofeed as a baseline: finding the benchmark environment, and its worker run for real.

The lookup tests need nothing. The worker tests need an interpreter with cryptofeed
(``$MELTICA_CRYPTOFEED_PYTHON``, or a venv at /tmp/cfenv as the development machine has); CI
has none, so they skip there, saying why. Nothing here times anything.
"""

import gzip
import importlib.util
import os
import re
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import orjson
import pytest

from bench import bench_okx, cryptofeed_env
from bench.bench_live import quick_recording
from bench.command import _cryptofeed
from bench.cryptofeed_env import ENV_VAR, NOT_INSTALLED, CryptofeedEnv, CryptofeedEnvError, find
from meltica_nb.errors import MelticaError

DEV_VENV = "/tmp/cfenv/bin/python"


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture
def cryptofeed(monkeypatch) -> CryptofeedEnv:
    """The benchmark environment, or a skip when this machine has none."""
    python = os.environ.get(ENV_VAR) or (DEV_VENV if os.path.exists(DEV_VENV) else None)
    if python is None:
        pytest.skip(f"no interpreter with cryptofeed (set {ENV_VAR}); CI has none")
    try:
        env = find(python)
    except CryptofeedEnvError as exc:
        pytest.skip(f"{python} has no cryptofeed: {exc}")
    monkeypatch.setenv(ENV_VAR, env.python)
    return env


def test_absent_is_reported_not_installed(no_env):
    env = find()
    assert not env.available and env.version is None
    assert env.describe() == NOT_INSTALLED and "not installed" in NOT_INSTALLED
    with pytest.raises(CryptofeedEnvError, match="not installed"):
        env.run({"venue": "okx"})


def test_the_okx_benchmark_without_cryptofeed_says_so(no_env):
    report = bench_okx.measure(1, 1)
    assert bench_okx.CRYPTOFEED not in report["results"]
    assert report["cryptofeed"] == NOT_INSTALLED


def test_a_path_that_is_not_an_interpreter_is_a_clear_error(no_env, tmp_path):
    with pytest.raises(CryptofeedEnvError, match="is not an executable file"):
        find(str(tmp_path / "no-python"))
    assert issubclass(CryptofeedEnvError, MelticaError)


def test_the_env_var_is_honoured_and_checked(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(CryptofeedEnvError, match="missing"):
        find()


@pytest.mark.skipif(importlib.util.find_spec("cryptofeed") is not None,
                    reason="this interpreter has cryptofeed")
def test_an_interpreter_without_cryptofeed_is_a_clear_error(no_env):
    with pytest.raises(CryptofeedEnvError, match="cannot import cryptofeed"):
        find(sys.executable)


def test_the_bench_command_exports_nothing_when_absent(no_env):
    env = _cryptofeed(Namespace(cryptofeed_env=None, cryptofeed_python=None))
    assert not env.available and ENV_VAR not in os.environ


def test_the_bench_command_refuses_a_bad_path(no_env, tmp_path):
    with pytest.raises(CryptofeedEnvError):
        _cryptofeed(Namespace(cryptofeed_env=None, cryptofeed_python=str(tmp_path / "py")))


def test_the_bench_command_reuses_an_existing_environment(cryptofeed, tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR)
    venv = tmp_path / "cf"  # a real venv that sees the benchmark environment's packages
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run([cryptofeed.python, "-c", "import sysconfig; print(sysconfig."
                              "get_paths()['purelib'])"], capture_output=True, text=True,
                             check=True).stdout.strip()
    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print("
                           "sysconfig.get_paths()['purelib'])"], capture_output=True,
                          text=True, check=True).stdout.strip()
    (Path(site) / "cryptofeed_env.pth").write_text(purelib + "\n")
    env = _cryptofeed(Namespace(cryptofeed_env=venv, cryptofeed_python=None))
    assert env.version == cryptofeed.version and os.environ[ENV_VAR] == env.python


def test_creating_refuses_a_directory_that_is_not_a_venv(no_env, tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").symlink_to(sys.executable)  # no pyvenv.cfg: the base Python
    with pytest.raises(CryptofeedEnvError, match="is not a virtual environment"):
        cryptofeed_env.create(tmp_path)


def test_the_okx_worker_validates_every_checksum(cryptofeed):
    out = cryptofeed.run({"venue": "okx", "path": str(bench_okx.RECORDING), "runs": 1})
    assert out["cryptofeed"] == cryptofeed.version
    assert out["messages"] == 290 and out["checksum_failures"] == 0
    assert out["delivered"] == {"l2_book": 290} and len(out["seconds"]) == 1


def test_the_kraken_worker_validates_every_checksum(cryptofeed):
    from bench import bench_kraken

    out = cryptofeed.run({"venue": "kraken", "path": str(bench_kraken.RECORDING), "runs": 1})
    assert out["messages"] == 4279 and out["checksum_failures"] == 0
    assert out["delivered"] == {"l2_book": 4279}


def test_the_okx_worker_has_checksums_on(cryptofeed, tmp_path):
    lines = gzip.decompress(bench_okx.RECORDING.read_bytes()).splitlines()
    at = next(i for i, x in enumerate(lines) if b'\\"action\\":\\"update\\"' in x)
    rec = orjson.loads(lines[at])
    rec["raw"] = re.sub(r'"checksum":(-?\d+)', lambda m: f'"checksum":{int(m[1]) ^ 1}',
                        rec["raw"])
    lines[at] = orjson.dumps(rec)
    path = tmp_path / "okx.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = cryptofeed.run({"venue": "okx", "path": str(path), "runs": 1})
    assert out["checksum_failures"] == 1


def test_the_binance_worker_follows_the_book_from_the_recorded_snapshot(cryptofeed, tmp_path):
    path = quick_recording(str(tmp_path), 3000)
    out = cryptofeed.run({"venue": "binance", "path": str(path), "runs": 2, "callbacks": 10})
    tickers = path.read_bytes().count(b'@bookTicker"')
    assert out["messages"] == 3000 and out["snapshots_served"] == 1
    assert out["delivered"]["ticker"] == tickers and out["delivered"]["l2_book"] > 0
    assert out["delivered"]["trades"] == 0  # cryptofeed reads aggTrade, not trade


def test_a_failing_worker_is_a_clear_error(cryptofeed, tmp_path):
    with pytest.raises(CryptofeedEnvError, match="worker failed on okx"):
        cryptofeed.run({"venue": "okx", "path": str(tmp_path / "absent.jsonl"), "runs": 1})


def test_the_okx_entry_reports_cryptofeed_beside_the_engine(cryptofeed, monkeypatch):
    monkeypatch.setattr(bench_okx, "QUICK_REPEAT", 1)
    measures = bench_okx.measures(quick=True)
    cf = [m for m in measures if m.side == bench_okx.CRYPTOFEED]
    assert len(cf) == 1 and len(cf[0].values) == 3 and cf[0].unit == "us/msg"
    assert all(v > 0 for v in cf[0].values)
    assert cryptofeed_env.find().version == cryptofeed.version


def test_the_report_says_cryptofeed_is_not_installed(no_env, tmp_path, monkeypatch):
    from bench import command
    from bench.measure import Measure
    from bench.suite import BenchResult
    from meltica_nb import cli

    result = BenchResult("pool", "pool", 0.1, (Measure("pool", "x", "engine", "ns", (1.0,)),))
    monkeypatch.setattr(command, "run_suite", lambda quick, only: [result])
    assert cli.main(["bench", "--quick", "--only", "pool", "--out", str(tmp_path)]) == 0
    assert f"- {NOT_INSTALLED}" in (tmp_path / "report.md").read_text()
    assert NOT_INSTALLED in (tmp_path / "report.json").read_text()


def test_the_readme_section_shows_engine_vs_cryptofeed():
    from bench.measure import HIGHER, Measure
    from bench.readme import section
    from bench.report import Report
    from bench.suite import BenchResult

    from .helpers import MACHINE

    okx = tuple(Measure("okx", "book update + checksum", side, "us/msg", (v,))
                for side, v in (("engine batched", 10.0), (bench_okx.CRYPTOFEED, 95.0)))
    replay = tuple(Measure("replay", "raw frames/s, 10 njit consumers", side, "frames/s", (v,),
                           HIGHER) for side, v in (("engine frames in memory", 160e3),
                                                   ("cryptofeed Binance handler, 10 callbacks",
                                                    80e3)))
    report = Report("meltica bench", "d", False, MACHINE, (
        BenchResult("okx", "okx", 1.0, okx), BenchResult("replay", "replay", 1.0, replay)))
    text = section(report, "r.json")
    assert ("| okx | book update + checksum | engine batched: 10 | cryptofeed (checksums on): "
            "95 | us/msg | 9.5x |") in text
    assert "| cryptofeed Binance handler, 10 callbacks: 80,000 | frames/s | 2x |" in text
