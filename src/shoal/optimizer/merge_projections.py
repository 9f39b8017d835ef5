"""Merge a Project directly over another Project into one.

The binder stacks projections (select list over hidden sort keys, set-operation
renames); one evaluation per batch is enough. An inner expression is substituted
into the outer one only where that does not compute it twice (it is a plain
column, a constant, or used once).
"""

from __future__ import annotations

from collections import Counter

from shoal.expr.nodes import ColumnRef, Literal, rename_columns
from shoal.logical.plan import LogicalPlan, Project


def merge_projections(plan: LogicalPlan) -> LogicalPlan:
    old = plan.children()
    children = tuple(merge_projections(c) for c in old)
    if any(c is not o for c, o in zip(children, old, strict=True)):
        # Rebuilt only when a child changed: a new node recomputes its cached schema.
        plan = plan.with_children(children)
    if not (isinstance(plan, Project) and isinstance(plan.input, Project)):
        return plan
    inner = plan.input
    uses: Counter[str] = Counter()
    for _, e in plan.exprs:
        for ref in e.walk():
            if isinstance(ref, ColumnRef):
                uses[ref.name] += 1
    mapping = dict(inner.exprs)
    for name, e in inner.exprs:
        if uses[name] > 1 and not isinstance(e, ColumnRef | Literal):
            return plan
    return Project(inner.input, tuple((n, rename_columns(e, mapping)) for n, e in plan.exprs))
