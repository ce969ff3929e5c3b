"""Shared helpers of the replay tests: the recordings in tests/data, cut when kernels run as
Python (NUMBA_DISABLE_JIT=1), and small hand-made recordings."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from numba.core import config as numba_config

DATA = Path(__file__).resolve().parents[1] / "data"
SPOT = DATA / "binance"
USDM = DATA / "binance-futures"
#: The continuation of the spot BTCUSDT recording (first lines of the next file, no snapshot).
NEXT_DAY = SPOT / "binance_spot_btcusdt_20240809_hftbacktest.first3000.jsonl.gz"
#: Every Binance recording of tests/data that holds a REST snapshot.
RECORDINGS = [p for p in sorted(SPOT.glob("*.jsonl.gz")) + sorted(USDM.glob("*.jsonl.gz"))
              if p != NEXT_DAY]
#: The small ones (a few hundred to 1.5k lines): fast even with the JIT disabled.
SMALL = [p for p in RECORDINGS if "cryptofeed" in p.name]
SLOW = numba_config.DISABLE_JIT
#: Lines kept of a large recording when kernels run as Python.
CUT_LINES = 3000


def lines_of(path: Path) -> list[bytes]:
    """The recorded lines of a .jsonl / .jsonl.gz file."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [line for line in data.split(b"\n") if line.strip()]


def write_lines(path: Path, lines: list[bytes], compression: str = "") -> Path:
    """Write recorded lines (``compression``: "", "gz" or "zst")."""
    data = b"".join(line + b"\n" for line in lines)
    if compression == "gz":
        data = gzip.compress(data, mtime=0)
    elif compression == "zst":
        import zstandard

        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def line(recv_ns: int, stream: str, raw: bytes | str) -> bytes:
    raw = raw.decode() if isinstance(raw, bytes) else raw
    return orjson.dumps({"recv_ns": recv_ns, "stream": stream, "raw": raw})


@pytest.fixture
def recording(tmp_path):
    """``recording(path)``: the path itself, or its first CUT_LINES lines when JIT is off."""
    def get(path: Path) -> Path:
        if not SLOW or path in SMALL:
            return path
        return write_lines(tmp_path / f"cut-{path.name}", lines_of(path)[:CUT_LINES], "gz")
    return get


@pytest.fixture
def nkn(tmp_path) -> Path:
    """The 269-line cryptofeed spot recording (4 symbols, 4 REST snapshots) as plain text."""
    return write_lines(tmp_path / "nkn.jsonl", lines_of(SPOT / "binance_spot_cryptofeed_20211012"
                                                       ".jsonl.gz"))
