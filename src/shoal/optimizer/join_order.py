"""Join order: greedy over each cluster of inner joins, guided by estimates.

A cluster is a maximal tree of inner / cross joins; its leaves (scans, outer
joins, aggregates...) are ordered by repeatedly joining the connected pair whose
estimated result is smallest — never a cross product while an equi-join path
exists, and a pair connected only by equalities of columns whose distinct count is
unknown (strings) only when no pair is connected by a key with an estimate (TPC-DS
q85: the two customer_demographics copies share marital and education status, 5 and 7
values, and crossing 1.9 million rows with 1.9 million is no join to start with). The
larger input of each join is put on the left (the probe side), the smaller on the
right (the build side, which a hash join holds in memory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shoal.expr.nodes import Expr, conjoin, conjuncts
from shoal.logical.plan import Filter, Join, LogicalPlan
from shoal.optimizer.statistics import distinct_is_estimated, equi_pairs, estimate_rows


@dataclass
class _Component:
    plan: LogicalPlan
    names: frozenset[str]
    rows: float


def reorder_joins(plan: LogicalPlan) -> LogicalPlan:
    children = tuple(reorder_joins(c) for c in plan.children())
    if children:
        plan = plan.with_children(children)
    if not _is_inner(plan):
        return plan
    leaves: list[LogicalPlan] = []
    predicates: list[Expr] = []
    _flatten(plan, leaves, predicates)
    if len(leaves) < 3 and not predicates:
        return _orient(plan)
    components = [
        _Component(leaf, frozenset(leaf.schema.names), estimate_rows(leaf)) for leaf in leaves
    ]
    while len(components) > 1:
        best: tuple[tuple[bool, int, float], int, int, list[Expr]] | None = None
        for i in range(len(components)):
            for j in range(i + 1, len(components)):
                a, b = components[i], components[j]
                conds = _connecting(predicates, a.names, b.names)
                pairs = equi_pairs(conjoin(conds), _schema(a), _schema(b))
                if not pairs:
                    continue
                weak = not any(
                    distinct_is_estimated(a.plan, lk) or distinct_is_estimated(b.plan, rk)
                    for lk, rk in pairs
                )
                rows = estimate_rows(Join(a.plan, b.plan, "inner", conjoin(conds)))
                # Estimates within 5% are a tie: then join the smaller input first
                # (a filtered dimension before a large one).
                score = (
                    weak,
                    round(math.log(max(rows, 1.0)) / math.log(1.05)),
                    min(a.rows, b.rows),
                )
                if best is None or score < best[0]:
                    best = (score, i, j, conds)
        if best is None:
            # No equi-join connects what is left: cross the two smallest.
            order = sorted(range(len(components)), key=lambda k: components[k].rows)
            i, j = sorted(order[:2])
            conds = _connecting(predicates, components[i].names, components[j].names)
        else:
            _, i, j, conds = best
        a, b = components[i], components[j]
        for c in conds:
            predicates.remove(c)
        if b.rows > a.rows:
            a, b = b, a
        joined = Join(a.plan, b.plan, "inner" if conds else "cross", conjoin(conds))
        merged = _Component(joined, a.names | b.names, estimate_rows(joined))
        components = [c for k, c in enumerate(components) if k not in (i, j)] + [merged]
    result = components[0].plan
    rest = conjoin(predicates)
    return Filter(result, rest) if rest is not None else result


def _is_inner(plan: LogicalPlan) -> bool:
    return (
        isinstance(plan, Join)
        and plan.kind in ("inner", "cross")
        and not (plan.single_row or plan.null_equal or plan.null_aware)
    )


def _flatten(plan: LogicalPlan, leaves: list[LogicalPlan], predicates: list[Expr]) -> None:
    if _is_inner(plan):
        assert isinstance(plan, Join)
        predicates.extend(conjuncts(plan.condition))
        _flatten(plan.left, leaves, predicates)
        _flatten(plan.right, leaves, predicates)
    else:
        leaves.append(plan)


def _connecting(predicates: list[Expr], a: frozenset[str], b: frozenset[str]) -> list[Expr]:
    both = a | b
    return [p for p in predicates if p.columns() <= both and p.columns() & a and p.columns() & b]


def _schema(c: _Component):  # type: ignore[no-untyped-def]
    return c.plan.schema


def _orient(plan: LogicalPlan) -> LogicalPlan:
    assert isinstance(plan, Join)
    if estimate_rows(plan.right) > estimate_rows(plan.left):
        return Join(plan.right, plan.left, plan.kind, plan.condition)
    return plan
