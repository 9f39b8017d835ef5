"""Rewrite DISTINCT aggregates over one argument into two plain aggregations.

    Aggregate(keys, [f(DISTINCT x)])  ->  Aggregate(keys, [f(x)]) <- Aggregate(keys + x, [])

The inner aggregation removes duplicates of (keys, x) — and, split into partial
and final around a hash exchange, does so before data moves — so the outer one
sees each distinct value once. COUNT/SUM/AVG/MIN/MAX all stay correct (NULL x
forms one group, and the outer f ignores NULLs as before).
"""

from __future__ import annotations

from dataclasses import replace

from shoal.errors import UnsupportedError
from shoal.expr.nodes import ColumnRef
from shoal.logical.plan import AggCall, Aggregate, LogicalPlan


def rewrite_distinct_aggregates(plan: LogicalPlan) -> LogicalPlan:
    children = tuple(rewrite_distinct_aggregates(c) for c in plan.children())
    if children:
        plan = plan.with_children(children)
    if not isinstance(plan, Aggregate) or not any(a.distinct for _, a in plan.aggregates):
        return plan
    distinct_args = {a.arg for _, a in plan.aggregates if a.distinct}
    if len(distinct_args) > 1 or not all(a.distinct for _, a in plan.aggregates):
        raise UnsupportedError(
            "DISTINCT aggregates over different arguments, or mixed with non-DISTINCT ones"
        )
    (arg,) = distinct_args
    assert arg is not None
    value_name = plan.aggregates[0][0] + "$value"
    inner = Aggregate(plan.input, plan.keys + ((value_name, arg),), ())
    value = ColumnRef(value_name, arg.type)
    outer_keys = tuple((n, ColumnRef(n, e.type)) for n, e in plan.keys)
    aggs = tuple((n, replace(a, arg=value, distinct=False)) for n, a in plan.aggregates)
    return Aggregate(inner, outer_keys, tuple((n, AggCall(a.fn, a.arg, a.type)) for n, a in aggs))
