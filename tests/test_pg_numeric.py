"""Binary numeric cells computed for a whole column equal the per-value encoder's, cell for cell."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from semproxy.pg.numeric import numeric_cells
from semproxy.pg.types import _numeric_binary


def per_value(col: pa.Array) -> list[bytes | None]:
    return [None if v is None else _numeric_binary(Decimal(v)) for v in col.to_pylist()]


@st.composite
def decimal_columns(draw: st.DrawFn) -> pa.Array:
    precision = draw(st.integers(1, 38))
    scale = draw(st.integers(0, min(precision, 16)))
    bound = min(10**precision - 1, 2**63 - 1)
    values = draw(st.lists(st.one_of(st.none(), st.integers(-bound, bound)), max_size=40))
    col = pa.array([None if v is None else Decimal(v).scaleb(-scale) for v in values], pa.decimal128(precision, scale))
    start = draw(st.integers(0, len(values)))
    return col.slice(start)  # slices have an offset into the buffers


@settings(max_examples=300, deadline=None)
@given(decimal_columns())
def test_matches_the_per_value_encoder(col: pa.Array) -> None:
    cells = numeric_cells(col)
    assert cells is not None
    assert cells.to_pylist() == per_value(col)


def test_known_values() -> None:
    col = pa.array([Decimal("0.00"), Decimal("-12.50"), Decimal("10000.00"), Decimal("0.05"), None], pa.decimal128(12, 2))
    cells = numeric_cells(col)
    assert cells is not None
    got = cells.to_pylist()
    assert got[0] == bytes.fromhex("0000 0000 0000 0002")
    assert got[1] == bytes.fromhex("0002 0000 4000 0002 000c 1388")  # 12 | 5000, negative
    assert got[2] == bytes.fromhex("0001 0001 0000 0002 0001")  # 1 x 10000^1
    assert got[3] == bytes.fromhex("0001 ffff 0000 0002 01f4")  # 500 x 10000^-1
    assert got[4] is None


def test_wide_types_with_small_values_are_vectorised() -> None:
    col = pa.array([Decimal("123456789012.34"), Decimal("-0.01"), None], pa.decimal128(38, 2))  # as SUM types it
    cells = numeric_cells(col)
    assert cells is not None and cells.to_pylist() == per_value(col)


def test_values_beyond_64_bits_are_left_to_the_per_value_encoder() -> None:
    assert numeric_cells(pa.array([Decimal(10) ** 30], pa.decimal128(38, 2))) is None
