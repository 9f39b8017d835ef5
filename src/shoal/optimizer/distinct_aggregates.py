"""Rewrite DISTINCT aggregates into plain aggregations.

One DISTINCT argument, nothing else:

    Aggregate(keys, [f(DISTINCT x)])  ->  Aggregate(keys, [f(x)]) <- Aggregate(keys + x, [])

The inner aggregation removes duplicates of (keys, x) — and, split into partial
and final around a hash exchange, does so before data moves — so the outer one
sees each distinct value once (NULL x forms one group; f ignores NULLs as before).

One DISTINCT argument beside plain aggregates that merge from partial results
(SUM, COUNT, COUNT(*), MIN, MAX): one pass, the plain ones computed per (keys, x)
group and merged in the outer aggregation (a COUNT's partial counts are summed;
over no rows at all a global COUNT is then NULL, so it is coalesced to 0):

    Aggregate(k, [count(DISTINCT x), sum(y)])
      -> Aggregate(k, [count(x), sum(s)]) <- Aggregate(k + x, [sum(y) AS s])

This reads the input once (TPC-DS q16/q94/q95: a many-way join under
``count(DISTINCT order), sum(cost)``) where the join below reads it twice.

Several DISTINCT arguments, or DISTINCT mixed with other plain aggregates: each group
of aggregates is computed on its own and the results are joined on the group
keys (NULL keys equal, as grouping treats them):

    Aggregate(k, [sum(y), count(DISTINCT x)])
      -> Project <- Join[k = k'] (Aggregate(k, [sum(y)]), Aggregate(k', [count(DISTINCT x)]))
"""

from __future__ import annotations

from dataclasses import replace

import pyarrow as pa

from shoal.expr.nodes import Call, Cast, ColumnRef, Expr, Literal, conjoin
from shoal.logical.plan import AggCall, Aggregate, Join, LogicalPlan, Project
from shoal.types import sum_type


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
        and plan.always_group is None
        and None in groups
        and all(_mergeable(a) for _, a in groups[None])
    ):
        return _one_pass(plan, groups)
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


#: Plain aggregates whose partial results merge with one aggregate: fn -> the merging fn.
_MERGE = {"sum": "sum", "count": "sum", "count_star": "sum", "min": "min", "max": "max"}


def _mergeable(a: AggCall) -> bool:
    return a.fn in _MERGE and not a.distinct


def _one_pass(plan: Aggregate, groups: dict[Expr | None, list[tuple[str, AggCall]]]) -> LogicalPlan:
    (arg,) = (g for g in groups if g is not None)
    assert arg is not None
    distinct_aggs = groups[arg]
    value_name = distinct_aggs[0][0] + "$value"
    partials = tuple((f"{n}$part", a) for n, a in groups[None])
    inner = Aggregate(plan.input, plan.keys + ((value_name, arg),), partials)
    value = ColumnRef(value_name, arg.type)
    outer_keys = tuple((n, ColumnRef(n, e.type)) for n, e in plan.keys)
    merged: dict[str, AggCall] = {}
    counts: set[str] = set()
    for (n, a), (part, _) in zip(groups[None], partials, strict=True):
        if a.fn in ("count", "count_star"):
            # Summed as an exact DECIMAL (SUM of integers), cast back below.
            merged[n] = AggCall("sum", ColumnRef(part, a.type), sum_type(a.type))
            counts.add(n)
        else:
            merged[n] = AggCall(_MERGE[a.fn], ColumnRef(part, a.type), a.type)
    merged.update((n, replace(a, arg=value, distinct=False)) for n, a in distinct_aggs)
    aggregate = Aggregate(inner, outer_keys, tuple((n, merged[n]) for n, _ in plan.aggregates))
    if not counts:
        return aggregate
    exprs: list[tuple[str, Expr]] = [(n, ColumnRef(n, e.type)) for n, e in outer_keys]
    for n, a in plan.aggregates:
        ref = ColumnRef(n, merged[n].type)
        # Over no rows at all a global COUNT's summed partial counts are NULL; COUNT is 0.
        exprs.append((n, _count_of(ref, a.type) if n in counts else ref))
    return Project(aggregate, tuple(exprs))


def _count_of(total: Expr, t: pa.DataType) -> Expr:
    return Call("coalesce", (Cast(total, t), Literal(0, t)), t)


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
    return Call("equal", (a, b), pa.bool_())
