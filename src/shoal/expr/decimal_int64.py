"""Exact DECIMAL ``+``, ``-`` and ``*`` on unscaled int64 integers.

A tree of decimal additions, subtractions and multiplications (Q1's
``l_extendedprice * (1 - l_discount) * (1 + l_tax)``) is evaluated on the operands'
unscaled values (1.50 at scale 2 is 150) with numpy, and only its root is written
back as DECIMAL128. Why: Arrow's decimal128 kernels work on 128-bit words a value at
a time, and every intermediate result would be a 16-byte-per-row array of its own;
int64 arithmetic is vectorized and the intermediates stay 8 bytes a row.

Exactness: every node carries a bound on its values' magnitude — from the leaves'
actual minimum and maximum, multiplied or added up the tree — and the fast path is
taken only while that bound stays below 2**62 and within the node's SQL precision.
Otherwise (or for operands that are no DECIMAL128 or integer column or constant) it
declines, and the caller's Arrow path computes the node, raising its overflow errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from shoal.arrays import decimal128_from_unscaled, unscaled_int64
from shoal.expr.nodes import Call, Expr

#: Bound on a value's magnitude under which int64 arithmetic cannot wrap (2**62 leaves
#: room for the sign and for one more addition of two bounded terms).
_SAFE = 1 << 62
_ARITHMETIC = frozenset({"add", "subtract", "multiply"})


@dataclass(frozen=True)
class _Unscaled:
    """The int64 form of a node's values, for the per-batch memo: an intermediate
    shared by two expressions (Q1's ``l_extendedprice * (1 - l_discount)``) is
    computed once, in the form its parents use."""

    values: npt.NDArray[np.int64] | int  # an int for a constant
    scale: int
    bound: int
    valid: npt.NDArray[np.bool_] | None  # None: no NULLs


@dataclass(frozen=True)
class _MemoKey:
    expr: Expr


def decimal_arithmetic(
    e: Call,
    batch: pa.RecordBatch,
    memo: dict[Any, Any] | None,
    evaluate: Callable[[Expr, pa.RecordBatch, Any], Any],
) -> pa.Array | None:
    """``e`` — a decimal ``+``/``-``/``*`` — as a DECIMAL128 array computed in int64,
    or None when the fast path does not apply (see the module docstring)."""
    if e.fn not in _ARITHMETIC or not pa.types.is_decimal128(e.type):
        return None
    found = _tree(e, batch, memo, evaluate)
    if found is None or isinstance(found.values, int):
        return None
    return decimal128_from_unscaled(
        np.ascontiguousarray(found.values), found.scale, found.valid, e.type
    )


def _tree(
    e: Expr,
    batch: pa.RecordBatch,
    memo: dict[Any, Any] | None,
    evaluate: Callable[[Expr, pa.RecordBatch, Any], Any],
) -> _Unscaled | None:
    if not (isinstance(e, Call) and e.fn in _ARITHMETIC and pa.types.is_decimal128(e.type)):
        return _leaf(evaluate(e, batch, memo))
    key = _MemoKey(e)
    if memo is not None and key in memo:
        found: _Unscaled | None = memo[key]
        return found
    left = _tree(e.args[0], batch, memo, evaluate)
    right = _tree(e.args[1], batch, memo, evaluate) if left is not None else None
    result = _combine(e, left, right) if left is not None and right is not None else None
    if memo is not None:
        memo[key] = result
    return result


def _combine(e: Call, a: _Unscaled, b: _Unscaled) -> _Unscaled | None:
    scale = e.type.scale
    if e.fn == "multiply":
        bound = a.bound * b.bound
        if a.scale + b.scale != scale or bound >= _SAFE:
            return None
        values = a.values * b.values
    else:
        if max(a.scale, b.scale) != scale:
            return None
        fa, fb = 10 ** (scale - a.scale), 10 ** (scale - b.scale)
        bound = a.bound * fa + b.bound * fb
        if bound >= _SAFE:
            return None
        va = a.values * fa if fa != 1 else a.values
        vb = b.values * fb if fb != 1 else b.values
        values = va + vb if e.fn == "add" else va - vb
    if bound >= 10**e.type.precision:
        return None  # may not fit the SQL type: the Arrow path checks and says so
    if a.valid is None or b.valid is None:
        valid = a.valid if b.valid is None else b.valid
    else:
        valid = a.valid & b.valid
    return _Unscaled(values, scale, bound, valid)


def _leaf(v: Any) -> _Unscaled | None:
    """A DECIMAL128 or integer array or constant in int64 form, or None."""
    if isinstance(v, pa.ChunkedArray):
        if v.num_chunks != 1:
            return None
        v = v.chunk(0)
    t = v.type
    decimal = pa.types.is_decimal128(t)
    if not decimal and not (pa.types.is_integer(t) and not pa.types.is_uint64(t)):
        return None
    scale = t.scale if decimal else 0
    if isinstance(v, pa.Scalar):
        if not v.is_valid:
            return None
        exact = v.as_py().scaleb(scale) if decimal else v.as_py()
        value = int(exact)
        if value != exact or abs(value) >= _SAFE:
            return None
        return _Unscaled(value, scale, abs(value), None)
    if not isinstance(v, pa.Array) or len(v) == 0:
        return None
    values = unscaled_int64(v) if decimal else np.asarray(v.fill_null(0)).astype(np.int64)
    if values is None:
        return None
    valid = None
    if v.null_count:
        # NULL slots hold anything: zero them so they bound nothing and wrap nothing.
        valid = np.asarray(pc.is_valid(v))
        values = np.where(valid, values, 0)
    # -2**63 has no positive counterpart; its bound alone rules the fast path out.
    bound = max(abs(int(values.min())), abs(int(values.max())))
    return _Unscaled(values, scale, bound, valid)
