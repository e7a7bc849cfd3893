"""Arrow type -> Postgres column mapping, OID names, and the format-code rule."""

from __future__ import annotations

import pyarrow as pa
import pytest

from semproxy.errors import InvalidParameterValue, ProtocolViolation
from semproxy.pg.types import Field, check_formats, field_for_arrow, format_for, oid_name, pg_type_name

MAPPING: list[tuple[pa.DataType, int, int, int, str]] = [
    # arrow type, type oid, type size, typmod, DDL name
    (pa.bool_(), 16, 1, -1, "boolean"),
    (pa.int8(), 21, 2, -1, "smallint"),
    (pa.int16(), 21, 2, -1, "smallint"),
    (pa.uint8(), 21, 2, -1, "smallint"),
    (pa.int32(), 23, 4, -1, "integer"),
    (pa.uint16(), 23, 4, -1, "integer"),
    (pa.int64(), 20, 8, -1, "bigint"),
    (pa.uint32(), 20, 8, -1, "bigint"),
    (pa.uint64(), 1700, -1, -1, "numeric"),
    (pa.float16(), 700, 4, -1, "real"),
    (pa.float32(), 700, 4, -1, "real"),
    (pa.float64(), 701, 8, -1, "double precision"),
    (pa.decimal128(12, 2), 1700, -1, (12 << 16 | 2) + 4, "numeric(12,2)"),
    (pa.decimal128(18, 0), 1700, -1, (18 << 16) + 4, "numeric(18,0)"),
    (pa.decimal256(50, 10), 1700, -1, (50 << 16 | 10) + 4, "numeric(50,10)"),
    (pa.decimal128(5, -2), 1700, -1, (7 << 16) + 4, "numeric(7,0)"),
    (pa.string(), 25, -1, -1, "text"),
    (pa.large_string(), 25, -1, -1, "text"),
    (pa.string_view(), 25, -1, -1, "text"),
    (pa.dictionary(pa.int32(), pa.string()), 25, -1, -1, "text"),
    (pa.binary(), 17, -1, -1, "bytea"),
    (pa.large_binary(), 17, -1, -1, "bytea"),
    (pa.date32(), 1082, 4, -1, "date"),
    (pa.date64(), 1082, 4, -1, "date"),
    (pa.time64("us"), 1083, 8, -1, "time without time zone"),
    (pa.timestamp("us"), 1114, 8, -1, "timestamp without time zone"),
    (pa.timestamp("ns", "America/New_York"), 1184, 8, -1, "timestamp with time zone"),
    (pa.duration("us"), 1186, 16, -1, "interval"),
    (pa.month_day_nano_interval(), 1186, 16, -1, "interval"),
    (pa.uuid(), 2950, 16, -1, "uuid"),
    (pa.json_(), 114, -1, -1, "json"),
    (pa.list_(pa.int64()), 1016, -1, -1, "bigint[]"),
    (pa.large_list(pa.string()), 1009, -1, -1, "text[]"),
    (pa.list_(pa.list_(pa.float64())), 1022, -1, -1, "double precision[]"),
    (pa.list_(pa.decimal128(10, 2)), 1231, -1, -1, "numeric[]"),
    (pa.null(), 25, -1, -1, "text"),
    (pa.struct([("a", pa.int8())]), 25, -1, -1, "text"),
]


@pytest.mark.parametrize(("t", "oid", "size", "typmod", "ddl"), MAPPING, ids=[str(m[0]) for m in MAPPING])
def test_field_for_arrow(t: pa.DataType, oid: int, size: int, typmod: int, ddl: str) -> None:
    assert field_for_arrow("c", t) == Field("c", oid, size, typmod)
    assert pg_type_name(t) == ddl


def test_oid_name() -> None:
    assert [oid_name(o) for o in (16, 20, 1700, 1184, 1016, 199, 705, 424242)] == [
        "bool",
        "int8",
        "numeric",
        "timestamptz",
        "_int8",
        "_json",
        "unknown",
        "424242",
    ]


def test_format_for_zero_one_or_n_codes() -> None:
    assert [format_for(None, i) for i in range(3)] == [0, 0, 0]
    assert [format_for([], i) for i in range(3)] == [0, 0, 0]
    assert [format_for([1], i) for i in range(3)] == [1, 1, 1]
    assert [format_for([0, 1, 0], i) for i in range(3)] == [0, 1, 0]
    with pytest.raises(ProtocolViolation):
        format_for([0, 1], 2)
    with pytest.raises(InvalidParameterValue):
        format_for([3], 0)


def test_check_formats() -> None:
    check_formats([1, 0], 2)
    check_formats([1], 5)
    check_formats(None, 0)
    with pytest.raises(ProtocolViolation, match="2 result formats but query has 3 columns"):
        check_formats([0, 1], 3)
    with pytest.raises(InvalidParameterValue):
        check_formats([0, 7], 2)
