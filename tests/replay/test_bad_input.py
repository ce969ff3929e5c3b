"""Bad recorded input: each case names file and line, is counted and dead-lettered, and the
replay goes on; strict replays (and ``meltica backtest --strict``) stop at the first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from meltica_nb.errors import RecordedMessageError, RecordingError, RecordingFormatError
from meltica_nb.replay import replay

from .conftest import line, lines_of, write_lines

ROOT = Path(__file__).resolve().parents[2]
NKN = ROOT / "tests/data/binance/binance_spot_cryptofeed_20211012.jsonl.gz"
UNKNOWN = line(1633998512100000000, "nknusdt@depth@100ms",
               b'{"stream":"nknusdt@depth@100ms","data":{"e":"somethingNew","s":"NKNUSDT"}}')
MALFORMED = line(1633998512100000000, "nknusdt@trade", b'{"stream":"nknusdt@trade","data":{"e"')


def corrupted(tmp_path, position: int, bad: bytes, name: str = "bad.jsonl") -> Path:
    """The NKN recording with ``bad`` inserted as line ``position`` (1-based)."""
    text = lines_of(NKN)
    return write_lines(tmp_path / name, text[:position - 1] + [bad] + text[position - 1:])


CASES = [
    ("invalid JSON", RecordingFormatError, b'{"recv_ns":1,"stream":"x",raw:}'),
    ("not a recorded line", RecordingFormatError, b'{"recv_ns":1,"stream":"x"}'),
    ("unknown message", RecordedMessageError, UNKNOWN),
    ("malformed message", RecordedMessageError, MALFORMED),
]


@pytest.mark.parametrize("kind, error, bad", CASES, ids=[c[0] for c in CASES])
def test_a_bad_line_is_counted_named_and_skipped(tmp_path, kind, error, bad):
    path = corrupted(tmp_path, 7, bad)
    clean = replay([NKN])
    result = replay([path])
    assert result.parse_errors == 1 and result.errors_by_kind == {kind: 1}
    assert result.errors[0].startswith(f"{path}:7: {kind}")
    assert result.instruments == clean.instruments  # nothing else was lost
    assert result.events == clean.events
    with pytest.raises(error) as caught:
        replay([path], strict=True)
    assert (caught.value.source, caught.value.line, caught.value.kind) == (str(path), 7, kind)


def test_bad_lines_reach_the_dead_letter_queue(tmp_path, monkeypatch):
    from meltica_nb.replay import ReplayEngine

    engines = []
    init = ReplayEngine.__init__

    def keep(self, *args, **kwargs):
        init(self, *args, **kwargs)
        engines.append(self)

    monkeypatch.setattr(ReplayEngine, "__init__", keep)
    replay([corrupted(tmp_path, 3, b"garbage")])
    texts = engines[0].dlq.texts()
    assert any(":3: invalid JSON" in t.detail for t in texts)


def test_a_truncated_last_line_is_named(tmp_path):
    path = tmp_path / "cut.jsonl"
    text = lines_of(NKN)
    path.write_bytes(b"\n".join(text[:-1]) + b"\n" + text[-1][:40])
    result = replay([path])
    assert result.errors_by_kind == {"truncated line": 1}
    assert result.errors[0].startswith(f"{path}:{len(text)}: truncated line")


def test_a_wrong_compression_header_skips_the_file_and_the_others_go_on(tmp_path):
    fake = tmp_path / "fake.jsonl.gz"
    fake.write_bytes(NKN.read_bytes()[10:])
    good = write_lines(tmp_path / "good.jsonl.zst", lines_of(NKN), "zst")
    result = replay([fake, good])
    assert result.errors_by_kind == {"compression": 1}
    assert result.errors[0].startswith(f"{fake}: compression: named .gz but starts with")
    assert result.sources == (str(good),) and result.frames == replay([NKN]).frames
    with pytest.raises(RecordingFormatError):
        replay([fake, good], strict=True)


def test_a_truncated_gzip_file_replays_what_it_holds_then_reports(tmp_path):
    whole = write_lines(tmp_path / "w.jsonl.gz", lines_of(NKN), "gz").read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    result = replay([cut])
    assert result.errors_by_kind.get("truncated compressed stream") == 1
    assert 0 < result.lines < 269


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meltica_nb.cli", "backtest", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_cli_strict_exits_non_zero_naming_the_line_and_lenient_counts(tmp_path):
    path = corrupted(tmp_path, 5, b"not json at all")
    strict = run_cli(str(path), "--strict", "--json", "--no-progress")
    assert strict.returncode == 2
    assert f"{path}:5: invalid JSON" in strict.stderr
    assert orjson.loads(strict.stdout)["kind"] == "invalid JSON"
    lenient = run_cli(str(path), "--json", "--no-progress")
    assert lenient.returncode == 0
    summary = orjson.loads(lenient.stdout)
    assert summary["parse_errors"] == 1 and summary["errors"][0].startswith(f"{path}:5:")


def test_every_recording_error_is_a_melticaerror_with_its_place():
    exc = RecordedMessageError("f.jsonl", 3, "unknown message", "{...}")
    assert isinstance(exc, RecordingError) and str(exc) == "f.jsonl:3: unknown message: {...}"
    assert str(RecordingFormatError("f.gz", 0, "compression")) == "f.gz: compression"
