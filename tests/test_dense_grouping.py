"""Direct-addressed grouping gives what Arrow's hash grouping gives, or declines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from shoal.physical.operators.dense_grouping import dense_group_by

SPECS: list[tuple[str | list[str], str]] = [
    ("i", "sum"),
    ("i", "count"),
    ("d", "sum"),
    ("d", "count"),
    ([], "count_all"),
]


def _table(rng: np.random.Generator, n: int, key_type: pa.DataType, nulls: bool) -> pa.Table:
    keys = rng.integers(-50, 200, n)
    ints = [
        None if nulls and rng.random() < 0.2 else int(v) for v in rng.integers(-(10**6), 10**6, n)
    ]
    decs = [
        None if nulls and rng.random() < 0.2 else Decimal(int(v)) / 100
        for v in rng.integers(-(10**9), 10**9, n)
    ]
    key = pa.array(keys, pa.int64())
    if pa.types.is_date32(key_type):
        key = pa.array([dt.date(2000, 1, 1) + dt.timedelta(days=int(k)) for k in keys], key_type)
    elif key_type != pa.int64():
        key = key.cast(key_type)
    return pa.table(
        {"k": key, "i": pa.array(ints, pa.int64()), "d": pa.array(decs, pa.decimal128(38, 2))}
    )


def _sorted(t: pa.Table) -> dict[str, list]:
    t = t.sort_by("k")
    return {name: t.column(name).to_pylist() for name in sorted(t.column_names)}


@pytest.mark.parametrize("key_type", [pa.int64(), pa.int32(), pa.int16(), pa.date32()])
@pytest.mark.parametrize("nulls", [False, True])
def test_same_groups_and_values_as_arrow(key_type: pa.DataType, nulls: bool) -> None:
    table = _table(np.random.default_rng(7), 5000, key_type, nulls)
    dense = dense_group_by(table, "k", SPECS)
    assert dense is not None
    expected = table.group_by(["k"], use_threads=False).aggregate(SPECS)
    assert dense.schema.field("k").type == key_type
    assert _sorted(dense) == _sorted(expected)


def test_all_null_group_sums_to_null() -> None:
    table = pa.table({"k": [1, 1, 2], "i": pa.array([None, None, 5], pa.int64())})
    out = dense_group_by(table, "k", [("i", "sum"), ("i", "count")])
    assert out is not None
    assert _sorted(out) == {"i_count": [0, 1], "i_sum": [None, 5], "k": [1, 2]}


@pytest.mark.parametrize(
    "table, specs",
    [
        (pa.table({"k": [1, None], "i": [1, 2]}), [("i", "sum")]),  # NULL key
        (pa.table({"k": [10**9, 0], "i": [1, 2]}), [("i", "sum")]),  # sparse key, few rows
        (pa.table({"k": ["a", "b"], "i": [1, 2]}), [("i", "sum")]),  # not an integer key
        (pa.table({"k": [1, 2], "f": [1.0, 2.0]}), [("f", "sum")]),  # float sums: rounding
        (pa.table({"k": [1, 2], "i": [1, 2]}), [("i", "min")]),  # not a count or sum
        # not exact in float64 (keys out of order: no runs to sum in int64)
        (pa.table({"k": [1, 2, 1], "i": [2**52, 1, 2**52]}), [("i", "sum")]),
        # sorted, but the int64 sum could wrap
        (pa.table({"k": [1, 1], "i": [2**62, 2**62]}), [("i", "sum")]),
    ],
)
def test_declines_what_it_cannot_do_exactly(table: pa.Table, specs: list) -> None:
    assert dense_group_by(table, "k", specs) is None


@pytest.mark.parametrize("precision", [15, 38])
def test_chunked_columns_and_narrow_decimals(precision: int) -> None:
    # Several chunks (the aggregate's tables are its batches), sliced, with NULLs, and
    # DECIMAL(15, 2) as well as (38, 2): both read as unscaled int64 chunk by chunk.
    table = _table(np.random.default_rng(11), 3000, pa.int64(), True)
    table = table.set_column(2, "d", table.column("d").cast(pa.decimal128(precision, 2)))
    chunked = pa.Table.from_batches(
        [b.slice(3) for b in table.to_batches(max_chunksize=700)], table.schema
    )
    dense = dense_group_by(chunked, "k", SPECS)
    assert dense is not None
    expected = chunked.group_by(["k"], use_threads=False).aggregate(SPECS)
    assert _sorted(dense) == _sorted(expected)


@pytest.mark.parametrize("nulls", [False, True])
def test_sparse_keys_are_grouped_by_a_sort(nulls: bool) -> None:
    # A hash partition of a wide key range: too sparse for a slot per value, enough rows
    # for the sort; every value of the key appears several times, in no order.
    rng = np.random.default_rng(3)
    n = 1 << 16
    table = _table(rng, n, pa.int64(), nulls)
    sparse = pa.array(rng.integers(0, n // 4, n) * 1_000_003 - 7, pa.int64())
    table = table.set_column(0, "k", sparse)
    out = dense_group_by(table, "k", SPECS)
    assert out is not None
    expected = table.group_by(["k"], use_threads=False).aggregate(SPECS)
    assert _sorted(out) == _sorted(expected)
    assert out.column("k").to_pylist() == sorted(out.column("k").to_pylist())


@pytest.mark.parametrize("key_type", [pa.int64(), pa.date32()])
@pytest.mark.parametrize("nulls", [False, True])
def test_sorted_keys_are_grouped_by_runs(key_type: pa.DataType, nulls: bool) -> None:
    # Rows clustered by a sparse key (lineitem by l_orderkey), in several chunks whose
    # boundaries split runs: one group per run, equal to Arrow's answer.
    table = _table(np.random.default_rng(5), 6000, key_type, nulls)
    table = table.sort_by("k")
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=701), table.schema)
    out = dense_group_by(chunked, "k", SPECS)
    assert out is not None
    expected = chunked.group_by(["k"], use_threads=False).aggregate(SPECS)
    assert out.schema.field("k").type == key_type
    assert _sorted(out) == _sorted(expected)
    assert out.column("k").to_pylist() == sorted(out.column("k").to_pylist())


def test_runs_sum_exactly_past_float64() -> None:
    # Past 2**53 float64 rounds; the runs' int64 sums do not.
    table = pa.table({"k": [1, 1, 5, 5], "i": pa.array([2**53, 1, 2**60, 3], pa.int64())})
    out = dense_group_by(table, "k", [("i", "sum"), ([], "count_all")])
    assert out is not None
    assert out.to_pydict() == {"k": [1, 5], "i_sum": [2**53 + 1, 2**60 + 3], "count_all": [2, 2]}
