"""Adaptive re-planning between materialized stages, from what the exchanges measured.

Shared by both materialized schedulers (``scheduler/materialized.py`` and the Ray
driver ``scheduler/ray.py``): they hand in the committed producers' rows and bytes
per (producer task, destination) and get back the tasks a consumer stage runs, or a
rewritten stage graph. Nothing here runs anything or touches data.

Three decisions, each with a setting to turn it off:

**Broadcast switch** (``adaptive_broadcast``). A stage whose one join is a
repartition hash join (inner, left, semi or anti with the right side built: the
kinds whose build side is never emitted unmatched, so a task may see the whole
build side) reads its probe side from one stage P and its build side from another
stage B. The scheduler holds P back until B committed; if B measured below
``broadcast_threshold_bytes``, P is *fused* into the join stage: the join stage's
fragment gets P's fragment in place of its probe read, the join becomes a
broadcast join whose build read takes every destination of B, and the stage runs
with P's task count — P's rows are never shuffled. This is done only when the
fused fragment still meets every operator's distribution need (the operators
above the join may rely on the join's hash partitioning; then there is no
switch) and the stage reads nothing but P and B. When P has already run (held
back no longer, or not a candidate) nothing changes: both sides are already
shuffled and co-partitioned, and reading the build whole would only add work.

**Coalesce** (``adaptive_coalesce``). A stage whose inputs are all exchanges
(no scan: a scan's splits are dealt by task count) and at least one hash or
round-robin: consecutive destination partitions are grouped so each task reads
about ``min(coalesce_target_bytes, total / max_running_tasks)`` (at least 1 MiB):
no fewer tasks than there are CPU slots while the data lasts, no task of a few
rows. Every input of the stage is read with the same grouping, so hash
co-partitioning holds. Not done for a stage with an aggregate that emits a row for
a group no input row made (``always_group``: it picks its task by partition id).

**Skew split** (``skew_join``). In a stage whose one join is a repartition hash
join of kind inner, left, semi or anti that streams its left (probe) side — the
preserved side of left, the output side of semi and anti — a partition whose probe
side holds more than ``skew_factor`` × the median rows and at least
``skew_min_bytes`` runs as several sub-tasks: as many as it holds median
partitions, at most 32, and no more than gives each about
``min(coalesce_target_bytes, probe bytes / max_running_tasks)`` of probe rows
(each sub-task also builds the whole build partition, so more would cost more
than the split saves). Each reads a contiguous slice of
that partition's probe rows — whole producers' slices or row ranges inside one
producer's slice, so a hot key from a single producer splits too — and the whole
matching build partition. Each probe row meets every build row of its key in
exactly one sub-task, which is all these kinds need. Not for right or full joins,
a join that holds its left side (``build_left``), or when anything above the join
in the stage needs whole partitions (only projections, filters, partial
aggregates and broadcast joins streaming the join's output may be above it).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from shoal.exchange_spec import ExchangeKind, InputSlice
from shoal.metrics.adaptive import AdaptiveDecision, DecisionKind
from shoal.physical.context import Settings
from shoal.stages.graph import Stage, StageGraph
from shoal.stages.reshape import (
    BroadcastCandidate,
    broadcast_reads,
    exchange_reads,
    fusable_joins,
    has_always_group,
    split_probe,
)
from shoal.units import human_bytes

# A coalesced task reads at least this much (unless the stage has less in all).
_MIN_TASK_BYTES = 1 << 20
# At most this many sub-tasks per split partition.
_MAX_SPLIT = 32


@dataclass(frozen=True)
class ProducerFigures:
    """What one committed producer stage sent: ``rows[q][d]`` and ``bytes[q][d]`` are
    what producer task ``q`` addressed to destination ``d`` (a broadcast counts its
    rows at every destination)."""

    stage: int
    rows: tuple[tuple[int, ...], ...]
    bytes: tuple[tuple[int, ...], ...]

    def destination_rows(self, n: int) -> list[int]:
        return [sum(r[d] for r in self.rows if d < len(r)) for d in range(n)]

    def destination_bytes(self, n: int) -> list[int]:
        return [sum(b[d] for b in self.bytes if d < len(b)) for d in range(n)]

    @property
    def total_bytes(self) -> int:
        return sum(sum(b) for b in self.bytes)


@dataclass(frozen=True)
class TaskPlan:
    """One task of a stage as it will run: what it reads of each input, in
    ``stage.inputs`` order, and which destination partitions that covers."""

    index: int
    reads: tuple[InputSlice, ...]
    destinations: tuple[int, ...]


def default_tasks(stage: Stage) -> list[TaskPlan]:
    """The tasks as planned: task ``p`` reads destination ``p`` of every input."""
    return [
        TaskPlan(p, tuple(InputSlice.of(p) for _ in stage.inputs), (p,))
        for p in range(stage.num_partitions)
    ]


# ---------------------------------------------------------------------- task plans


def plan_tasks(
    stage: Stage,
    figures: Mapping[int, ProducerFigures],
    settings: Settings,
) -> tuple[list[TaskPlan], list[AdaptiveDecision]]:
    """The tasks ``stage`` runs now that every input committed, and the decisions taken.

    An input the fragment reads as a broadcast is read whole by every task (for a
    build side switched to broadcast, whose producer wrote it hash-partitioned).
    """
    everything = broadcast_reads(stage)
    tasks = default_tasks(stage)
    if everything:
        tasks = [
            replace(
                t,
                reads=tuple(
                    InputSlice((), everything=True) if sid in everything else r
                    for sid, r in zip(stage.inputs, t.reads, strict=True)
                ),
            )
            for t in tasks
        ]
    reads = exchange_reads(stage)
    if reads is None or stage.num_partitions <= 1:
        return tasks, []
    hashed = [
        r.stage_id
        for r in reads
        if r.spec.kind in (ExchangeKind.HASH, ExchangeKind.ROUND_ROBIN)
        and r.stage_id not in everything
    ]
    if not hashed or any(
        r.spec.num_partitions != stage.num_partitions for r in reads if r.stage_id in hashed
    ):
        return tasks, []
    n = stage.num_partitions
    decisions: list[AdaptiveDecision] = []
    groups = [[d] for d in range(n)]
    if settings.adaptive_coalesce and not has_always_group(stage):
        sizes = [0] * n
        for sid in hashed:
            for d, b in enumerate(figures[sid].destination_bytes(n)):
                sizes[d] += b
        total = sum(sizes)
        target = max(
            min(
                settings.coalesce_target_bytes,
                math.ceil(total / max(1, settings.max_running_tasks)),
            ),
            _MIN_TASK_BYTES,
        )
        coalesced = _coalesce(sizes, target)
        if len(coalesced) < n:
            groups = coalesced
            decisions.append(
                AdaptiveDecision(
                    DecisionKind.COALESCE,
                    stage.id,
                    f"stage {stage.id}: {n} partitions coalesced into {_tasks(len(groups))}"
                    f" ({human_bytes(total, spaced=True)} in all, about {human_bytes(target, spaced=True)} per task)",
                    {"partitions": n, "tasks": len(groups), "bytes": total, "target": target},
                )
            )
    split = split_probe(stage) if settings.skew_join else None
    plans: list[TaskPlan] = []
    probe_rows: list[int] = []
    median = 0.0
    if split is not None:
        probe = figures[split]
        probe_rows = probe.destination_rows(n)
        probe_bytes = probe.destination_bytes(n)
        median = float(statistics.median(probe_rows))
        share = max(
            min(
                settings.coalesce_target_bytes,
                math.ceil(sum(probe_bytes) / max(1, settings.max_running_tasks)),
            ),
            _MIN_TASK_BYTES,
        )
    for group in groups:
        if split is not None and len(group) == 1:
            d = group[0]
            rows = probe_rows[d]
            if (
                rows > settings.skew_factor * median
                and probe_bytes[d] >= settings.skew_min_bytes
                and rows > 1
            ):
                # As many sub-tasks as the partition holds median partitions, but no
                # more than gives each about a task's share of the probe side (every
                # sub-task also reads and builds the whole build partition).
                k = min(
                    _MAX_SPLIT,
                    math.ceil(rows / max(median, 1.0)),
                    max(2, math.ceil(probe_bytes[d] / share)),
                )
                pieces = _row_pieces([r[d] if d < len(r) else 0 for r in figures[split].rows], k)
                if len(pieces) > 1:
                    decisions.append(
                        AdaptiveDecision(
                            DecisionKind.SKEW_SPLIT,
                            stage.id,
                            f"stage {stage.id} partition {d} split into {len(pieces)}:"
                            f" {_count(rows)} rows vs median {_count(median)}"
                            f" (probe side from stage {split}, {human_bytes(probe_bytes[d], spaced=True)})",
                            {
                                "partition": d,
                                "sub_tasks": len(pieces),
                                "rows": rows,
                                "median_rows": median,
                                "bytes": probe_bytes[d],
                            },
                        )
                    )
                    for piece in pieces:
                        plans.append(
                            TaskPlan(
                                len(plans),
                                tuple(
                                    InputSlice((d,), segments=piece)
                                    if sid == split
                                    else _group_slice(sid, (d,), everything)
                                    for sid in stage.inputs
                                ),
                                (d,),
                            )
                        )
                    continue
        plans.append(
            TaskPlan(
                len(plans),
                tuple(_group_slice(sid, tuple(group), everything) for sid in stage.inputs),
                tuple(group),
            )
        )
    if not decisions:
        return tasks, []
    return plans, decisions


def _group_slice(sid: int, group: tuple[int, ...], everything: frozenset[int]) -> InputSlice:
    return InputSlice((), everything=True) if sid in everything else InputSlice(group)


def _coalesce(sizes: Sequence[int], target: int) -> list[list[int]]:
    """Consecutive destinations grouped into about equal bytes, about ``target`` each.

    How many groups: as many as filling each group up to ``target`` takes, but no more
    than ``ceil(total / target)`` — unless cutting that few makes a group more than a
    quarter above both the target and the largest destination (8 equal partitions a
    little under the target each would come out as 7 tasks, one holding two: a stage
    waits for its largest task). Where to cut: where the running total is nearest each
    equal share. Filling groups up to the target alone leaves a small group beside full
    ones (4 equal partitions at a target of half their total came out as 3 tasks, the
    largest twice the others)."""
    n = len(sizes)
    total = sum(sizes)
    filled, held = 0, 0
    for size in sizes:
        if filled == 0 or held + size > target:
            filled, held = filled + 1, 0
        held += size
    limit = 1.25 * max(target, max(sizes, default=0))
    groups = min(filled, max(1, math.ceil(total / max(1, target))))
    while True:
        if groups >= n:
            return [[d] for d in range(n)]
        cut = _cut(sizes, groups)
        if groups >= filled or max(sum(sizes[d] for d in g) for g in cut) <= limit:
            return cut
        groups += 1


def _cut(sizes: Sequence[int], groups: int) -> list[list[int]]:
    """``sizes``' destinations cut into ``groups`` consecutive runs of about equal bytes."""
    n = len(sizes)
    total = sum(sizes)
    before = [0, *itertools.accumulate(sizes)]  # before[c]: bytes of destinations < c
    cuts = [0]
    for k in range(1, groups):
        share = k * total / groups
        # leave at least one destination for each group still to come
        choices = range(cuts[-1] + 1, n - (groups - k) + 1)
        cuts.append(min(choices, key=lambda c: abs(before[c] - share)))
    cuts.append(n)
    return [list(range(a, b)) for a, b in zip(cuts, cuts[1:], strict=False)]


def _row_pieces(rows: Sequence[int], k: int) -> list[tuple[tuple[int, int, int], ...]]:
    """The rows producers ``q`` sent (``rows[q]``), in producer order, cut into ``k``
    contiguous pieces of about equal rows: each a list of (producer, first, end)."""
    total = sum(rows)
    size = math.ceil(total / k)
    pieces: list[tuple[tuple[int, int, int], ...]] = []
    current: list[tuple[int, int, int]] = []
    room = size
    for q, n in enumerate(rows):
        first = 0
        while first < n:
            take = min(room, n - first)
            current.append((q, first, first + take))
            first += take
            room -= take
            if room == 0:
                pieces.append(tuple(current))
                current, room = [], size
    if current:
        pieces.append(tuple(current))
    return pieces


# ---------------------------------------------------------------------- broadcast switch


def broadcast_candidates(graph: StageGraph, settings: Settings) -> dict[int, BroadcastCandidate]:
    """By probe stage: every join stage the switch could apply to (see the module doc)."""
    return fusable_joins(graph) if settings.adaptive_broadcast else {}


def apply_broadcast(
    graph: StageGraph, candidate: BroadcastCandidate, measured_bytes: int
) -> tuple[StageGraph, AdaptiveDecision]:
    """The graph with ``candidate``'s probe stage fused into its join stage."""
    stages = list(graph.stages)
    p = stages[candidate.probe_stage]
    stages[p.id] = replace(p, fused_into=candidate.join_stage)
    stages[candidate.join_stage] = candidate.fused
    for sid in p.inputs:
        producer = stages[sid]
        consumers = tuple(candidate.join_stage if c == p.id else c for c in producer.consumers)
        stages[sid] = replace(producer, consumer=min(consumers), consumers=consumers)
    new = StageGraph(stages, graph.notes)
    decision = AdaptiveDecision(
        DecisionKind.BROADCAST,
        candidate.join_stage,
        f"join in stage {candidate.join_stage}: repartition → broadcast, build side"
        f" {human_bytes(measured_bytes, spaced=True)} measured vs {human_bytes(candidate.estimated_bytes, spaced=True)} estimated"
        f" (stage {candidate.build_stage}); probe stage {candidate.probe_stage} fused in,"
        " not shuffled",
        {
            "measured_bytes": measured_bytes,
            "estimated_bytes": candidate.estimated_bytes,
            "build_stage": candidate.build_stage,
            "probe_stage": candidate.probe_stage,
        },
    )
    return new, decision


def should_switch(
    candidate: BroadcastCandidate, build: ProducerFigures, settings: Settings
) -> bool:
    return settings.adaptive_broadcast and build.total_bytes < settings.broadcast_threshold_bytes


def _tasks(n: int) -> str:
    return f"{n} task" if n == 1 else f"{n} tasks"


def _count(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f} M"
    if n >= 1e4:
        return f"{n / 1e3:.1f} k"
    return f"{n:.0f}"


__all__ = [
    "BroadcastCandidate",
    "ProducerFigures",
    "TaskPlan",
    "apply_broadcast",
    "broadcast_candidates",
    "default_tasks",
    "plan_tasks",
    "should_switch",
]
