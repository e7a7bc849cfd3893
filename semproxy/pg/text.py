"""Text-format cells of Arrow columns, as PostgreSQL's output functions print them
(DateStyle ISO, IntervalStyle postgres, extra_float_digits 1), built with numpy character
grids and pyarrow.compute: no Python call per cell."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from semproxy.pg.types import (
    ARRAY_ELEMENT,
    BOOL,
    BYTEA,
    DATE,
    FLOAT4,
    FLOAT8,
    INTERVAL,
    NUMERIC,
    TIME,
    TIMESTAMP,
    TIMESTAMPTZ,
    UUID,
    days,
    fixed_cells,
    interval_parts,
    micros,
    numbers,
    pg_type_of,
    valid_mask,
)

_UTC = frozenset({"UTC", "ETC/UTC", "GMT", "ETC/GMT", "UCT", "Z", "ZULU", "UNIVERSAL", "+00:00", "GMT0"})

# ---- text format: numpy character grids -----------------------------------------------------
# A grid is a list of (characters (n, k) uint8, keep mask broadcastable to (n, k)); each row's
# kept characters, in order, are that cell's text. Widths are per column, never per row.

_Part = tuple[np.ndarray, np.ndarray | bool]


_PAIRS = np.array([[48 + i // 10, 48 + i % 10] for i in range(100)], np.uint8)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII digits of non-negative integers below 10**width, zero-padded: (n, width) uint8."""
    out = np.empty((len(values), width), np.uint8)
    v = values.astype(np.int32 if width < 10 else np.int64)  # int32 division is much faster
    j = width
    while j >= 2:  # two digits per step, from a 100-entry table
        out[:, j - 2 : j] = _PAIRS[v % 100]
        v = v // 100
        j -= 2
    if j:
        out[:, 0] = v + 48
    return out


def _ndigits(values: np.ndarray, most: int) -> np.ndarray:
    """Decimal digits of each non-negative integer (at least 1, at most `most`)."""
    count = np.ones(len(values), np.int64)
    for k in range(1, most):
        count += values >= 10**k
    return count


def _lit(text: str) -> _Part:
    return np.frombuffer(text.encode(), np.uint8)[None, :], True


def _grid(n: int, valid: np.ndarray | None, parts: list[_Part]) -> pa.Array:
    chars = np.concatenate([np.broadcast_to(c, (n, c.shape[1])) for c, _ in parts], axis=1)
    keep = np.concatenate([np.broadcast_to(k, (n, c.shape[1])) for c, k in parts], axis=1)
    if valid is not None:
        keep &= valid[:, None]
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    data = pa.py_buffer(np.ascontiguousarray(chars[keep]))
    return pa.Array.from_buffers(pa.binary(), n, [bitmap, pa.py_buffer(offsets), data])


def _civil(day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Proleptic Gregorian (year, month, day) of days since 1970-01-01 (H. Hinnant's algorithm)."""
    z = day + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (month <= 2), month, doy - (153 * mp + 2) // 5 + 1


def _date_parts(day: np.ndarray) -> tuple[_Part, np.ndarray]:
    """'YYYY-MM-DD' as one grid part, and which rows are BC (year 0 is 1 BC: Postgres then
    appends ' BC' to the whole value)."""
    lo, hi = (int(day.min()), int(day.max())) if len(day) else (0, 0)
    if hi - lo < len(day) // 2:
        # Format each day of the range once, then gather: a batch spans few distinct days.
        (chars, keep), bc = _date_parts(np.arange(lo, hi + 1, dtype=np.int64))
        at = day - lo
        return (chars[at], np.asarray(keep)[at]), bc[at]
    year, month, mday = _civil(day)
    bc = year <= 0
    year = np.where(bc, 1 - year, year)
    width = 4 + (year >= 10_000) + (year >= 100_000) + (year >= 1_000_000)
    keep = np.ones((len(day), 13), bool)
    keep[:, :7] = np.arange(7) >= (7 - width)[:, None]
    dash = np.full((len(day), 1), ord("-"), np.uint8)
    chars = np.concatenate([_digits(year, 7), dash, _digits(month, 2), dash, _digits(mday, 2)], axis=1)
    return (chars, keep), bc


def _fraction(us: np.ndarray) -> list[_Part]:
    """'.ffffff' without trailing zeros, nothing at all for whole seconds."""
    zeros = sum(((us % 10**k) == 0).astype(np.int64) for k in range(1, 6))
    length = np.where(us == 0, 0, 6 - zeros)
    return [(_lit(".")[0], (length > 0)[:, None]), (_digits(us, 6), np.arange(1, 7) <= length[:, None])]


def _clock(us: np.ndarray, hour_width: int = 2) -> list[_Part]:
    """'HH:MM:SS[.ffffff]' of non-negative microseconds."""
    secs = us // 1_000_000
    return [
        (_digits(secs // 3600, hour_width), True),
        _lit(":"),
        (_digits(secs // 60 % 60, 2), True),
        _lit(":"),
        (_digits(secs % 60, 2), True),
        *_fraction(us % 1_000_000),
    ]


def _zone(offset: np.ndarray) -> list[_Part]:
    """'+HH[:MM[:SS]]' of UTC offsets in seconds, as Postgres prints a timestamptz's zone."""
    a = np.abs(offset)
    has_s = (a % 60 != 0)[:, None]
    has_m = has_s | (a // 60 % 60 != 0)[:, None]
    sign = np.where(offset < 0, ord("-"), ord("+")).astype(np.uint8)[:, None]
    return [
        (sign, True),
        (_digits(a // 3600, 2), True),
        (_lit(":")[0], has_m),
        (_digits(a // 60 % 60, 2), has_m),
        (_lit(":")[0], has_s),
        (_digits(a % 60, 2), has_s),
    ]


def _timestamp_text(col: pa.Array, timezone: str) -> pa.Array:
    us = micros(col)
    if col.type.tz is not None and timezone.upper() not in _UTC:
        local = pc.local_timestamp(col.cast(pa.timestamp(col.type.unit, timezone)))
        offset = (micros(local) - us) // 1_000_000
        us = us + offset * 1_000_000
    day = us // 86_400_000_000
    date, bc = _date_parts(day)
    parts = [date, _lit(" "), *_clock(us - day * 86_400_000_000)]
    if col.type.tz is not None:
        parts += _zone(offset) if timezone.upper() not in _UTC else [_lit("+00")]
    return _grid(len(col), _valid(col), [*parts, (_lit(" BC")[0], bc[:, None])])


_YEAR_1, _YEAR_9999 = -719162, 2932896  # days from 1970-01-01 to 0001-01-01 and 9999-12-31


def _date_text(col: pa.Array) -> pa.Array:
    day = days(col)
    (chars, keep), bc = _date_parts(day)
    if len(day) and day.min() >= _YEAR_1 and day.max() <= _YEAR_9999:  # all 'YYYY-MM-DD'
        return fixed_cells(col, np.ascontiguousarray(chars[:, 3:]))
    return _grid(len(col), _valid(col), [(chars, keep), (_lit(" BC")[0], bc[:, None])])


def _valid(col: pa.Array) -> np.ndarray | None:
    return valid_mask(col) if col.null_count else None


def _decimal_text(col: pa.Array) -> pa.Array:
    """numeric with its scale kept: decimal(12,2) 12.5 -> '12.50'."""
    t = col.type
    if t.scale < 0:
        col = col.cast(pa.decimal128(min(t.precision - t.scale, 38), 0))
        t = col.type
    if t.scale <= 6:  # Arrow's own cast is exact and only turns scientific below 1e-6
        return pc.cast(col, pa.string()).cast(pa.binary())
    if t.precision > 18:
        return _wide_decimal_text(col)
    if not pa.types.is_decimal128(t):
        col = col.cast(pa.decimal128(t.precision, t.scale))
    # For precision <= 18 the unscaled value fits the low word of each 16-byte decimal128.
    unscaled = np.frombuffer(col.buffers()[1], "<i8", 2 * len(col), 16 * col.offset)[0::2]
    scale, width = t.scale, max(t.precision - t.scale, 1)
    a = np.abs(unscaled)
    whole, frac = a // 10**scale, a % 10**scale
    parts = [
        (np.full((len(col), 1), ord("-"), np.uint8), (unscaled < 0)[:, None]),
        (_digits(whole, width), np.arange(width) >= (width - _ndigits(whole, width))[:, None]),
    ]
    if scale:
        parts += [_lit("."), (_digits(frac, scale), True)]
    return _grid(len(col), _valid(col), parts)


def _wide_decimal_text(col: pa.Array) -> pa.Array:
    # Arrow's cast is exact but writes scientific notation for values below 1e-6; those few
    # cells (and only those) are rewritten in Python with their scale kept.
    from decimal import Decimal

    text = pc.cast(col, pa.string())
    sci = pc.fill_null(pc.match_substring(text, "E"), False)
    if not pc.any(sci).as_py():
        return text.cast(pa.binary())
    rows = text.filter(sci).to_pylist()
    fixed = pa.array([format(Decimal(v), "f") for v in rows], pa.string())
    return pc.replace_with_mask(text, sci, fixed).cast(pa.binary())


_FLOAT_PARTS = r"^(?P<sign>-?)(?P<int>\d*)\.?(?P<frac>\d*)(?:e\+?(?P<exp>-?\d+))?$"


def _float_text(col: pa.Array, oid: int) -> pa.Array:
    """float4/float8 as Postgres 12+ prints them: shortest round-trip digits, exponent form
    (two-digit exponent) below 1e-4 and from 1e15 (float4: 1e6), 'NaN', 'Infinity'."""
    if pa.types.is_float16(col.type):
        col = col.cast(pa.float32())
    dtype, limit = (np.float32, 6) if oid == FLOAT4 else (np.float64, 15)
    x = numbers(col, dtype.__name__)
    text = pc.cast(col, pa.string())
    a = np.abs(x)
    with np.errstate(invalid="ignore"):
        fix = ~np.isfinite(x) | (a >= dtype(10.0**limit)) | ((a < dtype(1e-4)) & (a != 0))
    # Arrow picks exponent form by its own rule (3e10 -> '3e+10'): recheck those too.
    data = np.frombuffer(text.buffers()[2], np.uint8)
    if (data == ord("e")).any():
        fix |= np.asarray(pc.fill_null(pc.match_substring(text, "e"), False).to_numpy(zero_copy_only=False))
    if col.null_count:
        fix &= valid_mask(col)
    if not fix.any():
        return text.cast(pa.binary())
    rows = np.flatnonzero(fix)
    return pc.replace_with_mask(text, pa.array(fix), _float_rewrite(text.take(rows), x[rows], limit)).cast(
        pa.binary()
    )


def _float_rewrite(text: pa.Array, x: np.ndarray, limit: int) -> pa.Array:
    parts = pc.extract_regex(pc.if_else(pa.array(np.isfinite(x)), text, "0"), _FLOAT_PARTS)
    sign, whole, frac, exp = (pc.struct_field(parts, i) for i in range(4))
    raw = pc.binary_join_element_wise(whole, frac, "")
    stripped = pc.utf8_ltrim(raw, "0")
    digits = pc.utf8_rtrim(stripped, "0")
    lead = _len(raw) - _len(stripped)
    k = _len(digits)
    e = _len(whole) - 1 - lead + numbers(pc.cast(pc.if_else(pc.equal(exp, ""), "0", exp), pa.int64()))
    # Exponent form: d[.ddd]e+XX
    rest = pc.utf8_slice_codeunits(digits, 1, 1 << 30)
    mantissa = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(digits, 0, 1),
        pc.if_else(pa.array(k > 1), pc.binary_join_element_wise(".", rest, ""), ""),
        "",
    )
    exp_text = pc.utf8_lpad(pc.cast(pa.array(np.abs(e)), pa.string()), 2, "0")
    sci = pc.binary_join_element_wise(sign, mantissa, pa.array(np.where(e < 0, "e-", "e+")), exp_text, "")
    # Fixed form: Arrow only uses exponents where they are shorter, so a fixed value met here
    # is an integer (e >= 0, k <= e + 1) or a fraction that only needs leading zeros.
    big = pc.binary_join_element_wise(digits, pc.binary_repeat("0", pa.array(np.maximum(e + 1 - k, 0))), "")
    small = pc.binary_join_element_wise(
        "0.", pc.binary_repeat("0", pa.array(np.maximum(-e - 1, 0))), digits, ""
    )
    fixed = pc.binary_join_element_wise(sign, pc.if_else(pa.array(e >= 0), big, small), "")
    out = pc.if_else(pa.array((e < -4) | (e >= limit)), sci, fixed)
    out = pc.if_else(pa.array(np.isnan(x)), "NaN", out)
    return pc.if_else(pa.array(np.isinf(x)), pa.array(np.where(x > 0, "Infinity", "-Infinity")), out)


def _len(text: pa.Array) -> np.ndarray:
    return numbers(pc.utf8_length(text))


_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def _hex_pairs(data: np.ndarray) -> np.ndarray:
    """(len, 2) lowercase hex digits of bytes."""
    return np.stack([_HEX[data >> 4], _HEX[data & 15]], axis=1)


def _bytea_text(col: pa.Array) -> pa.Array:
    """bytea_output 'hex': '\\x' then two lowercase hex digits per byte."""
    col = col.cast(pa.binary())
    offsets = np.frombuffer(col.buffers()[1], np.int32, len(col) + 1, col.offset * 4)
    data = np.frombuffer(col.buffers()[2] or b"", np.uint8)[offsets[0] : offsets[-1]]
    bitmap = pa.py_buffer(np.packbits(valid_mask(col), bitorder="little")) if col.null_count else None
    hex_offsets = pa.py_buffer(((offsets - offsets[0]) * 2).astype(np.int32))
    hex_text = pa.Array.from_buffers(
        pa.binary(), len(col), [bitmap, hex_offsets, pa.py_buffer(_hex_pairs(data))]
    )
    return pc.binary_join_element_wise(b"\\x", hex_text, b"")


def _uuid_text(col: pa.Array) -> pa.Array:
    storage = col.storage
    raw = np.frombuffer(storage.buffers()[1], np.uint8, 16 * len(col), 16 * storage.offset)
    chars = _hex_pairs(raw).reshape(len(col), 32)
    parts: list[_Part] = []
    for i, (lo, hi) in enumerate(((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))):
        parts += [_lit("-")] * (i > 0) + [(chars[:, lo:hi], True)]
    return _grid(len(col), _valid(col), parts)


def _time_text(col: pa.Array) -> pa.Array:
    return _grid(len(col), _valid(col), _clock(micros(col)))


def _when(mask: np.ndarray, yes: str, no: str = "") -> pa.Array:
    return pc.if_else(pa.array(mask), yes, no)


def _interval_text(col: pa.Array) -> pa.Array:
    """IntervalStyle postgres: '1 year 2 mons -3 days +04:05:06.5'; a duration has only a clock."""
    n = len(col)
    if pa.types.is_duration(col.type):
        months = mdays = np.zeros(n, np.int64)
        us = micros(col)
    else:
        months, mdays, nanos = interval_parts(col)
        us = np.sign(nanos) * (np.abs(nanos) // 1000)
    years = np.sign(months) * (np.abs(months) // 12)
    pieces, first, before = [], np.ones(n, bool), np.zeros(n, bool)
    for value, unit in ((years, " year"), (months - 12 * years, " mon"), (mdays, " day")):
        text = pc.binary_join_element_wise(
            _when(~first, " "),
            _when(before & (value > 0), "+"),
            pc.cast(pa.array(value), pa.string()),
            unit,
            _when(value != 1, "s"),
            "",
        )
        pieces.append(pc.if_else(pa.array(value != 0), text, ""))
        before = np.where(value != 0, value < 0, before)
        first &= value == 0
    a = np.abs(us)
    hours = a // 3_600_000_000
    width = max(2, len(str(int(hours.max()))) if n else 2)
    sign = np.where(us < 0, ord("-"), ord("+")).astype(np.uint8)[:, None]
    clock = _clock(a, width)
    clock[0] = (clock[0][0], np.arange(width) >= (width - np.maximum(2, _ndigits(hours, width)))[:, None])
    parts = [(_lit(" ")[0], ~first[:, None]), (sign, ((us < 0) | before)[:, None]), *clock]
    time = pc.if_else(pa.array(first | (us != 0)), _grid(n, None, parts), pa.scalar(b"", pa.binary()))
    out = pc.binary_join_element_wise(*[p.cast(pa.binary()) for p in pieces], time, b"")
    return pc.if_else(pa.array(valid_mask(col)), out, pa.scalar(None, pa.binary())) if col.null_count else out


_NEEDS_QUOTES = r'^$|[{},"\\\s]|^[Nn][Uu][Ll][Ll]$'


def _array_text(col: pa.Array, timezone: str) -> pa.Array:
    """array_out: '{1,2,NULL}', elements quoted when empty, 'NULL', or holding {},"\\ or space."""
    if not pa.types.is_list(col.type):
        col = col.cast(pa.list_(col.type.value_type))
    values = col.flatten()
    if (
        pa.types.is_list(values.type)
        or pa.types.is_large_list(values.type)
        or pa.types.is_fixed_size_list(values.type)
    ):
        elements = _array_text(values, timezone)  # a sub-array of a multidimensional array
    else:
        elements = encode_text(values, timezone)
        quoted = pc.binary_join_element_wise(
            b'"', pc.replace_substring_regex(elements, rb'(["\\])', rb"\\\1"), b'"', b""
        )
        elements = pc.if_else(pc.match_substring_regex(elements, _NEEDS_QUOTES.encode()), quoted, elements)
    elements = pc.fill_null(elements, pa.scalar(b"NULL", pa.binary()))
    offsets = pc.subtract(col.offsets, col.offsets[0])
    lists = pa.ListArray.from_arrays(offsets, elements, mask=pc.is_null(col) if col.null_count else None)
    return pc.binary_join_element_wise(b"{", pc.binary_join(lists, b","), b"}", b"")


def encode_text(col: pa.Array, timezone: str = "UTC") -> pa.Array:
    """Text-format cells of a column: a binary array of what Postgres's output function prints."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    t = col.type
    oid, _ = pg_type_of(t)
    if isinstance(t, pa.BaseExtensionType):
        return _uuid_text(col) if oid == UUID else encode_text(col.storage, timezone)
    if oid == BOOL:
        return pc.if_else(col, b"t", b"f")
    if oid in (FLOAT4, FLOAT8):
        return _float_text(col, oid)
    if oid == NUMERIC and pa.types.is_decimal(t):
        return _decimal_text(col)
    if oid == DATE:
        return _date_text(col)
    if oid in (TIMESTAMP, TIMESTAMPTZ):
        return _timestamp_text(col, timezone)
    if oid == TIME:
        return _time_text(col)
    if oid == INTERVAL:
        return _interval_text(col)
    if oid == BYTEA:
        return _bytea_text(col)
    if oid in ARRAY_ELEMENT:
        return _array_text(col, timezone)
    if pa.types.is_null(t):
        return pa.nulls(len(col), pa.binary())
    try:  # integers, strings
        return pc.cast(col, pa.string()).cast(pa.binary())
    except pa.ArrowNotImplementedError:  # structs, maps, unions: Python's rendering, per value
        return pa.array([None if v is None else str(v).encode() for v in col.to_pylist()], pa.binary())
