"""Hash join: inner, left, right, full, semi, anti.

SQL right joins are planned as swapped left joins; the ``right`` kind here is a left
join whose *preserved* side is the build side (a small preserved side beside a large
one: Q13's customer LEFT JOIN orders builds on customer and streams orders): matched
pairs stream out, the build rows nothing matched come out at the end.

    probe (left, streamed) ──┐
                             ├─▶ pairs with equal keys ─▶ residual ─▶ output by kind
    build (right, held)  ────┘    (JoinIndex, per task)

Needs, by strategy (chosen by EnforceDistribution from the estimates):
  broadcast    probe: any;               build: Broadcast (replicated to every task)
  partitioned  probe: Hash(left_keys);    build: Hash(right_keys), same partition count
  colocated    both already hash-partitioned on matching keys: no exchange
  single       both inputs in one partition
Gives: the probe side's partitioning (partitioned: Hash(left_keys)); full joins Unknown;
right joins the build side's partitioning (every output row carries a build row of its
partition, matched or not).
Holds the whole build side of its partition in memory; does not spill yet.
NULL keys never match (unless ``null_equal``); ``null_aware`` anti (NOT IN)
returns nothing when the build side holds a NULL key, and drops NULL probe keys
when the build side is not empty — which is only right when every task sees the
whole build side, so null-aware joins are always broadcast.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shoal.expr.evaluate import evaluate_predicate
from shoal.expr.nodes import Expr
from shoal.physical.context import TaskContext
from shoal.physical.operators.join_index import JoinIndex
from shoal.physical.operators.join_output import JoinEmitter, JoinShape
from shoal.physical.partitioning import (
    ANY,
    Broadcast,
    Distribution,
    HashDistributed,
    HashPartitioned,
    Partitioning,
    SinglePartition,
    UnknownPartitioning,
)
from shoal.physical.plan import PhysicalPlan

BROADCAST_JOIN, PARTITIONED_JOIN, COLOCATED_JOIN, SINGLE_JOIN = (
    "broadcast",
    "partitioned",
    "colocated",
    "single",
)


# Probe batches a task reads while another task builds the shared broadcast index.
_READ_AHEAD_BATCHES = 8


@dataclass(frozen=True)
class JoinEstimates:
    probe_rows: float
    build_rows: float
    build_bytes: float

    def __str__(self) -> str:
        return (
            f"probe~{self.probe_rows:,.0f} rows, build~{self.build_rows:,.0f} rows"
            f"/{self.build_bytes / 2**20:,.1f}MiB"
        )


@dataclass(frozen=True)
class HashJoinExec(JoinShape, PhysicalPlan):
    left: PhysicalPlan
    right: PhysicalPlan
    kind: str
    left_keys: tuple[str, ...]
    right_keys: tuple[str, ...]
    residual: Expr | None
    estimates: JoinEstimates
    strategy: str | None = None
    null_aware: bool = False
    null_equal: bool = False
    # Why the strategy was chosen (for EXPLAIN).
    reason: str = ""
    # build_left only: the runtime filter (on the right side, before its exchange)
    # that this join's tasks publish their left keys to.
    publishes: str | None = None
    # semi / anti only: hold the (smaller) left side and stream the right side
    # through it. Needs both sides hash-partitioned (or single): a task must see
    # every right row that could match its left rows.
    build_left: bool = False

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"HashJoin[{self.kind}]"

    def required_input_distributions(self) -> tuple[Distribution, ...]:
        if self.strategy == BROADCAST_JOIN:
            return (ANY, Broadcast())
        if self.strategy in (PARTITIONED_JOIN, COLOCATED_JOIN):
            return (HashDistributed(self.left_keys), HashDistributed(self.right_keys))
        if self.strategy == SINGLE_JOIN:
            return (SinglePartition(), SinglePartition())
        return (ANY, ANY)

    def output_partitioning(self) -> Partitioning:
        p = self.left.output_partitioning()
        if self.kind == "right" and self.strategy != BROADCAST_JOIN:
            return self.right.output_partitioning()
        if self.kind in ("full", "right") and p.num_partitions > 1:
            return UnknownPartitioning(p.num_partitions)
        if self.strategy == PARTITIONED_JOIN and not isinstance(p, HashPartitioned):
            return HashPartitioned(self.left_keys, p.num_partitions)
        return p

    def explain_params(self) -> dict[str, str]:
        keys = ", ".join(f"{a} = {b}" for a, b in zip(self.left_keys, self.right_keys, strict=True))
        params = {"keys": f"[{keys}]"}
        if self.residual is not None:
            params["residual"] = str(self.residual)
        if self.null_aware:
            params["null_aware"] = "true"
        if self.null_equal:
            params["null_equal"] = "true"
        if self.build_left:
            params["build"] = "left"
        if self.publishes is not None:
            params["publishes"] = self.publishes
        params["strategy"] = f"{self.strategy}" + (f" ({self.reason})" if self.reason else "")
        params["est"] = f"[{self.estimates}]"
        return params

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        if self.build_left:
            yield from self._execute_build_left(ctx)
            return
        metrics = ctx.operator_metrics(self)
        build_batches = list(ctx.run(self.right))  # every task drains its own input

        def make_build() -> tuple[pa.Table, JoinIndex]:
            table = pa.Table.from_batches(build_batches, self.right.schema).combine_chunks()
            return table, JoinIndex([_key(table, k) for k in self.right_keys], self.null_equal)

        probe = ctx.run(self.left)
        read_ahead: list[pa.RecordBatch] = []
        if self.strategy == BROADCAST_JOIN:
            # Every task got the same rows: build the table and index once per process.
            key = ("hash-join-build", ctx.stage_id, ctx.operator_ids.get(id(self), id(self)))
            # While another task builds them, read ahead on the probe side (decoding,
            # filtering) instead of leaving this core idle; a few batches at most.
            while len(read_ahead) < _READ_AHEAD_BATCHES and ctx.shared_pending(key):
                batch = next(probe, None)
                if batch is None:
                    break
                read_ahead.append(batch)
            build, index = ctx.shared(key, make_build)
        else:
            build, index = make_build()
        metrics.peak_state_rows = build.num_rows
        if self.null_aware and index.has_null_key:
            # x NOT IN (…, NULL, …) is never true: drain nothing, return nothing.
            return
        emitter = JoinEmitter(self.kind, build, self.schema, self.left.schema, self.residual)
        drop_null_probe = self.null_aware and build.num_rows > 0
        for batch in itertools.chain(read_ahead, probe):
            metrics.rows_in += batch.num_rows
            keys = [_key(batch, k) for k in self.left_keys]
            pi, bi = index.probe(keys)
            exclude = None
            if drop_null_probe:
                exclude = np.zeros(batch.num_rows, dtype=bool)
                for k in keys:
                    if k.null_count:
                        exclude |= np.asarray(pc.is_null(k))
            yield from emitter.emit(batch, pi, bi, exclude)
        yield from emitter.finish()

    def _execute_build_left(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        """Semi / anti join holding the left side: mark left rows some right row matches."""
        metrics = ctx.operator_metrics(self)
        left = pa.Table.from_batches(list(ctx.run(self.left)), self.left.schema).combine_chunks()
        metrics.peak_state_rows = left.num_rows
        left_keys = [_key(left, k) for k in self.left_keys]
        index = JoinIndex(left_keys, self.null_equal)
        if self.publishes is not None:
            # The right side's runtime filter drops rows no left key can match.
            ctx.publish_filter(self.publishes, ctx.partition, left_keys)
        matched = np.zeros(left.num_rows, dtype=bool)
        pair_schema = pa.schema(list(self.left.schema) + list(self.right.schema))
        for batch in ctx.run(self.right):
            metrics.rows_in += batch.num_rows
            if not left.num_rows:
                continue
            ri, li = index.probe([_key(batch, k) for k in self.right_keys])
            if self.residual is not None and len(li):
                left_part = left.take(pa.array(li, pa.int64()))
                right_part = batch.take(pa.array(ri, pa.int64()))
                pairs = pa.RecordBatch.from_arrays(
                    [c.combine_chunks() for c in left_part.columns] + list(right_part.columns),
                    schema=pair_schema,
                )
                keep = np.asarray(evaluate_predicate(self.residual, pairs))
                li = li[keep]
            matched[li] = True
        mask = matched if self.kind == "semi" else ~matched
        out = left.filter(pa.array(mask))
        yield from out.to_batches(max_chunksize=ctx.settings.batch_rows)


def _key(data: pa.Table | pa.RecordBatch, name: str) -> pa.Array:
    col = data.column(name)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
