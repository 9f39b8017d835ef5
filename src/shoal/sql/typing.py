"""Typed construction of expressions: coercions, operator typing, constant folding."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

import pyarrow as pa

from shoal.errors import ShoalError, TypeMismatchError
from shoal.expr.evaluate import evaluate
from shoal.expr.nodes import COMPARISONS, Call, Cast, ColumnRef, Expr, Literal
from shoal.types import (
    arithmetic_type,
    common_type,
    is_decimal,
    is_float,
    is_integer,
    is_numeric,
    is_string,
    sql_type_name,
)

_EMPTY_BATCH = pa.RecordBatch.from_pydict({})


def coerce(e: Expr, target: pa.DataType) -> Expr:
    """``e`` as ``target``: literals are converted now, other expressions get a Cast."""
    if e.type == target:
        return e
    if isinstance(e, Literal):
        return literal_as(e, target)
    return Cast(e, target)


def literal_as(lit: Literal, target: pa.DataType) -> Literal:
    if lit.value is None:
        return Literal(None, target)
    v = lit.value
    try:
        if pa.types.is_date(target) and isinstance(v, str):
            return Literal(datetime.date.fromisoformat(v.strip()), target)
        if is_decimal(target):
            d = decimal.Decimal(str(v)).quantize(decimal.Decimal(1).scaleb(-target.scale))
            pa.scalar(d, target)  # range check
            return Literal(d, target)
        scalar = pa.scalar(v, lit.type).cast(target)
        return Literal(scalar.as_py(), target)
    except (
        ValueError,
        pa.ArrowInvalid,
        pa.ArrowNotImplementedError,
        decimal.InvalidOperation,
    ) as err:
        raise TypeMismatchError(f"cannot convert {lit} to {sql_type_name(target)}: {err}") from None


def _exactly_as(lit: Literal, target: pa.DataType) -> Literal | None:
    """``lit`` converted to ``target`` if the value survives unchanged, else None."""
    if lit.value is None or lit.type == target:
        return None
    numeric = (is_integer(lit.type) or is_decimal(lit.type)) and (
        is_integer(target) or is_decimal(target)
    )
    if not numeric:
        return None
    try:
        converted = literal_as(lit, target)
    except TypeMismatchError:
        return None
    if decimal.Decimal(str(converted.value)) != decimal.Decimal(str(lit.value)):
        return None
    return converted


def literal_from_python(v: Any) -> Literal:
    if v is None:
        return Literal(None, pa.null())
    if isinstance(v, bool):
        return Literal(v, pa.bool_())
    if isinstance(v, int):
        if -(2**31) <= v < 2**31:
            return Literal(v, pa.int32())
        if -(2**63) <= v < 2**63:
            return Literal(v, pa.int64())
        if abs(v) < 10**38:  # beyond BIGINT: an exact DECIMAL(38,0) (DuckDB: HUGEINT)
            return Literal(decimal.Decimal(v), pa.decimal128(38, 0))
        raise TypeMismatchError(f"integer literal {v} is out of range")
    if isinstance(v, float):
        return Literal(v, pa.float64())
    if isinstance(v, decimal.Decimal):
        sign, digits, exponent = v.as_tuple()
        assert isinstance(exponent, int)
        scale = max(0, -exponent)
        precision = max(len(digits), scale + 1)
        return Literal(v, pa.decimal128(min(precision, 38), scale))
    if isinstance(v, str):
        return Literal(v, pa.string())
    if isinstance(v, datetime.date):
        return Literal(v, pa.date32())
    raise TypeMismatchError(f"unsupported literal {v!r}")


def fold(e: Expr) -> Expr:
    """Evaluate ``e`` now when it depends on no column."""
    if isinstance(e, Literal | ColumnRef) or e.columns():
        return e
    try:
        value = evaluate(e, _EMPTY_BATCH)
    except (ShoalError, pa.ArrowException, OverflowError):
        return e  # leave it for run time, where the error names its stage
    if isinstance(value, pa.Scalar):
        try:
            return Literal(value.as_py(), e.type)
        except (ValueError, OverflowError):
            return e  # no Python value (a date past year 9999): computed at run time
    return e


def call(fn: str, args: list[Expr], type_: pa.DataType, options: tuple[Any, ...] = ()) -> Expr:
    return fold(Call(fn, tuple(args), type_, options))


def comparison(fn: str, left: Expr, right: Expr) -> Expr:
    assert fn in COMPARISONS
    if pa.types.is_null(left.type) and pa.types.is_null(right.type):
        return Literal(None, pa.bool_())  # NULL compared with NULL is NULL
    # column <op> constant: convert the constant to the column's type when that
    # loses nothing (11 -> 11.00 for a DECIMAL(15,2)), so the column is not cast
    # row by row and the scan can still prune with min/max statistics.
    for col, lit in ((left, right), (right, left)):
        if isinstance(lit, Literal) and not isinstance(col, Literal):
            exact = _exactly_as(lit, col.type)
            if exact is not None:
                pair = (col, exact) if col is left else (exact, col)
                return call(fn, list(pair), pa.bool_())
    target = common_type(left.type, right.type, f"comparison {fn}")
    return call(fn, [coerce(left, target), coerce(right, target)], pa.bool_())


def arithmetic(fn: str, op: str, left: Expr, right: Expr) -> Expr:
    result = arithmetic_type(op, left.type, right.type)
    # Operands stay in their own types (the kernels align decimal scales);
    # only NULL literals need a type.
    if pa.types.is_null(left.type):
        left = Literal(None, right.type if not pa.types.is_null(right.type) else result)
    if pa.types.is_null(right.type):
        right = Literal(None, left.type)
    if is_float(result):
        left, right = coerce(left, pa.float64()), coerce(right, pa.float64())
    return call(fn, [left, right], result)


def boolean(fn: str, args: list[Expr]) -> Expr:
    checked = []
    for a in args:
        if pa.types.is_null(a.type):
            a = Literal(None, pa.bool_())
        if not pa.types.is_boolean(a.type):
            raise TypeMismatchError(
                f"{fn.upper()} needs BOOLEAN operands, got {sql_type_name(a.type)} ({a})"
            )
        checked.append(a)
    return call(fn, checked, pa.bool_())


def unify(exprs: list[Expr], context: str) -> tuple[list[Expr], pa.DataType]:
    """Coerce expressions to their common type (for CASE, COALESCE, IN, UNION)."""
    target: pa.DataType = pa.null()
    for e in exprs:
        target = common_type(target, e.type, context)
    if pa.types.is_null(target):
        target = pa.int32()
    return [coerce(e, target) for e in exprs], target


def require_numeric(e: Expr, what: str) -> None:
    if not is_numeric(e.type):
        raise TypeMismatchError(f"{what} needs a number, got {sql_type_name(e.type)} ({e})")


def require_string(e: Expr, what: str) -> Expr:
    if pa.types.is_null(e.type):
        return Literal(None, pa.string())
    if not is_string(e.type):
        raise TypeMismatchError(f"{what} needs a string, got {sql_type_name(e.type)} ({e})")
    return e


def require_integer_literal(e: Expr, what: str) -> int:
    if isinstance(e, Literal) and is_integer(e.type) and e.value is not None:
        return int(e.value)
    raise TypeMismatchError(f"{what} needs an integer constant, got {e}")
