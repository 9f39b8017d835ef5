"""Sort: orders each partition by its keys.

Needs: any distribution. Gives: its input's partitioning, each partition sorted
(``output_ordering`` = its keys). An ORDER BY sort (``preserve_partitioning`` False)
is made global by EnforceDistribution: an ordered-merge exchange above it, unless it
already runs on one partition. A sort placed by EnforceSorting for an operator that
needs sorted partitions (a window) keeps its partitioning and is never merged. Holds
its whole partition in memory; does not spill yet.
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
    preserve_partitioning: bool = False

    label = "Sort"

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return SortExec(children[0], self.keys, self.preserve_partitioning)

    def output_ordering(self) -> tuple[SortSpec, ...]:
        return self.keys

    @property
    def schema(self) -> pa.Schema:
        return self.input.schema

    def explain_params(self) -> dict[str, str]:
        params = {"keys": sort_specs_str(self.keys)}
        if self.preserve_partitioning:
            params["per"] = "partition"
        return params

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        batches = list(ctx.run(self.input))
        if not batches:
            return
        ctx.operator_metrics(self).peak_state_rows = sum(b.num_rows for b in batches)
        table = sort_table(pa.Table.from_batches(batches, self.input.schema), self.keys)
        yield from table.to_batches(max_chunksize=ctx.settings.batch_rows)
