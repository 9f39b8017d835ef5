"""The logical optimizer: its rules, in the order they run, and why that order."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace

import pyarrow as pa

from shoal.expr.nodes import Call, ColumnRef, Expr, rename_columns
from shoal.logical.plan import CteRead, Filter, LogicalPlan, LogicalQuery, Project, cte_reads
from shoal.optimizer.distinct_aggregates import rewrite_distinct_aggregates
from shoal.optimizer.eager_aggregation import push_aggregates_below_joins
from shoal.optimizer.join_order import reorder_joins
from shoal.optimizer.magic_sets import reduce_aggregates_to_join_keys
from shoal.optimizer.merge_projections import merge_projections
from shoal.optimizer.outer_joins import simplify_outer_joins
from shoal.optimizer.prune import prune_columns
from shoal.optimizer.pushdown import push_down_predicates
from shoal.optimizer.statistics import estimate_rows

Rule = Callable[[LogicalPlan], LogicalPlan]

RULES: tuple[tuple[str, Rule], ...] = (
    # Before pushdown, so the inner aggregation's keys are visible to it.
    ("rewrite_distinct_aggregates", rewrite_distinct_aggregates),
    # Before pushdown: an outer join made inner lets ON filter both sides, and before
    # reordering, which only moves inner joins.
    ("simplify_outer_joins", simplify_outer_joins),
    # Filters first, so pruning sees which columns the pushed filters still read.
    ("push_down_predicates", push_down_predicates),
    # With every filter at its relation, estimates see their selectivity.
    ("reorder_joins", reorder_joins),
    # Reordering can leave conjuncts above a join that now can sit below it.
    ("push_down_predicates_again", push_down_predicates),
    # Needs the final join order (to find the small key source) and pushed filters.
    ("reduce_aggregates_to_join_keys", reduce_aggregates_to_join_keys),
    # After the join order is final and the magic sets fed their aggregates; before
    # pruning, which drops the columns the pre-aggregations no longer pass on.
    ("push_aggregates_below_joins", push_aggregates_below_joins),
    ("prune_columns", prune_columns),
    # Last: pruning leaves projections that pass columns through; fold them together.
    ("merge_projections", merge_projections),
)


def optimize(query: LogicalQuery, share_ctes: bool = True) -> LogicalQuery:
    """``query``'s plan through the rules; ``share_ctes=False`` (the setting) also keeps
    the magic-set rule from sharing a key source: every reader computes its own."""
    # Estimates are memoized per plan node; start each query afresh so no table
    # (an in-memory one, or a file since rewritten) is held or trusted past it.
    estimate_rows.cache_clear()
    bound = [r.cte_id for r in _reads_everywhere(query.plan)]
    # Ids past the binder's for key sources the magic-set rule shares (main plan only).
    new_cte_ids = itertools.count(max(bound, default=-1) + 1) if share_ctes else None
    plan = _apply_rules(query.plan, new_cte_ids)
    if cte_reads(plan):
        plan = _optimize_shared_bodies(plan)
        estimate_rows.cache_clear()  # CteRead estimates came from the bodies as bound
    return LogicalQuery(plan, query.output_names)


def _apply_rules(plan: LogicalPlan, new_cte_ids: Iterator[int] | None = None) -> LogicalPlan:
    """Every rule in order; ``new_cte_ids`` lets the magic-set rule share a key source
    as a new CTE (given for the main plan only: a body reads only older CTEs)."""
    for _, rule in RULES:
        if rule is reduce_aggregates_to_join_keys:
            plan = reduce_aggregates_to_join_keys(plan, new_cte_ids)
        else:
            plan = rule(plan)
    return plan


def _optimize_shared_bodies(plan: LogicalPlan) -> LogicalPlan:
    """Optimize each shared CTE body once, after everything that reads it.

    A ``CteRead`` is a leaf to the rules, so nothing above it moves into its body
    while the readers are optimized. Then, from the last CTE bound to the first (a
    body reads only CTEs bound before it, so all readers of a CTE are final when its
    turn comes), the body is pruned to the columns its readers read and filtered by
    the OR of its readers' filters when every reader has one (each reader keeps its
    own filter): TPC-DS q4's six readers of ``year_total`` each want one year and
    sale type, so the body aggregates two years, not five. Then it goes through the
    rules like any plan.
    """
    done: dict[int, LogicalPlan] = {}
    pending = {r.cte_id: r for r in _reads_everywhere(plan)}
    while pending:
        cte_id = max(pending)
        first = pending.pop(cte_id)
        readers: list[tuple[CteRead, Expr | None]] = []
        for root in (plan, *done.values()):
            readers += [(r, f) for r, f in _reads_with_filters(root) if r.cte_id == cte_id]
        body = first.body
        needed = {r.body_name(n) for r, _ in readers for n in r.names}
        if readers and all(f is not None for _, f in readers):
            branches = []
            for r, f in readers:
                assert f is not None
                mapping: dict[str, Expr] = {
                    n: ColumnRef(c, t)
                    for c, n, t in zip(r.columns, r.names, r.schema.types, strict=True)
                }
                branches.append(rename_columns(f, mapping))
            body = Filter(body, _disjoin(branches))
        fields = [f for f in body.schema if f.name in needed]
        body = Project(body, tuple((f.name, ColumnRef(f.name, f.type)) for f in fields))
        done[cte_id] = _apply_rules(body)
        for r in _reads_everywhere(done[cte_id]):
            pending.setdefault(r.cte_id, r)
    return _with_bodies(plan, done)


def _reads_everywhere(plan: LogicalPlan) -> list[CteRead]:
    """The CteReads under ``plan`` and, transitively, under their bodies."""
    out: list[CteRead] = []
    seen: set[int] = set()
    stack = [plan]
    while stack:
        for r in cte_reads(stack.pop()):
            out.append(r)
            if r.cte_id not in seen:
                seen.add(r.cte_id)
                stack.append(r.body)
    return out


def _reads_with_filters(plan: LogicalPlan) -> list[tuple[CteRead, Expr | None]]:
    """Each CteRead under ``plan`` (not inside bodies) with the filter right above it."""
    out: list[tuple[CteRead, Expr | None]] = []
    stack: list[tuple[LogicalPlan, LogicalPlan | None]] = [(plan, None)]
    while stack:
        node, parent = stack.pop()
        if isinstance(node, CteRead):
            above = parent.predicate if isinstance(parent, Filter) else None
            out.append((node, above))
            continue
        stack.extend((c, node) for c in node.children())
    return out


def _with_bodies(plan: LogicalPlan, bodies: dict[int, LogicalPlan]) -> LogicalPlan:
    """``plan`` with each CteRead holding its optimized body (one object per CTE)."""
    final: dict[int, LogicalPlan] = {}
    for cte_id in sorted(bodies):  # a body reads only CTEs with smaller ids
        final[cte_id] = _replace_bodies(bodies[cte_id], final)
    return _replace_bodies(plan, final)


def _replace_bodies(plan: LogicalPlan, final: dict[int, LogicalPlan]) -> LogicalPlan:
    if isinstance(plan, CteRead):
        return replace(plan, body=final[plan.cte_id])
    children = plan.children()
    if not children:
        return plan
    return plan.with_children(tuple(_replace_bodies(c, final) for c in children))


def _disjoin(parts: list[Expr]) -> Expr:
    out = parts[0]
    for p in parts[1:]:
        out = Call("or", (out, p), pa.bool_())
    return out
