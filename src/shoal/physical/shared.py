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
would drop rows another reader needs (the leaf stops ``_place_filter``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shoal.exchange_spec import ExchangeKind, ExchangeSpec
from shoal.logical.plan import LogicalPlan
from shoal.physical.context import Settings
from shoal.physical.operators.exchange import ExchangeExec, SharedReadExec
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
    main = apply_rules_before_query_wide(_with_specs(main, specs), settings)
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
    return QueryPlan(done_main, shared)


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
