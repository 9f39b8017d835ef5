"""Outer-join simplification: an outer join whose NULL-extended rows a filter above
drops anyway is an inner (or a one-sided outer) join.

``(a LEFT JOIN b ON …) JOIN c ON b.x = c.y`` keeps only rows where ``b.x`` is not
NULL, so the rows the left join adds for unmatched ``a`` rows never survive: the
join is inner, which lets the join orderer move it (TPC-DS q93 joins
``store_returns`` to the selective ``reason`` before ``store_sales``) and lets
pushdown filter the preserved side from ON. A conjunct *rejects NULLs* of a column
when it is NULL or false whenever that column is NULL (``strict_columns``).

The rule walks top-down carrying the columns rejected by the conjuncts that hold
above (filters, inner-join conditions) and passes them only where removing rows
below cannot change what a node above computes: through filters, renaming
projections, sorts and inner/cross joins, and into the preserved side of outer
and semi/anti joins. Aggregates, limits, windows and unions start afresh.
"""

from __future__ import annotations

from dataclasses import replace

from shoal.expr.nodes import COMPARISONS, Call, Cast, ColumnRef, Expr, InList, conjuncts
from shoal.logical.plan import Filter, Join, LogicalPlan, Project, Sort

# Calls that are NULL whenever one of their arguments is NULL.
_NULL_PROPAGATING = COMPARISONS | {"add", "subtract", "multiply", "divide", "modulo", "negate"}


def simplify_outer_joins(plan: LogicalPlan) -> LogicalPlan:
    return _simplify(plan, frozenset())


def strict_columns(e: Expr) -> frozenset[str]:
    """Columns whose NULL makes ``e`` NULL (as a predicate: not true)."""
    if isinstance(e, ColumnRef):
        return frozenset((e.name,))
    if isinstance(e, Cast):
        return strict_columns(e.arg)
    if isinstance(e, InList):
        return strict_columns(e.arg)
    if isinstance(e, Call):
        if e.fn in _NULL_PROPAGATING:
            return frozenset().union(*(strict_columns(a) for a in e.args))
        if e.fn == "not" and len(e.args) == 1:
            inner = e.args[0]
            if isinstance(inner, Call) and inner.fn == "is_null" and len(inner.args) == 1:
                return strict_columns(inner.args[0])  # IS NOT NULL: false on NULL
            return strict_columns(inner)
        if e.fn == "and":
            return frozenset().union(*(strict_columns(a) for a in e.args))
        if e.fn == "or":
            # Not true on NULL only when no branch can be true on it.
            parts = [strict_columns(a) for a in e.args]
            return frozenset.intersection(*parts) if parts else frozenset()
    return frozenset()


def _rejected_by(predicate: Expr | None) -> frozenset[str]:
    return frozenset().union(*(strict_columns(c) for c in conjuncts(predicate)))


def _simplify(plan: LogicalPlan, rejected: frozenset[str]) -> LogicalPlan:
    if isinstance(plan, Filter):
        inner = _simplify(plan.input, rejected | _rejected_by(plan.predicate))
        return replace(plan, input=inner)
    if isinstance(plan, Sort):
        return replace(plan, input=_simplify(plan.input, rejected))
    if isinstance(plan, Project):
        below = frozenset(
            e.name for name, e in plan.exprs if name in rejected and isinstance(e, ColumnRef)
        )
        return replace(plan, input=_simplify(plan.input, below))
    if isinstance(plan, Join) and not (plan.single_row or plan.null_aware or plan.null_equal):
        return _simplify_join(plan, rejected)
    children = plan.children()
    if not children:
        return plan
    return plan.with_children(tuple(_simplify(c, frozenset()) for c in children))


def _simplify_join(plan: Join, rejected: frozenset[str]) -> LogicalPlan:
    kind = plan.kind
    left_names = frozenset(plan.left.schema.names)
    right_names = frozenset(plan.right.schema.names)
    # A NULL-extended row has every column of the other side NULL: one rejected
    # column of that side drops them all.
    drops_unmatched_left = bool(rejected & right_names)
    drops_unmatched_right = bool(rejected & left_names)
    if kind == "left" and drops_unmatched_left or kind == "right" and drops_unmatched_right:
        kind = "inner"
    elif kind == "full" and (drops_unmatched_left or drops_unmatched_right):
        if drops_unmatched_left and drops_unmatched_right:
            kind = "inner"
        else:
            kind = "right" if drops_unmatched_left else "left"
    if kind in ("inner", "cross"):
        below = rejected | _rejected_by(plan.condition)
        left, right = _simplify(plan.left, below), _simplify(plan.right, below)
    elif kind in ("left", "semi", "anti"):
        left, right = _simplify(plan.left, rejected), _simplify(plan.right, frozenset())
    elif kind == "right":
        left, right = _simplify(plan.left, frozenset()), _simplify(plan.right, rejected)
    else:
        left, right = _simplify(plan.left, frozenset()), _simplify(plan.right, frozenset())
    return replace(plan, left=left, right=right, kind=kind)
