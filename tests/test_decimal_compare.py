"""Decimal comparisons with a constant on unscaled int64 give what the decimal128
kernels give, or step aside."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from shoal.expr import evaluate as ev


def _column(rng: np.random.Generator, n: int, p: int, s: int, nulls: bool) -> pa.Array:
    digits = min(p, 17)
    values = [
        None if nulls and rng.random() < 0.2 else Decimal(int(v)).scaleb(-s)
        for v in rng.integers(-(10**digits), 10**digits, n)
    ]
    return pa.array(values, pa.decimal128(p, s))


@pytest.mark.parametrize("kernel", list(ev._NUMPY_COMPARE))
@pytest.mark.parametrize("constant", ["24", "0.05", "-3.1", "0.055"])
@pytest.mark.parametrize("precision", [15, 38])
def test_comparison_with_a_constant_as_decimal128(kernel: str, constant: str, precision: int):
    rng = np.random.default_rng(5)
    column = pc.cast(_column(rng, 400, 4, 2, True), pa.decimal128(precision, 2)).slice(5)
    column = pa.concat_arrays([column, pa.array([Decimal("24"), Decimal("0.05")], column.type)])
    if constant == "0.055":  # finer than the column's scale: left to Arrow
        scalar = pa.scalar(Decimal(constant), pa.decimal128(18, 3))
        assert ev._decimal_compare(kernel, column, scalar) is None
        return
    scalar = pa.scalar(Decimal(constant), pa.decimal128(18, 2))
    expected = pc.call_function(kernel, [column, scalar])
    flipped = pc.call_function(kernel, [scalar, column])
    fast = ev._decimal_compare(kernel, column, scalar)
    assert fast is not None and fast.to_pylist() == expected.to_pylist()
    swapped = ev._decimal_compare(kernel, scalar, column)
    assert swapped is not None and swapped.to_pylist() == flipped.to_pylist()
