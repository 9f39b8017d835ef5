"""Union all: task p concatenates partition p of every input.

Needs: inputs with equal partition counts (EnforceDistribution round-robins
the ones that differ). Gives: ``Unknown(n)``. Streams; holds nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from shoal.physical.context import TaskContext
from shoal.physical.partitioning import SINGLE, Partitioning, UnknownPartitioning
from shoal.physical.plan import PhysicalPlan


@dataclass(frozen=True)
class UnionExec(PhysicalPlan):
    inputs: tuple[PhysicalPlan, ...]

    label = "UnionAll"

    def children(self) -> tuple[PhysicalPlan, ...]:
        return self.inputs

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return UnionExec(children)

    @property
    def schema(self) -> pa.Schema:
        return self.inputs[0].schema

    def output_partitioning(self) -> Partitioning:
        n = self.inputs[0].output_partitioning().num_partitions
        return SINGLE if n == 1 else UnknownPartitioning(n)

    def maintains_input_order(self) -> bool:
        return False

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        schema = self.schema
        for child in self.inputs:
            for batch in ctx.run(child):
                yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)
