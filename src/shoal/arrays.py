"""Arrow arrays as numpy integers, and back: the views the numpy kernels work on.

Integer-like columns (integers up to 32-bit unsigned or 64-bit signed, dates,
booleans) as int64 — for join key codes and direct-addressed grouping — and
DECIMAL128 values as their unscaled int64 integers (1.50 at scale 2 is 150) — for
exact decimal arithmetic and sums done in integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from shoal.types import MAX_DECIMAL_PRECISION

#: Below this a pooled array is an ordinary numpy one (malloc reuses small blocks).
_POOLED_MIN_BYTES = 2 << 20


def _pooled_empty(n: int, kind: np.dtype[Any]) -> npt.NDArray[Any]:
    """An uninitialised 1-d array of ``n`` values in memory from Arrow's pool."""
    return np.frombuffer(pa.allocate_buffer(n * kind.itemsize), dtype=kind, count=n)


def pooled_full(n: int, value: int | bool, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """``np.full(n, value, dtype)``, its memory from Arrow's pool when it is large.

    Why: numpy's arrays come from malloc, which maps every block of 2 MiB or more
    afresh (``memory/pool.py``, ``fix_mmap_threshold``), so each large array is new
    pages for the kernel to fault in and zero; Arrow's allocator keeps freed pages for
    reuse (``memory/allocator.py``). A 24 MiB slot array filled 50 times: 0.7 ms each
    against 2.2-3 ms. For arrays an operator builds once and keeps (slot arrays,
    bitmaps over a key range), not per-batch temporaries.
    """
    kind = np.dtype(dtype)
    if n * kind.itemsize < _POOLED_MIN_BYTES:
        return np.full(n, value, dtype=kind)
    out = _pooled_empty(n, kind)
    out.fill(value)
    return out


def pooled_concatenate(parts: Sequence[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """``np.concatenate(parts)`` of 1-d arrays of one dtype, into memory from Arrow's
    pool when the result is large (why: ``pooled_full``). For the whole-side arrays
    (a build side's hashes, a merge's key values), not per-batch pieces."""
    kind = parts[0].dtype
    total = sum(len(p) for p in parts)
    if total * kind.itemsize < _POOLED_MIN_BYTES:
        return np.concatenate(parts)
    out = _pooled_empty(total, kind)
    np.concatenate(parts, out=out)
    return out


def integer_like(t: pa.DataType) -> bool:
    """Whether every value of ``t`` is an int64 (uint64 can exceed 2**63)."""
    if pa.types.is_uint64(t):
        return False
    return pa.types.is_integer(t) or pa.types.is_date32(t) or pa.types.is_boolean(t)


def as_int64(col: pa.Array) -> npt.NDArray[np.int64]:
    """An integer-like column's values as int64 (NULLs as 0: callers mask them out)."""
    if pa.types.is_date32(col.type):
        col = col.view(pa.int32())
    if col.type != pa.int64():
        col = pc.cast(col, pa.int64())
    if col.null_count:
        col = col.fill_null(0)
    return np.asarray(col)


#: Every DECIMAL of at most this many digits has its unscaled values in int64.
_INT64_DIGITS = 18


def unscaled_int64(arr: pa.Array) -> npt.NDArray[np.int64] | None:
    """A DECIMAL128 array's unscaled values as int64 (NULLs as whatever their slot
    holds), or None when some valid value needs more than 64 bits. Of a DECIMAL(≤18)
    the low words themselves (a strided view, no copy, no check: such values fit)."""
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64)
    words = words[2 * arr.offset : 2 * (arr.offset + len(arr))].reshape(-1, 2)
    low, high = words[:, 0], words[:, 1]
    if arr.type.precision <= _INT64_DIGITS:
        return low
    fits = high == (low >> 63)
    if arr.null_count:
        fits |= ~np.asarray(pc.is_valid(arr))
    return low if fits.all() else None


def decimal128_from_unscaled(
    values: npt.NDArray[np.int64],
    scale: int,
    valid: npt.NDArray[np.bool_] | None = None,
    type_: pa.DataType | None = None,
) -> pa.Array:
    """DECIMAL(38, scale) — or ``type_``, whose precision the caller knows they fit —
    holding these unscaled values (NULL where ``valid`` is False)."""
    validity = None if valid is None or valid.all() else pa.array(valid).buffers()[1]
    # Written in place into a buffer of Arrow's pool: low word, sign-extended high word.
    data = pa.allocate_buffer(16 * len(values))
    words = np.frombuffer(data, dtype=np.int64)
    words[0::2] = values
    np.right_shift(values, 63, out=words[1::2])
    return pa.Array.from_buffers(
        type_ or pa.decimal128(MAX_DECIMAL_PRECISION, scale), len(values), [validity, data]
    )


def int64_minus(col: pa.Array, low: int) -> npt.NDArray[np.int64]:
    """``value - low`` per row of an integer-like column, as int64, in one numpy pass
    over the column's own buffer where its type allows (no cast to int64 first). NULL
    slots hold whatever their buffer holds: callers mask them out."""
    if pa.types.is_date32(col.type):
        col = col.view(pa.int32())
    data = col.buffers()[1] if len(col) and not pa.types.is_boolean(col.type) else None
    if not pa.types.is_integer(col.type) or data is None:
        return as_int64(col) - np.int64(low)
    dtype = np.dtype(col.type.to_pandas_dtype())
    values = np.frombuffer(data, dtype=dtype, count=len(col) + col.offset)
    return np.subtract(values[col.offset :], np.int64(low), dtype=np.int64)
