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


def _too_wide(typ: pa.DataType) -> bool:
    """Decimals too wide for exact sums of squares (their product would pass 76 digits):
    computed in DOUBLE, as DuckDB does for all of them."""
    digits = _digits(typ)
    return digits is not None and digits > 28


def spread(kind: Spread, arg: Expr, aggregate: Callable[[str, Expr], Expr]) -> Expr:
    """``kind`` of ``arg``; ``aggregate(fn, x)`` registers the plain aggregate ``fn(x)``
    and returns a reference to its result."""
    t.require_numeric(arg, kind.value.upper())
    if pa.types.is_floating(arg.type) and arg.type != pa.float64() or _too_wide(arg.type):
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


class Pairwise(Enum):
    """Aggregates of two arguments over the rows where neither is NULL."""

    COVAR_POP = "covar_pop"
    COVAR_SAMP = "covar_samp"
    CORR = "corr"


def _both(x: Expr, other: Expr) -> Expr:
    """``x`` where ``other`` is not NULL, else NULL (so the sums skip the pair)."""
    present = t.call("is_not_null", [other], pa.bool_())
    return Case(((present, x),), Literal(None, x.type), x.type)


def _prepared(arg: Expr, what: str) -> Expr:
    t.require_numeric(arg, what)
    if pa.types.is_floating(arg.type) and arg.type != pa.float64():
        return t.coerce(arg, pa.float64())
    if pa.types.is_null(arg.type):
        return Literal(None, pa.float64())
    if _too_wide(arg.type):
        return t.coerce(arg, pa.float64())
    return arg


def _sums(x: Expr, aggregate: Callable[[str, Expr], Expr]) -> tuple[Expr, Expr]:
    """(Σx, Σx²) with the sums narrowed so their products fit (as ``spread``)."""
    total = aggregate("sum", x)
    squares = aggregate("sum", t.arithmetic("multiply", "*", x, x))
    digits = _digits(x.type)
    if digits is not None:
        total = t.coerce(total, pa.decimal128(min(38, digits + 10), total.type.scale))
        squares = t.coerce(squares, pa.decimal128(min(38, 2 * digits + 10), squares.type.scale))
    return total, squares


def pairwise(kind: Pairwise, y: Expr, x: Expr, aggregate: Callable[[str, Expr], Expr]) -> Expr:
    """covar_pop / covar_samp / corr of ``(y, x)``, DOUBLE as in DuckDB: the co-moment
    ``n·Σxy − Σx·Σy`` is exact for integers and decimals (as in ``spread``); covar_pop
    is NULL without pairs, covar_samp with fewer than two, corr is NaN when either
    argument is constant (DuckDB)."""
    y = _prepared(y, kind.value.upper())
    x = _prepared(x, kind.value.upper())
    y, x = _both(y, x), _both(x, y)
    n = aggregate("count", x)
    sx, sxx = _sums(x, aggregate)
    sy, syy = _sums(y, aggregate)
    sxy = aggregate("sum", t.arithmetic("multiply", "*", x, y))
    dx, dy = _digits(x.type), _digits(y.type)
    if dx is not None and dy is not None:
        sxy = t.coerce(sxy, pa.decimal128(min(38, dx + dy + 11), sxy.type.scale))

    def comoment(a: Expr, b: Expr, ab: Expr) -> Expr:
        exact = t.arithmetic(
            "subtract",
            "-",
            t.arithmetic("multiply", "*", n, ab),
            t.arithmetic("multiply", "*", a, b),
        )
        return t.coerce(exact, pa.float64())

    co = comoment(sx, sy, sxy)
    null = Literal(None, pa.float64())
    if kind is Pairwise.CORR:
        spread_x, spread_y = comoment(sx, sx, sxx), comoment(sy, sy, syy)
        root = t.call("sqrt", [t.arithmetic("multiply", "*", spread_x, spread_y)], pa.float64())
        value: Expr = t.arithmetic("divide", "/", co, root)
        enough = t.comparison("greater", n, Literal(0, pa.int64()))
        return Case(((enough, value),), null, pa.float64())
    sample = kind is Pairwise.COVAR_SAMP
    fewer = t.arithmetic("subtract", "-", n, Literal(1, pa.int64())) if sample else n
    denominator = t.coerce(t.arithmetic("multiply", "*", n, fewer), pa.float64())
    value = t.arithmetic("divide", "/", co, denominator)
    enough = t.comparison("greater", n, Literal(1 if sample else 0, pa.int64()))
    return Case(((enough, value),), null, pa.float64())
