"""COPY TO STDOUT encoding, byte-exact: one CopyData per row, text escapes and CSV quoting
as PostgreSQL writes them; the CopyOutResponse layout."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from semproxy.pg import messages as m
from semproxy.pg.client import decode_backend
from semproxy.pg.codec import encode
from semproxy.pg.copy import CopyFormat, copy_header, copy_rows

BATCH = pa.record_batch(
    {
        "s": pa.array(["plain", "tab\there", None, "", 'quo"te,comma', "back\\slash\nline"]),
        "n": pa.array([1, None, 3, 4, 5, 6], pa.int64()),
        "d": pa.array([dt.date(2024, 1, 2)] * 6),
    }
)


def _lines(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 1] == b"d"
        length = int.from_bytes(data[pos + 1 : pos + 5], "big")
        out.append(data[pos + 5 : pos + 1 + length])
        pos += 1 + length
    return out


def test_text_format_escapes_and_nulls() -> None:
    assert _lines(copy_rows(BATCH, CopyFormat())) == [
        b"plain\t1\t2024-01-02\n",
        b"tab\\there\t\\N\t2024-01-02\n",
        b"\\N\t3\t2024-01-02\n",
        b"\t4\t2024-01-02\n",
        b'quo"te,comma\t5\t2024-01-02\n',
        b"back\\\\slash\\nline\t6\t2024-01-02\n",
    ]


def test_csv_quotes_only_what_needs_it_and_tells_empty_from_null() -> None:
    assert _lines(copy_rows(BATCH, CopyFormat(csv=True))) == [
        b"plain,1,2024-01-02\n",
        b"tab\there,,2024-01-02\n",
        b",3,2024-01-02\n",
        b'"",4,2024-01-02\n',
        b'"quo""te,comma",5,2024-01-02\n',
        b'"back\\slash\nline",6,2024-01-02\n',
    ]


def test_csv_delimiter_null_and_header() -> None:
    fmt = CopyFormat(csv=True, delimiter=";", null="NULL", header=True)
    assert _lines(copy_header(["s", "a;b"], fmt)) == [b's;"a;b"\n']
    assert _lines(copy_rows(BATCH.slice(2, 2), fmt)) == [b"NULL;3;2024-01-02\n", b";4;2024-01-02\n"]


def test_empty_batch_is_no_messages() -> None:
    assert copy_rows(BATCH.slice(0, 0), CopyFormat()) == b""


def test_copy_out_response_layout() -> None:
    raw = encode(m.CopyOutResponse(0, (0, 0, 0)))
    assert raw == b"H\0\0\0\x0d\0\0\x03\0\0\0\0\0\0"
    assert decode_backend(b"H", raw[5:]) == m.CopyOutResponse(0, (0, 0, 0))
