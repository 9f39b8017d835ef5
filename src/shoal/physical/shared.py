"""Planning a query whose CTEs are shared: each body once, as a stage every reader reads.

``sql/ctes.py`` binds a CTE read more than once (and worth it: it joins, aggregates or
has windows) into ``CteRead``s of one body. The planner makes each read a
``SharedReadExec`` leaf (under a projection that renames the body's columns to the
read's) and collects the bodies. Each body is then planned on its own, in binding
order (a body reads only bodies bound before it): the rules up to ShareScans, then
an output exchange chosen from what the body gives —

- hash-partitioned on some keys: ``HashRepartition`` on those keys into the same
  number of partitions (the readers keep that partitioning: a join or aggregate on
  the keys above a read needs no exchange of its own);
- one partition: ``Gather`` (its readers run in one partition);
- otherwise: ``RoundRobin`` into ``Settings.partitions``.

The readers' leaves learn that exchange (their partitioning) before their own plan
goes through the rules. ShareScans then runs over every plan at once, the other rules
on each. ``build_stage_graph`` makes each body one stage with that exchange and every
leaf an ``ExchangeRead`` of it; the runtimes hand each reader all of the batches
addressed to its partition (pipelined: a copy of each channel per reader,
unbounded; materialized and Ray: the committed output, read once per reader).

Runtime filters never cross into a shared body: a filter published above one reader
would drop rows another reader needs (the leaf stops ``_place_filter``). So when every
reader of a body (read by the main plan only) ends up under a runtime filter, the body
is not shared after all: each read gets a plan of the body of its own, which its
filter reaches into (TPC-DS q95: the self-join ``ws_wh`` under two IN subqueries joins
only the outer query's orders; shared, it would join all 6.6 M pairs once). EXPLAIN
notes it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shoal.exchange_spec import ExchangeKind, ExchangeSpec
from shoal.logical.plan import LogicalPlan
from shoal.physical.context import Settings
from shoal.physical.operators.exchange import ExchangeExec, SharedReadExec
from shoal.physical.operators.project import ProjectExec
from shoal.physical.operators.runtime_filter import RuntimeFilterExec
from shoal.physical.partitioning import HashPartitioned
from shoal.physical.plan import PhysicalPlan, replace_nodes
from shoal.physical.planner import PhysicalPlanner
from shoal.physical.rules.pipeline import (
    apply_rules_before_query_wide,
    apply_rules_from_query_wide,
)


@dataclass(frozen=True)
class SharedBody:
    """A shared CTE body, planned, under the exchange its readers read."""

    cte_id: int
    cte_name: str
    output: ExchangeExec
    readers: int  # SharedRead leaves reading it, in every plan of the query


@dataclass(frozen=True)
class QueryPlan:
    plan: PhysicalPlan
    shared: tuple[SharedBody, ...] = ()  # by cte id
    notes: tuple[str, ...] = ()  # for EXPLAIN: CTEs not shared, and why


def plan_query(logical: LogicalPlan, settings: Settings) -> QueryPlan:
    """The physical plan of ``logical``, after every physical rule, with its shared bodies."""
    planner = PhysicalPlanner(settings)
    main = planner.plan(logical)
    bodies: dict[int, PhysicalPlan] = {}
    while len(bodies) < len(planner.shared):
        for cte_id, read in sorted(planner.shared.items()):
            if cte_id not in bodies:
                bodies[cte_id] = planner.plan(read.body)
    if not bodies:
        (done,) = apply_rules_from_query_wide(
            [apply_rules_before_query_wide(main, settings)], settings
        )
        return QueryPlan(done)
    specs: dict[int, ExchangeSpec] = {}
    planned: dict[int, PhysicalPlan] = {}
    for cte_id in sorted(bodies):
        body = apply_rules_before_query_wide(_with_specs(bodies[cte_id], specs), settings)
        specs[cte_id] = _output_spec(body, settings)
        planned[cte_id] = body
    distributed = apply_rules_before_query_wide(_with_specs(main, specs), settings)
    notes: list[str] = []
    if settings.runtime_filters:
        filtered = _filtered_everywhere(distributed, planned)
        if filtered:
            # Every reader is filtered by a join's keys at run time, which cannot reach
            # into a shared body: each reader gets its own copy, filtered (TPC-DS q95).
            main = _inline(main, filtered, planner)
            for cte_id in filtered:
                del planned[cte_id]
                notes.append(
                    f"CTE {planner.shared[cte_id].cte_name}: computed per reader (every reader "
                    "is filtered at run time by a join's keys; a filter reaches into its own copy)"
                )
            distributed = apply_rules_before_query_wide(_with_specs(main, specs), settings)
    main = distributed
    ids = sorted(planned)
    done_main, *done_bodies = apply_rules_from_query_wide(
        [main, *(planned[i] for i in ids)], settings
    )
    readers: dict[int, int] = dict.fromkeys(ids, 0)
    for plan in (done_main, *done_bodies):
        for node in plan.walk():
            if isinstance(node, SharedReadExec):
                readers[node.cte_id] += 1
    shared = tuple(
        SharedBody(i, planner.shared[i].cte_name, ExchangeExec(body, specs[i]), readers[i])
        for i, body in zip(ids, done_bodies, strict=True)
    )
    return QueryPlan(done_main, shared, tuple(notes))


def _filtered_everywhere(plan: PhysicalPlan, bodies: dict[int, PhysicalPlan]) -> set[int]:
    """Shared CTEs read only by ``plan`` (not by another body), every read directly
    under a runtime filter (through the renaming projection)."""
    reads: dict[int, int] = {}
    filtered: dict[int, int] = {}
    for node in plan.walk():
        if isinstance(node, SharedReadExec):
            reads[node.cte_id] = reads.get(node.cte_id, 0) + 1
        if isinstance(node, RuntimeFilterExec):
            below = node.input
            if isinstance(below, ProjectExec):
                below = below.input
            if isinstance(below, SharedReadExec):
                filtered[below.cte_id] = filtered.get(below.cte_id, 0) + 1
    read_by_bodies = {
        n.cte_id for body in bodies.values() for n in body.walk() if isinstance(n, SharedReadExec)
    }
    return {
        k
        for k, n in reads.items()
        if k in bodies and k not in read_by_bodies and filtered.get(k, 0) == n
    }


def _inline(plan: PhysicalPlan, ctes: set[int], planner: PhysicalPlanner) -> PhysicalPlan:
    """``plan`` with each read of ``ctes`` replaced by a plan of the body of its own:
    planned afresh per read, so no operator object appears twice (scans and joins key
    what their tasks share by operator)."""
    copies = {
        id(node): planner.plan(planner.shared[node.cte_id].body)
        for node in plan.walk()
        if isinstance(node, SharedReadExec) and node.cte_id in ctes
    }
    return replace_nodes(plan, copies)


def _output_spec(body: PhysicalPlan, settings: Settings) -> ExchangeSpec:
    p = body.output_partitioning()
    if isinstance(p, HashPartitioned) and p.num_partitions > 1:
        return ExchangeSpec(ExchangeKind.HASH, p.num_partitions, p.keys)
    if p.num_partitions == 1:
        return ExchangeSpec(ExchangeKind.GATHER, 1)
    return ExchangeSpec(ExchangeKind.ROUND_ROBIN, settings.partitions)


def _with_specs(plan: PhysicalPlan, specs: dict[int, ExchangeSpec]) -> PhysicalPlan:
    """``plan`` with each SharedRead leaf given its body's output exchange."""
    leaves = {
        id(node): replace(node, spec=specs[node.cte_id])
        for node in plan.walk()
        if isinstance(node, SharedReadExec)
    }
    return replace_nodes(plan, leaves) if leaves else plan


__all__ = ["QueryPlan", "SharedBody", "plan_query"]
