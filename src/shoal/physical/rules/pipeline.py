"""The physical rules, in the order they run, with the reason for each position.

``PhysicalPlanner`` makes a plan without exchanges; these rules turn it into the
plan the stage cutter cuts. Each takes the plan (and the settings) and returns one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from shoal.physical.context import Settings
from shoal.physical.plan import PhysicalPlan
from shoal.physical.rules.encoded_keys import keep_group_keys_encoded
from shoal.physical.rules.enforce_distribution import enforce_distribution
from shoal.physical.rules.enforce_sorting import enforce_sorting
from shoal.physical.rules.join_filters import push_join_filters
from shoal.physical.rules.sanity_check import sanity_check
from shoal.physical.rules.share_scans import share_scans

Rule = Callable[[PhysicalPlan, Settings], PhysicalPlan]

#: (name, rule, why it sits here)
RULES: tuple[tuple[str, Rule, str], ...] = (
    (
        "enforce_distribution",
        enforce_distribution,
        "first: the only rule that inserts exchanges (and runtime filters); the rules "
        "below need the final operator tree",
    ),
    (
        "enforce_sorting",
        lambda plan, settings: enforce_sorting(plan),
        "after enforce_distribution: a sort that keeps its partitioning goes above the "
        "exchange that gives the partitioning a window needs, so the exchanges must be placed",
    ),
    (
        "push_join_filters",
        push_join_filters,
        "after the exchanges and sorts are placed (a filter crosses a stage boundary only "
        "from a join whose every task holds the whole build side); before share_scans, "
        "which rebuilds the scans it marks",
    ),
    (
        "share_scans",
        share_scans,
        "after every scan exists and no scan moves any more: it counts the readers of "
        "each row group in the final plan",
    ),
    (
        "keep_group_keys_encoded",
        lambda plan, settings: keep_group_keys_encoded(plan),
        "after share_scans, which rebuilds every member scan: marks the scans as they finally "
        "are; only affects how a scan hands its columns on, so nothing below depends on it",
    ),
    (
        "sanity_check",
        lambda plan, settings: sanity_check(plan),
        "last: changes nothing, rejects a plan whose distribution or order needs are unmet",
    ),
)


#: Rules that see every plan of a query at once — the main plan and the shared CTE
#: bodies (physical/shared.py), which are planned apart — because what they decide
#: spans plans: ShareScans counts every reader of a row group, wherever it is.
QUERY_WIDE = frozenset({"share_scans"})


def apply_physical_rules(plan: PhysicalPlan, settings: Settings) -> PhysicalPlan:
    for _name, rule, _why in RULES:
        plan = rule(plan, settings)
    return plan


def apply_rules_before_query_wide(plan: PhysicalPlan, settings: Settings) -> PhysicalPlan:
    """The rules up to the first query-wide one, on one plan."""
    for name, rule, _why in RULES:
        if name in QUERY_WIDE:
            break
        plan = rule(plan, settings)
    return plan


def apply_rules_from_query_wide(
    plans: list[PhysicalPlan], settings: Settings
) -> list[PhysicalPlan]:
    """The rules from the first query-wide one on: query-wide ones over all ``plans``
    together, the others on each."""
    started = False
    for name, rule, _why in RULES:
        started = started or name in QUERY_WIDE
        if not started:
            continue
        if name in QUERY_WIDE:
            forest = rule(Forest(tuple(plans)), settings)
            plans = list(forest.children())
        else:
            plans = [rule(p, settings) for p in plans]
    return plans


@dataclass(frozen=True)
class Forest(PhysicalPlan):
    """Several plans of one query under one node, for a query-wide rule to walk; never
    executed or cut into stages."""

    plans: tuple[PhysicalPlan, ...]

    def children(self) -> tuple[PhysicalPlan, ...]:
        return self.plans

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return Forest(tuple(children))

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([])


__all__ = [
    "QUERY_WIDE",
    "RULES",
    "Forest",
    "apply_physical_rules",
    "apply_rules_before_query_wide",
    "apply_rules_from_query_wide",
]
