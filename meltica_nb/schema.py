"""Every record layout and enum of meltica_nb, in one module.

Records are fixed-size NumPy structured dtypes with numeric fields only, so Numba kernels can
read and copy them without touching Python objects. Strings become ids (venue, instrument,
connection, stream names from a registry), 64-bit trace/decision/merge ids, or fixed bytes
(``client_order_id``: Binance allows 36 characters). Prices and quantities are int64 mantissas
with the instrument's decimal exponent (see :mod:`meltica_nb.fixedpoint`); there are no floats
for money anywhere.

The six pooled types of the Go seeds (spec 004/005) map as follows:

========================  ====================================================================
Go struct                 dtype
========================  ====================================================================
WsFrame                   ``WS_FRAME``: frame metadata; bytes live in a byte arena (off, len)
ProviderRaw               ``PROVIDER_RAW``: one venue message inside a frame, before normalizing
CanonicalEvent            ``CANONICAL_EVENT``: 128 bytes, header + a union payload per event type
MergedEvent               ``MERGED_EVENT``: a closed merge window; fragments are CanonicalEvents
OrderRequest              ``ORDER_REQUEST``: an outbound order
ExecReport                ``EXEC_REPORT``: the venue's full execution report
========================  ====================================================================

No module other than this one builds a dtype or hard-codes a record stride.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

__all__ = [
    "BOOK_LEVEL",
    "CANONICAL_EVENT",
    "CRITICAL_KINDS",
    "CommandType",
    "ErrorCode",
    "DEPTH_UPDATE",
    "DTYPES",
    "EXEC_REPORT",
    "MAX_MERGE_FRAGMENTS",
    "MERGED_EVENT",
    "ORDER_REQUEST",
    "PROVIDER_RAW",
    "SCHEMA_VERSION",
    "WS_FRAME",
    "EVENT_NAMES",
    "EventType",
    "Flag",
    "Kind",
    "OrderStatus",
    "OrderType",
    "Side",
    "TimeInForce",
    "kind_of",
]

#: Version stamped into every CanonicalEvent; bumped on any layout change.
SCHEMA_VERSION = 1

#: Most venues one MergedEvent can carry (one fragment per venue).
MAX_MERGE_FRAGMENTS = 4

#: Longest ``client_order_id`` accepted (Binance: ``^[.A-Z:/a-z0-9_-]{1,36}$``).
CLIENT_ORDER_ID_LEN = 36


class EventType(IntEnum):
    """What a CanonicalEvent describes."""

    NONE = 0
    TRADE = 1
    BBO = 2
    BOOK_SNAPSHOT = 3
    TICKER = 4
    KLINE = 5
    EXEC_REPORT = 6
    CONTROL_ACK = 7
    CONTROL_RESULT = 8
    MERGED = 9


class Kind(IntEnum):
    """Delivery class: market data may be coalesced or dropped, the other kinds never."""

    NONE = 0
    MARKET_DATA = 1
    EXEC_REPORT = 2
    CONTROL_ACK = 3
    CONTROL_RESULT = 4


class Side(IntEnum):
    """Order side, or a trade's aggressor side."""

    NONE = 0
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    """Order type as the engine validates and venues accept it."""

    NONE = 0
    LIMIT = 1
    MARKET = 2
    LIMIT_MAKER = 3


class TimeInForce(IntEnum):
    """How long a limit order rests."""

    NONE = 0
    GTC = 1
    IOC = 2
    FOK = 3


class OrderStatus(IntEnum):
    """Order lifecycle: ACK -> PARTIAL* -> FILLED | CANCELLED | EXPIRED, or REJECTED."""

    NONE = 0
    ACK = 1
    PARTIAL = 2
    FILLED = 3
    CANCELLED = 4
    EXPIRED = 5
    REJECTED = 6


class Flag(IntEnum):
    """Bits of ``CanonicalEvent.flags``."""

    #: A kline whose interval has closed (Binance ``k.x``).
    KLINE_CLOSED = 1
    #: The trade's buyer was the maker (Binance ``m``).
    BUYER_MAKER = 2
    #: The event was produced by a replay rather than a live feed.
    REPLAYED = 4
    #: A control command succeeded (ControlAck / ControlResult).
    SUCCESS = 8
    #: A MERGED event from a window some expected venue never contributed to (policy "emit").
    PARTIAL = 16


class CommandType(IntEnum):
    """Control Bus commands (``CanonicalEvent.command_type`` of acks and results)."""

    NONE = 0
    SUBSCRIBE = 1
    UNSUBSCRIBE = 2
    MERGED_SUBSCRIBE = 3
    SET_TRADING_MODE = 4
    SUBMIT_ORDER = 5
    CANCEL_ORDER = 6
    QUERY_ORDER = 7
    MERGED_UNSUBSCRIBE = 8


class ErrorCode(IntEnum):
    """Why a control command failed (``CanonicalEvent.error_code`` of a failed ack)."""

    OK = 0
    UNKNOWN_COMMAND = 1
    BAD_PAYLOAD = 2
    UNKNOWN_CONSUMER = 3
    NOT_SUBSCRIBED = 4
    INVALID_ORDER = 5       # failed validation: never left the engine
    TRADING_DISABLED = 6    # the consumer's trading switch is off: suppressed, never sent
    DUPLICATE_ORDER = 7     # client_order_id already used by this consumer: never re-sent
    UNKNOWN_ORDER = 8       # no order with that client_order_id for this consumer
    UNKNOWN_VENUE = 9       # no trader registered for the venue
    VENUE_ERROR = 10        # the venue refused or failed (its code is in ``venue_code``)
    BACKPRESSURE = 11       # no free OrderRequest slot in time: retry later


#: Kinds that are never dropped, coalesced, reordered or filtered.
CRITICAL_KINDS = (Kind.EXEC_REPORT, Kind.CONTROL_ACK, Kind.CONTROL_RESULT)

_KIND_OF_TYPE = {
    EventType.TRADE: Kind.MARKET_DATA,
    EventType.BBO: Kind.MARKET_DATA,
    EventType.BOOK_SNAPSHOT: Kind.MARKET_DATA,
    EventType.TICKER: Kind.MARKET_DATA,
    EventType.KLINE: Kind.MARKET_DATA,
    EventType.MERGED: Kind.MARKET_DATA,
    EventType.EXEC_REPORT: Kind.EXEC_REPORT,
    EventType.CONTROL_ACK: Kind.CONTROL_ACK,
    EventType.CONTROL_RESULT: Kind.CONTROL_RESULT,
}


#: Event type by its public name, as consumers and commands spell it ("trade", "bbo", ...).
EVENT_NAMES: dict[str, EventType] = {t.name.lower(): t for t in EventType if t}


def kind_of(event_type: int) -> Kind:
    """Return the delivery kind of an event type (NONE for unknown types)."""
    return _KIND_OF_TYPE.get(EventType(event_type), Kind.NONE)


def _struct(fields: list[tuple[str, str]], itemsize: int) -> np.dtype:
    """Build an aligned dtype and check that it has exactly the promised size."""
    dtype = np.dtype(fields, align=True)
    assert dtype.itemsize == itemsize, (fields, dtype.itemsize)
    return dtype


def _union(fields: list[tuple[str, str, int]], itemsize: int) -> np.dtype:
    """Build a dtype whose payload fields overlap (one meaning per event type)."""
    names, formats, offsets = zip(*fields, strict=True)
    dtype = np.dtype(
        {"names": list(names), "formats": list(formats), "offsets": list(offsets),
         "itemsize": itemsize, "aligned": True}
    )
    assert dtype.itemsize == itemsize
    return dtype


#: A frame as read from a websocket: metadata only; the bytes are in a byte arena.
WS_FRAME = _struct(
    [
        ("received_ns", "<i8"),   # local receive time, ns since the epoch
        ("arena_off", "<i8"),     # offset of the frame bytes in the connection's arena
        ("arena_len", "<i4"),     # length of the frame bytes
        ("conn_id", "<u4"),       # connection id from the registry
        ("venue", "<u2"),         # venue id from the registry
        ("message_type", "u1"),   # websocket opcode (1 text, 2 binary)
        ("_pad", "u1", (5,)),
    ],
    32,
)

#: One venue message located inside a frame, labelled, before normalization.
PROVIDER_RAW = _struct(
    [
        ("received_ns", "<i8"),   # receive time of the enclosing frame
        ("frame_slot", "<i8"),    # WsFrame slot the message came from
        ("payload_off", "<i8"),   # offset of the message JSON in the arena
        ("payload_len", "<i4"),   # its length
        ("stream", "<u4"),        # stream-name id (e.g. "btcusdt@depth@100ms")
        ("venue", "<u2"),         # venue id
        ("instrument", "<u2"),    # instrument id, 0 if not yet known
        ("event_type", "u1"),     # EventType the parser will produce
        ("_pad", "u1", (11,)),
    ],
    48,
)

_HEADER: list[tuple[str, str, int]] = [
    ("ingest_ns", "<i8", 0),        # engine receive time (injected clock), ns
    ("exchange_ns", "<i8", 8),      # venue event time, ns (0 if the venue sends none)
    ("seq_provider", "<i8", 16),    # venue sequence: depth u, trade id, lastUpdateId...
    ("trace_id", "<u8", 24),        # set at ingest, carried to consumers and logs
    ("routing_version", "<u4", 32),  # stamped by the orchestrator
    ("instrument", "<u2", 36),      # instrument id (registry), canonical BASE-QUOTE
    ("venue", "<u2", 38),           # venue id (registry)
    ("event_type", "u1", 40),       # EventType
    ("kind", "u1", 41),             # Kind
    ("schema_version", "u1", 42),   # SCHEMA_VERSION
    ("flags", "u1", 43),            # Flag bits
    ("side", "u1", 44),             # Side (trade aggressor, order side)
    ("status", "u1", 45),           # OrderStatus (exec report) / error code (control)
    ("order_type", "u1", 46),       # OrderType (exec report)
    ("time_in_force", "u1", 47),    # TimeInForce (exec report)
]

# Payload union, bytes 48..128: each event type reads its own names.
_PAYLOAD: list[tuple[str, str, int]] = [
    # market data: first sequence the event covers (depth U; = seq_provider for one-seq events)
    ("seq_first", "<i8", 48),
    # trade
    ("price", "<i8", 56),
    ("quantity", "<i8", 64),
    ("trade_id", "<i8", 72),
    # bbo and ticker
    ("bid_price", "<i8", 56),
    ("bid_qty", "<i8", 64),
    ("ask_price", "<i8", 72),
    ("ask_qty", "<i8", 80),
    # ticker
    ("last_price", "<i8", 88),
    ("volume", "<i8", 96),
    ("quote_volume", "<i8", 104),
    ("open_price", "<i8", 112),
    # kline (volume shared with ticker at 96)
    ("kline_open", "<i8", 56),
    ("kline_high", "<i8", 64),
    ("kline_low", "<i8", 72),
    ("kline_close", "<i8", 80),
    ("kline_open_ns", "<i8", 88),
    ("kline_trades", "<i8", 104),
    # book snapshot: levels live in the book table row `book_row`
    ("book_row", "<i8", 56),
    ("n_bids", "<i4", 64),
    ("n_asks", "<i4", 68),
    ("checksum", "<i8", 72),
    ("book_slot", "<i8", 80),
    # merged: the MergedEvent slot and id
    ("merged_slot", "<i8", 56),
    ("merge_id", "<u8", 64),
    # merged bbo/ticker windows: the consolidated best bid/offer and the venue of each side
    ("best_bid_price", "<i8", 72),
    ("best_bid_qty", "<i8", 80),
    ("best_ask_price", "<i8", 88),
    ("best_ask_qty", "<i8", 96),
    ("best_bid_venue", "<u2", 104),
    ("best_ask_venue", "<u2", 106),
    ("merged_type", "u1", 108),     # EventType of the fragments
    # exec report (the full venue report is an EXEC_REPORT record)
    ("decision_id", "<u8", 48),
    ("exchange_order_id", "<i8", 56),
    ("order_qty", "<i8", 64),
    ("filled_qty", "<i8", 72),
    ("fill_price", "<i8", 80),
    ("client_order_id", f"S{CLIENT_ORDER_ID_LEN}", 88),
    ("reject_code", "<i4", 124),     # venue error code of a REJECTED report, else 0
    # control ack / result
    ("command_id", "<u8", 48),
    ("consumer_id", "<u4", 56),
    ("command_type", "u1", 60),
    ("error_code", "<u2", 62),
    ("result_value", "<i8", 64),
    ("venue_code", "<i4", 72),      # the venue's own error code of a failed command, else 0
    # named so every byte belongs to a field: numpy copies fields, not padding
    ("_pad", "(4,)u1", 124),
]

#: The normalized event every stage after the parser sees: 128 bytes, so fanning out a trade
#: copies two cache lines; book levels are referenced, never inlined.
CANONICAL_EVENT = _union(_HEADER + _PAYLOAD, 128)

#: One price level of a book table row (prices and quantities as mantissas).
BOOK_LEVEL = _struct([("price", "<i8"), ("quantity", "<i8")], 16)

#: One depth message, diff or snapshot, as parsed: its levels sit in a BOOK_LEVEL arena at
#: ``level_off``, bids first (``n_bids``) then asks (``n_asks``). A quantity of 0 deletes.
DEPTH_UPDATE = _struct(
    [
        ("ingest_ns", "<i8"),      # engine receive time of the frame
        ("exchange_ns", "<i8"),    # venue event time (E), 0 if none
        ("first_id", "<i8"),       # Binance U (= final_id for a snapshot)
        ("final_id", "<i8"),       # Binance u / lastUpdateId
        ("prev_final_id", "<i8"),  # Binance futures pu; -1 when the venue sends none
        ("level_off", "<i8"),      # first level in the arena
        ("n_bids", "<i4"),
        ("n_asks", "<i4"),
        ("instrument", "<u2"),
        ("venue", "<u2"),
        ("is_snapshot", "u1"),     # 1 for a REST/WS snapshot (replace the book), 0 for a diff
        ("_pad", "u1", (3,)),
    ],
    64,
)

#: A closed merge window: one fragment per expected venue.
MERGED_EVENT = _struct(
    [
        ("merge_id", "<u8"),
        ("window_open_ns", "<i8"),
        ("window_close_ns", "<i8"),
        ("trace_id", "<u8"),
        ("routing_version", "<u4"),
        ("instrument", "<u2"),
        ("event_type", "u1"),
        ("is_complete", "u1"),
        ("n_fragments", "u1"),
        ("_pad", "u1", (7,)),
        ("fragments", CANONICAL_EVENT, (MAX_MERGE_FRAGMENTS,)),
    ],
    48 + 128 * MAX_MERGE_FRAGMENTS,
)

#: An outbound order, validated before anything leaves the engine.
ORDER_REQUEST = _struct(
    [
        ("created_ns", "<i8"),
        ("timeout_ns", "<i8"),
        ("price", "<i8"),          # mantissa; 0 for market orders
        ("quantity", "<i8"),       # mantissa, > 0
        ("trace_id", "<u8"),
        ("decision_id", "<u8"),
        ("consumer_id", "<u4"),
        ("instrument", "<u2"),
        ("venue", "<u2"),
        ("side", "u1"),
        ("order_type", "u1"),
        ("time_in_force", "u1"),
        ("_pad", "u1"),
        ("client_order_id", f"S{CLIENT_ORDER_ID_LEN}"),
        ("_pad2", "u1", (8,)),
    ],
    104,
)

#: The venue's execution report, complete (the CanonicalEvent carries a summary).
EXEC_REPORT = _struct(
    [
        ("transact_ns", "<i8"),    # venue transaction time
        ("received_ns", "<i8"),    # engine receive time
        ("exchange_order_id", "<i8"),
        ("price", "<i8"),          # limit price mantissa
        ("quantity", "<i8"),       # ordered
        ("filled_qty", "<i8"),     # cumulative; remaining = quantity - filled_qty
        ("remaining_qty", "<i8"),
        ("avg_price", "<i8"),
        ("last_fill_price", "<i8"),
        ("last_fill_qty", "<i8"),
        ("commission", "<i8"),
        ("trace_id", "<u8"),
        ("decision_id", "<u8"),
        ("consumer_id", "<u4"),
        ("reject_code", "<i4"),    # venue error code for REJECTED, else 0
        ("instrument", "<u2"),
        ("venue", "<u2"),
        ("status", "u1"),
        ("side", "u1"),
        ("order_type", "u1"),
        ("time_in_force", "u1"),
        ("client_order_id", f"S{CLIENT_ORDER_ID_LEN}"),
        ("_pad", "u1", (4,)),
    ],
    160,
)

#: The six pooled record types of the seeds, by their Go names.
DTYPES: dict[str, np.dtype] = {
    "WsFrame": WS_FRAME,
    "ProviderRaw": PROVIDER_RAW,
    "CanonicalEvent": CANONICAL_EVENT,
    "MergedEvent": MERGED_EVENT,
    "OrderRequest": ORDER_REQUEST,
    "ExecReport": EXEC_REPORT,
}
