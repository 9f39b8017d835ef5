"""Plan-shape questions and rewrites of stage fragments for adaptive re-planning.

The scheduler decides from measured figures (``scheduler/adaptive.py``) but never
looks inside operators; this module does, for it: which exchanges a stage reads and
how, whether a stage's join partitions may be split (and which input is the probe
side), and how a repartition join stage looks once its probe stage is fused in and
its build side broadcast. The rules and why they are sound are in
``scheduler/adaptive.py``'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shoal.errors import PlanError
from shoal.exchange_spec import ExchangeKind, ExchangeSpec
from shoal.physical.operators.aggregate import HashAggregateExec
from shoal.physical.operators.exchange import ExchangeReadExec
from shoal.physical.operators.filter import FilterExec
from shoal.physical.operators.hash_join import BROADCAST_JOIN, PARTITIONED_JOIN, HashJoinExec
from shoal.physical.operators.project import ProjectExec
from shoal.physical.plan import PhysicalPlan, replace_nodes
from shoal.physical.rules.sanity_check import sanity_check
from shoal.stages.graph import Stage, StageGraph

# The join kinds whose left (streamed) side may be split, or whose build side may be
# broadcast: none emits build rows nothing matched.
STREAMED_KINDS = frozenset({"inner", "left", "semi", "anti"})


def broadcast_reads(stage: Stage) -> frozenset[int]:
    """The input stages the fragment reads as a broadcast (every task reads all)."""
    return frozenset(
        op.stage_id
        for op in stage.fragment.walk()
        if isinstance(op, ExchangeReadExec) and op.spec.kind == ExchangeKind.BROADCAST
    )


def has_always_group(stage: Stage) -> bool:
    """Whether an aggregate in the stage emits a row no input made (it picks its task by
    partition id, so the stage's tasks must stay one per partition)."""
    return any(
        isinstance(op, HashAggregateExec) and op.always_group is not None
        for op in stage.fragment.walk()
    )


def exchange_reads(stage: Stage) -> list[ExchangeReadExec] | None:
    """The stage's exchange reads when every leaf is one and none is a gather or merge
    (a stage that scans or reads a single stream keeps its tasks); else None."""
    reads = []
    for op in stage.fragment.walk():
        if op.children():
            continue
        if not isinstance(op, ExchangeReadExec) or op.spec.kind in (
            ExchangeKind.GATHER,
            ExchangeKind.MERGE,
        ):
            return None
        reads.append(op)
    return reads


def _only_join(fragment: PhysicalPlan) -> HashJoinExec | None:
    joins = [
        op
        for op in fragment.walk()
        if isinstance(op, HashJoinExec) and op.strategy != BROADCAST_JOIN
    ]
    if len(joins) != 1:
        return None
    join = joins[0]
    if (
        join.strategy != PARTITIONED_JOIN
        or join.kind not in STREAMED_KINDS
        or join.build_left
        or join.null_aware
    ):
        return None
    return join


def _streaming_read(side: PhysicalPlan) -> ExchangeReadExec | None:
    """The one hash exchange read under ``side`` when only projections and filters sit
    between them."""
    node = side
    while isinstance(node, ProjectExec | FilterExec):
        node = node.children()[0]
    if isinstance(node, ExchangeReadExec) and node.spec.kind == ExchangeKind.HASH:
        return node
    return None


def _above_is_streaming(node: PhysicalPlan, join: HashJoinExec) -> bool:
    """Whether everything on the path from ``node`` down to ``join`` handles any subset
    of its input rows on its own (so a join partition may be cut into sub-tasks)."""
    if node is join:
        return True
    if isinstance(node, ProjectExec | FilterExec) or (
        isinstance(node, HashAggregateExec) and node.mode == "partial"
    ):
        return _above_is_streaming(node.children()[0], join)
    if isinstance(node, HashJoinExec) and node.strategy == BROADCAST_JOIN and not node.build_left:
        return node.kind in STREAMED_KINDS and _above_is_streaming(node.left, join)
    return False


def split_probe(stage: Stage) -> int | None:
    """The producer stage whose partitions may be split (the join's probe side), if any."""
    join = _only_join(stage.fragment)
    if join is None or not _above_is_streaming(stage.fragment, join):
        return None
    probe = _streaming_read(join.left)
    if probe is None:
        return None
    # The probe stage must feed nothing else in this stage (it is read in slices).
    if (
        sum(1 for op in stage.fragment.walk() if getattr(op, "stage_id", None) == probe.stage_id)
        != 1
    ):
        return None
    return probe.stage_id


@dataclass(frozen=True)
class BroadcastCandidate:
    """A repartition join whose probe stage may be fused in if its build side is small."""

    join_stage: int
    probe_stage: int
    build_stage: int
    estimated_bytes: float
    fused: Stage  # the join stage as it would run after the switch


def fusable_joins(graph: StageGraph) -> dict[int, BroadcastCandidate]:
    """By probe stage: every join stage whose probe stage may be fused in (module doc)."""
    out: dict[int, BroadcastCandidate] = {}
    for stage in graph.stages:
        join = _only_join(stage.fragment)
        if join is None or join.kind not in STREAMED_KINDS:
            continue
        probe = _streaming_read(join.left)
        build = _streaming_read(join.right)
        if probe is None or build is None or probe.stage_id == build.stage_id:
            continue
        if set(stage.inputs) != {probe.stage_id, build.stage_id}:
            continue
        producer = graph.stage(probe.stage_id)
        if producer.consumers != (stage.id,) or producer.readers != 1:
            continue  # a shared CTE body feeds other readers too: it must run on its own
        if producer.fused_into is not None:
            continue
        fused = _fuse(stage, producer, join, probe, build)
        if fused is None:
            continue
        out[probe.stage_id] = BroadcastCandidate(
            stage.id, probe.stage_id, build.stage_id, join.estimates.build_bytes, fused
        )
    return out


def _fuse(
    stage: Stage,
    producer: Stage,
    join: HashJoinExec,
    probe: ExchangeReadExec,
    build: ExchangeReadExec,
) -> Stage | None:
    n = producer.num_partitions
    read_all = ExchangeReadExec(
        build.stage_id, ExchangeSpec(ExchangeKind.BROADCAST, n), build.input_schema
    )
    new_right = replace_nodes(join.right, {id(build): read_all})
    new_left = replace_nodes(join.left, {id(probe): producer.fragment})
    switched = replace(
        join,
        left=new_left,
        right=new_right,
        strategy=BROADCAST_JOIN,
        reason="switched at run time: build side measured small",
    )
    fragment = replace_nodes(stage.fragment, {id(join): switched})
    try:
        sanity_check(fragment)
    except PlanError:
        return None  # something above the join needs its hash partitioning
    return replace(
        stage, fragment=fragment, num_partitions=n, inputs=(*producer.inputs, build.stage_id)
    )


__all__ = [
    "STREAMED_KINDS",
    "BroadcastCandidate",
    "broadcast_reads",
    "exchange_reads",
    "fusable_joins",
    "has_always_group",
    "split_probe",
]
