"""The logical optimizer: its rules, in the order they run, and why that order."""

from __future__ import annotations

from collections.abc import Callable

from shoal.logical.plan import LogicalPlan, LogicalQuery
from shoal.optimizer.distinct_aggregates import rewrite_distinct_aggregates
from shoal.optimizer.join_order import reorder_joins
from shoal.optimizer.magic_sets import reduce_aggregates_to_join_keys
from shoal.optimizer.merge_projections import merge_projections
from shoal.optimizer.prune import prune_columns
from shoal.optimizer.pushdown import push_down_predicates
from shoal.optimizer.statistics import estimate_rows

Rule = Callable[[LogicalPlan], LogicalPlan]

RULES: tuple[tuple[str, Rule], ...] = (
    # Before pushdown, so the inner aggregation's keys are visible to it.
    ("rewrite_distinct_aggregates", rewrite_distinct_aggregates),
    # Filters first, so pruning sees which columns the pushed filters still read.
    ("push_down_predicates", push_down_predicates),
    # With every filter at its relation, estimates see their selectivity.
    ("reorder_joins", reorder_joins),
    # Reordering can leave conjuncts above a join that now can sit below it.
    ("push_down_predicates_again", push_down_predicates),
    # Needs the final join order (to find the small key source) and pushed filters.
    ("reduce_aggregates_to_join_keys", reduce_aggregates_to_join_keys),
    ("prune_columns", prune_columns),
    # Last: pruning leaves projections that pass columns through; fold them together.
    ("merge_projections", merge_projections),
)


def optimize(query: LogicalQuery) -> LogicalQuery:
    # Estimates are memoized per plan node; start each query afresh so no table
    # (an in-memory one, or a file since rewritten) is held or trusted past it.
    estimate_rows.cache_clear()
    plan = query.plan
    for _, rule in RULES:
        plan = rule(plan)
    return LogicalQuery(plan, query.output_names)
