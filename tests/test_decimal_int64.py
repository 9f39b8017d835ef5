"""Decimal +, -, × in int64 give what the decimal128 kernels give, or step aside."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from shoal.expr import evaluate as ev
from shoal.expr.nodes import Call, ColumnRef


def _column(rng: np.random.Generator, n: int, p: int, s: int, nulls: bool) -> pa.Array:
    digits = min(p, 17)
    values = [
        None if nulls and rng.random() < 0.2 else Decimal(int(v)).scaleb(-s)
        for v in rng.integers(-(10**digits), 10**digits, n)
    ]
    return pa.array(values, pa.decimal128(p, s))


def _kernels(fn: str, a: object, b: object, typ: pa.DataType) -> pa.Array:
    """The decimal128 kernels' answer, computed exactly in Python."""
    left = a.to_pylist() if isinstance(a, pa.Array) else None
    right = b.to_pylist() if isinstance(b, pa.Array) else None
    n = len(left if left is not None else right)  # type: ignore[arg-type]
    lv = left or [a.as_py()] * n  # type: ignore[union-attr]
    rv = right or [b.as_py()] * n  # type: ignore[union-attr]
    op = {"add": Decimal.__add__, "subtract": Decimal.__sub__, "multiply": Decimal.__mul__}[fn]
    return pa.array(
        [None if x is None or y is None else op(x, y) for x, y in zip(lv, rv, strict=True)], typ
    )


CASES = [
    # fn, left (p, s), right (p, s), result type
    ("multiply", (15, 2), (16, 2), pa.decimal128(32, 4)),
    ("multiply", (32, 4), (16, 2), pa.decimal128(38, 6)),
    ("add", (15, 2), (15, 4), pa.decimal128(18, 4)),
    ("subtract", (16, 2), (15, 2), pa.decimal128(17, 2)),
]


@pytest.mark.parametrize("fn, lt, rt, typ", CASES)
@pytest.mark.parametrize("nulls", [False, True])
def test_same_values_as_decimal128(fn: str, lt: tuple, rt: tuple, typ: pa.DataType, nulls: bool):
    rng = np.random.default_rng(3)
    # Values kept small enough that the int64 path takes them (operands up to 10**9).
    a = pc.cast(_column(rng, 300, 9, lt[1], nulls), pa.decimal128(*lt)).slice(7)
    b = pc.cast(_column(rng, 300, 9, rt[1], nulls), pa.decimal128(*rt)).slice(0, 293)
    e = Call(fn, (ColumnRef("a", a.type), ColumnRef("b", b.type)), typ)
    fast = ev._decimal_int64(e, [a, b])
    assert fast is not None
    assert fast.type == typ
    assert fast.to_pylist() == _kernels(fn, a, b, typ).to_pylist()


def test_scalar_operand() -> None:
    d = pa.array([Decimal("0.05"), None, Decimal("0.10")], pa.decimal128(15, 2))
    one = pa.scalar(Decimal(1), pa.decimal128(1, 0))
    e = Call("subtract", (ColumnRef("one", one.type), ColumnRef("d", d.type)), pa.decimal128(16, 2))
    fast = ev._decimal_int64(e, [one, d])
    assert fast is not None
    assert fast.to_pylist() == [Decimal("0.95"), None, Decimal("0.90")]


def test_steps_aside_past_int64() -> None:
    big = pa.array([Decimal(10**17), Decimal(3)], pa.decimal128(20, 0))
    e = Call("multiply", (ColumnRef("a", big.type), ColumnRef("b", big.type)), pa.decimal128(38, 0))
    assert ev._decimal_int64(e, [big, big]) is None  # 10**34 needs decimal128


def test_steps_aside_when_the_result_passes_its_precision() -> None:
    # The kernels raise for this; the int64 path must leave it to them.
    a = pa.array([Decimal(999), Decimal(2)], pa.decimal128(3, 0))
    e = Call("multiply", (ColumnRef("a", a.type), ColumnRef("b", a.type)), pa.decimal128(5, 0))
    assert ev._decimal_int64(e, [a, a]) is None
    small = pa.array([Decimal(99), Decimal(2)], pa.decimal128(3, 0))
    fast = ev._decimal_int64(e, [small, small])
    assert fast is not None and fast.to_pylist() == [Decimal(9801), Decimal(4)]


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
