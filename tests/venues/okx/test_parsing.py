"""OKX parser: the byte scanner and the orjson path give identical records; bad frames."""

from __future__ import annotations

import pytest

from meltica_nb.schema import EventType, Side
from meltica_nb.venues.okx.parsing import FrameStatus
from tests.venues.okx.helpers import book_frame, parser_and_books, recorded_frames


def _same(a, b):
    assert a.status.tolist() == b.status.tolist()
    assert a.events.tobytes() == b.events.tobytes()
    assert a.depth.tobytes() == b.depth.tobytes()
    assert a.levels.tobytes() == b.levels.tobytes()
    assert a.texts.tolist() == b.texts.tolist()
    assert a.checksums.tolist() == b.checksums.tolist()
    assert a.kinds.tolist() == b.kinds.tolist()


def test_scanner_and_orjson_agree_on_every_recorded_message():
    parser, _, _ = parser_and_books()
    frames, recv = recorded_frames()
    scanned = 0
    for frame, ns in zip(frames, recv, strict=True):
        batch = parser.parse_batch([frame], [ns])
        scanned += batch.n_fallback == 0
        _same(batch, parser.parse_reference(frame, ns))
    assert scanned == 290  # every book message went through the scanner
    assert parser.stats().scanned == 290


def test_one_batch_keeps_frame_order_across_both_paths():
    parser, _, _ = parser_and_books()
    frames, recv = recorded_frames()
    frames = frames[:60]
    frames[30] = frames[30].replace(b'"action":"update",', b"", 1).replace(  # data before arg:
        b'{"arg":', b'{"action":"update","arg":', 1)                        # still books
    batch = parser.parse_batch(frames, recv[:60])
    singles = [parser.parse_reference(f, n) for f, n in zip(frames, recv[:60], strict=True)]
    expected = [int(s.depth["ingest_ns"][0]) for s in singles if s.depth.shape[0]]
    assert batch.depth["ingest_ns"].tolist() == expected  # the fallback row sits in its place
    assert singles[30].depth.shape[0] == 1 and batch.n_fallback > 18  # acks + frame 30
    assert batch.counts[FrameStatus.OK] + batch.counts[FrameStatus.CONTROL] == 60


def test_trades_tickers_and_bbo():
    parser, _, symbols = parser_and_books(["BTC-USDT"])
    frames = [
        b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
        b'"tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"sell",'
        b'"ts":"1630048897897"},{"instId":"BTC-USDT","tradeId":"130639475","px":"42220",'
        b'"sz":"1","side":"buy","ts":"1630048897898"}]}',
        b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[["111.06","55154",'
        b'"0","2"]],"bids":[["111.05","57745","0","2"]],"ts":"1670324386802","seqId":363996337}]}',
        b'{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instType":"SPOT",'
        b'"instId":"BTC-USDT","last":"9999.99","lastSz":"0.1","askPx":"9999.99","askSz":"11",'
        b'"bidPx":"8888.88","bidSz":"5","open24h":"9000","high24h":"10000","low24h":"8888.88",'
        b'"volCcy24h":"2222","vol24h":"2222","ts":"1597026383085"}]}',
    ]
    result = parser.parse_batch(frames, [1, 2, 3])
    ev = result.events
    assert ev["event_type"].tolist() == [EventType.TRADE, EventType.TRADE, EventType.BBO,
                                         EventType.TICKER]
    assert ev[0]["trade_id"] == 130639474 and ev[0]["side"] == Side.SELL
    assert ev[0]["price"] == 4221990000000 and ev[0]["quantity"] == 12060306
    assert ev[1]["side"] == Side.BUY
    assert ev[2]["seq_provider"] == 363996337 and ev[2]["bid_price"] == 11105000000
    assert ev[3]["last_price"] == 999999000000 and ev[3]["volume"] == 222200000000
    assert (ev["instrument"] == symbols["BTC-USDT"].instrument).all()


@pytest.mark.parametrize(("frame", "status"), [
    (b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"upd', FrameStatus.MALFORMED),
    (b"pong", FrameStatus.CONTROL),
    (b'{"event":"error","code":"60012","msg":"Invalid request"}', FrameStatus.CONTROL),
    (b'{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[]}', FrameStatus.UNKNOWN),
    (b"[1,2]", FrameStatus.UNKNOWN),
    (book_frame("ETH-USDT", [["1", "1"]], []), FrameStatus.UNKNOWN_SYMBOL),
    (book_frame("BTC-USDT", [["01.5", "1"]], []), FrameStatus.BAD_VALUE),  # not as received
    (book_frame("BTC-USDT", [["1.5", "1e3"]], []), FrameStatus.BAD_VALUE),
    (book_frame("BTC-USDT", [["1.123456789", "1"]], []), FrameStatus.BAD_VALUE),
    (book_frame("BTC-USDT", [["1", "1"]], [], action="partial"), FrameStatus.BAD_VALUE),
    (book_frame("BTC-USDT", [["1", "1"]], [], checksum="5"), FrameStatus.BAD_VALUE),
])
def test_bad_frames_get_a_status_and_no_record(frame, status):
    parser, _, _ = parser_and_books(["BTC-USDT"])
    result = parser.parse_batch([frame], [1])
    assert result.status.tolist() == [status]
    assert result.events.shape[0] == 0 and result.depth.shape[0] == 0
    _same(result, parser.parse_reference(frame, 1))


@pytest.mark.parametrize("levels", [
    b'[ "29345.6" , "0.5" , "0" , "2" ]',  # spaces: the general path reads it
    b'["29345.6","0.5"]',                  # two strings only
    b'["29345.6","0.5","0","2","7"]',      # a fifth string
    b'["29345.6","0.5",  "0","2"]',
    b'["29345","1","0",""]',
])
def test_levels_written_another_way_scan_to_the_same_records(levels):
    """The scanner's tight path takes levels only as OKX writes them; any other spelling goes
    through the general path, and the records still equal the orjson path's."""
    parser, _, _ = parser_and_books(["BTC-USDT"])
    frame = book_frame("BTC-USDT", [["29345.5", "1.25"]], [["29346", "3"]]).replace(
        b'["29346","3","0","1"]', levels)
    result = parser.parse_batch([frame], [1])
    assert result.n_fallback == 0 and result.depth.shape[0] == 1
    _same(result, parser.parse_reference(frame, 1))


@pytest.mark.parametrize("level", [b'["29345.","1","0","2"]', b'["29345.6","1.","0","2"]',
                                   b'["29345.6","1","0","2\\u0041"]', b'["29345.6","-1","0","2"]',
                                   b'[".5","1","0","2"]', b'["29345.6","1","0",2]'])
def test_levels_neither_path_scans_fall_back_to_orjson(level):
    parser, _, _ = parser_and_books(["BTC-USDT"])
    frame = book_frame("BTC-USDT", [], [["29346", "3"]]).replace(b'["29346","3","0","1"]', level)
    result = parser.parse_batch([frame], [1])
    assert result.n_fallback == 1
    _same(result, parser.parse_reference(frame, 1))


_PUSH = book_frame("BTC-USDT", [["29345.5", "1.25"]], [["29346", "3"]], checksum=-5, prev=7,
                   seq=9)


@pytest.mark.parametrize("frame", [
    _PUSH,                                                                # OKX's own layout
    book_frame("BTC-USDT", [["29345.5", "1.25"]], [], checksum=12),      # no seqId (2022)
    book_frame("BTC-USDT", [["29345.5", "1.25"]], [], action="snapshot", checksum=1, seq=3,
               prev=-1),
    book_frame("BTC-USDT", [["1", "2"]], [["3", "4"]], action=None, channel="books5"),
    _PUSH.replace(b',"prevSeqId":7', b""),                                # seqId alone
    _PUSH.replace(b',"seqId":9', b""),                                    # prevSeqId alone
    _PUSH + b"\n",                                                        # trailing space
    _PUSH.replace(b'"action":"update",', b"").replace(b'{"arg"', b'{"action":"update","arg"'),
    _PUSH.replace(b'"ts":"1652459227570","checksum":-5', b'"checksum":-5,"ts":"1652459227570"'),
    _PUSH.replace(b'{"channel":"books","instId":"BTC-USDT"}',
                  b'{"instId":"BTC-USDT","channel":"books"}'),
    _PUSH.replace(b'"data":[{', b'"data":[ {'),
])
def test_book_pushes_in_any_layout_scan_to_the_orjson_records(frame):
    """The scanner reads OKX's own layout on a tight path and any other on its general one;
    both give exactly the orjson path's records."""
    parser, _, _ = parser_and_books(["BTC-USDT"])
    result = parser.parse_batch([frame], [1])
    assert result.n_fallback == 0 and result.depth.shape[0] == 1
    _same(result, parser.parse_reference(frame, 1))


@pytest.mark.parametrize("frame", [
    _PUSH[:-1], _PUSH[:-40], _PUSH.replace(b'"checksum":-5', b'"checksum":'),
    _PUSH.replace(b'"books"', b'"books50"'), _PUSH.replace(b'"update"', b'"upd"'),
    book_frame("BTC-USDT", [["1", "2"]], [], action="update", channel="books5"),
])
def test_broken_book_pushes_fall_back(frame):
    parser, _, _ = parser_and_books(["BTC-USDT"])
    result = parser.parse_batch([frame], [1])
    assert result.n_fallback == 1 and result.depth.shape[0] == 0
    _same(result, parser.parse_reference(frame, 1))
