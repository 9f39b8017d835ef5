"""EnforceDistribution: the only rule that inserts exchanges.

Walks the plan bottom-up. Where an operator's input does not satisfy the
distribution it needs, it either splits the operator around an exchange so that
work is done before data moves —

    Aggregate[single]  ->  Aggregate[final] <- hash(keys) <- Aggregate[partial]
    TopK[single]       ->  TopK[final] <- gather <- TopK[partial]
    WindowTopK[single] ->  WindowTopK[final] <- hash(PARTITION BY) <- WindowTopK[partial]
    Limit[single]      ->  Limit[final] <- gather <- Limit[partial]
    Sort (global)      ->  ordered merge <- Sort (per partition)

— or inserts a plain exchange (hash repartition, gather, round-robin for
unions). Invariants: the result satisfies every need (SanityCheck verifies);
running the rule twice changes nothing more (an operator whose need is met is
left alone); ordering needs are met by the sort/merge split above.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from shoal.expr.nodes import ColumnRef, Expr, Literal
from shoal.physical.context import Settings
from shoal.physical.operators.aggregate import FINAL, PARTIAL, SINGLE_MODE, HashAggregateExec
from shoal.physical.operators.exchange import (
    BROADCAST,
    GATHER,
    HASH,
    MERGE,
    ROUND_ROBIN,
    ExchangeExec,
    ExchangeSpec,
)
from shoal.physical.operators.expand import ExpandExec
from shoal.physical.operators.expand_states import ExpandStatesExec
from shoal.physical.operators.filter import FilterExec
from shoal.physical.operators.hash_join import (
    BROADCAST_JOIN,
    COLOCATED_JOIN,
    PARTITIONED_JOIN,
    SINGLE_JOIN,
    HashJoinExec,
)
from shoal.physical.operators.limit import LimitExec
from shoal.physical.operators.nested_loop_join import NestedLoopJoinExec
from shoal.physical.operators.project import ProjectExec
from shoal.physical.operators.runtime_filter import RuntimeFilterExec
from shoal.physical.operators.sort import SortExec
from shoal.physical.operators.topk import TopKExec
from shoal.physical.operators.union import UnionExec
from shoal.physical.operators.window_topk import TopKMode, WindowTopKExec
from shoal.physical.partitioning import (
    Distribution,
    HashDistributed,
    HashPartitioned,
    Partitioning,
    Replicated,
    SinglePartition,
    satisfies,
)
from shoal.physical.plan import PhysicalPlan


def enforce_distribution(plan: PhysicalPlan, settings: Settings) -> PhysicalPlan:
    children = tuple(enforce_distribution(c, settings) for c in plan.children())
    if children:
        plan = plan.with_children(children)
    if isinstance(plan, ExchangeExec) and isinstance(plan.input, ExchangeExec):
        if plan.input.spec == plan.spec:
            return plan.input  # a second run re-splitting what the first already split
    n = settings.partitions

    if isinstance(plan, HashAggregateExec) and plan.mode == SINGLE_MODE:
        child = plan.input
        if _met(child, plan.required_input_distributions()[0]):
            return plan
        partial = _partial_below_expand(plan) or HashAggregateExec(
            child, PARTIAL, plan.keys, plan.aggs
        )
        final_keys = tuple((name, ColumnRef(name, e.type)) for name, e in plan.keys)
        spec = ExchangeSpec(HASH, n, plan.key_names) if plan.keys else ExchangeSpec(GATHER, 1)
        return HashAggregateExec(
            ExchangeExec(partial, spec), FINAL, final_keys, plan.aggs, plan.always_group
        )

    if isinstance(plan, TopKExec) and plan.mode == "single":
        if _single(plan.input):
            return plan
        partial_topk = TopKExec(plan.input, "partial", plan.keys, plan.limit, plan.offset)
        gathered = ExchangeExec(partial_topk, ExchangeSpec(GATHER, 1))
        return TopKExec(gathered, "final", plan.keys, plan.limit, plan.offset)

    if isinstance(plan, WindowTopKExec) and plan.mode == TopKMode.SINGLE:
        # Like a partial aggregate: each task keeps its own candidates, so only those
        # are repartitioned (TPC-DS q67: ~2,200 of 505,000 rows).
        if _met(plan.input, plan.required_input_distributions()[0]):
            return plan
        partial_rank = replace(plan, mode=TopKMode.PARTIAL)
        spec = (
            ExchangeSpec(HASH, n, plan.partition_by)
            if plan.partition_by
            else ExchangeSpec(GATHER, 1)
        )
        return replace(plan, input=ExchangeExec(partial_rank, spec), mode=TopKMode.FINAL)

    if isinstance(plan, LimitExec) and plan.mode == "single":
        if _single(plan.input):
            return plan
        partial_limit = LimitExec(plan.input, "partial", plan.limit, plan.offset)
        gathered = ExchangeExec(partial_limit, ExchangeSpec(GATHER, 1))
        return LimitExec(gathered, "final", plan.limit, plan.offset)

    if isinstance(plan, SortExec) and not plan.preserve_partitioning and not _single(plan.input):
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

    if isinstance(plan, HashJoinExec) and plan.strategy is None:
        return _plan_hash_join(plan, settings)

    if isinstance(plan, NestedLoopJoinExec):
        left_n = plan.left.output_partitioning().num_partitions
        if plan.kind == "full":
            # Unmatched rows of both sides: only one task can know them all.
            left = (
                plan.left
                if _single(plan.left)
                else ExchangeExec(plan.left, ExchangeSpec(GATHER, 1))
            )
            right = (
                plan.right
                if _single(plan.right)
                else ExchangeExec(plan.right, ExchangeSpec(GATHER, 1))
            )
            return replace(plan, left=left, right=right, broadcast=False)
        if left_n == 1 and _single(plan.right):
            return replace(plan, broadcast=False)
        return replace(plan, right=_broadcast(plan.right, left_n), broadcast=True)

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


def _plan_hash_join(plan: HashJoinExec, settings: Settings) -> PhysicalPlan:
    """Choose broadcast / repartition / co-located for one join, and place its exchanges."""
    lp = plan.left.output_partitioning()
    rp = plan.right.output_partitioning()
    n = settings.partitions
    est = plan.estimates
    threshold = settings.broadcast_threshold_bytes
    if _single(plan.left) and _single(plan.right):
        return replace(plan, strategy=SINGLE_JOIN, reason="both inputs in one partition")
    matched = _matching_keys(lp, rp, plan.left_keys, plan.right_keys)
    if matched:
        return replace(
            plan, strategy=COLOCATED_JOIN, reason="inputs already hash-partitioned on the keys"
        )
    if (
        plan.kind in ("semi", "anti")
        and not plan.null_aware
        and est.probe_rows * 4 < est.build_rows
        and est.build_bytes > threshold / 8
    ):
        # A small left side filtered by a large right one (EXISTS over lineitem):
        # hold the left side and stream the right side through it, repartitioned.
        reason = f"left ~{est.probe_rows:,.0f} rows << right ~{est.build_rows:,.0f} rows"
        joined = _repartition(replace(plan, build_left=True, reason=reason), lp, rp, n)
        # A runtime filter's keys come from the consumer stage while its producer runs:
        # only pipelined exchanges run both at once (Settings.runtime_filters).
        return _with_runtime_filter(joined) if settings.runtime_filters else joined
    can_broadcast = plan.kind in ("inner", "left", "semi", "anti")
    if plan.null_aware:
        reason = "NOT IN needs the whole build side in every task"
        return replace(
            plan,
            right=_broadcast(plan.right, lp.num_partitions),
            strategy=BROADCAST_JOIN,
            reason=reason,
        )
    if can_broadcast and (est.build_bytes <= threshold or lp.num_partitions == 1):
        reason = f"build ~{est.build_bytes / 2**20:,.1f}MiB <= {threshold / 2**20:,.0f}MiB"
        if lp.num_partitions == 1:
            reason = "probe side in one partition"
        return replace(
            plan,
            right=_broadcast(plan.right, lp.num_partitions),
            strategy=BROADCAST_JOIN,
            reason=reason,
        )
    why = (
        f"build ~{est.build_bytes / 2**20:,.1f}MiB > {threshold / 2**20:,.0f}MiB"
        if can_broadcast
        else "full outer join"
        if plan.kind == "full"
        else plan.reason or "outer join preserving the build side"
    )
    joined = _repartition(replace(plan, reason=why), lp, rp, n)
    if settings.runtime_filters and _reads_probe_first(plan):
        return _with_runtime_filter(joined)
    return joined


def _reads_probe_first(plan: HashJoinExec) -> bool:
    """Whether a partitioned join reads its probe side first, to filter its build side
    by the probe keys when the probe side is small: inner joins whose probe side is
    expected to be the smaller one (TPC-DS q85: 7 rows against 1.9 M, estimated 0.3 M
    against 1.9 M). When it is not small after all, the filter passes everything."""
    est = plan.estimates
    return plan.kind == "inner" and not plan.null_equal and est.probe_rows < est.build_rows


_filter_ids = itertools.count(1)


def _with_runtime_filter(join: HashJoinExec) -> HashJoinExec:
    """Filter a join's right side by the left keys before its exchange: a build-left
    semi/anti join's (it holds the left side), or an inner join that reads its probe
    side first when that side is expected to be the smaller.

    Only when the right side is shuffled (the filter then saves the hashing and the
    shipping) and NULL keys cannot matter: not null-aware (NOT IN must see NULL keys)
    and not NULL-equal (INTERSECT / EXCEPT match NULL with NULL; the filter drops them).
    """
    right = join.right
    if join.null_aware or join.null_equal or not isinstance(right, ExchangeExec):
        return join
    sources = join.left.output_partitioning().num_partitions
    filter_id = f"rf{next(_filter_ids)}"
    filtered = _place_filter(right.input, join.right_keys, filter_id, sources)
    return replace(join, right=replace(right, input=filtered), publishes=filter_id)


#: Join kinds whose every output row carries a left row's key columns unchanged.
_LEFT_ROW_KINDS = ("inner", "left", "semi", "anti")


def _place_filter(
    plan: PhysicalPlan, keys: tuple[str, ...], filter_id: str, sources: int
) -> PhysicalPlan:
    """Put the runtime filter as deep below ``plan`` as its key columns can be followed.

    The filter may pass rows the join above will not match (it is only a saving) but
    must never drop a row whose key the join could match. So it moves through a
    projection that passes the keys as columns (renamed), a filter, an exchange,
    and a hash join whose output rows each carry a probe row with the same key values:
    into the probe side when the keys are its columns or equi-join keys of an inner /
    left / semi / anti join; into the build side too, when they are equi-join keys of
    an inner or semi join (a build row no published key matches joins nothing that
    survives). TPC-DS q95: a self-join on ``ws_order_number`` below an IN
    (subquery) now joins only the orders the outer side has, not 6.6 M pairs.
    """
    below = _filter_below(plan, keys, filter_id, sources)
    return below if below is not None else RuntimeFilterExec(plan, keys, filter_id, sources)


def _filter_below(
    plan: PhysicalPlan, keys: tuple[str, ...], filter_id: str, sources: int
) -> PhysicalPlan | None:
    """``plan`` with the filter placed inside it, or None to place it on top."""
    if isinstance(plan, ProjectExec):
        passed = {n: e.name for n, e in plan.exprs if isinstance(e, ColumnRef)}
        if not all(k in passed for k in keys):
            return None
        inner = tuple(passed[k] for k in keys)
        return replace(plan, input=_place_filter(plan.input, inner, filter_id, sources))
    if isinstance(plan, FilterExec):
        return replace(plan, input=_place_filter(plan.input, keys, filter_id, sources))
    if isinstance(plan, ExchangeExec):  # moves rows, never changes them
        return replace(plan, input=_place_filter(plan.input, keys, filter_id, sources))
    if (
        isinstance(plan, HashJoinExec)
        and plan.kind in _LEFT_ROW_KINDS
        and not plan.null_equal
        and not plan.build_left
    ):
        left_names = set(plan.left.schema.names)
        to_left = dict(zip(plan.right_keys, plan.left_keys, strict=True))
        if plan.kind in ("semi", "anti"):
            to_left = {}  # their output has no right columns
        probe_keys = tuple(k if k in left_names else to_left.get(k, "") for k in keys)
        if not all(probe_keys):
            return None
        left = _place_filter(plan.left, probe_keys, filter_id, sources)
        right = plan.right
        positions = [plan.left_keys.index(k) if k in plan.left_keys else -1 for k in probe_keys]
        if plan.kind in ("inner", "semi") and all(i >= 0 for i in positions):
            build_keys = tuple(plan.right_keys[i] for i in positions)
            right = _place_filter(plan.right, build_keys, filter_id, sources)
        return replace(plan, left=left, right=right)
    return None


def _repartition(plan: HashJoinExec, lp: Partitioning, rp: Partitioning, n: int) -> HashJoinExec:
    """Hash both sides on the keys — or only one, when the other already is."""
    left, right = plan.left, plan.right
    left_sub = _hash_subset(lp, plan.left_keys)
    right_sub = _hash_subset(rp, plan.right_keys)
    if left_sub is not None:
        keys = tuple(plan.right_keys[i] for i in left_sub)
        right = ExchangeExec(right, ExchangeSpec(HASH, lp.num_partitions, keys))
    elif right_sub is not None:
        keys = tuple(plan.left_keys[i] for i in right_sub)
        left = ExchangeExec(left, ExchangeSpec(HASH, rp.num_partitions, keys))
    else:
        left = ExchangeExec(left, ExchangeSpec(HASH, n, plan.left_keys))
        right = ExchangeExec(right, ExchangeSpec(HASH, n, plan.right_keys))
    return replace(plan, left=left, right=right, strategy=PARTITIONED_JOIN)


def _hash_subset(p: Partitioning, keys: tuple[str, ...]) -> tuple[int, ...] | None:
    """Positions in ``keys`` of p's hash keys, when p is hash-partitioned on some of them."""
    if not isinstance(p, HashPartitioned) or p.num_partitions == 1:
        return None
    try:
        return tuple(keys.index(k) for k in p.keys)
    except ValueError:
        return None


def _matching_keys(
    lp: Partitioning, rp: Partitioning, left_keys: tuple[str, ...], right_keys: tuple[str, ...]
) -> bool:
    """Both sides hash-partitioned the same way on corresponding keys: co-located."""
    li = _hash_subset(lp, left_keys)
    ri = _hash_subset(rp, right_keys)
    return li is not None and li == ri and lp.num_partitions == rp.num_partitions


def _broadcast(plan: PhysicalPlan, n: int) -> PhysicalPlan:
    p = plan.output_partitioning()
    if isinstance(p, Replicated) and p.num_partitions == n:
        return plan
    return ExchangeExec(plan, ExchangeSpec(BROADCAST, n))


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


def _partial_below_expand(plan: HashAggregateExec) -> PhysicalPlan | None:
    """GROUPING SETS: the partial aggregate under the Expand, the Expand over its states.

    ``Aggregate(keys) <- Expand(sets) <- input`` aggregates every input row once per
    set. Every set's keys are a subset of the keys of all sets together, so the partial
    aggregate can group the input once by those (each set's NULLed keys are constants of
    the set) and the Expand copy its few state rows instead: the final merges a set's
    states as it would merge raw partials. (TPC-DS q22: 2.3 M joined rows were expanded
    into 11.7 M and grouped on four strings; now ~18,000 groups are expanded.) Only when
    every aggregate reads columns the Expand passes through unchanged. The Expand is an
    ``ExpandStatesExec``: it also merges each set's states in the task, coarser sets
    from finer ones, so what crosses the exchange is each set's groups, not one copy of
    every fine group per set.
    """
    expand = plan.input
    if not isinstance(expand, ExpandExec):
        return None
    source = set(expand.input.schema.names)
    first = dict(expand.projections[0])
    passthrough = {
        n for n, e in first.items() if isinstance(e, ColumnRef) and e.name == n and n in source
    }
    for a in plan.aggs:
        if a.arg is not None and not a.arg.columns() <= passthrough:
            return None
    # The expressions (over the Expand's input) each set gives each group key.
    per_set: list[list[Expr]] = []
    for projection in expand.projections:
        values = dict(projection)
        row: list[Expr] = []
        for _, key in plan.keys:
            if not isinstance(key, ColumnRef) or key.name not in values:
                return None
            row.append(values[key.name])
        per_set.append(row)
    pre_keys: list[tuple[str, Expr]] = []
    for row in per_set:
        for e in row:
            if not isinstance(e, Literal) and all(e != k for _, k in pre_keys):
                pre_keys.append((f"grouping_key${len(pre_keys)}", e))
    partial = HashAggregateExec(expand.input, PARTIAL, tuple(pre_keys), plan.aggs)
    states = [f for f in partial.schema if f.name not in {n for n, _ in pre_keys}]
    projections = []
    for row in per_set:
        columns: list[tuple[str, Expr]] = []
        for (name, _), e in zip(plan.keys, row, strict=True):
            if not isinstance(e, Literal):
                pre = next(n for n, k in pre_keys if k == e)
                e = ColumnRef(pre, e.type)
            columns.append((name, e))
        columns += [(f.name, ColumnRef(f.name, f.type)) for f in states]
        projections.append(tuple(columns))
    return ExpandStatesExec(partial, tuple(projections), tuple(n for n, _ in pre_keys), plan.aggs)
