"""Rewrite DISTINCT aggregates into plain aggregations.

One DISTINCT argument, nothing else:

    Aggregate(keys, [f(DISTINCT x)])  ->  Aggregate(keys, [f(x)]) <- Aggregate(keys + x, [])

The inner aggregation removes duplicates of (keys, x) — and, split into partial
and final around a hash exchange, does so before data moves — so the outer one
sees each distinct value once (NULL x forms one group; f ignores NULLs as before).

Several DISTINCT arguments, or DISTINCT mixed with plain aggregates: each group
of aggregates is computed on its own and the results are joined on the group
keys (NULL keys equal, as grouping treats them):

    Aggregate(k, [sum(y), count(DISTINCT x)])
      -> Project <- Join[k = k'] (Aggregate(k, [sum(y)]), Aggregate(k', [count(DISTINCT x)]))
"""

from __future__ import annotations

from dataclasses import replace

from shoal.expr.nodes import ColumnRef, Expr, conjoin
from shoal.logical.plan import AggCall, Aggregate, Join, LogicalPlan, Project


def rewrite_distinct_aggregates(plan: LogicalPlan) -> LogicalPlan:
    children = tuple(rewrite_distinct_aggregates(c) for c in plan.children())
    if children:
        plan = plan.with_children(children)
    if not isinstance(plan, Aggregate) or not any(a.distinct for _, a in plan.aggregates):
        return plan
    groups: dict[Expr | None, list[tuple[str, AggCall]]] = {}
    for name, a in plan.aggregates:
        groups.setdefault(a.arg if a.distinct else None, []).append((name, a))
    if len(groups) == 1:
        return _single_distinct(plan)
    return _join_groups(plan, list(groups.values()))


def _single_distinct(plan: Aggregate) -> LogicalPlan:
    arg = plan.aggregates[0][1].arg
    assert arg is not None
    value_name = plan.aggregates[0][0] + "$value"
    inner = Aggregate(plan.input, plan.keys + ((value_name, arg),), ())
    value = ColumnRef(value_name, arg.type)
    outer_keys = tuple((n, ColumnRef(n, e.type)) for n, e in plan.keys)
    aggs = tuple((n, replace(a, arg=value, distinct=False)) for n, a in plan.aggregates)
    return Aggregate(inner, outer_keys, aggs)


def _join_groups(plan: Aggregate, groups: list[list[tuple[str, AggCall]]]) -> LogicalPlan:
    parts: list[tuple[LogicalPlan, list[str]]] = []
    for i, aggs in enumerate(groups):
        key_names = [f"{n}$g{i}" for n, _ in plan.keys]
        keys = tuple((kn, e) for kn, (_, e) in zip(key_names, plan.keys, strict=True))
        part = rewrite_distinct_aggregates(Aggregate(plan.input, keys, tuple(aggs)))
        parts.append((part, key_names))
    joined, first_keys = parts[0]
    for part, key_names in parts[1:]:
        cond = conjoin(
            [
                _eq(ColumnRef(a, e.type), ColumnRef(b, e.type))
                for a, b, (_, e) in zip(first_keys, key_names, plan.keys, strict=True)
            ]
        )
        kind = "inner" if cond is not None else "cross"
        joined = Join(joined, part, kind, cond, null_equal=cond is not None)
    exprs = [(n, ColumnRef(k, e.type)) for (n, e), k in zip(plan.keys, first_keys, strict=True)]
    exprs += [(n, ColumnRef(n, a.type)) for n, a in plan.aggregates]
    return Project(joined, tuple(exprs))


def _eq(a: Expr, b: Expr) -> Expr:
    import pyarrow as pa

    from shoal.expr.nodes import Call

    return Call("equal", (a, b), pa.bool_())
