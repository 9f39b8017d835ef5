"""The physical rules, in the order they run, with the reason for each position.

``PhysicalPlanner`` makes a plan without exchanges; these rules turn it into the
plan the stage cutter cuts. Each takes the plan (and the settings) and returns one.
"""

from __future__ import annotations

from collections.abc import Callable

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
        "after the exchanges and sorts are placed (a filter never crosses a stage "
        "boundary); before share_scans, which rebuilds the scans it marks",
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


def apply_physical_rules(plan: PhysicalPlan, settings: Settings) -> PhysicalPlan:
    for _name, rule, _why in RULES:
        plan = rule(plan, settings)
    return plan


__all__ = ["RULES", "apply_physical_rules"]
