"""Aggregate before a join ("eager aggregation"): group the side the aggregates read first.

An aggregation over an inner join whose every aggregate reads one side ``S`` only:

    Aggregate(K, [sum(x), count(*)]) <- Join(S, R, s.k = r.k)

pre-aggregates ``S`` on the columns of ``S`` that the keys ``K`` and the join
condition read, and merges the partial results above the join:

    Aggregate(K, [sum(sx), sum(n)]) <- Join(Aggregate[partial](S; k, S's part of K;
                                                              [sum(x) AS sx, count(*) AS n]), R)

Rows of ``S`` equal on those columns match the same rows of ``R`` and fall into the
same groups of ``K``, so every joined row of theirs is replaced by one row carrying
their partial sum / count / min / max, which the aggregate above merges as it merges
any partial states (sums and counts add, min/max stay min/max). The pre-aggregation
is ``Aggregate.partial``: planned as a partial aggregate with no exchange, its groups
may repeat across tasks (the merge above does not care), and it passes rows through
when they do not shrink (``HashAggregateExec``'s adaptive partial).

Taken when ``S``'s rows are estimated to shrink at least ``_REDUCTION``-fold: TPC-DS
q4 / q11 / q74 group ``store_sales ⋈ date_dim ⋈ customer`` by eight customer columns,
seven of them strings; pre-aggregated by ``(ss_customer_sk, d_year)`` (integers), the
customer columns are gathered and grouped for ~76 k rows instead of ~1.1 M. q14's
DISTINCT of an item's brand/class/category over ``store_sales ⋈ item`` becomes a
DISTINCT of ``ss_item_sk`` (18 k values) before the join. DISTINCT aggregates (already
rewritten into plain ones), AVG and aggregates reading both sides are left alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace

import pyarrow as pa

from shoal.expr.nodes import Call, Cast, ColumnRef, Expr, Literal, rename_columns
from shoal.logical.plan import (
    AggCall,
    Aggregate,
    CteRead,
    Filter,
    Join,
    Limit,
    LogicalPlan,
    Project,
    Values,
)
from shoal.optimizer.statistics import (
    distinct_is_estimated,
    equal_constants,
    estimate_rows,
    key_distinct,
    key_unique,
    origin_column,
)
from shoal.types import sum_type

# Only worth a pre-aggregation when its input is estimated to shrink this many times;
# less when the aggregate above groups by variable-width (string) columns of the other
# side, which every row saved spares gathering through the join and hashing.
_REDUCTION = 2.0
_WIDE_KEY_REDUCTION = 1.25
# Below this many estimated input rows a pre-aggregation saves too little to matter.
_MIN_ROWS = 10_000.0

#: How a pre-aggregated function is merged above the join.
_MERGE = {"sum": "sum", "count": "sum", "count_star": "sum", "min": "min", "max": "max"}


def push_aggregates_below_joins(plan: LogicalPlan) -> LogicalPlan:
    """Apply eager aggregation bottom-up (a pre-aggregation may be pushed on further)."""
    children = tuple(push_aggregates_below_joins(c) for c in plan.children())
    if children:
        plan = plan.with_children(children)
    if isinstance(plan, Join):
        return _distinct_semi_side(plan)
    if not isinstance(plan, Aggregate):
        return plan
    lifted = _lift_one_row_side(plan)
    if lifted is not None:
        # The aggregate is now below the join; it may still go below another.
        assert isinstance(lifted, Project) and isinstance(lifted.input, Join)
        below = lifted.input.left
        assert isinstance(below, Aggregate)
        pushed_below = _push(below)
        if pushed_below is not None:
            return replace(lifted, input=replace(lifted.input, left=pushed_below))
        return lifted
    pushed = _push(plan)
    return pushed if pushed is not None else plan


def _lift_one_row_side(agg: Aggregate) -> LogicalPlan | None:
    """An aggregation with keys over a cross join with an input of at most one row
    aggregates the other input and crosses the result with that row instead.

    That row's columns are constant: a key reading only them is that value, MIN / MAX
    of them the value itself, and the groups of the other side are the groups (none
    when the row is missing, as before). TPC-DS q23's ``best_ss_customer`` crosses
    ``store_sales ⋈ customer`` (2.75 M rows) with the one-row ``max_store_sales`` to
    compare each customer's sum with ``max(tpcds_cmax)``: now 90 k groups meet the row.
    """
    if not agg.keys or agg.always_group is not None or agg.partial:
        return None
    join = agg.input
    if not (isinstance(join, Join) and _crosses(join)):
        return None
    for other, one in ((join.left, join.right), (join.right, join.left)):
        if not _at_most_one_row(one):
            continue
        constant = set(one.schema.names)
        kept_keys, kept_aggs = [], []
        exprs: list[tuple[str, Expr]] = []
        for n, e in agg.keys:
            if e.column_set and e.column_set <= constant:
                exprs.append((n, e))
            elif e.column_set & constant:
                break
            else:
                kept_keys.append((n, e))
                exprs.append((n, ColumnRef(n, e.type)))
        else:
            for n, a in agg.aggregates:
                cols = a.arg.column_set if a.arg is not None else frozenset()
                if cols and cols <= constant and a.fn in ("min", "max") and a.arg is not None:
                    exprs.append((n, a.arg))
                elif cols & constant:
                    break
                else:
                    kept_aggs.append((n, a))
                    exprs.append((n, ColumnRef(n, a.type)))
            else:
                if not kept_keys:
                    return None  # every group key constant: a global aggregate, not this
                grouped = Aggregate(other, tuple(kept_keys), tuple(kept_aggs))
                return Project(replace(join, left=grouped, right=one), tuple(exprs))
    return None


def _crosses(join: Join) -> bool:
    if join.single_row or join.null_aware or join.kind not in ("inner", "cross"):
        return False
    c = join.condition
    return c is None or (isinstance(c, Literal) and c.value is True)


def _at_most_one_row(plan: LogicalPlan) -> bool:
    """A global aggregate (one row), or one filtered, projected or read as a CTE."""
    if isinstance(plan, Aggregate):
        return not plan.keys
    if isinstance(plan, Project | Filter):
        return _at_most_one_row(plan.input)
    if isinstance(plan, CteRead):
        return _at_most_one_row(plan.body)
    if isinstance(plan, Limit):
        return plan.limit is not None and plan.limit <= 1
    if isinstance(plan, Values):
        return len(plan.rows) <= 1
    return False


def _distinct_semi_side(join: Join) -> LogicalPlan:
    """A semi / anti join needs each key of its right side once: a DISTINCT of the
    columns its condition reads there (partial, so no exchange), when it can go below
    a join where that shrinks the side (TPC-DS q14's INTERSECT: the 860 k
    ``catalog_sales ⋈ item`` rows' brand/class/category come from 18 k items)."""
    if join.kind not in ("semi", "anti") or join.condition is None:
        return join
    if join.null_aware or join.single_row:
        return join
    right = join.right
    if estimate_rows(right) < _MIN_ROWS:
        return join
    keys = [f for f in right.schema if f.name in join.condition.column_set]
    if not keys:
        return join
    distinct = Aggregate(
        right, tuple((f.name, ColumnRef(f.name, f.type)) for f in keys), (), partial=True
    )
    # Only where it goes below a join: a DISTINCT alone over a scan or a CTE read
    # would stand between the semi join's runtime filter and the side it filters.
    pushed = _push(distinct)
    return replace(join, right=pushed) if pushed is not None else join


def _push(agg: Aggregate) -> LogicalPlan | None:
    if agg.always_group is not None or not agg.aggregates and not agg.keys:
        return None
    if any(a.distinct or a.fn not in _MERGE for _, a in agg.aggregates):
        return None
    join, keys, calls = agg.input, agg.keys, agg.aggregates
    while isinstance(join, Project):  # read the keys and arguments through projections
        mapping = dict(join.exprs)
        keys = tuple((n, rename_columns(e, mapping)) for n, e in keys)
        calls = tuple(
            (n, replace(a, arg=rename_columns(a.arg, mapping)) if a.arg is not None else a)
            for n, a in calls
        )
        join = join.input
    if not _inner(join):
        return None
    assert isinstance(join, Join)
    read = set().union(*(a.arg.column_set for _, a in calls if a.arg is not None))
    key_columns: set[str] = set().union(*(e.column_set for _, e in keys))
    for side, rebuild, outside in _candidates(join, read):
        wanted = key_columns | outside
        pre_keys = [f for f in side.schema if f.name in wanted]
        wide = any(
            f.name in key_columns and f.name not in side.schema.names and _wide(f.type)
            for f in join.schema
        )
        if not pre_keys or _reads_cte(side):
            continue
        if not _worth_it(side, [f.name for f in pre_keys], wide):
            continue
        if estimate_rows(rebuild(side)) * _REDUCTION < estimate_rows(side):
            # The join drops most of the side's rows (a date range): join first, as
            # grouping every row to keep a few saves less than the join's filtering.
            continue
        pre = Aggregate(
            side,
            tuple((f.name, ColumnRef(f.name, f.type)) for f in pre_keys),
            tuple((f"{n}$pre", a) for n, a in calls),
            partial=True,
        )
        new_side = _push(pre) or pre  # its input is done; it may go further down
        return _merged(agg, rebuild(new_side), keys, calls)
    return None


def _reads_cte(plan: LogicalPlan) -> bool:
    """Whether ``plan`` is a shared CTE's read (through projections): an aggregate over
    it would stand between the read and a runtime filter from above, which lets each
    reader have a copy of the body of its own (TPC-DS q95)."""
    while isinstance(plan, Project | Filter):
        plan = plan.input
    return isinstance(plan, CteRead)


def _inner(plan: LogicalPlan) -> bool:
    return (
        isinstance(plan, Join)
        and plan.kind == "inner"
        and plan.condition is not None
        and not (plan.single_row or plan.null_aware)
    )


Rebuild = Callable[[LogicalPlan], LogicalPlan]


def _candidates(join: Join, read: set[str]) -> Iterator[tuple[LogicalPlan, Rebuild, set[str]]]:
    """Where a pre-aggregation reading the columns ``read`` can go under ``join``: (the
    input to pre-aggregate, what puts the pre-aggregation back in its place, the columns
    of that input the joins above it read).

    The side of ``join`` that holds ``read``; and, when that side is itself an inner
    join ``A ⋈ B`` with ``read`` in ``A`` and ``join``'s condition reading only ``A``
    and the other side ``Y``, ``A ⋈ Y`` (``B`` joined above it): TPC-DS q11 joins
    ``store_sales ⋈ customer`` first and ``date_dim`` last, and the aggregation shrinks
    only once the date's year replaced the date.
    """
    assert join.condition is not None
    cond = set(join.condition.column_set)
    for side, other in ((join.left, join.right), (join.right, join.left)):
        if not read <= set(side.schema.names):
            continue

        def put(new: LogicalPlan, side: LogicalPlan = side) -> LogicalPlan:
            return replace(join, left=new) if side is join.left else replace(join, right=new)

        yield side, put, cond
        if not _inner(side):
            continue
        assert isinstance(side, Join) and side.condition is not None
        for a, b in ((side.left, side.right), (side.right, side.left)):
            own = set(a.schema.names) | set(other.schema.names)
            if not read <= set(a.schema.names) or not cond <= own:
                continue
            # The larger input on the left (probe), as the join order has it.
            pair = (a, other) if estimate_rows(a) >= estimate_rows(other) else (other, a)
            inner = Join(pair[0], pair[1], "inner", join.condition)

            def rotated(new: LogicalPlan, b: LogicalPlan = b, s: Join = side) -> LogicalPlan:
                return (
                    replace(s, left=new, right=b)
                    if s.left is not b
                    else replace(s, left=b, right=new)
                )

            assert side.condition is not None
            yield inner, rotated, set(side.condition.column_set)


def _merged(
    agg: Aggregate,
    joined: LogicalPlan,
    keys: tuple[tuple[str, Expr], ...],
    calls: tuple[tuple[str, AggCall], ...],
) -> LogicalPlan:
    """The aggregate above the join, merging the pre-aggregated ``calls``."""
    merged: list[tuple[str, AggCall]] = []
    counts: set[str] = set()
    for n, a in calls:
        part = ColumnRef(f"{n}$pre", a.type)
        if a.fn in ("count", "count_star"):
            # Summed as an exact DECIMAL (SUM of integers), cast back below.
            merged.append((n, AggCall("sum", part, sum_type(a.type))))
            counts.add(n)
        else:
            merged.append((n, AggCall(_MERGE[a.fn], part, a.type)))
    top = Aggregate(joined, keys, tuple(merged), partial=agg.partial)
    if not counts:
        return top
    exprs: list[tuple[str, Expr]] = [(n, ColumnRef(n, e.type)) for n, e in keys]
    for (n, a), (_, m) in zip(calls, merged, strict=True):
        ref = ColumnRef(n, m.type)
        if n in counts:
            # Over no rows at all a global COUNT's summed counts are NULL; COUNT is 0.
            exprs.append((n, Call("coalesce", (Cast(ref, a.type), Literal(0, a.type)), a.type)))
        else:
            exprs.append((n, ref))
    return Project(top, tuple(exprs))


def _worth_it(side: LogicalPlan, keys: list[str], wide: bool) -> bool:
    rows = estimate_rows(side)
    shrink = _WIDE_KEY_REDUCTION if wide else _REDUCTION
    return rows >= _MIN_ROWS and group_estimate(side, keys) * shrink <= rows


def _wide(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)


def group_estimate(plan: LogicalPlan, keys: list[str]) -> float:
    """Groups of ``plan``'s rows by the columns ``keys``: as many as rows when a key is
    unique or its distinct count unknown (a string's); else the expected number of the
    keys' value combinations (their distinct counts multiplied) that ``rows`` draws hit.
    A column its scan pins to constants (``d_year IN (2001, 2002)``) has that many."""
    rows = estimate_rows(plan)
    combos = 1.0
    for name in keys:
        key = ColumnRef(name, plan.schema.field(name).type)
        if key_unique(plan, key) or not distinct_is_estimated(plan, key):
            return rows
        combos *= _pinned(plan, name) or key_distinct(plan, key)
    if combos <= 0:
        return rows
    # Draws with replacement from ``combos`` values: combos * (1 - e^(-rows/combos)).
    return min(rows, combos * -math.expm1(-rows / combos))


def _pinned(plan: LogicalPlan, name: str) -> int | None:
    """How many constants the scan column ``name`` comes from is filtered to equal."""
    found = origin_column(plan, name)
    if found is None:
        return None
    scan, column = found
    own = scan.names[scan.columns.index(column)]
    best: int | None = None
    for f in scan.filters:
        pinned = equal_constants(f)
        if pinned is not None and pinned[0].name == own:
            best = len(pinned[1]) if best is None else min(best, len(pinned[1]))
    return best
