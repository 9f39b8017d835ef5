"""Rewrite DISTINCT aggregates into plain aggregations.

One DISTINCT argument, nothing else:

    Aggregate(keys, [f(DISTINCT x)])  ->  Aggregate(keys, [f(x)]) <- Aggregate(keys + x, [])

The inner aggregation removes duplicates of (keys, x) — and, split into partial
and final around a hash exchange, does so before data moves — so the outer one
sees each distinct value once (NULL x forms one group; f ignores NULLs as before).

One DISTINCT argument beside plain aggregates that can be re-aggregated (sum,
count, count(*), min, max): one pass, two levels — the inner aggregation groups by
(keys, x) and computes the plain aggregates per group, the outer one applies the
DISTINCT aggregates to x and re-aggregates the others (counts are summed; a sum
over no groups is NULL, so a count under no keys is coalesced back to 0):

    Aggregate(k, [count(DISTINCT x), sum(y)])
      -> Aggregate(k, [count(x'), sum(s)]) <- Aggregate(k + x', [sum(y) AS s])

TPC-DS q16/q94/q95 (``count(DISTINCT order), sum(cost), sum(profit)`` over a
six-way join) read their input once instead of once per group of aggregates.

Several DISTINCT arguments, or DISTINCT mixed with other plain aggregates (avg,
variance, …): each group of aggregates is computed on its own and the results are
joined on the group keys (NULL keys equal, as grouping treats them):

    Aggregate(k, [sum(y), count(DISTINCT x)])
      -> Project <- Join[k = k'] (Aggregate(k, [sum(y)]), Aggregate(k', [count(DISTINCT x)]))
"""

from __future__ import annotations

from dataclasses import replace

from shoal.expr.nodes import Call, ColumnRef, Expr, Literal, conjoin
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
    if (
        len(groups) == 2
        and None in groups
        and plan.always_group is None
        and all(a.fn in _REAGGREGATED for _, a in groups.get(None, []))
    ):
        return _distinct_with_plain(plan)
    return _join_groups(plan, list(groups.values()))


# Plain aggregates whose per-group results combine into the result over all groups,
# and the function that combines them.
_REAGGREGATED = {"sum": "sum", "count": "sum", "count_star": "sum", "min": "min", "max": "max"}


def _distinct_with_plain(plan: Aggregate) -> LogicalPlan:
    distinct = [(n, a) for n, a in plan.aggregates if a.distinct]
    arg = distinct[0][1].arg
    assert arg is not None
    value_name = distinct[0][0] + "$value"
    plain = [(n, a) for n, a in plan.aggregates if not a.distinct]
    inner = Aggregate(
        plan.input,
        plan.keys + ((value_name, arg),),
        tuple((f"{n}$part", a) for n, a in plain),
    )
    value = ColumnRef(value_name, arg.type)
    outer_keys = tuple((n, ColumnRef(n, e.type)) for n, e in plan.keys)
    outer_aggs: list[tuple[str, AggCall]] = []
    for n, a in plan.aggregates:
        if a.distinct:
            outer_aggs.append((n, replace(a, arg=value, distinct=False)))
        else:
            part = ColumnRef(f"{n}$part", a.type)
            outer_aggs.append((n, AggCall(_REAGGREGATED[a.fn], part, a.type)))
    outer = Aggregate(inner, outer_keys, tuple(outer_aggs))
    if plan.keys:
        return outer
    # No keys: one row even over no input, where the summed counts are NULL.
    exprs: list[tuple[str, Expr]] = []
    for n, a in plan.aggregates:
        ref: Expr = ColumnRef(n, a.type)
        if not a.distinct and a.fn in ("count", "count_star"):
            ref = Call("coalesce", (ref, Literal(0, a.type)), a.type)
        exprs.append((n, ref))
    return Project(outer, tuple(exprs))


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

    return Call("equal", (a, b), pa.bool_())
