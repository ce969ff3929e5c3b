"""The lint gate really fires: each banned import is caught with a message naming the fix."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BANS = [
    ("meltica_nb/probe.py", "import json\n", "use orjson"),
    ("meltica_nb/probe.py", "from json import loads\n", "use orjson"),
    ("meltica_nb/probe.py", "import ujson\n", "use orjson"),
    ("meltica_nb/probe.py", "import simplejson\n", "use orjson"),
    ("meltica_nb/probe.py", "import websockets\n", "use websocket-client"),
    ("meltica_nb/probe.py", "import aiohttp\n", "use websocket-client"),
    ("meltica_nb/probe.py", "import wsproto\n", "use websocket-client"),
    ("meltica_nb/probe.py", "from threading import Thread\n", "TaskGroup"),
    ("meltica_nb/probe.py", "import threading\nthreading.Thread(target=print)\n", "TaskGroup"),
    ("meltica_nb/sim/probe.py", "import json\n", "use orjson"),
    ("meltica_nb/sim/probe.py", "from threading import Thread\n", "TaskGroup"),
]

ALLOWED = [
    ("meltica_nb/probe.py", "import orjson\nimport websocket\n"),
    ("meltica_nb/sim/probe.py", "import websockets\n"),
    ("bench/probe.py", "import json\nimport queue\n"),
]


def ruff(filename: str, source: str) -> subprocess.CompletedProcess:
    """Lint ``source`` as if it were the file ``filename`` of the project."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "TID251",
         "--stdin-filename", filename, "-"],
        input=source, capture_output=True, text=True, cwd=ROOT, check=False)


@pytest.mark.parametrize(("filename", "source", "replacement"), BANS)
def test_each_ban_fires_and_names_the_replacement(filename, source, replacement):
    result = ruff(filename, source)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TID251" in result.stdout
    assert replacement in result.stdout


@pytest.mark.parametrize(("filename", "source"), ALLOWED)
def test_allowed_imports_pass(filename, source):
    result = ruff(filename, source)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_package_itself_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "meltica_nb"],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout
