"""Throughput of pg.rows.encode_batch on 1M rows x 5 columns (int8, text, numeric(12,2), date,
float8), text format, against a naive encoder that converts each cell in Python.

    .venv/bin/python bench/rows.py [rows]
"""

from __future__ import annotations

import datetime
import statistics
import struct
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from semproxy.pg.rows import encode_batch


def make_batch(n: int) -> pa.RecordBatch:
    rng = np.random.default_rng(42)
    cents = rng.integers(-(10**9), 10**9, n)
    words = np.stack([cents, np.where(cents < 0, -1, 0)], axis=1)  # little-endian int128s
    return pa.record_batch(
        {
            "id": pa.array(np.arange(n, dtype=np.int64)),
            "region": pc.binary_join_element_wise(
                "region-", pc.cast(pa.array(rng.integers(0, 500, n)), pa.string()), ""
            ),
            "revenue": pa.Array.from_buffers(pa.decimal128(12, 2), n, [None, pa.py_buffer(words)]),
            "day": pa.array(rng.integers(0, 20000, n).astype(np.int32)).cast(pa.date32()),
            "ratio": pa.array(rng.random(n) * 1000),
        }
    )


def naive(batch: pa.RecordBatch) -> bytes:
    """What a per-cell Python server does: to_pylist, str() each value, struct.pack each frame."""
    out = []
    columns = [c.to_pylist() for c in batch.columns]
    for row in zip(*columns, strict=True):
        cells = []
        for v in row:
            if v is None:
                cells.append(b"\xff\xff\xff\xff")
                continue
            text = (
                v.isoformat() if isinstance(v, datetime.date) else repr(v) if isinstance(v, float) else str(v)
            )
            raw = text.encode()
            cells.append(struct.pack("!i", len(raw)) + raw)
        body = struct.pack("!h", len(cells)) + b"".join(cells)
        out.append(b"D" + struct.pack("!i", len(body) + 4) + body)
    return b"".join(out)


def timed(fn: object, *args: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    batch = make_batch(n)
    fast = timed(encode_batch, batch)
    sample = batch.slice(0, min(n, 100_000))
    slow = timed(naive, sample, repeat=1) * n / len(sample)
    size = len(encode_batch(batch))
    print(f"encode_batch: {n / fast:,.0f} rows/s ({fast / n * 1e6:.3f} us/row, {size / n:.1f} bytes/row)")
    print(f"naive per-cell Python: {n / slow:,.0f} rows/s; encode_batch is {slow / fast:.1f}x faster")


if __name__ == "__main__":
    main()
