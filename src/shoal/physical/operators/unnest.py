"""Unnest: one output row per element of a list column (``SELECT unnest(list)``).

Needs: any distribution. Gives: unknown partitioning with its input's partition count
(the list column's hash no longer holds for its elements) and its input's row order,
the elements of a row in list order. Streams batch by batch and holds nothing: the
other columns are taken at each element's parent row, the elements are the list's
flattened values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from shoal.physical.context import TaskContext
from shoal.physical.partitioning import Partitioning, UnknownPartitioning
from shoal.physical.plan import PhysicalPlan


@dataclass(frozen=True)
class UnnestExec(PhysicalPlan):
    input: PhysicalPlan
    column: str

    label = "Unnest"

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return UnnestExec(children[0], self.column)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field(f.name, f.type.value_type) if f.name == self.column else f
                for f in self.input.schema
            ]
        )

    def output_partitioning(self) -> Partitioning:
        return UnknownPartitioning(self.input.output_partitioning().num_partitions)

    def maintains_input_order(self) -> bool:
        return True

    def explain_params(self) -> dict[str, str]:
        return {"column": self.column}

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        schema = self.schema
        index = self.input.schema.get_field_index(self.column)
        for batch in ctx.run(self.input):
            lists = batch.column(index)
            parents = pc.list_parent_indices(lists)
            if not len(parents):
                continue
            arrays = [
                pc.list_flatten(lists) if i == index else column.take(parents)
                for i, column in enumerate(batch.columns)
            ]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
