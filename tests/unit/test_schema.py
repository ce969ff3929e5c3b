"""The record layouts: sizes, the six seed types, every field numeric, the event header."""

import numpy as np
import pytest

from meltica_nb import schema
from meltica_nb.schema import CANONICAL_EVENT, DTYPES, EventType, Kind, kind_of

SEED_TYPES = ["WsFrame", "ProviderRaw", "CanonicalEvent", "MergedEvent", "OrderRequest",
              "ExecReport"]
HEADER = ["event_type", "kind", "venue", "instrument", "seq_provider", "ingest_ns",
          "exchange_ns", "routing_version", "trace_id", "schema_version"]


def test_dtypes_are_the_six_seed_types():
    assert sorted(DTYPES) == sorted(SEED_TYPES)


@pytest.mark.parametrize("name", SEED_TYPES)
def test_records_are_numeric_and_word_sized(name):
    dtype = DTYPES[name]
    assert dtype.itemsize % 8 == 0
    for field_name in dtype.names:
        base = dtype.fields[field_name][0].base
        assert base.kind in "iuSV", (name, field_name, base)
        assert base.kind != "O"


def test_canonical_event_has_the_design_header_and_fits_two_cache_lines():
    assert CANONICAL_EVENT.itemsize == 128
    for name in HEADER:
        assert name in CANONICAL_EVENT.names


def test_union_payload_fields_share_bytes_but_header_does_not():
    rec = np.zeros(1, CANONICAL_EVENT)
    rec["bid_price"] = 7
    assert rec["price"][0] == 7  # bbo and trade read the same payload bytes
    rec["venue"] = 3
    assert rec["price"][0] == 7 and rec["instrument"][0] == 0


def test_client_order_id_holds_binance_maximum():
    rec = np.zeros(1, DTYPES["OrderRequest"])
    coid = b"x" * 36
    rec["client_order_id"] = coid
    assert rec["client_order_id"][0] == coid


def test_kind_of_marks_critical_types():
    assert kind_of(EventType.TRADE) is Kind.MARKET_DATA
    assert kind_of(EventType.EXEC_REPORT) is Kind.EXEC_REPORT
    assert kind_of(EventType.CONTROL_ACK) in schema.CRITICAL_KINDS
    assert kind_of(EventType.CONTROL_RESULT) in schema.CRITICAL_KINDS
    assert kind_of(EventType.NONE) is Kind.NONE


def test_merged_event_embeds_canonical_fragments():
    merged = DTYPES["MergedEvent"]
    assert merged.fields["fragments"][0].base == CANONICAL_EVENT


def _covered_bytes(dtype, base=0, covered=None):
    """Byte offsets that belong to some field (recursing into nested records)."""
    covered = set() if covered is None else covered
    for sub, offset, *_ in dtype.fields.values():
        if sub.base.names:
            count = int(np.prod(sub.shape)) if sub.shape else 1
            for k in range(count):
                _covered_bytes(sub.base, base + offset + k * sub.base.itemsize, covered)
        else:
            covered.update(range(base + offset, base + offset + sub.itemsize))
    return covered


@pytest.mark.parametrize("name", SEED_TYPES)
def test_every_byte_belongs_to_a_field(name):
    """numpy copies fields, not padding: an unnamed byte would carry garbage into digests."""
    dtype = DTYPES[name]
    assert _covered_bytes(dtype) == set(range(dtype.itemsize))
