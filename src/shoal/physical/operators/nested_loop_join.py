"""Nested-loop join: every (probe row, build row) pair checked against the condition.

For joins with no equality to hash on (cross joins, ``a.x < b.y``) and for
scalar subqueries (``single_row``: a left join to at most one row).
Kinds: inner, left, semi, anti, full. Needs: build side Broadcast (or both single; full
joins gather both sides, since only one task can know every unmatched row).
Gives: the probe side's partitioning. Holds the build side in memory, reserved from
the query's pool; does not spill (past the budget: ``ResourceExhaustedError``).
Pairs are formed a chunk of probe rows at a time so no more than ~1M pairs exist
at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from shoal.errors import ExecutionError
from shoal.expr.nodes import Expr
from shoal.physical.context import TaskContext
from shoal.physical.operators.join_output import JoinEmitter, JoinShape
from shoal.physical.partitioning import ANY, Broadcast, Distribution, Partitioning, SinglePartition
from shoal.physical.plan import PhysicalPlan

_MAX_PAIRS = 1 << 20


@dataclass(frozen=True)
class NestedLoopJoinExec(JoinShape, PhysicalPlan):
    left: PhysicalPlan
    right: PhysicalPlan
    kind: str
    condition: Expr | None
    single_row: bool = False
    broadcast: bool = True

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"NestedLoopJoin[{self.kind}]"

    def required_input_distributions(self) -> tuple[Distribution, ...]:
        if self.broadcast:
            return (ANY, Broadcast())
        return (SinglePartition(), SinglePartition())

    def output_partitioning(self) -> Partitioning:
        return self.left.output_partitioning()

    def explain_params(self) -> dict[str, str]:
        params = {"condition": str(self.condition) if self.condition is not None else "true"}
        if self.single_row:
            params["single_row"] = "true"
        return params

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        res = ctx.reserve(self)
        batches = []
        for batch in ctx.run(self.right):
            res.grow(2 * batch.nbytes)  # and the combined copy; nothing here spills
            batches.append(batch)
        build = pa.Table.from_batches(batches, self.right.schema).combine_chunks()
        batches.clear()
        res.resize(build.nbytes)
        if self.single_row and build.num_rows > 1:
            raise ExecutionError(
                f"a scalar subquery returned {build.num_rows} rows; it must return at most one"
            )
        emitter = JoinEmitter(self.kind, build, self.schema, self.left.schema, self.condition)
        nb = build.num_rows
        chunk = max(1, _MAX_PAIRS // max(nb, 1))
        for batch in ctx.run(self.left):
            for start in range(0, batch.num_rows, chunk):
                ctx.check_cancelled()  # a selective condition can go long without output
                part = batch.slice(start, chunk)
                m = part.num_rows
                pairs = np.arange(m * nb, dtype=np.int64)  # (np.repeat would hold the GIL)
                pi, bi = pairs // nb, pairs % nb
                yield from emitter.emit(part, pi, bi)
        yield from emitter.finish()
