"""HyperLogLog sketches for ``approx_count_distinct``: mergeable across partitions.

A value's 64-bit row hash (``shoal.hashing``, mixed once more so that a hash exchange
on the same column, which sends equal residues to one task, does not leave registers
unused) picks one of ``M = 2**P`` registers by its top ``P`` bits; the register keeps
the largest *rank* seen, one plus the number of trailing zero bits of the other bits.

A group's sketch is kept *sparse*: a ``list<int32>`` of ``register << 8 | rank`` codes,
one per non-empty register (at most ``M``, so a group holds at most 16 KiB and a group
with few values only a few codes). Partial aggregates build sketches from raw codes,
final aggregates merge them by taking each register's maximum again — the same
reduction, so the answer does not depend on how rows were split into partitions.

The estimate is the HyperLogLog one, ``α·M² / Σ 2^−register`` with linear counting
(``M·ln(M / empty registers)``) while it is at most ``2.5·M``; with ``P = 12`` the
standard error is about 1.6 % (DuckDB's own sketch is another one, so the two answers
differ within that error).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from shoal.hashing import hash_columns

P = 12
M = 1 << P
#: A sketch column's type.
SKETCH_TYPE = pa.list_(pa.int32())
_ALPHA = 0.7213 / (1.0 + 1.079 / M)
_REST_BITS = 64 - P


def _mix(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # splitmix64's finalizer over the row hash xor a constant of its own.
    with np.errstate(over="ignore"):
        x = h ^ np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def codes(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One ``register << 8 | rank`` code per row (NULL for a NULL value)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    h = _mix(hash_columns([values]))
    register = (h >> np.uint64(_REST_BITS)).astype(np.int64)
    rest = h & np.uint64((1 << _REST_BITS) - 1)
    # Trailing zeros: the lowest set bit alone is a power of two, exact as a float.
    lowest = rest & (~rest + np.uint64(1))
    with np.errstate(divide="ignore"):
        zeros = np.where(rest == 0, _REST_BITS, np.log2(lowest.astype(np.float64)))
    rank = zeros.astype(np.int64) + 1
    out = (register << 8 | rank).astype(np.int32)
    valid = values.is_valid()
    return pa.array(out, pa.int32(), mask=~np.asarray(valid.to_numpy(zero_copy_only=False)))


def reduce(groups: npt.NDArray[np.int64], code: npt.NDArray[np.int32], n: int) -> pa.ListArray:
    """The sparse sketch of each of ``n`` groups from (group, code) pairs."""
    register = (code.astype(np.int64) >> 8) & (M - 1)
    rank = code.astype(np.int64) & 0xFF
    key = groups * M + register
    order = np.lexsort((rank, key))
    ordered = key[order]
    # Sorted by register then rank: the last code of each register is its maximum.
    last = np.ones(len(ordered), dtype=bool)
    if len(ordered) > 1:
        last[:-1] = ordered[1:] != ordered[:-1]
    kept_group = ordered[last] // M
    kept_code = code[order][last]
    offsets = np.searchsorted(kept_group, np.arange(n + 1)).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(kept_code, pa.int32()))


def estimate(sketches: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The distinct count of each sketch (0 for NULL or empty), as BIGINT."""
    if isinstance(sketches, pa.ChunkedArray):
        sketches = sketches.combine_chunks() if sketches.num_chunks else pa.array([], SKETCH_TYPE)
    n = len(sketches)
    sketches = (
        pc.fill_null(sketches, pa.scalar([], SKETCH_TYPE)) if sketches.null_count else sketches
    )
    counts = np.asarray(pc.list_value_length(sketches).to_numpy(zero_copy_only=False), np.int64)
    flat = np.asarray(pc.list_flatten(sketches).to_numpy(zero_copy_only=False), np.int64)
    parents = np.asarray(pc.list_parent_indices(sketches).to_numpy(zero_copy_only=False), np.int64)
    weights = np.exp2(-(flat & 0xFF).astype(np.float64))
    total = np.bincount(parents, weights=weights, minlength=n) + (M - counts)
    raw = _ALPHA * M * M / total
    empty = M - counts
    with np.errstate(divide="ignore"):
        linear = M * np.log(M / np.maximum(empty, 1))
    value = np.where((raw <= 2.5 * M) & (empty > 0), linear, raw)
    return pa.array(np.rint(value).astype(np.int64), pa.int64())
