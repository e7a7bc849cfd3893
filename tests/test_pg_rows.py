"""DataRow encoding of Arrow batches. The expected text is what PostgreSQL 18 prints for the
same values (checked with psql against the embedded server); binary expectations are its
*_send functions' output."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semproxy.errors import FeatureNotSupported, InvalidParameterValue, ProtocolViolation
from semproxy.pg import messages as m
from semproxy.pg.client import BackendDecoder
from semproxy.pg.codec import encode
from semproxy.pg.rows import _frames, _small_frames, encode_batch, encode_column, row_description

D = Decimal
TS = dt.datetime
UUID = pa.ExtensionArray.from_storage(pa.uuid(), pa.array([bytes(range(16)), None], pa.binary(16)))

TEXT_CASES: list[tuple[pa.Array, list[str | None]]] = [
    (pa.array([True, False, None]), ["t", "f", None]),
    (
        pa.array([0, -5, None, 2**63 - 1, -(2**63)]),
        ["0", "-5", None, "9223372036854775807", "-9223372036854775808"],
    ),
    (pa.array([255, 0], pa.uint8()), ["255", "0"]),
    (pa.array([2**64 - 1], pa.uint64()), ["18446744073709551615"]),
    (
        pa.array(
            [
                0.1,
                1e20,
                1e15,
                1e14,
                1.5e-7,
                3e10,
                -0.0,
                math.inf,
                -math.inf,
                math.nan,
                5e-324,
                123456789012345680.0,
                0.0001,
                -2.5e-5,
                None,
            ]
        ),
        [
            "0.1",
            "1e+20",
            "1e+15",
            "100000000000000",
            "1.5e-07",
            "30000000000",
            "-0",
            "Infinity",
            "-Infinity",
            "NaN",
            "5e-324",
            "1.2345678901234568e+17",
            "0.0001",
            "-2.5e-05",
            None,
        ],
    ),
    (
        pa.array([0.1, 1e6, 123456, 1234567, 3.4028235e38, 1e-5, None], pa.float32()),
        ["0.1", "1e+06", "123456", "1.234567e+06", "3.4028235e+38", "1e-05", None],
    ),
    (
        pa.array([D("12.50"), D("-0.50"), D("0.00"), D("-1234567891.99"), None], pa.decimal128(12, 2)),
        ["12.50", "-0.50", "0.00", "-1234567891.99", None],
    ),
    (pa.array([D("-0.05"), D("0.99")], pa.decimal128(2, 2)), ["-0.05", "0.99"]),
    (
        pa.array([D("1.2345678"), D("-0.0000001"), None], pa.decimal128(18, 8)),
        ["1.23456780", "-0.00000010", None],
    ),
    (
        pa.array([D("0.0000001"), D("-1E-37"), D("1.5")], pa.decimal128(38, 37)),
        [
            "0.0000001000000000000000000000000000000",
            "-0.0000000000000000000000000000000000001",
            "1.5000000000000000000000000000000000000",
        ],
    ),
    (pa.array([D("1.2E+3")], pa.decimal128(5, -2)), ["1200"]),
    (
        pa.array(
            [
                dt.date(1, 1, 1),
                dt.date(999, 1, 1),
                dt.date(1999, 12, 31),
                dt.date(2040, 2, 29),
                dt.date(9999, 12, 31),
                None,
            ]
        ),
        ["0001-01-01", "0999-01-01", "1999-12-31", "2040-02-29", "9999-12-31", None],
    ),
    (pa.array([-800000, -719163, 3000000], pa.date32()), ["0222-09-04 BC", "0001-12-31 BC", "10183-09-21"]),
    (
        pa.array([dt.date(2024, 5, 1)] * 5 + [None], pa.date32()),
        ["2024-05-01"] * 5 + [None],
    ),  # the per-day table
    (pa.array([86_400_000 * 3], pa.date64()), ["1970-01-04"]),
    (
        pa.array(
            [
                TS(2024, 1, 2, 3, 4, 5, 500000),
                TS(2024, 1, 2, 3, 4, 10),
                TS(1969, 12, 31, 23, 59, 59, 999999),
                TS(2039, 1, 1, 0, 0, 0, 120),
                None,
            ],
            pa.timestamp("us"),
        ),
        [
            "2024-01-02 03:04:05.5",
            "2024-01-02 03:04:10",
            "1969-12-31 23:59:59.999999",
            "2039-01-01 00:00:00.00012",
            None,
        ],
    ),
    (pa.array([1_700_000_000_123_456_789], pa.timestamp("ns")), ["2023-11-14 22:13:20.123456"]),
    (pa.array([1_700_000_000], pa.timestamp("s")), ["2023-11-14 22:13:20"]),
    (
        pa.array([TS(2024, 1, 2, 3, 4, 5, 500000), None], pa.timestamp("us", "UTC")),
        ["2024-01-02 03:04:05.5+00", None],
    ),
    (pa.array([-63_517_780_799_500_000], pa.timestamp("us")), ["0044-03-15 12:00:00.5 BC"]),
    (pa.array([dt.time(3, 4, 5, 500), None, dt.time(23, 59, 59)]), ["03:04:05.0005", None, "23:59:59"]),
    (
        pa.array(
            [dt.timedelta(seconds=90061.5), dt.timedelta(0), -dt.timedelta(seconds=1), None],
            pa.duration("us"),
        ),
        ["25:01:01.5", "00:00:00", "-00:00:01", None],
    ),
    (
        pa.array(
            [
                (14, 3, 4_000_000_000),
                (-1, -1, 0),
                (0, 0, 0),
                (1, -2, 3_000_000_000),
                (0, 0, -3_600_000_000_000),
                (0, 1, -3_600_000_000_000),
                None,
            ],
            pa.month_day_nano_interval(),
        ),
        [
            "1 year 2 mons 3 days 00:00:04",
            "-1 mons -1 days",
            "00:00:00",
            "1 mon -2 days +00:00:03",
            "-01:00:00",
            "1 day -01:00:00",
            None,
        ],
    ),
    (pa.array([b"\x00\xff", b"", None]), ["\\x00ff", "\\x", None]),
    (UUID, ["00010203-0405-0607-0809-0a0b0c0d0e0f", None]),
    (pa.array(["héllo", None, ""]), ["héllo", None, ""]),
    (pa.array(["a", "b", "a"]).dictionary_encode(), ["a", "b", "a"]),
    (pa.array([[1, 2, None], [], None, [3]]), ["{1,2,NULL}", "{}", None, "{3}"]),
    (pa.array([["a", "b c", "", "NULL", 'x"y\\', None]]), ['{a,"b c","","NULL","x\\"y\\\\",NULL}']),
    (pa.array([[[1, 2], [3, 4]]]), ["{{1,2},{3,4}}"]),
    (pa.array([[TS(2024, 1, 1)]]), ['{"2024-01-01 00:00:00"}']),
    (pa.array([[0.1, 1e20]]), ["{0.1,1e+20}"]),
    (pa.nulls(2), [None, None]),
]


def _text(cells: pa.Array) -> list[str | None]:
    return [None if v is None else v.decode() for v in cells.to_pylist()]


@pytest.mark.parametrize(("arr", "expected"), TEXT_CASES, ids=[str(a.type) for a, _ in TEXT_CASES])
def test_text_matches_postgres(arr: pa.Array, expected: list[str | None]) -> None:
    assert _text(encode_column(arr)) == expected
    if len(arr) > 1:  # an offset into the buffers must not shift anything
        assert _text(encode_column(arr.slice(1))) == expected[1:]


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC", ["2024-01-02 03:04:05.5+00", "2024-07-02 03:04:05+00"]),
        ("Europe/Paris", ["2024-01-02 04:04:05.5+01", "2024-07-02 05:04:05+02"]),
        ("Asia/Kolkata", ["2024-01-02 08:34:05.5+05:30", "2024-07-02 08:34:05+05:30"]),
        ("America/New_York", ["2024-01-01 22:04:05.5-05", "2024-07-01 23:04:05-04"]),
    ],
)
def test_timestamptz_in_the_session_zone(zone: str, expected: list[str]) -> None:
    arr = pa.array([TS(2024, 1, 2, 3, 4, 5, 500000), TS(2024, 7, 2, 3, 4, 5)], pa.timestamp("us", "UTC"))
    assert _text(encode_column(arr, 0, zone)) == expected
    assert _text(encode_column(arr.cast(pa.timestamp("ns", "UTC")), 0, zone)) == expected


def _rows(data: bytes) -> list[m.DataRow]:
    dec = BackendDecoder()
    dec.feed(data)
    out = []
    while (msg := dec.next_message()) is not None:
        assert isinstance(msg, m.DataRow)
        out.append(msg)
    return out


def test_batch_frames_equal_one_data_row_each() -> None:
    batch = pa.record_batch(
        {
            "id": pa.array([1, None, 3]),
            "name": pa.array(["a", "bb", None]),
            "day": pa.array([dt.date(2024, 1, 1)] * 3),
            "amount": pa.array([D("1.50"), None, D("-2.00")], pa.decimal128(12, 2)),
        }
    )
    expected = [
        m.DataRow((b"1", b"a", b"2024-01-01", b"1.50")),
        m.DataRow((None, b"bb", b"2024-01-01", None)),
        m.DataRow((b"3", None, b"2024-01-01", b"-2.00")),
    ]
    assert encode_batch(batch) == b"".join(encode(r) for r in expected)
    assert encode_batch(batch.slice(1, 2)) == b"".join(encode(r) for r in expected[1:])


def test_empty_and_columnless_batches() -> None:
    assert encode_batch(pa.record_batch({"x": pa.array([], pa.int64())})) == b""
    assert encode_batch(pa.record_batch({"x": [1, 2]}).select([])) == b"D\0\0\0\x06\0\0" * 2


BINARY_CASES: list[tuple[pa.Array, list[bytes | None]]] = [
    (pa.array([True, None]), [b"\x01", None]),
    (pa.array([-2, 1], pa.int16()), [b"\xff\xfe", b"\0\x01"]),
    (pa.array([-2, None], pa.int32()), [b"\xff\xff\xff\xfe", None]),
    (pa.array([-2]), [b"\xff" * 7 + b"\xfe"]),
    (pa.array([0.1]), [bytes.fromhex("3fb999999999999a")]),
    (pa.array([1.5], pa.float32()), [bytes.fromhex("3fc00000")]),
    (pa.array([dt.date(1999, 12, 31)]), [b"\xff\xff\xff\xff"]),
    (pa.array([TS(2000, 1, 1, 0, 0, 1, 500000)], pa.timestamp("us")), [bytes.fromhex("000000000016e360")]),
    (
        pa.array([TS(2000, 1, 1, 0, 0, 1, 500000)], pa.timestamp("ms", "UTC")),
        [bytes.fromhex("000000000016e360")],
    ),
    (
        pa.array([(1, 2, 3_000_000_000)], pa.month_day_nano_interval()),
        [bytes.fromhex("00000000002dc6c00000000200000001")],
    ),
    (UUID, [bytes(range(16)), None]),
    (pa.array(["hé", None]), ["hé".encode(), None]),
    (pa.array([b"\0\1"], pa.large_binary()), [b"\0\1"]),
    (
        pa.array([D("12.50"), D("0.00"), None], pa.decimal128(12, 2)),
        [bytes.fromhex("0002000000000002000c1388"), bytes.fromhex("0000000000000002"), None],
    ),
    (pa.array([D("-0.05")], pa.decimal128(2, 2)), [bytes.fromhex("0001ffff4000000201f4")]),
    (pa.array([D("123456.789")], pa.decimal128(10, 3)), [bytes.fromhex("0003000100000003000c0d801ed2")]),
    (pa.array([D("0.0000001")], pa.decimal128(38, 37)), [bytes.fromhex("0001fffe00000025000a")]),
    (pa.array([10000], pa.uint64()), [bytes.fromhex("00010001000000000001")]),
]


@pytest.mark.parametrize(("arr", "expected"), BINARY_CASES, ids=[str(a.type) for a, _ in BINARY_CASES])
def test_binary_matches_postgres_send_functions(arr: pa.Array, expected: list[bytes | None]) -> None:
    assert encode_column(arr, 1).to_pylist() == expected


def test_format_codes_per_column() -> None:
    batch = pa.record_batch({"a": pa.array([1]), "b": pa.array([2])})
    assert _rows(encode_batch(batch, [0, 1]))[0].values == (b"1", b"\0" * 7 + b"\x02")
    assert _rows(encode_batch(batch, [1]))[0].values == (b"\0" * 7 + b"\x01", b"\0" * 7 + b"\x02")
    with pytest.raises(ProtocolViolation):
        encode_batch(batch, [0, 1, 0])
    with pytest.raises(InvalidParameterValue):
        encode_batch(batch, [2])
    with pytest.raises(FeatureNotSupported):
        encode_batch(pa.record_batch({"a": pa.array([[1]])}), [1])


def test_row_description() -> None:
    schema = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(12, 2)), ("day", pa.date32())])
    desc = row_description(schema, [1])
    assert [(f.name, f.type_oid, f.type_size, f.type_modifier, f.format) for f in desc.fields] == [
        ("id", 20, 8, -1, 1),
        ("amount", 1700, -1, 786438, 1),
        ("day", 1082, 4, -1, 1),
    ]
    assert [f.format for f in row_description(schema, None).fields] == [0, 0, 0]


# ---- round trip: decode what was encoded with a per-cell reference decoder ----------------

PARSE: dict[str, Callable[[str], Any]] = {
    "i": int,
    "f": lambda s: {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(s, float(s)),
    "d": Decimal,
    "t": dt.date.fromisoformat,
    "ts": dt.datetime.fromisoformat,
    "s": str,
}


def _pg_float(x: float) -> str:
    """Reference float8out: shortest digits (Python's repr), exponent form below 1e-4 and
    from 1e15, two-digit exponent."""
    if math.isnan(x) or math.isinf(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    if x == 0:
        return "-0" if math.copysign(1, x) < 0 else "0"
    sign, digits, exp = Decimal(repr(x)).normalize().as_tuple()
    assert isinstance(exp, int)
    text = "".join(map(str, digits))
    e = len(text) - 1 + exp
    if -4 <= e < 15:
        body = format(Decimal(repr(abs(x))).normalize(), "f")
    else:
        body = text[0] + ("." + text[1:] if len(text) > 1 else "") + f"e{'-' if e < 0 else '+'}{abs(e):02d}"
    return "-" * sign + body


floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [1e15, 1e14, 1e-4, 9.999e-5, 3e10, 1e22]
)
columns = st.one_of(
    st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), max_size=20).map(
        lambda v: ("i", pa.array(v, pa.int64()))
    ),
    st.lists(st.none() | floats, max_size=20).map(lambda v: ("f", pa.array(v, pa.float64()))),
    st.lists(st.none() | st.decimals(-(10**8), 10**8, places=4, allow_nan=False), max_size=20).map(
        lambda v: ("d", pa.array(v, pa.decimal128(13, 4)))
    ),
    st.lists(st.none() | st.decimals(-(10**8), 10**8, places=9, allow_nan=False), max_size=20).map(
        lambda v: ("d", pa.array(v, pa.decimal128(18, 9)))
    ),
    st.lists(st.none() | st.dates(), max_size=20).map(lambda v: ("t", pa.array(v, pa.date32()))),
    st.lists(st.none() | st.datetimes(), max_size=20).map(lambda v: ("ts", pa.array(v, pa.timestamp("us")))),
    st.lists(st.none() | st.text(), max_size=20).map(lambda v: ("s", pa.array(v, pa.string()))),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(columns, min_size=1, max_size=4))
def test_round_trip(cols: list[tuple[str, pa.Array]]) -> None:
    n = min(len(a) for _, a in cols)
    batch = pa.record_batch([a.slice(0, n) for _, a in cols], names=[f"c{i}" for i in range(len(cols))])
    rows = _rows(encode_batch(batch))
    assert len(rows) == n
    for c, (kind, arr) in enumerate(cols):
        for r, value in enumerate(arr.slice(0, n).to_pylist()):
            cell = rows[r].values[c]
            if value is None:
                assert cell is None
                continue
            assert cell is not None
            got = PARSE[kind](cell.decode())
            if kind == "f":
                assert cell.decode() == _pg_float(value)
                assert got == value or (math.isnan(got) and math.isnan(value))
            elif kind == "d":
                assert got == value and -got.as_tuple().exponent == arr.type.scale  # type: ignore[operator]
            else:
                assert got == value


def test_float32_round_trip_is_shortest() -> None:
    values = np.array([0.1, 1 / 3, 1e6, 99999.99, 1e-5, 16777216.0], np.float32)
    got = _text(encode_column(pa.array(values)))
    assert got == ["0.1", "0.33333334", "1e+06", "99999.99", "1e-05", "1.6777216e+07"]
    assert [np.float32(float(s)) for s in got if s] == list(values)


few_columns = columns | st.one_of(
    st.lists(st.none() | st.booleans(), max_size=20).map(lambda v: ("b", pa.array(v, pa.bool_()))),
    st.lists(st.none() | st.integers(-(2**15), 2**15 - 1), max_size=20).map(
        lambda v: ("i", pa.array(v, pa.int16()))
    ),
    st.lists(st.none() | st.integers(-(2**31), 2**31 - 1), max_size=20).map(
        lambda v: ("i", pa.array(v, pa.int32()))
    ),
    st.lists(st.none() | st.integers(0, 2**32 - 1), max_size=20).map(
        lambda v: ("i", pa.array(v, pa.uint32()))
    ),
    st.lists(st.none() | st.integers(0, 255), max_size=20).map(lambda v: ("i", pa.array(v, pa.uint8()))),
    st.lists(st.none() | st.text(), max_size=20).map(lambda v: ("s", pa.array(v, pa.large_string()))),
    st.lists(st.none() | st.sampled_from(["a", "b"]), max_size=20).map(
        lambda v: ("s", pa.array(v, pa.string()).dictionary_encode())
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(few_columns, min_size=0, max_size=4), st.integers(0, 20), st.sampled_from([0, 1]))
def test_small_batches_encode_as_large_ones(cols: list[tuple[str, pa.Array]], n: int, fmt: int) -> None:
    """Up to SMALL_BATCH rows are encoded and framed cell by cell: the same bytes as the
    vectorized column encoders and numpy framing give."""
    n = min([n, *(len(a) for _, a in cols)])
    arrays = [encode_column(a.slice(0, n), fmt) for _, a in cols]
    expected = _frames(n, arrays)
    assert _small_frames(n, [a.to_pylist() for a in arrays]) == expected
    if cols:
        batch = pa.record_batch([a.slice(0, n) for _, a in cols], names=[f"c{i}" for i in range(len(cols))])
        assert encode_batch(batch, [fmt]) == expected
