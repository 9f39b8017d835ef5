"""Variance and standard deviation aggregates, as arithmetic over plain aggregates.

``var_samp(x)`` is bound as ``(n·Σx² − (Σx)²) / (n·(n−1))`` over ``n = count(x)``,
``Σx = sum(x)`` and ``Σx² = sum(x·x)``: three mergeable aggregates that the partial /
final split already handles. For integer and decimal ``x`` the sums are exact, so the
numerator is exact and only the final division rounds; for DOUBLE ``x`` it is
computed in floating point (a tiny negative numerator from rounding is taken as 0).
Results are DOUBLE, as in DuckDB: NULL for no rows, and for the sample forms also for
one row.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import pyarrow as pa

from shoal.expr.nodes import Case, Expr, Literal
from shoal.sql import typing as t


class Spread(Enum):
    VAR_SAMP = "var_samp"
    VAR_POP = "var_pop"
    STDDEV_SAMP = "stddev_samp"
    STDDEV_POP = "stddev_pop"

    @property
    def sample(self) -> bool:
        return self in (Spread.VAR_SAMP, Spread.STDDEV_SAMP)

    @property
    def root(self) -> bool:
        return self in (Spread.STDDEV_SAMP, Spread.STDDEV_POP)


def _digits(typ: pa.DataType) -> int | None:
    """Decimal digits of an integer or decimal type (None for floating point)."""
    if pa.types.is_decimal(typ):
        return int(typ.precision)
    if pa.types.is_integer(typ):
        return {8: 3, 16: 5, 32: 10, 64: 19}[typ.bit_width]
    return None


def spread(kind: Spread, arg: Expr, aggregate: Callable[[str, Expr], Expr]) -> Expr:
    """``kind`` of ``arg``; ``aggregate(fn, x)`` registers the plain aggregate ``fn(x)``
    and returns a reference to its result."""
    t.require_numeric(arg, kind.value.upper())
    if pa.types.is_floating(arg.type) and arg.type != pa.float64():
        arg = t.coerce(arg, pa.float64())
    n = aggregate("count", arg)
    total = aggregate("sum", arg)
    square = t.arithmetic("multiply", "*", arg, arg)
    squares = aggregate("sum", square)
    digits = _digits(arg.type)
    if digits is not None:
        # Sums are DECIMAL(38, s); products of two such overflow even decimal256. With
        # fewer than 10**10 rows the sums need 10 more digits than their terms.
        total = t.coerce(total, pa.decimal128(min(38, digits + 10), total.type.scale))
        squares = t.coerce(squares, pa.decimal128(min(38, 2 * digits + 10), squares.type.scale))
    numerator = t.arithmetic(
        "subtract",
        "-",
        t.arithmetic("multiply", "*", n, squares),
        t.arithmetic("multiply", "*", total, total),
    )
    fewer = t.arithmetic("subtract", "-", n, Literal(1, pa.int64())) if kind.sample else n
    denominator = t.arithmetic("multiply", "*", n, fewer)
    as_double = t.coerce(numerator, pa.float64())
    as_double = Case(
        (
            (
                t.comparison("less", as_double, Literal(0.0, pa.float64())),
                Literal(0.0, pa.float64()),
            ),
        ),
        as_double,
        pa.float64(),
    )
    value: Expr = t.arithmetic("divide", "/", as_double, t.coerce(denominator, pa.float64()))
    if kind.root:
        value = t.call("sqrt", [value], pa.float64())
    enough = t.comparison("greater", n, Literal(1 if kind.sample else 0, pa.int64()))
    return Case(((enough, value),), Literal(None, pa.float64()), pa.float64())
