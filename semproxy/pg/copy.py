"""COPY ... TO STDOUT: Arrow batches as CopyData messages, one row per message (as Postgres
sends them), in COPY's text or CSV format, a column at a time with pyarrow.compute.

    text   cells as their text output, backslash-escaped (\\\\ \\t \\n \\r), NULL as \\N
    csv    cells quoted when they hold the delimiter, a quote, CR or LF, or equal the NULL
           string (empty by default, so an empty string is "" and NULL is nothing)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from semproxy.pg.text import encode_text
from semproxy.pg.types import fixed_width

_TEXT_ESCAPES = ((b"\\", b"\\\\"), (b"\t", b"\\t"), (b"\n", b"\\n"), (b"\r", b"\\r"))


@dataclass(frozen=True)
class CopyFormat:
    csv: bool = False
    delimiter: str = ""  # "" = the format's default: tab for text, comma for CSV
    null: str | None = None  # None = the format's default: \N for text, "" for CSV
    header: bool = False

    @property
    def sep(self) -> bytes:
        return (self.delimiter or ("," if self.csv else "\t")).encode()

    @property
    def null_text(self) -> bytes:
        return (self.null if self.null is not None else ("" if self.csv else "\\N")).encode()


def _cells(col: pa.Array, fmt: CopyFormat, timezone: str) -> pa.Array:
    cells = encode_text(col, timezone)
    if fmt.csv:
        needs = pc.or_(
            pc.match_substring_regex(cells, b'["\\r\\n]|' + _regex_literal(fmt.sep)),
            pc.equal(cells, pa.scalar(fmt.null_text, pa.binary())),
        )
        quoted = pc.binary_join_element_wise(b'"', pc.replace_substring(cells, b'"', b'""'), b'"', b"")
        cells = pc.if_else(needs, quoted, cells)
    else:
        for raw, escaped in _TEXT_ESCAPES:
            cells = pc.replace_substring(cells, raw, escaped)
    return pc.fill_null(cells, pa.scalar(fmt.null_text, pa.binary()))


def _regex_literal(text: bytes) -> bytes:
    return b"".join(b"\\" + bytes([c]) if not chr(c).isalnum() else bytes([c]) for c in text)


def _frame_lines(lines: pa.Array) -> bytes:
    """Each line as one CopyData message."""
    n = len(lines)
    if n == 0:
        return b""
    header = np.empty(n, dtype=[("type", "u1"), ("length", ">i4")])
    header["type"] = ord("d")
    header["length"] = pc.binary_length(lines).to_numpy(zero_copy_only=False) + 4
    framed = pc.binary_join_element_wise(fixed_width(n, header.view(np.uint8).reshape(n, 5)), lines, b"")
    offsets = np.frombuffer(framed.buffers()[1], np.int32, n + 1, framed.offset * 4)
    return framed.buffers()[2][int(offsets[0]) : int(offsets[-1])].to_pybytes()


def copy_rows(batch: pa.RecordBatch, fmt: CopyFormat, timezone: str = "UTC") -> bytes:
    """CopyData messages, one per row of `batch`."""
    if batch.num_rows == 0:
        return b""
    cells = [_cells(col, fmt, timezone) for col in batch.columns]
    joined = pc.binary_join_element_wise(*cells, fmt.sep)
    return _frame_lines(pc.binary_join_element_wise(joined, b"\n", b""))


def copy_header(names: list[str], fmt: CopyFormat) -> bytes:
    """The CSV header line as one CopyData message."""
    cells = _cells(pa.array(names, pa.string()), fmt, "UTC")
    line = fmt.sep.join(c.as_py() for c in cells) + b"\n"
    return _frame_lines(pa.array([line], pa.binary()))
