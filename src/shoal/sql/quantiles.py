"""median / quantile_cont / quantile_disc / quantile / string_agg as aggregates, through a
window.

A quantile needs a group's values in order, which no partial / final state merges. So
``median(x) … GROUP BY k`` is bound as a ``Window`` below the ``Aggregate``: partitioned
by the group keys, sorted by ``x`` (NULLS LAST), computing the partition's quantile on
every row; the aggregate then takes ``min`` of that column (one value per group). The
window's exchange and sort are where the ordering work happens (EnforceDistribution /
EnforceSorting). Result types follow DuckDB: quantile_cont / median of integers and
doubles are DOUBLE, of decimals the decimal type (interpolated, rounded to its scale);
quantile_disc / quantile keep the argument's type. ``string_agg(x, sep [ORDER BY …])``
(listagg, group_concat) is the same shape: its window is sorted by the ORDER BY keys
(any order without them) and joins the group's non-NULL strings. So are ``mode(x)``
(sorted by ``x``: the longest run of equal values), ``array_agg(x [ORDER BY …])`` / ``list``
(sorted by the ORDER BY keys: the group's values, NULLs included, as a list on the
partition's first row, which the aggregate picks with ``any_value``) and
``arg_min(a, b)`` / ``arg_max`` (``min_by`` / ``max_by``: ``first_value`` of ``a`` over the
partition sorted by ``b`` ascending / descending, NULLS LAST, among rows where neither is
NULL, as DuckDB). An ORDER BY inside mode / arg_min / arg_max decides their ties, as
DuckDB: arg_min's window is sorted by ``b`` then those keys, so the first row among the
tied extremes is the first in that order; ``mode(x ORDER BY k)``'s window is sorted by
``k`` and computes the framed mode over the whole partition, whose ties go to the value
seen first. ``arg_min(a, b, n)`` / ``arg_max`` (a count of values) is the window's
``arg_min_n`` over the unsorted partition: the list of ``a`` at the ``n`` smallest
(largest) ``b``, on the partition's first row, picked with ``any_value``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from shoal.errors import UnsupportedError, UserError
from shoal.expr.nodes import ColumnRef, Expr, Literal
from shoal.logical.plan import (
    WHOLE_PARTITION,
    AggCall,
    LogicalPlan,
    Project,
    SortKey,
    Window,
    WindowCall,
    WindowFunction,
)
from shoal.sql import typing as t
from shoal.sql.scope import NameGenerator
from shoal.sql.source_text import as_written, written_call
from shoal.types import is_decimal

QUANTILE_NODES: dict[type[exp.Expr], WindowFunction] = {
    exp.Median: WindowFunction.QUANTILE_CONT,
    exp.PercentileCont: WindowFunction.QUANTILE_CONT,
    exp.PercentileDisc: WindowFunction.QUANTILE_DISC,
    exp.Quantile: WindowFunction.QUANTILE_DISC,
    exp.GroupConcat: WindowFunction.STRING_AGG,
}


@dataclass(frozen=True)
class QuantileRequest:
    column: str  # the window's result column
    fn: WindowFunction
    arg: Expr
    fraction: float
    type: pa.DataType
    separator: str = ","
    #: The order the window sorts by (quantiles: the argument).
    order: tuple[SortKey, ...] = ()
    #: array_agg / string_agg over the group's distinct values.
    distinct: bool = False
    #: The window's framed form over the whole partition (mode with an ORDER BY: ties
    #: to the value that order puts first, not the smallest).
    over_frame: bool = False
    #: ARG_MIN_N / ARG_MAX_N: the ordering argument and the count of values.
    by: Expr | None = None
    count: int = 1


def quantile_fraction(node: exp.Expr) -> float:
    if isinstance(node, exp.Median):
        return 0.5
    q = node.args.get("quantile") if isinstance(node, exp.Quantile) else node.expression
    if not (isinstance(q, exp.Literal) and not q.is_string):
        raise UnsupportedError(f"quantile that is not a constant number: {as_written(node)}")
    value = float(q.this)
    if not 0.0 <= value <= 1.0:
        raise UserError(f"quantile {value} is not between 0 and 1: {as_written(node)}")
    return value


def arg_count(e: Expr, func: exp.Expr) -> int:
    """The ``n`` of ``arg_min(a, b, n)``: a positive whole constant (DuckDB rejects NULL
    and values below 1 too)."""
    if not (isinstance(e, Literal) and isinstance(e.value, int) and not isinstance(e.value, bool)):
        raise UnsupportedError(f"a count that is not a whole constant: {written_call(func)}")
    if e.value < 1:
        raise UserError(f"the count of {written_call(func)} must be at least 1")
    return int(e.value)


def request(
    node: exp.Expr, arg: Expr, names: NameGenerator, existing: list[QuantileRequest]
) -> QuantileRequest:
    fn = QUANTILE_NODES[type(node)]
    if fn == WindowFunction.STRING_AGG:
        raise AssertionError("string_agg is bound by string_agg_request")
    if fn == WindowFunction.QUANTILE_CONT:
        t.require_numeric(arg, node.key.upper())
        out = arg.type if is_decimal(arg.type) else pa.float64()
    else:
        out = arg.type
    fraction = quantile_fraction(node)
    for r in existing:
        if (r.fn, r.arg, r.fraction) == (fn, arg, fraction):
            return r
    made = QuantileRequest(names.fresh(fn.value), fn, arg, fraction, out, order=(SortKey(arg),))
    existing.append(made)
    return made


def string_agg_request(
    arg: Expr,
    separator: str,
    order: tuple[SortKey, ...],
    names: NameGenerator,
    existing: list[QuantileRequest],
    distinct: bool = False,
) -> QuantileRequest:
    arg = t.coerce(arg, pa.string())
    for r in existing:
        if (r.fn, r.arg, r.separator, r.order, r.distinct) == (
            WindowFunction.STRING_AGG,
            arg,
            separator,
            order,
            distinct,
        ):
            return r
    made = QuantileRequest(
        names.fresh("string_agg"),
        WindowFunction.STRING_AGG,
        arg,
        0.0,
        pa.string(),
        separator,
        order,
        distinct,
    )
    existing.append(made)
    return made


def holistic_request(
    fn: WindowFunction,
    arg: Expr,
    out: pa.DataType,
    order: tuple[SortKey, ...],
    names: NameGenerator,
    existing: list[QuantileRequest],
    distinct: bool = False,
    over_frame: bool = False,
) -> QuantileRequest:
    """mode / array_agg / arg_min / arg_max (first_value over ``order``) of ``arg``."""
    for r in existing:
        if (r.fn, r.arg, r.order, r.distinct, r.over_frame) == (
            fn,
            arg,
            order,
            distinct,
            over_frame,
        ):
            return r
    made = QuantileRequest(
        names.fresh(fn.value),
        fn,
        arg,
        0.0,
        out,
        order=order,
        distinct=distinct,
        over_frame=over_frame,
    )
    existing.append(made)
    return made


def arg_extreme_n_request(
    fn: WindowFunction,
    arg: Expr,
    by: Expr,
    count: int,
    names: NameGenerator,
    existing: list[QuantileRequest],
) -> QuantileRequest:
    """``arg_min(a, b, n)`` / ``arg_max``: the group's list of ``a`` at its ``n`` smallest
    (largest) ``b``, on the partition's first row (no order needed: the kernel sorts)."""
    for r in existing:
        if (r.fn, r.arg, r.by, r.count) == (fn, arg, by, count):
            return r
    made = QuantileRequest(
        names.fresh(fn.value), fn, arg, 0.0, pa.list_(arg.type), by=by, count=count
    )
    existing.append(made)
    return made


def aggregate_call(r: QuantileRequest) -> AggCall:
    """What the Aggregate computes: the one value the window gave every row of a group
    (array_agg's list only on one row; Arrow's grouping cannot take the min of a list)."""
    column = ColumnRef(r.column, r.type)
    if r.fn == WindowFunction.ARRAY_AGG or pa.types.is_nested(r.type):
        return AggCall("any_value", column, r.type)
    return AggCall("min", column, r.type)


def apply(
    plan: LogicalPlan,
    keys: list[tuple[str, Expr]],
    requests: list[QuantileRequest],
    names: NameGenerator,
) -> LogicalPlan:
    """``plan`` with one window per quantile argument, partitioned by the group keys."""
    if not requests:
        return plan
    computed: list[tuple[str, Expr]] = []

    def column(e: Expr, label: str) -> ColumnRef:
        if isinstance(e, ColumnRef):
            return e
        for name, existing in computed:
            if existing == e:
                return ColumnRef(name, e.type)
        name = names.fresh(label)
        computed.append((name, e))
        return ColumnRef(name, e.type)

    partition = tuple(dict.fromkeys(column(k, "quantile_key").name for _, k in keys))
    # Requests sorted alike share one window: (order as columns) -> [(request, arg column)].
    by_order: dict[
        tuple[SortKey, ...], list[tuple[QuantileRequest, ColumnRef, ColumnRef | None]]
    ] = {}
    for r in requests:
        if isinstance(r.arg, Literal):
            raise UnsupportedError(f"{r.fn.value} of a constant")
        arg_ref = column(r.arg, "quantile_arg")
        by_ref = None if r.by is None else column(r.by, "quantile_arg")
        order = tuple(
            SortKey(column(k.expr, "quantile_order"), k.ascending, k.nulls_first) for k in r.order
        )
        by_order.setdefault(order, []).append((r, arg_ref, by_ref))
    if computed:
        passthrough = tuple((f.name, ColumnRef(f.name, f.type)) for f in plan.schema)
        plan = Project(plan, passthrough + tuple(computed))
    for order, group in by_order.items():
        calls = tuple(
            (
                r.column,
                WindowCall(
                    r.fn,
                    arg_ref,
                    r.type,
                    WHOLE_PARTITION,
                    fraction=r.fraction,
                    separator=r.separator,
                    distinct=r.distinct,
                    over_frame=r.over_frame,
                    offset=r.count,
                    by=by_ref,
                ),
            )
            for r, arg_ref, by_ref in group
        )
        plan = Window(plan, partition, order, calls)
    return plan
