"""Encode a whole Arrow batch into DataRow messages, a column at a time.

Each column becomes one Arrow binary array holding every cell's wire bytes (its text or
binary representation), built with pyarrow.compute and numpy: there is no Python call per
cell or per row. The frames are then assembled by one `binary_join_element_wise` over the
row headers, the length prefixes and the cell arrays. Text cells come from pg.text, binary
cells from pg.types.

A batch of a few rows (most metric results) costs more in those calls' fixed overheads than
in its cells, so it is encoded a cell at a time instead: integers, booleans, strings and
binary float8 in Python (the same bytes), other types by the column encoders, and framed
with struct."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from semproxy.pg.messages import RowDescription
from semproxy.pg.text import encode_text
from semproxy.pg.types import (
    INT2,
    INT4,
    check_formats,
    encode_binary,
    field_for_arrow,
    fixed_width,
    format_for,
    pg_type_of,
    valid_mask,
)

_FRAME_LIMIT = 1 << 30  # a larger batch is encoded in halves: binary arrays use int32 offsets
# Up to this many rows, cells are encoded and framed one by one: numpy and pyarrow.compute
# cost tens of microseconds per call whatever the size, more than a few rows take in Python.
SMALL_BATCH = 64
_I16, _I32 = struct.Struct("!h"), struct.Struct("!i")
_NULL_CELL = _I32.pack(-1)


def row_description(schema: pa.Schema, formats: Sequence[int] | None) -> RowDescription:
    """The RowDescription for a result schema and the client's result format codes."""
    check_formats(formats, len(schema))
    return RowDescription(
        tuple(field_for_arrow(f.name, f.type, format_for(formats, i)) for i, f in enumerate(schema))
    )


def encode_batch(batch: pa.RecordBatch, formats: Sequence[int] | None = None, timezone: str = "UTC") -> bytes:
    """All DataRow messages for `batch`, concatenated; text format unless `formats` asks for
    binary. `timezone` is the session's TimeZone, used by timestamptz text."""
    check_formats(formats, batch.num_columns)
    columns = [_plain(col) for col in batch.columns]
    if batch.num_rows <= SMALL_BATCH:
        cells = [_few_cells(col, format_for(formats, i), timezone) for i, col in enumerate(columns)]
        return _small_frames(batch.num_rows, cells)
    arrays = [encode_column(col, format_for(formats, i), timezone) for i, col in enumerate(columns)]
    return _frames(batch.num_rows, arrays)


def encode_column(col: pa.Array, format: int = 0, timezone: str = "UTC") -> pa.Array:
    """One binary array of the wire bytes of each cell (null where the value is NULL)."""
    col = _plain(col)
    out = encode_binary(col) if format == 1 else None
    return out if out is not None else encode_text(col, timezone)


def _plain(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col.dictionary_decode() if pa.types.is_dictionary(col.type) else col


# ---- a few rows -----------------------------------------------------------------------------


def _few_cells(col: pa.Array, format: int, timezone: str) -> list[bytes | None]:
    """The wire bytes of each cell of a short column, as encode_column gives them."""
    encode = _cell_encoder(col.type, format)
    if encode is None:
        return encode_column(col, format, timezone).to_pylist()
    return [None if v is None else encode(v) for v in col.to_pylist()]


@functools.lru_cache(maxsize=256)
def _cell_encoder(t: pa.DataType, format: int) -> Callable[[Any], bytes] | None:
    """A Python encoder of one value, for the types whose bytes are simple to get right."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return str.encode
    if pa.types.is_boolean(t):
        return (lambda v: b"\x01" if v else b"\x00") if format == 1 else (lambda v: b"t" if v else b"f")
    if pa.types.is_integer(t) and not pa.types.is_uint64(t):
        if format == 0:
            return lambda v: b"%d" % v
        oid, _ = pg_type_of(t)
        return struct.Struct(">h" if oid == INT2 else ">i" if oid == INT4 else ">q").pack
    if pa.types.is_float64(t) and format == 1:
        return struct.Struct(">d").pack
    return None


# ---- framing --------------------------------------------------------------------------------


def _lengths(cells: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(byte length of each cell, or -1 for NULL; bytes each cell adds to its frame)."""
    offsets = np.frombuffer(cells.buffers()[1], np.int32, len(cells) + 1, cells.offset * 4)
    size = np.diff(offsets)
    if cells.null_count == 0:
        return size, size + 4
    valid = valid_mask(cells)
    return np.where(valid, size, -1), np.where(valid, size + 4, 4)


def _uniform(cells: pa.Array, length: np.ndarray) -> np.ndarray | None:
    """The cells as an (n, width) byte matrix when all have one width and none is NULL."""
    if cells.null_count or len(length) == 0 or length.min() != length.max():
        return None
    start = int(np.frombuffer(cells.buffers()[1], np.int32, 1, cells.offset * 4)[0])
    data = np.frombuffer(cells.buffers()[2] or b"", np.uint8)
    return data[start : start + len(length) * int(length[0])].reshape(len(length), -1)


def _small_frames(n: int, cells: list[list[bytes | None]]) -> bytes:
    """The same frames as _frames, from the cells of a few rows."""
    count = _I16.pack(len(cells))
    out = bytearray()
    rows = zip(*cells, strict=True) if cells else [()] * n
    for row in rows:
        body = [count]
        for cell in row:
            body += (_NULL_CELL,) if cell is None else (_I32.pack(len(cell)), cell)
        payload = b"".join(body)
        out += b"D" + _I32.pack(len(payload) + 4) + payload
    return bytes(out)


def _frames(n: int, cells: list[pa.Array]) -> bytes:
    if n == 0:
        return b""
    header = np.empty(n, dtype=[("type", "u1"), ("length", ">i4"), ("count", ">i2")])
    header["type"], header["count"] = ord("D"), len(cells)
    total = np.full(n, 6, dtype=np.int64)
    pieces: list[np.ndarray | pa.Array] = [header.view(np.uint8).reshape(n, 7)]
    for col in cells:
        length, used = _lengths(col)
        total += used
        uniform = _uniform(col, length)
        pieces += [length.astype(">i4").view(np.uint8).reshape(n, 4), col if uniform is None else uniform]
    if int(total.sum()) + n > _FRAME_LIMIT and n > 1:
        half = n // 2
        return _frames(half, [c.slice(0, half) for c in cells]) + _frames(
            n - half, [c.slice(half) for c in cells]
        )
    header["length"] = total
    # Runs of fixed-width pieces (header, length prefixes, equal-width cells) become one
    # matrix each, so the join below has as few arguments as possible.
    args: list[pa.Array] = []
    run: list[np.ndarray] = []
    for piece in [*pieces, None]:
        if isinstance(piece, np.ndarray):
            run.append(piece)
            continue
        if run:
            matrix = np.concatenate(run, axis=1) if len(run) > 1 else run[0]
            if piece is None and not args:
                return matrix.tobytes()  # every piece had a fixed width
            args.append(fixed_width(n, np.ascontiguousarray(matrix)))
            run = []
        if piece is not None:
            args.append(piece)
    joined = pc.binary_join_element_wise(*args, b"", null_handling="replace", null_replacement=b"")
    offsets = np.frombuffer(joined.buffers()[1], np.int32, n + 1)
    return joined.buffers()[2][int(offsets[0]) : int(offsets[-1])].to_pybytes()
