"""Projection pruning: every node produces only the columns someone above reads.

Scans read only the needed columns (Parquet column projection); Projects and
Aggregates drop outputs nobody uses.
"""

from __future__ import annotations

from dataclasses import replace

from shoal.expr.nodes import ColumnRef, Expr
from shoal.logical.plan import (
    Aggregate,
    CteRead,
    Expand,
    Filter,
    Join,
    Limit,
    LogicalPlan,
    Project,
    Scan,
    Sort,
    UnionAll,
    Unnest,
    Values,
    Window,
)


def prune_columns(plan: LogicalPlan) -> LogicalPlan:
    return _prune(plan, {f.name for f in plan.schema})


def _cols(exprs: list[Expr]) -> set[str]:
    out: set[str] = set()
    for e in exprs:
        out |= e.columns()
    return out


def _prune(plan: LogicalPlan, needed: set[str]) -> LogicalPlan:
    if isinstance(plan, Scan):
        filter_cols = _cols(list(plan.filters))
        keep = [
            (c, n)
            for c, n in zip(plan.columns, plan.names, strict=True)
            if n in needed or n in filter_cols
        ]
        if not keep:  # e.g. COUNT(*): read the narrowest column for the row count
            keep = [(plan.columns[0], plan.names[0])]
        scan = replace(plan, columns=tuple(c for c, _ in keep), names=tuple(n for _, n in keep))
        outputs = [f for f in scan.schema if f.name in needed]
        if outputs and len(outputs) < len(keep):
            # Columns read only for the scan's filter go no further than the scan's
            # task: they never cross an exchange or fill a join's build side.
            return Project(scan, tuple((f.name, ColumnRef(f.name, f.type)) for f in outputs))
        return scan
    if isinstance(plan, Filter):
        return replace(plan, input=_prune(plan.input, needed | plan.predicate.columns()))
    if isinstance(plan, Project):
        exprs = tuple((n, e) for n, e in plan.exprs if n in needed) or plan.exprs[:1]
        return replace(plan, input=_prune(plan.input, _cols([e for _, e in exprs])), exprs=exprs)
    if isinstance(plan, Aggregate):
        aggs = tuple((n, a) for n, a in plan.aggregates if n in needed)
        child_needs = _cols([e for _, e in plan.keys])
        child_needs |= _cols([a.arg for _, a in aggs if a.arg is not None])
        return replace(plan, input=_prune(plan.input, child_needs), aggregates=aggs)
    if isinstance(plan, Sort):
        return replace(plan, input=_prune(plan.input, needed | _cols([k.expr for k in plan.keys])))
    if isinstance(plan, Expand):
        kept = [i for i, (n, _) in enumerate(plan.projections[0]) if n in needed] or [0]
        projections = tuple(tuple(p[i] for i in kept) for p in plan.projections)
        child_needs = _cols([e for p in projections for _, e in p])
        return replace(plan, input=_prune(plan.input, child_needs), projections=projections)
    if isinstance(plan, Unnest):
        # Its list column decides how many rows come out: always read.
        return replace(plan, input=_prune(plan.input, needed | {plan.column}))
    if isinstance(plan, Window):
        calls = tuple((n, c) for n, c in plan.calls if n in needed)
        if not calls:  # nobody reads the window's results
            return _prune(plan.input, needed)
        child_needs = (needed - {n for n, _ in plan.calls}) | set(plan.partition_by)
        child_needs |= _cols([k.expr for k in plan.order_by])
        child_needs |= _cols([e for _, c in calls for e in c.inputs()])
        return replace(plan, input=_prune(plan.input, child_needs), calls=calls)
    if isinstance(plan, Limit):
        return replace(plan, input=_prune(plan.input, needed))
    if isinstance(plan, UnionAll):
        # Positional: keep every column (set semantics of the output need them all).
        return replace(
            plan, inputs=tuple(_prune(c, {f.name for f in c.schema}) for c in plan.inputs)
        )
    if isinstance(plan, Values):
        return plan
    if isinstance(plan, CteRead):
        # The body is pruned later, to what all of its readers read (optimizer.py).
        keep = [(c, n) for c, n in zip(plan.columns, plan.names, strict=True) if n in needed]
        keep = keep or [(plan.columns[0], plan.names[0])]
        return replace(plan, columns=tuple(c for c, _ in keep), names=tuple(n for _, n in keep))
    if isinstance(plan, Join):
        wanted = needed | (plan.condition.columns() if plan.condition is not None else set())
        lnames = set(plan.left.schema.names)
        rnames = set(plan.right.schema.names)
        return replace(
            plan,
            left=_prune(plan.left, wanted & lnames),
            right=_prune(plan.right, wanted & rnames),
        )
    return plan.with_children(tuple(_prune(c, {f.name for f in c.schema}) for c in plan.children()))
