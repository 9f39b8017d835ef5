"""Reduce an aggregation to the groups a join will look up (a "magic set").

A decorrelated scalar subquery aggregates its whole input, then a join looks up
only the groups the outer query has keys for:

    Join[left] (lineitem ⋈ part[brand, container],  Aggregate(l_partkey) <- lineitem)

When some input of the outer side produces those keys and is estimated far
smaller than the aggregation's input, the aggregation is fed only rows whose
key occurs there:

    Aggregate(l_partkey) <- (lineitem SEMI JOIN part[brand, container] ON l_partkey = p_partkey)

Groups the join never looks up are dropped before they are computed; the result
is unchanged (a left/inner join cannot match a group whose key the outer side
lacks). A small input that is a plain (filtered) scan is evaluated twice: once in
the outer query, once here. One that joins, aggregates or has windows (TPC-DS q78:
the ``ss`` aggregation keys both the ``ws`` and the ``cs`` aggregations) becomes a
shared CTE instead (``CteRead``s of one body), computed once for the outer query and
every reduced aggregation — when the caller hands out new CTE ids (the main plan
only: a body may read only CTEs bound before it, so none is made inside a body).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pyarrow as pa

from shoal.expr.nodes import Call, ColumnRef, conjoin
from shoal.logical.plan import Aggregate, CteRead, Join, LogicalPlan, Project, worth_sharing
from shoal.optimizer.statistics import equi_pairs, estimate_rows

# Only worth it when the key source is this many times smaller than the aggregated input.
_REDUCTION = 3.0


#: Name shown for a key source shared by a reduction (EXPLAIN: ``CteRead join_keys #n``).
SHARED_SOURCE_NAME = "join_keys"


def reduce_aggregates_to_join_keys(
    plan: LogicalPlan, new_cte_ids: Iterator[int] | None = None
) -> LogicalPlan:
    """Apply the reduction bottom-up; ``new_cte_ids`` (unused CTE ids, or None to
    evaluate every key source twice) lets a costly key source be shared."""
    children = tuple(reduce_aggregates_to_join_keys(c, new_cte_ids) for c in plan.children())
    if children:
        plan = plan.with_children(children)
    if not (
        isinstance(plan, Join)
        and plan.kind in ("inner", "left")
        and not (plan.null_equal or plan.null_aware or plan.single_row)
    ):
        return plan
    reduced = _reduce(plan.right, plan.left, plan, new_cte_ids)
    if reduced is None:
        return plan
    right, left = reduced
    return replace(plan, left=left, right=right)


def _reduce(
    side: LogicalPlan, other: LogicalPlan, join: Join, new_cte_ids: Iterator[int] | None
) -> tuple[LogicalPlan, LogicalPlan] | None:
    """The reduced ``side`` and ``other`` (its key source shared, or as it was)."""
    project: Project | None = None
    agg = side
    if isinstance(agg, Project):
        project, agg = agg, agg.input
    if not isinstance(agg, Aggregate) or not agg.keys:
        return None
    # Output column of ``side`` -> the aggregation's group-key expression.
    key_of = {name: expr for name, expr in agg.keys}
    if project is not None:
        key_of = {
            n: key_of[e.name]
            for n, e in project.exprs
            if isinstance(e, ColumnRef) and e.name in key_of
        }
    pairs = []
    for outer_expr, side_expr in equi_pairs(join.condition, other.schema, side.schema):
        if not (isinstance(outer_expr, ColumnRef) and isinstance(side_expr, ColumnRef)):
            continue
        key = key_of.get(side_expr.name)
        if isinstance(key, ColumnRef) and key.type == outer_expr.type:
            pairs.append((outer_expr, key))
    if not pairs:
        return None
    source = _smallest_source(other, {o.name for o, _ in pairs})
    if estimate_rows(source) * _REDUCTION > estimate_rows(agg.input):
        return None
    keys_from: LogicalPlan = source
    if new_cte_ids is not None and not isinstance(source, CteRead) and worth_sharing(source):
        names = tuple(source.schema.names)
        shared = CteRead(next(new_cte_ids), SHARED_SOURCE_NAME, source, names, names)
        other = _replace_node(other, source, shared)
        keys_from = shared
    magic = Project(
        keys_from, tuple((f"{o.name}$magic", ColumnRef(o.name, o.type)) for o, _ in pairs)
    )
    condition = conjoin(
        [Call("equal", (key, ColumnRef(f"{o.name}$magic", o.type)), pa.bool_()) for o, key in pairs]
    )
    reduced = replace(agg, input=Join(agg.input, magic, "semi", condition))
    return (replace(project, input=reduced) if project is not None else reduced), other


def _replace_node(plan: LogicalPlan, target: LogicalPlan, new: LogicalPlan) -> LogicalPlan:
    """``plan`` with the node ``target`` (by identity) replaced by ``new``."""
    if plan is target:
        return new
    children = plan.children()
    if not children:
        return plan
    return plan.with_children(tuple(_replace_node(c, target, new) for c in children))


def _smallest_source(plan: LogicalPlan, columns: set[str]) -> LogicalPlan:
    """The smallest input below joins that produces all ``columns``.

    Inner joins only drop rows, a left join passes on every row of its left input and a
    semi / anti join some of them, so the left's key values are a superset of the join's: TPC-DS q78's ``cs`` aggregation is keyed by ``ss`` alone, not by
    ``ss LEFT JOIN ws`` (which would compute ``ws`` a second time).
    """
    while isinstance(plan, Join) and not (plan.null_equal or plan.null_aware or plan.single_row):
        if columns <= set(plan.left.schema.names) and plan.kind in _LEFT_KEEPING:
            plan = plan.left
        elif columns <= set(plan.right.schema.names) and plan.kind in ("inner", "cross"):
            plan = plan.right
        else:
            break
    return plan


#: Joins whose output's left-side values are a subset of their left input's.
_LEFT_KEEPING = ("inner", "cross", "left", "semi", "anti")
