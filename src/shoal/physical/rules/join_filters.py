"""PushJoinFilters: a hash join's build keys filter the scan that feeds its probe keys.

For each hash join that builds before it probes (not ``build_left``) and drops probe
rows without a match (inner, semi, right kind; not NULL-equal), each integer-like
probe key is followed down the probe side, within the stage, through operators whose
every output row carries one input row's value of that column unchanged:

* ``Project`` (a plain column reference, renamed or not), ``Filter``, ``RuntimeFilter``;
* a hash join below, into its probe side (inner, left, semi, anti: each output row is
  one probe row, or none) or into an inner join's build side;
* a partial or single aggregate, when the column is a plain group key (a group whose
  key no build row has produces nothing above).

If the column reaches a ``ScanExec``, the join and the scan are given a filter id: the
join publishes its build keys under that id once built (``operators/join_filter.py``)
and the scan skips row groups whose min/max miss them and drops rows whose key is not
among them. The path stops at anything else (limits, windows, unions, Expand, a
shared CTE's read).

*Across stages* (pipelined runs only, ``Settings.runtime_filters``): a join whose every
task holds the whole build side (broadcast or single) may follow the key further,
through exchanges (each passes rows unchanged) and final aggregates (a plain group
key, as for partial ones), into the stages that produce its probe side. Such a filter
(``xf<n>``, unique in the process) is published once per query and process
(``HashJoinExec.stage_filters``), and the producer's scans read it as their own. Q17's
``avg(l_quantity)`` per part then aggregates only the lineitem rows of the 2,000
parts the join looks up, not of all 200,000. A partitioned join's task holds one
partition of the keys only: its filters stay within the task.

The rule cannot change a result or stall a query: a filter not yet published filters
nothing. A same-task filter is never waited for; a scan waits for a stage filter once,
for a bounded time (``runtime/filters.StageFilters``), then reads unfiltered.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from shoal.arrays import integer_like
from shoal.expr.nodes import ColumnRef
from shoal.physical.context import Settings
from shoal.physical.operators.aggregate import FINAL, PARTIAL, SINGLE_MODE, HashAggregateExec
from shoal.physical.operators.exchange import ExchangeExec
from shoal.physical.operators.filter import FilterExec
from shoal.physical.operators.hash_join import BROADCAST_JOIN, SINGLE_JOIN, HashJoinExec
from shoal.physical.operators.project import ProjectExec
from shoal.physical.operators.runtime_filter import RuntimeFilterExec
from shoal.physical.operators.scan import ScanExec
from shoal.physical.plan import PhysicalPlan

# Join kinds that emit nothing for a probe row without a match.
_FILTERING_KINDS = frozenset({"inner", "semi", "right"})
# Joins below that a probe-side column passes through: each output row is one row of
# the probe side (or, for inner joins, also one build row, for build-side columns).
_PASS_PROBE_KINDS = frozenset({"inner", "left", "semi", "anti"})
# Strategies whose every task builds the whole build side: its keys hold for any task
# of the stages below.
_WHOLE_BUILD = frozenset({BROADCAST_JOIN, SINGLE_JOIN})
# Ids of the filters that cross stages: unique in the process, as they are published
# for the whole query (a query's shared CTE bodies are planned apart, each numbering
# its own ``jf`` filters from 0).
_stage_filter_ids = itertools.count()


def push_join_filters(plan: PhysicalPlan, settings: Settings) -> PhysicalPlan:
    if not settings.join_filters:
        return plan
    joins: dict[int, dict[str, list[tuple[int, str]]]] = {}
    scans: dict[int, list[tuple[str, str]]] = {}
    number = 0
    for node in plan.walk():
        if not _publishes(node):
            continue
        assert isinstance(node, HashJoinExec)
        cross = settings.runtime_filters and node.strategy in _WHOLE_BUILD
        types = {f.name: f.type for f in node.left.schema}
        for position, key in enumerate(node.left_keys):
            t = types.get(key)
            if t is None or not integer_like(t) or str(t) == "bool":
                continue
            target = _trace(node.left, key, cross)
            if target is None:
                continue
            scan, column, crossed = target
            if crossed:
                filter_id, field = f"xf{next(_stage_filter_ids)}", "stage_filters"
            else:
                filter_id, field = f"jf{number}", "join_filters"
                number += 1
            joins.setdefault(id(node), {}).setdefault(field, []).append((position, filter_id))
            scans.setdefault(id(scan), []).append((filter_id, column))
    if not joins:
        return plan
    updates: dict[int, dict[str, Any]] = {
        k: {name: tuple(ids) for name, ids in v.items()} for k, v in joins.items()
    }
    for k, found in scans.items():
        updates[k] = {"join_filters": tuple(found)}
    return _rebuild(plan, updates)


def _publishes(node: PhysicalPlan) -> bool:
    return (
        isinstance(node, HashJoinExec)
        and node.kind in _FILTERING_KINDS
        and not node.build_left
        and not node.null_equal
        and not node.null_aware
        and node.strategy is not None
    )


def _trace(node: PhysicalPlan, column: str, cross: bool) -> tuple[ScanExec, str, bool] | None:
    """The scan and its output column that ``column`` of ``node`` is, row for row, and
    whether the path crossed an exchange (only when ``cross``)."""
    crossed = False
    while True:
        if isinstance(node, ScanExec):
            return (node, column, crossed) if column in node.names else None
        if isinstance(node, (FilterExec, RuntimeFilterExec)):
            node = node.input
        elif isinstance(node, ExchangeExec) and cross:
            node, crossed = node.input, True
        elif isinstance(node, ProjectExec):
            found = dict(node.exprs).get(column)
            if not isinstance(found, ColumnRef):
                return None
            node, column = node.input, found.name
        elif isinstance(node, HashAggregateExec):
            modes = (PARTIAL, SINGLE_MODE, FINAL) if cross else (PARTIAL, SINGLE_MODE)
            if node.mode not in modes or node.always_group is not None:
                return None
            found = dict(node.keys).get(column)
            if not isinstance(found, ColumnRef):
                return None
            node, column = node.input, found.name
        elif isinstance(node, HashJoinExec):
            if node.null_equal:
                return None
            if node.kind in _PASS_PROBE_KINDS and column in node.left.schema.names:
                node = node.left
            elif node.kind == "inner" and column in node.right.schema.names:
                node = node.right
            else:
                return None
        else:
            return None


def _rebuild(node: PhysicalPlan, updates: dict[int, dict[str, Any]]) -> PhysicalPlan:
    """``node`` with its children rebuilt first, then the fields ``updates`` names for
    it (by the original node's id) replaced."""
    children = node.children()
    out = node
    if children:
        rebuilt = tuple(_rebuild(c, updates) for c in children)
        if any(a is not b for a, b in zip(rebuilt, children, strict=True)):
            out = node.with_children(rebuilt)
    fields = updates.get(id(node))
    return replace(out, **fields) if fields else out  # type: ignore[type-var]


__all__ = ["push_join_filters"]
