"""Expand: each input row comes out once per projection list (GROUPING SETS).

Needs: any distribution. Gives: unknown partitioning with its input's partition count
(the keys it nulls out no longer follow the input's hash), no order. Streams: for every
input batch it evaluates each projection list and yields one batch per list; holds
nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from shoal.expr.evaluate import Memo, evaluate_column
from shoal.expr.nodes import Expr
from shoal.physical.context import TaskContext
from shoal.physical.partitioning import Partitioning, UnknownPartitioning
from shoal.physical.plan import PhysicalPlan


@dataclass(frozen=True)
class ExpandExec(PhysicalPlan):
    input: PhysicalPlan
    projections: tuple[tuple[tuple[str, Expr], ...], ...]

    label = "Expand"

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return ExpandExec(children[0], self.projections)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(n, e.type) for n, e in self.projections[0]])

    def output_partitioning(self) -> Partitioning:
        return UnknownPartitioning(self.input.output_partitioning().num_partitions)

    def explain_params(self) -> dict[str, str]:
        return {"sets": str(len(self.projections)), "columns": f"[{', '.join(self.schema.names)}]"}

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        schema = self.schema
        for batch in ctx.run(self.input):
            memo: Memo = {}  # a key shared by several sets is computed once per batch
            for projection in self.projections:
                arrays = [evaluate_column(e, batch, memo) for _, e in projection]
                arrays = [
                    a if a.type == f.type else a.cast(f.type)
                    for a, f in zip(arrays, schema, strict=True)
                ]
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)
