"""Postgres type OIDs, the RowDescription Field, and the Arrow type -> Postgres column mapping.

The OIDs and sizes are pg_type's (src/include/catalog/pg_type.dat); `oid_name` gives the
typname, `pg_type_name` the DDL spelling used in CREATE TABLE."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from semproxy.errors import FeatureNotSupported, InvalidParameterValue, ProtocolViolation
from semproxy.pg.numeric import numeric_cells


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


@functools.lru_cache(maxsize=512)  # per column of every batch and RowDescription
def pg_type_of(t: pa.DataType) -> tuple[int, int]:
    """(type OID, type modifier) that Postgres would report for an Arrow type."""
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            return UUID, -1
        if t.extension_name == "arrow.json":
            return JSON, -1
        return pg_type_of(t.storage_type)
    if pa.types.is_dictionary(t):
        return pg_type_of(t.value_type)
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


# ---- value conversions and the binary format --------------------------------------------

PG_EPOCH_DAYS = 10957  # 2000-01-01 - 1970-01-01: Postgres's binary dates and timestamps count from it
PG_EPOCH_US = PG_EPOCH_DAYS * 86_400_000_000


def fixed_width(n: int, rows: np.ndarray) -> pa.Array:
    """A binary array of n equal-width values: the rows of a C-contiguous numpy array."""
    width = rows.nbytes // n if n else 0
    offsets = np.arange(n + 1, dtype=np.int32) * width  # n = 0: one offset, 0
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(rows)])


def fixed_cells(col: pa.Array, values: np.ndarray) -> pa.Array:
    """Binary cells from fixed-size numpy values, NULL where `col` is."""
    n = len(col)
    if col.null_count == 0:
        return fixed_width(n, values)
    valid = valid_mask(col)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.where(valid, values.nbytes // n, 0), out=offsets[1:])
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    data = pa.py_buffer(np.ascontiguousarray(values[valid]))
    return pa.Array.from_buffers(pa.binary(), n, [bitmap, pa.py_buffer(offsets), data])


def valid_mask(col: pa.Array) -> np.ndarray:
    return np.asarray(col.is_valid().to_numpy(zero_copy_only=False))


def numbers(col: pa.Array, dtype: str = "i8") -> np.ndarray:
    """The values of a numeric column as numpy, NULLs as 0."""
    zero = pa.scalar(False) if pa.types.is_boolean(col.type) else pa.scalar(0, col.type)
    filled = pc.fill_null(col, zero) if col.null_count else col
    return np.asarray(filled.to_numpy(zero_copy_only=False)).astype(dtype)


def days(col: pa.Array) -> np.ndarray:
    """Days since 1970-01-01 of a date32/date64 column."""
    return numbers(col.cast(pa.date32()).cast(pa.int32()), "i8")


def micros(col: pa.Array) -> np.ndarray:
    """Microseconds (since 1970 UTC, midnight, or of a duration), rounded down like a cast
    of nanoseconds into Postgres's microsecond resolution would truncate."""
    unit = col.type.unit
    raw = numbers(col.cast(pa.int64()))
    if unit in ("s", "ms"):
        return raw * (1_000_000 if unit == "s" else 1000)
    return raw // 1000 if unit == "ns" else raw


def interval_parts(col: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(months, days, nanoseconds) of a month_day_nano_interval column, NULLs as 0."""
    layout = np.dtype([("months", "<i4"), ("days", "<i4"), ("nanos", "<i8")])
    raw = np.frombuffer(col.buffers()[1], layout, len(col), col.offset * layout.itemsize).copy()
    if col.null_count:
        raw[~valid_mask(col)] = 0
    return raw["months"].astype("i8"), raw["days"].astype("i8"), raw["nanos"]


def _numeric_binary(value: Decimal) -> bytes:
    """Postgres's binary numeric: ndigits, weight, sign, dscale, then base-10000 digits."""
    sign, digit_tuple, exp = value.as_tuple()
    assert isinstance(exp, int)
    dscale = max(-exp, 0)
    whole = "".join(map(str, digit_tuple)) + "0" * max(exp, 0)
    int_len = len(whole) - dscale
    pad_left = (-int_len) % 4
    groups = "0" * pad_left + whole + "0" * ((-dscale) % 4)
    words = [int(groups[i : i + 4]) for i in range(0, len(groups), 4)]
    weight = (int_len + pad_left) // 4 - 1
    while words and words[0] == 0:
        words.pop(0)
        weight -= 1
    while words and words[-1] == 0:
        words.pop()
    head = (len(words), weight if words else 0, 0x4000 if sign and words else 0, dscale)
    return np.array(head + tuple(words), dtype=">i2").tobytes()


def _interval_binary(us: np.ndarray, days: np.ndarray | int, months: np.ndarray | int) -> np.ndarray:
    out = np.empty(len(us), dtype=[("us", ">i8"), ("days", ">i4"), ("months", ">i4")])
    out["us"], out["days"], out["months"] = us, days, months
    return out


def _interval_cells(col: pa.Array) -> np.ndarray:
    months, day, nanos = interval_parts(col)
    return _interval_binary(nanos // 1000, day, months)


_BINARY_FIXED: dict[int, Callable[[pa.Array], np.ndarray]] = {
    BOOL: lambda c: numbers(c, "u1"),
    INT2: lambda c: numbers(c, ">i2"),
    INT4: lambda c: numbers(c, ">i4"),
    INT8: lambda c: numbers(c, ">i8"),
    FLOAT4: lambda c: numbers(c, ">f4"),
    FLOAT8: lambda c: numbers(c, ">f8"),
    DATE: lambda c: (days(c) - PG_EPOCH_DAYS).astype(">i4"),
    TIMESTAMP: lambda c: (micros(c) - PG_EPOCH_US).astype(">i8"),
    TIMESTAMPTZ: lambda c: (micros(c) - PG_EPOCH_US).astype(">i8"),
    TIME: lambda c: micros(c).astype(">i8"),
    INTERVAL: lambda c: (
        _interval_cells(c) if pa.types.is_interval(c.type) else _interval_binary(micros(c), 0, 0)
    ),
}


def encode_binary(col: pa.Array) -> pa.Array | None:
    """Binary-format cells of a column (a binary array, NULL where the value is), or None for
    a type that has no binary encoder here and goes as text (its Field says format 0 too)."""
    oid, _ = pg_type_of(col.type)
    if oid in _BINARY_FIXED:
        return fixed_cells(col, _BINARY_FIXED[oid](col))
    if oid == NUMERIC:
        vectorised = numeric_cells(col)
        if vectorised is not None:
            return vectorised
        cells = [None if v is None else _numeric_binary(Decimal(v)) for v in col.to_pylist()]  # > 64 bits
        return pa.array(cells, pa.binary())
    if oid in ARRAY_ELEMENT:
        raise FeatureNotSupported("binary format for array columns is not supported; ask for text")
    if isinstance(col.type, pa.BaseExtensionType):
        col = col.storage  # uuid: its 16 bytes; json: its text
    if pa.types.is_null(col.type):
        return pa.nulls(len(col), pa.binary())
    try:
        return col.cast(pa.binary())  # text, bytea: the bytes themselves
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
