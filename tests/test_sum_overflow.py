"""The SUM overflow bound: cheap bounds decide only what the exact min/max would."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from shoal.errors import ExecutionError
from shoal.physical.operators.sum_overflow import _may_overflow, narrow_sum, widen_risky_sums


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
