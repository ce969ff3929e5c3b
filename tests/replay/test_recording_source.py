"""RecordingSource: compression by content, bounded chunks, sequence and merge, the line
kernel against orjson, and memory that stays flat however long the recording."""

from __future__ import annotations

import tracemalloc

import numpy as np
import orjson
import pytest

from meltica_nb.errors import ConfigError, RecordingFormatError
from meltica_nb.kernels import recording_kernels as rk
from meltica_nb.recording_source import BAD, CONTROL, FRAME, REST, RecordingSource
from meltica_nb.replay import replay

from .conftest import SLOW, SMALL, SPOT, line, lines_of, write_lines

NKN = SPOT / "binance_spot_cryptofeed_20211012.jsonl.gz"


def read_all(source: RecordingSource):
    kinds, raws, recv, lines = [], [], [], []
    for chunk in source.chunks():
        kinds += chunk.kind.tolist()
        raws += chunk.raw
        recv += chunk.recv_ns.tolist()
        lines += chunk.line.tolist()
    return kinds, raws, recv, lines


@pytest.mark.parametrize("compression", ["", "gz", "zst"])
def test_plain_gzip_and_zstd_read_the_same_lines(tmp_path, compression):
    text = lines_of(NKN)
    path = write_lines(tmp_path / f"r.jsonl{'.' + compression if compression else ''}",
                       text, compression)
    kinds, raws, recv, numbers = read_all(RecordingSource([path], chunk_lines=50))
    assert numbers == list(range(1, len(text) + 1))
    decoded = [orjson.loads(t) for t in text]
    assert raws == [d["raw"].encode() for d in decoded]
    assert recv == [d["recv_ns"] for d in decoded]
    assert kinds.count(REST) == 4 and set(kinds) == {FRAME, REST}


def test_the_kernel_and_orjson_agree_on_every_recorded_line():
    for path in SMALL:
        for text in lines_of(path):
            buf = np.frombuffer(text, np.uint8)
            out = np.zeros((1, 6), np.int64)
            arena = np.zeros(len(text), np.uint8)
            rk.scan_lines(buf, np.array([0]), np.array([len(text)]), arena, out)
            want = orjson.loads(text)
            assert out[0, 0] in (FRAME, REST), text[:80]
            assert out[0, 1] == want["recv_ns"]
            assert arena[out[0, 4]:out[0, 4] + out[0, 5]].tobytes() == want["raw"].encode()
            assert text[out[0, 2]:out[0, 2] + out[0, 3]].decode() == want["stream"]


@pytest.mark.parametrize("text, kind", [
    (b'{"recv_ns": 5, "stream": "a@trade", "raw": "{}"}', FRAME),      # spaces
    (b'{"stream":"a@trade","recv_ns":5,"raw":"{}"}', FRAME),           # key order
    (b'{"recv_ns":5,"stream":"a@trade","raw":"\\u0041"}', FRAME),      # \\u escape
    (b'{"recv_ns":9999999999999999999,"stream":"x","raw":"{}"}', BAD),  # past int64
    (b'{"recv_ns":-5,"stream":"x","raw":"{}"}', BAD),
    (b'{"recv_ns":null,"stream":"event:subscribe","raw":"{}"}', CONTROL),
    (b'{"recv_ns":5,"stream":"rest:http://x/depth","raw":"{}"}', REST),
    (b'{"recv_ns":5,"stream":"a","raw":"{}"', BAD),                   # truncated
    (b'not json', BAD),
    (b'{"recv_ns":5,"stream":"a"}', BAD),                               # no raw
    (b'[1, 2]', BAD),
])
def test_other_shapes_go_through_orjson(tmp_path, text, kind):
    path = write_lines(tmp_path / "r.jsonl", [line(1, "a@trade", "{}"), text])
    kinds, raws, recv, _ = read_all(RecordingSource([path]))
    assert kinds == [FRAME, kind]
    if kind == FRAME and b"u0041" in text:
        assert raws[1] == b"A"


def test_blank_lines_are_skipped_but_counted_and_null_times_carry_forward(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(line(10, "a@trade", "{}") + b"\n\n   \n" + b'{"recv_ns":null,"stream":'
                     b'"a@trade","raw":"{}"}\n' + line(30, "a@trade", "{}"))  # no final \\n
    kinds, _, recv, numbers = read_all(RecordingSource([path]))
    assert numbers == [1, 4, 5] and recv == [10, 10, 30] and kinds == [FRAME] * 3


def test_chunks_have_exactly_chunk_lines_lines_whatever_the_block_size(tmp_path):
    path = write_lines(tmp_path / "r.jsonl.gz", lines_of(NKN), "gz")
    sizes = [len(c) for c in RecordingSource([path], chunk_lines=64, block_bytes=999).chunks()]
    assert sizes == [64, 64, 64, 64, 269 - 256]


def test_files_in_sequence_continue_and_merged_files_interleave_by_time(tmp_path):
    a = write_lines(tmp_path / "a.jsonl", [line(t, "a@trade", "{}") for t in (1, 4, 6)])
    b = write_lines(tmp_path / "b.jsonl", [line(t, "b@trade", "{}") for t in (2, 4, 5, 9)])
    _, _, recv, _ = read_all(RecordingSource([a, b]))
    assert recv == [1, 4, 6, 2, 4, 5, 9]
    merged = list(RecordingSource([a, b], merge=True, chunk_lines=2).chunks())
    times = [t for c in merged for t in c.recv_ns.tolist()]
    files = [f for c in merged for f in c.source.tolist()]
    assert times == [1, 2, 4, 4, 5, 6, 9] and files == [0, 1, 0, 1, 1, 0, 1]


def chunk_columns(chunks):
    return [(c.source.tolist(), c.line.tolist(), c.recv_ns.tolist(), c.kind.tolist(), c.raw)
            for c in chunks]


@pytest.mark.parametrize("merge", [False, True])
def test_reading_on_from_previews_gives_the_chunks_of_a_fresh_read(tmp_path, merge):
    nkn = write_lines(tmp_path / "nkn.jsonl.gz", lines_of(NKN), "gz")
    b = write_lines(tmp_path / "b.jsonl", [line(t, "b@trade", "{}") for t in range(200)])
    previewed = [RecordingSource([path], chunk_lines=64) for path in (b, nkn)]
    assert [len(p.preview(0, 100)) for p in previewed] == [128, 128]  # whole chunks
    continued = RecordingSource.continuing(previewed, merge=merge, chunk_lines=64)
    fresh = RecordingSource([b, nkn], merge=merge, chunk_lines=64)
    assert chunk_columns(continued.chunks()) == chunk_columns(fresh.chunks())
    assert continued.progress() == fresh.progress()


def test_a_preview_in_chunks_of_another_size_is_read_again(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", lines_of(NKN))
    previewed = RecordingSource([path], chunk_lines=64)
    previewed.preview(0, 10)
    continued = RecordingSource.continuing([previewed], chunk_lines=50)
    fresh = RecordingSource([path], chunk_lines=50)
    assert chunk_columns(continued.chunks()) == chunk_columns(fresh.chunks())


def test_a_wrong_compression_header_is_a_format_error_naming_the_file(tmp_path):
    path = tmp_path / "r.jsonl.gz"
    path.write_bytes(b'{"recv_ns":1,"stream":"a","raw":"{}"}\n')
    with pytest.raises(RecordingFormatError, match=r"r\.jsonl\.gz: compression: named \.gz"):
        list(RecordingSource([path]).chunks())
    with pytest.raises(ConfigError):
        RecordingSource([])
    with pytest.raises(ConfigError):
        RecordingSource([path], chunk_lines=0)


def test_a_truncated_gzip_stream_reports_the_line_reached_after_replaying_the_lines_before(
        tmp_path):
    whole = write_lines(tmp_path / "w.jsonl.gz", lines_of(NKN), "gz").read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    seen: list = []
    chunks = RecordingSource([cut], chunk_lines=10_000).chunks(on_error=seen.append)
    got = sum(len(c) for c in chunks)
    assert 0 < got < 269
    (error,) = seen
    assert error.kind == "truncated compressed stream" and str(cut) in str(error)


@pytest.mark.skipif(SLOW, reason="kernels as Python are too slow to replay 50k lines twice")
def test_memory_stays_flat_when_the_same_data_is_replayed_many_times(tmp_path):
    """Peak traced memory of a replay of the recording repeated 24x is within a small margin
    of the peak of 3x: nothing is kept per line."""
    text = lines_of(NKN)

    def peak(times: int) -> int:
        path = write_lines(tmp_path / f"x{times}.jsonl.gz", text * times, "gz")
        replay([path], levels=2)  # compile/caches outside the measurement
        tracemalloc.start()
        try:
            replay([path], levels=2)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(3), peak(24)
    assert large < small * 1.25 + 256 * 1024, (small, large)
