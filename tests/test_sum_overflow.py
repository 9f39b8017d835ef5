"""The SUM overflow bound: cheap bounds decide only what the exact min/max would."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from shoal.errors import ExecutionError
from shoal.physical.operators.sum_overflow import (
    _may_overflow,
    narrow_sum,
    restore_int64_sums,
    sums_in_int64,
    widen_risky_sums,
)


def _exact(column: pa.ChunkedArray) -> bool:
    """The reference: rows × the largest magnitude reaches 10**(38 - scale)."""
    values = [v for v in column.to_pylist() if v is not None]
    if not values:
        return False
    limit = Decimal(10) ** (38 - column.type.scale)
    return max(abs(v) for v in values) * len(values) >= limit


@pytest.mark.parametrize("scale", [0, 2, 6])
@pytest.mark.parametrize("digits", [6, 18, 20, 36, 37, 38])
def test_bound_agrees_with_exact_min_max(scale: int, digits: int) -> None:
    rng = np.random.default_rng(digits * 10 + scale)
    values = [
        None if rng.random() < 0.1 else int(rng.integers(-(10**6), 10**6)) * 10 ** (digits - 6)
        for _ in range(200)
    ]
    values = [v if v is None or abs(v) < 10**38 else 10**38 - 1 for v in values]
    typ = pa.decimal128(38, scale)
    array = pa.array([None if v is None else Decimal(v).scaleb(-scale) for v in values], typ)
    # Chunked and sliced: the word bound reads each chunk's own offset.
    column = pa.chunked_array([array.slice(0, 50), array.slice(50)])
    assert _may_overflow(column) == _exact(column)


def test_declared_precision_alone_rules_out_overflow() -> None:
    column = pa.chunked_array([pa.array([Decimal("99999.99")] * 1000, pa.decimal128(7, 2))])
    assert not _may_overflow(column)


def test_risky_sum_is_widened_and_its_overflow_is_an_error() -> None:
    big = Decimal(6 * 10**37)
    table = pa.table({"k": [1, 1], "x": pa.array([big, big], pa.decimal128(38, 0))})
    widened = widen_risky_sums(table, [("x", "sum")])
    assert pa.types.is_decimal256(widened.schema.field("x").type)
    total = widened.group_by(["k"]).aggregate([("x", "sum")]).column("x_sum")
    with pytest.raises(ExecutionError, match="overflow in SUM"):
        narrow_sum(total, pa.decimal128(38, 0))


def _grouped_sums(table: pa.Table, specs: list[tuple[str | list[str], str]]) -> pa.Table:
    """``table`` grouped by ``k`` through the int64 tier, sums restored as decimals."""
    prepared, scales = sums_in_int64(table, specs)
    grouped = prepared.group_by(["k"], use_threads=False).aggregate(specs)
    return restore_int64_sums(grouped, scales).sort_by("k")


@pytest.mark.parametrize("scale", [0, 2])
def test_int64_tier_equals_the_decimal_sums(scale: int) -> None:
    rng = np.random.default_rng(scale)
    raw = [None if rng.random() < 0.2 else int(rng.integers(-(10**9), 10**9)) for _ in range(300)]
    typ = pa.decimal128(15, scale)
    array = pa.array([None if v is None else Decimal(v).scaleb(-scale) for v in raw], typ)
    keys = pa.array(rng.integers(0, 7, len(raw)))
    # Sliced chunks with NULLs, and one group whose values are all NULL.
    values = pa.chunked_array([array.slice(0, 120), array.slice(120)])
    table = pa.table({"k": pa.chunked_array([keys.slice(0, 120), keys.slice(120)]), "v": values})
    table = pa.concat_tables([table, pa.table({"k": [99], "v": pa.array([None], typ)})])
    specs: list[tuple[str | list[str], str]] = [("v", "sum"), ("v", "count")]
    prepared, scales = sums_in_int64(table, specs)
    assert scales == {"v": scale} and prepared.column("v").type == pa.int64()
    expected = table.group_by(["k"], use_threads=False).aggregate(specs).sort_by("k")
    assert _grouped_sums(table, specs).equals(expected)


def test_int64_tier_declines_what_could_wrap_and_what_min_max_reads() -> None:
    near = Decimal(2**61)  # two of them pass 2**62, four reach 2**63
    table = pa.table({"k": [1, 1, 1, 1], "v": pa.array([near] * 4, pa.decimal128(38, 0))})
    _, scales = sums_in_int64(table, [("v", "sum")])
    assert scales == {}
    assert _grouped_sums(table, [("v", "sum")]).column("v_sum").to_pylist() == [near * 4]
    wide = pa.table({"k": [1], "v": pa.array([Decimal(2**70)], pa.decimal128(38, 0))})
    assert sums_in_int64(wide, [("v", "sum")])[1] == {}
    small = pa.table({"k": [1, 2], "v": pa.array([Decimal("1.5"), Decimal("2.5")])})
    assert sums_in_int64(small, [("v", "sum"), ("v", "min")])[1] == {}
