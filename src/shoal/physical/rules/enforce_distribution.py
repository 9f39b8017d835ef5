"""EnforceDistribution: the only rule that inserts exchanges.

Walks the plan bottom-up. Where an operator's input does not satisfy the
distribution it needs, it either splits the operator around an exchange so that
work is done before data moves —

    Aggregate[single]  ->  Aggregate[final] <- hash(keys) <- Aggregate[partial]
    TopK[single]       ->  TopK[final] <- gather <- TopK[partial]
    Limit[single]      ->  Limit[final] <- gather <- Limit[partial]
    Sort (global)      ->  ordered merge <- Sort (per partition)

— or inserts a plain exchange (hash repartition, gather, round-robin for
unions). Invariants: the result satisfies every need (SanityCheck verifies);
running the rule twice changes nothing more (an operator whose need is met is
left alone); ordering needs are met by the sort/merge split above.
"""

from __future__ import annotations

from shoal.expr.nodes import ColumnRef
from shoal.physical.context import Settings
from shoal.physical.operators.aggregate import FINAL, PARTIAL, SINGLE_MODE, HashAggregateExec
from shoal.physical.operators.exchange import (
    GATHER,
    HASH,
    MERGE,
    ROUND_ROBIN,
    ExchangeExec,
    ExchangeSpec,
)
from shoal.physical.operators.limit import LimitExec
from shoal.physical.operators.sort import SortExec
from shoal.physical.operators.topk import TopKExec
from shoal.physical.operators.union import UnionExec
from shoal.physical.partitioning import (
    Distribution,
    HashDistributed,
    SinglePartition,
    satisfies,
)
from shoal.physical.plan import PhysicalPlan


def enforce_distribution(plan: PhysicalPlan, settings: Settings) -> PhysicalPlan:
    children = tuple(enforce_distribution(c, settings) for c in plan.children())
    if children:
        plan = plan.with_children(children)
    n = settings.partitions

    if isinstance(plan, HashAggregateExec) and plan.mode == SINGLE_MODE:
        child = plan.input
        if _met(child, plan.required_input_distributions()[0]):
            return plan
        partial = HashAggregateExec(child, PARTIAL, plan.keys, plan.aggs)
        final_keys = tuple((name, ColumnRef(name, e.type)) for name, e in plan.keys)
        spec = ExchangeSpec(HASH, n, plan.key_names) if plan.keys else ExchangeSpec(GATHER, 1)
        return HashAggregateExec(ExchangeExec(partial, spec), FINAL, final_keys, plan.aggs)

    if isinstance(plan, TopKExec) and plan.mode == "single":
        if _single(plan.input):
            return plan
        partial_topk = TopKExec(plan.input, "partial", plan.keys, plan.limit, plan.offset)
        gathered = ExchangeExec(partial_topk, ExchangeSpec(GATHER, 1))
        return TopKExec(gathered, "final", plan.keys, plan.limit, plan.offset)

    if isinstance(plan, LimitExec) and plan.mode == "single":
        if _single(plan.input):
            return plan
        partial_limit = LimitExec(plan.input, "partial", plan.limit, plan.offset)
        gathered = ExchangeExec(partial_limit, ExchangeSpec(GATHER, 1))
        return LimitExec(gathered, "final", plan.limit, plan.offset)

    if isinstance(plan, SortExec) and not _single(plan.input):
        # Sort each partition, then k-way merge the sorted streams into one.
        return ExchangeExec(plan, ExchangeSpec(MERGE, 1, sort_keys=plan.keys))

    if isinstance(plan, UnionExec):
        counts = [c.output_partitioning().num_partitions for c in plan.inputs]
        if len(set(counts)) > 1:
            target = max(counts)
            inputs = tuple(
                c if k == target else ExchangeExec(c, ExchangeSpec(ROUND_ROBIN, target))
                for c, k in zip(plan.inputs, counts, strict=True)
            )
            return UnionExec(inputs)
        return plan

    # Generic: satisfy each need with a plain exchange.
    needs = plan.required_input_distributions()
    new_children = []
    changed = False
    for child, need in zip(plan.children(), needs, strict=True):
        if not _met(child, need):
            child = ExchangeExec(child, _exchange_for(need, n))
            changed = True
        new_children.append(child)
    return plan.with_children(tuple(new_children)) if changed else plan


def _single(plan: PhysicalPlan) -> bool:
    return satisfies(plan.output_partitioning(), SinglePartition())


def _met(plan: PhysicalPlan, need: Distribution) -> bool:
    return satisfies(plan.output_partitioning(), need)


def _exchange_for(need: Distribution, n: int) -> ExchangeSpec:
    if isinstance(need, HashDistributed):
        return ExchangeSpec(HASH, n, need.keys)
    if isinstance(need, SinglePartition):
        return ExchangeSpec(GATHER, 1)
    raise AssertionError(f"no exchange satisfies {need}")
