"""Sort: orders each partition by its keys.

Needs: any distribution. Gives: its input's partitioning, each partition sorted
(a global order comes from an ordered-merge exchange above it, or from running
on a single partition). Holds its whole partition in memory; does not spill yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from shoal.physical.context import TaskContext
from shoal.physical.plan import PhysicalPlan, SortSpec, sort_specs_str
from shoal.sorting import sort_table


@dataclass(frozen=True)
class SortExec(PhysicalPlan):
    input: PhysicalPlan
    keys: tuple[SortSpec, ...]

    label = "Sort"

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return SortExec(children[0], self.keys)

    @property
    def schema(self) -> pa.Schema:
        return self.input.schema

    def explain_params(self) -> dict[str, str]:
        return {"keys": sort_specs_str(self.keys)}

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        batches = list(ctx.run(self.input))
        if not batches:
            return
        ctx.operator_metrics(self).peak_state_rows = sum(b.num_rows for b in batches)
        table = sort_table(pa.Table.from_batches(batches, self.input.schema), self.keys)
        yield from table.to_batches(max_chunksize=ctx.settings.batch_rows)
