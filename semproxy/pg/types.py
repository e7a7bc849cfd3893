"""Postgres type OIDs, the RowDescription Field, and the Arrow type -> Postgres column mapping.

The OIDs and sizes are pg_type's (src/include/catalog/pg_type.dat); `oid_name` gives the
typname, `pg_type_name` the DDL spelling used in CREATE TABLE."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import pyarrow as pa

from semproxy.errors import InvalidParameterValue, ProtocolViolation


class PgType(NamedTuple):
    oid: int
    typname: str
    size: int  # typlen: -1 varlena, -2 C string
    array_oid: int
    ddl: str


_TYPES = (
    PgType(16, "bool", 1, 1000, "boolean"),
    PgType(17, "bytea", -1, 1001, "bytea"),
    PgType(20, "int8", 8, 1016, "bigint"),
    PgType(21, "int2", 2, 1005, "smallint"),
    PgType(23, "int4", 4, 1007, "integer"),
    PgType(25, "text", -1, 1009, "text"),
    PgType(114, "json", -1, 199, "json"),
    PgType(700, "float4", 4, 1021, "real"),
    PgType(701, "float8", 8, 1022, "double precision"),
    PgType(705, "unknown", -2, 0, "unknown"),
    PgType(1043, "varchar", -1, 1015, "character varying"),
    PgType(1082, "date", 4, 1182, "date"),
    PgType(1083, "time", 8, 1183, "time without time zone"),
    PgType(1114, "timestamp", 8, 1115, "timestamp without time zone"),
    PgType(1184, "timestamptz", 8, 1185, "timestamp with time zone"),
    PgType(1186, "interval", 16, 1187, "interval"),
    PgType(1700, "numeric", -1, 1231, "numeric"),
    PgType(2950, "uuid", 16, 2951, "uuid"),
    PgType(3802, "jsonb", -1, 3807, "jsonb"),
)
BY_OID: dict[int, PgType] = {t.oid: t for t in _TYPES}
ARRAY_ELEMENT: dict[int, int] = {t.array_oid: t.oid for t in _TYPES if t.array_oid}

BOOL, BYTEA, INT8, INT2, INT4, TEXT, JSON = 16, 17, 20, 21, 23, 25, 114
FLOAT4, FLOAT8, UNKNOWN, VARCHAR = 700, 701, 705, 1043
DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL = 1082, 1083, 1114, 1184, 1186
NUMERIC, UUID, JSONB = 1700, 2950, 3802


@dataclass(frozen=True, slots=True)
class Field:
    """One column of a RowDescription."""

    name: str
    type_oid: int
    type_size: int
    type_modifier: int = -1
    format: int = 0  # 0 text, 1 binary
    table_oid: int = 0
    column_attnum: int = 0


def oid_name(oid: int) -> str:
    """pg_type.typname of a known OID ('int8', '_int8'), else the number as text."""
    if oid in BY_OID:
        return BY_OID[oid].typname
    if oid in ARRAY_ELEMENT:
        return "_" + BY_OID[ARRAY_ELEMENT[oid]].typname
    return str(oid)


def format_for(formats: Sequence[int] | None, i: int) -> int:
    """The format code of column (or parameter) i under Postgres's rule: no codes means all
    text, one code applies to every column, else one code per column."""
    if not formats:
        return 0
    if len(formats) == 1:
        code = formats[0]
    elif i < len(formats):
        code = formats[i]
    else:
        raise ProtocolViolation(f"{len(formats)} format codes given for column {i + 1}")
    if code not in (0, 1):
        raise InvalidParameterValue(f"unsupported format code: {code}")
    return code


def check_formats(formats: Sequence[int] | None, count: int) -> None:
    """Reject a format list whose length is neither 0, 1 nor `count`, or with a bad code."""
    if formats and len(formats) not in (1, count):
        raise ProtocolViolation(
            f"bind message has {len(formats)} result formats but query has {count} columns"
        )
    for i in range(min(len(formats or ()), count)):
        format_for(formats, i)


def is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))


def _decimal_typmod(t: pa.Decimal128Type | pa.Decimal256Type) -> tuple[int, int]:
    # A negative scale (Arrow allows it) is printed as an integer: numeric(p - s, 0).
    return (t.precision - t.scale, 0) if t.scale < 0 else (t.precision, t.scale)


def pg_type_of(t: pa.DataType) -> tuple[int, int]:
    """(type OID, type modifier) that Postgres would report for an Arrow type."""
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            return UUID, -1
        if t.extension_name == "arrow.json":
            return JSON, -1
        return pg_type_of(t.storage_type)
    if pa.types.is_boolean(t):
        return BOOL, -1
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return INT2, -1
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return INT4, -1
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return INT8, -1
    if pa.types.is_uint64(t):
        return NUMERIC, -1
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return FLOAT4, -1
    if pa.types.is_float64(t):
        return FLOAT8, -1
    if pa.types.is_decimal(t):
        p, s = _decimal_typmod(t)
        return NUMERIC, ((p << 16) | s) + 4
    if pa.types.is_date(t):
        return DATE, -1
    if pa.types.is_time(t):
        return TIME, -1
    if pa.types.is_timestamp(t):
        return (TIMESTAMPTZ if t.tz else TIMESTAMP), -1
    if pa.types.is_duration(t) or pa.types.is_interval(t):
        return INTERVAL, -1
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return BYTEA, -1
    if pa.types.is_fixed_size_binary(t):
        return BYTEA, -1
    if is_list(t):
        # Postgres arrays are multidimensional: list<list<int64>> is int8[] too.
        element, _ = pg_type_of(t.value_type)
        element = ARRAY_ELEMENT.get(element, element)
        return BY_OID[element].array_oid or BY_OID[TEXT].array_oid, -1
    return TEXT, -1  # strings, null, and anything else, which is sent as its text


def field_for_arrow(name: str, t: pa.DataType, format: int = 0) -> Field:
    """The RowDescription field for an Arrow column: decimal(12,2) -> numeric, typmod 786438."""
    oid, typmod = pg_type_of(t)
    size = BY_OID[oid].size if oid in BY_OID else -1
    return Field(name, oid, size, typmod, format)


def pg_type_name(t: pa.DataType) -> str:
    """The DDL type for an Arrow type: 'numeric(18,2)', 'bigint', 'timestamp with time zone'."""
    oid, _ = pg_type_of(t)
    if oid in ARRAY_ELEMENT:
        return BY_OID[ARRAY_ELEMENT[oid]].ddl + "[]"
    if pa.types.is_decimal(t):
        p, s = _decimal_typmod(t)
        return f"numeric({p},{s})"
    return BY_OID[oid].ddl
