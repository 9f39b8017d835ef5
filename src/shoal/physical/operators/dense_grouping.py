"""Grouping by one integer key without a hash table: runs for a key whose values
never decrease, direct addressing for a small span, one sort for a sparse key with
many rows.

``dense_group_by(table, key, specs)`` computes what
``table.group_by([key]).aggregate(specs)`` would (same column names, one row per key
value present, in ascending key order) when it can do so exactly and cheaply, and
returns None otherwise, leaving the work to Arrow's hash grouping:

* the key is one integer-like column (integers, dates) without NULLs (a NULL key is a
  group of its own, which direct addressing has no slot for);
* its values never decrease (rows clustered by the key: TPC-H's lineitem by
  ``l_orderkey``, Q18's partial aggregate): every group is a run of rows, summed in
  int64 with ``np.add.reduceat`` (exact below 2**63), no slot array at all; or
* its values span at most ``4 × rows`` (or 64 Ki) slots, and never more than 8 Mi — foreign keys such as
  ``l_orderkey`` or ``c_custkey``, whose rows TPC-H-like data cluster or number densely —
  or, failing that, there are at least 32 Ki rows: one stable argsort then numbers the
  distinct values (a final aggregate's hash partition holds a sparse 1/P of the range);
* every aggregate is ``count_all``, ``count`` or ``sum``, and each sum is exact in
  float64: integers and decimals (as unscaled integers) whose largest magnitude times
  the row count stays below 2**53, so every partial sum is an exactly representable
  integer. Float sums are left to Arrow (their rounding would differ).

Why: Arrow's grouper hashes every row and chases a hash table that outgrows the
caches when a chunk holds ~10⁵ groups (Q18's partial aggregate over ``l_orderkey``);
a slot per key value is one ``bincount`` per aggregate.
Holds ``span`` slots (sorted: a few int64 arrays of ``rows``) per aggregate while it runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from shoal.arrays import (
    as_int64,
    decimal128_from_unscaled,
    integer_like,
    pooled_concatenate,
    unscaled_int64,
)

_SLOTS_PER_ROW = 4
_MIN_SLOTS = 1 << 16
_MAX_SLOTS = 1 << 23  # 64 MiB per float64 slot array, whatever the rows
_EXACT = float(2**53)
#: Below this many rows Arrow's hash table stays in cache and a sort does not pay.
_MIN_SORTED_ROWS = 1 << 15


def dense_group_by(
    table: pa.Table, key: str, specs: list[tuple[str | list[str], str]]
) -> pa.Table | None:
    """``table.group_by([key]).aggregate(specs)`` by direct addressing, or None."""
    if any(fn not in ("count_all", "count", "sum") for _, fn in specs):
        return None
    column = table.column(key)
    n = len(column)
    if n == 0 or column.null_count or not integer_like(column.type):
        return None
    values = _int64_values(column)
    assert values is not None
    if _non_decreasing(values):
        return _group_runs(table, key, column.type, values, specs)
    low, high = int(values.min()), int(values.max())
    span = high - low + 1
    # ``present``: the slots that hold a group (None: every slot does).
    present: npt.NDArray[np.int64] | None
    if span <= min(max(_SLOTS_PER_ROW * n, _MIN_SLOTS), _MAX_SLOTS):
        slots = values - low
        rows_per_slot = np.bincount(slots, minlength=span)
        present = np.flatnonzero(rows_per_slot)
        group_keys = present + low
    elif n >= _MIN_SORTED_ROWS:
        # Too sparse for a slot per value (a hash partition of the key's range holds
        # 1/P of its values): number the distinct values by one sort instead, which beats
        # Arrow's hash table once the groups outgrow the caches.
        # (Temporaries dropped as soon as used: with ~10^6 groups a task each array is
        # ~10 MiB, and a final aggregate's merge held ten of them at once.)
        order = np.argsort(values, kind="stable")
        ordered = values[order]
        del values
        starts = np.empty(n, np.bool_)
        starts[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
        group_keys = ordered[starts]
        del ordered
        slots = np.empty(n, np.int64)
        ranks = np.cumsum(starts, dtype=np.int64)
        del starts
        ranks -= 1
        slots[order] = ranks
        del order, ranks
        rows_per_slot = np.bincount(slots)
        present = None  # every distinct value is a slot
    else:
        return None
    out: dict[str, pa.Array] = {}
    for col, fn in specs:
        if fn == "count_all" or col == []:
            out["count_all"] = pa.array(_at(rows_per_slot, present))
            continue
        assert isinstance(col, str)
        result = _aggregate(table.column(col), fn, slots, rows_per_slot, present)
        if result is None:
            return None
        out[f"{col}_{fn}"] = result
    keys = pa.array(group_keys, pa.int64())
    return pa.table({key: _as_key_type(keys, column.type), **out})


def _non_decreasing(values: npt.NDArray[np.int64]) -> bool:
    """Whether ``values`` never decrease (a strided sample first: most keys that are
    not sorted show it there, for a thousandth of the full check)."""
    sample = values[:: max(1, len(values) // 1024)]
    if len(sample) > 1 and not bool(np.all(sample[1:] >= sample[:-1])):
        return False
    return len(values) < 2 or bool(np.all(values[1:] >= values[:-1]))


def _group_runs(
    table: pa.Table,
    key: str,
    key_type: pa.DataType,
    values: npt.NDArray[np.int64],
    specs: list[tuple[str | list[str], str]],
) -> pa.Table | None:
    """The grouping of a key whose values never decrease (rows clustered by it, as
    ``l_orderkey`` in lineitem): each group is a run of rows, summed by one
    ``np.add.reduceat`` per aggregate, exactly in int64 (or None past 2**63)."""
    n = len(values)
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    rows_per_group = np.diff(np.append(starts, n))
    out: dict[str, pa.Array] = {}
    for col, fn in specs:
        if fn == "count_all" or col == []:
            out["count_all"] = pa.array(rows_per_group)
            continue
        assert isinstance(col, str)
        arg = table.column(col)
        valid = None if not arg.null_count else np.asarray(pc.is_valid(arg))
        counts = (
            rows_per_group if valid is None else np.add.reduceat(valid.astype(np.int64), starts)
        )
        if fn == "count":
            out[f"{col}_{fn}"] = pa.array(counts)
            continue
        unscaled = _summable(arg, valid, 2**63)
        if unscaled is None:
            return None
        totals = np.add.reduceat(unscaled, starts)
        out[f"{col}_{fn}"] = _sums_array(totals, counts, arg.type)
    keys = pa.array(values[starts], pa.int64())
    return pa.table({key: _as_key_type(keys, key_type), **out})


def _as_key_type(keys: pa.Array, key_type: pa.DataType) -> pa.Array:
    if pa.types.is_date32(key_type):
        return keys.cast(pa.int32()).view(pa.date32())
    return keys if keys.type == key_type else keys.cast(key_type)


def _sums_array(
    totals: npt.NDArray[np.int64], counts: npt.NDArray[np.int64], arg_type: pa.DataType
) -> pa.Array:
    """Per-group int64 (unscaled) sums as the sum's Arrow type; NULL where a group had
    no value."""
    missing = counts == 0  # SUM over no values is NULL
    mask = missing if missing.any() else None
    if pa.types.is_decimal(arg_type):
        return decimal128_from_unscaled(totals, arg_type.scale, None if mask is None else ~mask)
    return pa.array(totals, pa.int64(), mask=mask)


def _at(values: npt.NDArray[np.int64], present: npt.NDArray[np.int64] | None) -> npt.NDArray[Any]:
    """``values`` at the slots that hold a group."""
    return values if present is None else values[present]


def _int64_values(column: pa.ChunkedArray) -> npt.NDArray[np.int64] | None:
    """An integer-like or DECIMAL128 column's (unscaled) values as one int64 array,
    chunk by chunk (no combined copy of the 16-byte decimals), or None when a decimal
    needs more than 64 bits."""
    parts: list[npt.NDArray[np.int64]] = []
    for chunk in column.chunks:
        part = unscaled_int64(chunk) if pa.types.is_decimal128(chunk.type) else as_int64(chunk)
        if part is None:
            return None
        parts.append(part)
    if len(parts) == 1:
        return parts[0]
    return pooled_concatenate(parts) if parts else np.zeros(0, np.int64)


def _summable(
    arg: pa.ChunkedArray, valid: npt.NDArray[np.bool_] | None, exact_below: float
) -> npt.NDArray[np.int64] | None:
    """``arg``'s (unscaled) values as int64, NULLs as 0, or None when they are not
    integers or decimals (float sums round differently from Arrow's) or when their
    largest magnitude times the row count could reach ``exact_below``."""
    if not (integer_like(arg.type) or pa.types.is_decimal128(arg.type)):
        return None
    unscaled = _int64_values(arg)
    if unscaled is None:
        return None
    if valid is not None:
        unscaled = np.where(valid, unscaled, 0)
    largest = max(abs(int(unscaled.min(initial=0))), abs(int(unscaled.max(initial=0))))
    return None if largest * len(unscaled) >= exact_below else unscaled


def _aggregate(
    arg: pa.ChunkedArray,
    fn: str,
    slots: npt.NDArray[np.int64],
    rows_per_slot: npt.NDArray[np.int64],
    present: npt.NDArray[np.int64] | None,
) -> pa.Array | None:
    valid = None if not arg.null_count else np.asarray(pc.is_valid(arg))
    counts = (
        rows_per_slot if valid is None else np.bincount(slots[valid], minlength=len(rows_per_slot))
    )
    if fn == "count":
        return pa.array(_at(counts, present))
    unscaled = _summable(arg, valid, _EXACT)
    if unscaled is None:
        return None
    sums = np.bincount(slots, weights=unscaled, minlength=len(rows_per_slot))
    del unscaled
    totals = np.rint(_at(sums, present)).astype(np.int64)
    del sums
    return _sums_array(totals, _at(counts, present), arg.type)
