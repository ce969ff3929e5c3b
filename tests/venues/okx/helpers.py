"""The OKX test recording and small builders shared by the OKX tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson

from meltica_nb.book_table import BookTable
from meltica_nb.registry import Registry
from meltica_nb.venues.okx.books import OkxBooks
from meltica_nb.venues.okx.parsing import OkxParser
from meltica_nb.venues.okx.symbols import OkxSymbols

RECORDING = Path(__file__).parents[2] / "data" / "okx" / "okx_cryptofeed_20220513.jsonl.gz"
#: The instruments of the recording (spot, swap and dated futures).
RECORDED = ("BTC-USDT", "UNI-USD-SWAP", "BTC-USD-220527")


def recorded_frames() -> tuple[list[bytes], list[int]]:
    """Every message of the recording, as frame bytes and receive times."""
    with gzip.open(RECORDING) as fh:
        lines = [orjson.loads(line) for line in fh]
    return [line["raw"].encode() for line in lines], [line["recv_ns"] for line in lines]


def parser_and_books(inst_ids=RECORDED, depth: int = 1024):
    """A parser and books over a fresh registry holding ``inst_ids``."""
    registry = Registry()
    symbols = OkxSymbols(registry, inst_ids)
    parser = OkxParser(symbols, registry.venue_id("okx"))
    price_exp, qty_exp = registry.exponents_array()
    books = OkxBooks(registry.n_instruments + 1, BookTable(4096, 20), price_exp, qty_exp,
                     depth=depth)
    return parser, books, symbols


def book_frame(inst_id: str, bids, asks, *, action="update", checksum=None, seq=None,
               prev=None, channel="books") -> bytes:
    """An OKX book push with the given levels (lists of [price text, size text])."""
    data = {"asks": [[p, s, "0", "1"] for p, s in asks],
            "bids": [[p, s, "0", "1"] for p, s in bids], "ts": "1652459227570"}
    if checksum is not None:
        data["checksum"] = checksum
    if prev is not None:
        data["prevSeqId"] = prev
    if seq is not None:
        data["seqId"] = seq
    msg = {"arg": {"channel": channel, "instId": inst_id}, "data": [data]}
    if action is not None:
        msg["action"] = action
    return orjson.dumps(msg)
