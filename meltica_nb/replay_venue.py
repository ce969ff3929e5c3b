"""The venue table of replay: which venue a recording belongs to and which feed replays it.

A replay runs each recording through the venue's own live feed object, driven without a
connection: recorded frames go to ``feed.on_frames(frames, recv_ns)`` and recorded REST depth
snapshots to ``feed.on_snapshot(symbol, body, recv_ns)``. What differs per venue is listed
here as one :class:`ReplayVenue` entry per venue; supporting a new venue in replay and
``meltica backtest`` means adding its entry to :data:`VENUES`.

An entry answers these questions (a replay needs the first four, ``meltica record`` the
rest):

* ``detects(preview)``: is this recording (its first lines, a
  :class:`~meltica_nb.recording_source.LineChunk`) one of mine? Entries are asked in table
  order, so a more specific entry (Binance USD-M) comes before a more general one (spot).
* ``build(engine, previews)``: the feed, prepared offline (symbols and exponents from the
  recorded lines, never from the network), registered on ``engine``.
* ``snapshot_symbol(url)``: the symbol a ``rest:<url>`` line is a depth snapshot of, or None
  (other REST responses are not replayed into books).
* ``frame_errors``: which per-frame status codes returned by ``on_frames`` are bad input,
  and their names (for the error that names the recorded line).
* ``final_books(feed, levels)``: each instrument's final book and counters
  (:class:`~meltica_nb.replay_result.FinalBook`).
* ``live_feed(engine, symbols, channels, ws_url, rest_url)``, ``stream_label(frame)``,
  ``snapshot_url(feed, symbol)``, ``exchange_info_url(feed)``: what the recorder needs to
  build a live feed and label what it records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from meltica_nb.errors import ConfigError
from meltica_nb.recording_source import LineChunk
from meltica_nb.venues.binance.replay import BinanceReplay
from meltica_nb.venues.kraken.replay import KrakenReplay
from meltica_nb.venues.okx.replay import OkxReplay

__all__ = ["VENUES", "ReplayVenue", "detect_venue", "venue_named"]


class ReplayVenue(Protocol):
    """One venue's replay entry (see the module docstring)."""

    name: str
    frame_errors: Mapping[int, str]

    def detects(self, preview: LineChunk) -> bool:
        """True when the recorded lines are this venue's."""
        ...

    def build(self, engine, previews: Sequence[LineChunk]):
        """The venue's feed for these recordings, ready for ``on_frames``/``on_snapshot``."""
        ...

    def snapshot_symbol(self, url: str) -> str | None:
        """The symbol of a recorded REST depth snapshot at ``url``, else None."""
        ...

    def final_books(self, feed, levels: int) -> dict:
        """``{instrument id: FinalBook}`` of every instrument the feed kept a book for."""
        ...

    def live_feed(self, engine, symbols, channels, ws_url: str = "", rest_url: str = ""):
        """A live feed of this venue (for ``meltica record``)."""
        ...

    def stream_label(self, frame: bytes) -> str:
        """The ``stream`` label of a recorded frame."""
        ...

    def snapshot_url(self, feed, symbol: str) -> str:
        """The URL of a depth snapshot of ``symbol``."""
        ...

    def exchange_info_url(self, feed) -> str:
        """The URL of the venue's instrument metadata."""
        ...


#: Every venue replay supports, most specific first.
VENUES: tuple[ReplayVenue, ...] = (BinanceReplay("usdm"), BinanceReplay("spot"), OkxReplay(),
                                   KrakenReplay())


def venue_named(name: str) -> ReplayVenue:
    """The entry called ``name`` (``--venue``); ConfigError listing the known names."""
    for venue in VENUES:
        if venue.name == name:
            return venue
    raise ConfigError(f"unknown replay venue {name!r}; known: {[v.name for v in VENUES]}")


def detect_venue(preview: LineChunk, source: str) -> ReplayVenue:
    """The first entry that recognizes ``preview``; ConfigError naming ``source`` if none."""
    for venue in VENUES:
        if venue.detects(preview):
            return venue
    raise ConfigError(f"{source}: cannot tell the venue from its first {len(preview)} lines; "
                      f"name it (--venue, one of {[v.name for v in VENUES]})")
