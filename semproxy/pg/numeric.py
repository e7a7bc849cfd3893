"""Binary numeric cells for a whole decimal column at once.

Postgres's binary numeric is int16 ndigits, weight, sign, dscale, then `ndigits` base-10000
digit groups, leading and trailing zero groups stripped. For decimals that fit in int64
(precision <= 18, or any column whose values all do, such as a SUM typed decimal(38,2)) the
groups are computed with numpy for the whole column; the per-value encoder stays for the rest.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

NEGATIVE = 0x4000
_INT64_DIGITS = 19
_MAX_SCALE = 16  # the fraction, padded to whole groups of 4 digits, fits in int64


def numeric_cells(col: pa.Array) -> pa.Array | None:
    """The column's binary numeric cells, or None when it is not a decimal this handles."""
    t = col.type
    if not pa.types.is_decimal128(t) or not 0 <= t.scale <= _MAX_SCALE:
        return None
    n, scale = len(col), t.scale
    words = np.frombuffer(col.buffers()[1], dtype="<i8")[2 * col.offset : 2 * (col.offset + n)]
    low, high = words[0::2], words[1::2]
    valid = np.ones(n, bool) if col.null_count == 0 else col.is_valid().to_numpy(zero_copy_only=False)
    value = np.where(valid, low, 0)
    if not np.array_equal(np.where(valid, high, 0), value >> 63) or (value == np.iinfo(np.int64).min).any():
        return None  # some value needs more than 64 bits
    magnitude = np.abs(value)
    int_groups = max(-(-(min(t.precision, _INT64_DIGITS) - scale) // 4), 0)
    frac_groups = -(-scale // 4)
    whole, frac = np.divmod(magnitude, 10**scale)
    frac = frac * 10 ** (4 * frac_groups - scale)
    groups = np.empty((n, int_groups + frac_groups), np.int64)
    for k in range(int_groups):
        groups[:, k] = whole // 10_000 ** (int_groups - 1 - k) % 10_000
    for k in range(frac_groups):
        groups[:, int_groups + k] = frac // 10_000 ** (frac_groups - 1 - k) % 10_000
    width = groups.shape[1]
    nonzero = groups != 0
    some = nonzero.any(axis=1)
    first = np.argmax(nonzero, axis=1)
    last = width - 1 - np.argmax(nonzero[:, ::-1], axis=1)
    ndigits = np.where(some, last - first + 1, 0)
    out = np.zeros((n, 4 + width), ">i2")
    out[:, 0] = ndigits
    out[:, 1] = np.where(some, int_groups - 1 - first, 0)
    out[:, 2] = np.where(value < 0, NEGATIVE, 0)
    out[:, 3] = scale
    if width:
        shifted = np.take_along_axis(groups, np.minimum(first[:, None] + np.arange(width), width - 1), axis=1)
        out[:, 4:] = np.where(np.arange(width) < ndigits[:, None], shifted, 0)
    used = np.where(valid, 8 + 2 * ndigits, 0).astype(np.int32)
    keep = (np.arange(4 + width) < (4 + ndigits)[:, None]) & valid[:, None]
    data = out[keep].tobytes()
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(used, out=offsets[1:])
    validity = None if col.null_count == 0 else pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    return pa.Array.from_buffers(pa.binary(), n, [validity, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)])
