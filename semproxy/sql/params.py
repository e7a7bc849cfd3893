"""Parameters of the extended protocol, bound into the syntax tree as typed literals.

A value never becomes SQL text by pasting: each `$n` node is replaced by a literal node
(string, number, boolean, NULL, or a CAST of a string literal to the parameter's type),
and the dialect prints it with its own quoting.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import Callable, Sequence

from sqlglot import exp

from semproxy.errors import FeatureNotSupported, InvalidParameterValue, ProtocolViolation
from semproxy.pg import types as t

_INTS = {t.INT2: "!h", t.INT4: "!i", t.INT8: "!q"}
_FLOATS = {t.FLOAT4: "!f", t.FLOAT8: "!d"}
_CASTS = {
    t.DATE: "DATE",
    t.TIMESTAMP: "TIMESTAMP",
    t.TIMESTAMPTZ: "TIMESTAMPTZ",
    t.NUMERIC: "DECIMAL",
    t.INTERVAL: "INTERVAL",
    t.TIME: "TIME",
}
PG_EPOCH = dt.date(2000, 1, 1)
# Postgres's date and timestamp inputs ignore a time zone (and a date a time of day);
# pgjdbc sends setDate as '2024-01-01 +00' and setTimestamp with an offset.
_DATE_AND_MORE = re.compile(r"^(\d{4,}-\d{1,2}-\d{1,2})[ T][\d:.+\- ]*Z?$")
_TIME_AND_ZONE = re.compile(r"^(.*\d:\d\d(?::\d\d(?:\.\d+)?)?)\s*(?:[+-]\d{2}(?::?\d{2}){0,2}|Z)$")


def parameter_count(tree: exp.Expr) -> int:
    return max((_index(p) for p in tree.find_all(exp.Parameter)), default=0)


def literals(
    values: Sequence[bytes | None], formats: Sequence[int], type_oids: Sequence[int], needed: int
) -> list[exp.Expr]:
    """The literal node of each parameter value, `$1` first."""
    if len(values) != needed:
        raise ProtocolViolation(
            f"bind message supplies {len(values)} parameters, but prepared statement requires {needed}"
        )
    return [
        _literal(v, t.format_for(formats, i), type_oids[i] if i < len(type_oids) else 0, i + 1)
        for i, v in enumerate(values)
    ]


def bind(
    tree: exp.Expr,
    values: Sequence[bytes | None],
    formats: Sequence[int],
    type_oids: Sequence[int],
) -> exp.Expr:
    """A copy of `tree` with `$1..$n` replaced by literals of `values`."""
    nodes = literals(values, formats, type_oids, parameter_count(tree))

    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Parameter):
            return nodes[_index(node) - 1].copy()
        return node

    return tree.copy().transform(replace)


def _index(node: exp.Parameter) -> int:
    inner = node.this
    return int(inner.name) if isinstance(inner, exp.Literal) and inner.name.isdigit() else 0


def _literal(value: bytes | None, fmt: int, oid: int, n: int) -> exp.Expr:
    if value is None:
        return exp.Null()
    try:
        return _binary(value, oid) if fmt == 1 else _text(value.decode(), oid)
    except (ValueError, struct.error, UnicodeDecodeError) as exc:
        raise InvalidParameterValue(f"invalid value for parameter ${n}: {exc}") from exc


def _text(text: str, oid: int) -> exp.Expr:
    if oid in _INTS:
        return exp.Literal.number(int(text))
    if oid in _FLOATS:
        return exp.Literal.number(float(text))
    if oid == t.BOOL:
        return exp.Boolean(this=text.strip().lower() in ("t", "true", "1", "yes", "on"))
    pattern = _DATE_AND_MORE if oid == t.DATE else _TIME_AND_ZONE if oid == t.TIMESTAMP else None
    if pattern is not None and (found := pattern.match(text.strip())):
        text = found.group(1)
    if oid in _CASTS:
        return exp.cast(exp.Literal.string(text), _CASTS[oid])
    return exp.Literal.string(text)


def _binary(value: bytes, oid: int) -> exp.Expr:
    if oid in _INTS:
        return exp.Literal.number(struct.unpack(_INTS[oid], value)[0])
    if oid in _FLOATS:
        return exp.Literal.number(struct.unpack(_FLOATS[oid], value)[0])
    if oid == t.BOOL:
        return exp.Boolean(this=value != b"\x00")
    if oid in (t.TEXT, t.VARCHAR, t.UNKNOWN, 0):
        return exp.Literal.string(value.decode())
    if oid == t.DATE:
        (days,) = struct.unpack("!i", value)
        day = PG_EPOCH + dt.timedelta(days=days)
        return exp.cast(exp.Literal.string(day.isoformat()), "DATE")
    if oid in (t.TIMESTAMP, t.TIMESTAMPTZ):
        (micros,) = struct.unpack("!q", value)
        stamp = dt.datetime(2000, 1, 1) + dt.timedelta(microseconds=micros)
        return exp.cast(exp.Literal.string(stamp.isoformat(sep=" ")), _CASTS[oid])
    raise FeatureNotSupported(
        f"binary parameters of type {t.oid_name(oid)} are not supported; send them as text"
    )


_CAST_OIDS = {
    exp.DataType.Type.BOOLEAN: t.BOOL,
    exp.DataType.Type.SMALLINT: t.INT2,
    exp.DataType.Type.INT: t.INT4,
    exp.DataType.Type.BIGINT: t.INT8,
    exp.DataType.Type.FLOAT: t.FLOAT4,
    exp.DataType.Type.DOUBLE: t.FLOAT8,
    exp.DataType.Type.DECIMAL: t.NUMERIC,
    exp.DataType.Type.TEXT: t.TEXT,
    exp.DataType.Type.VARCHAR: t.VARCHAR,
    exp.DataType.Type.DATE: t.DATE,
    exp.DataType.Type.TIMESTAMP: t.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPTZ: t.TIMESTAMPTZ,
}
_DDL_OIDS = {pg.ddl: pg.oid for pg in t.BY_OID.values()}


def oid_of_ddl(ddl: str) -> int | None:
    """The OID of a DDL type name as the catalog sync writes it: 'numeric(12,2)' -> 1700."""
    return _DDL_OIDS.get(ddl.split("(", 1)[0])


def infer_types(
    tree: exp.Expr, given: Sequence[int], column_type: Callable[[exp.Column], int | None]
) -> tuple[int, ...]:
    """Parameter types: as the client gave them, else inferred from where each `$n` is used
    (a cast names it; a comparison, IN or BETWEEN takes the other side's column type), else text.

    asyncpg encodes its arguments by these types, so `order_date >= $1` must say date."""
    count = parameter_count(tree)
    types = [given[i] if i < len(given) else 0 for i in range(count)]
    for node in tree.find_all(exp.Parameter):
        i = _index(node) - 1
        if i < 0 or types[i]:
            continue
        parent = node.parent
        other: exp.Expr | None = None
        if isinstance(parent, exp.Cast) and isinstance(parent.to, exp.DataType):
            types[i] = _CAST_OIDS.get(parent.to.this, 0)
            continue
        if isinstance(parent, exp.In | exp.Between):
            other = parent.this
        elif isinstance(parent, exp.Binary) and not isinstance(parent, exp.Connector):
            other = parent.left if parent.right is node else parent.right
        if isinstance(other, exp.Column):
            types[i] = column_type(other) or 0
    return tuple(x or t.TEXT for x in types)
