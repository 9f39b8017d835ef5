"""Top-k: the first k rows by the sort keys (ORDER BY ... LIMIT k [OFFSET m]).

partial: per partition, keeps its best ``k = limit + offset`` rows (runs before a gather).
final / single: the best rows of a single partition, then the offset and limit.

Needs: partial any; final/single ``SinglePartition``. Gives: partial its input's
partitioning; final a single sorted partition. Holds at most k rows plus one
batch, reserved from the query's pool (the batch and its sorted copy admitted past
the budget when they must be: they are in memory anyway); never spills: when the k
rows do not fit the budget it raises ``ResourceExhaustedError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from shoal.physical.context import TaskContext
from shoal.physical.partitioning import SINGLE, Distribution, Partitioning, SinglePartition
from shoal.physical.plan import PhysicalPlan, SortSpec, sort_specs_str
from shoal.sorting import sort_table


@dataclass(frozen=True)
class TopKExec(PhysicalPlan):
    input: PhysicalPlan
    mode: str  # partial | final | single
    keys: tuple[SortSpec, ...]
    limit: int | None
    offset: int = 0

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"TopK[{self.mode}]"

    @property
    def k(self) -> int | None:
        # LIMIT and OFFSET are each a BIGINT; their sum need not be (a slice's length is).
        return None if self.limit is None else min(self.limit + self.offset, (1 << 63) - 1)

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return TopKExec(children[0], self.mode, self.keys, self.limit, self.offset)

    @property
    def schema(self) -> pa.Schema:
        return self.input.schema

    def required_input_distributions(self) -> tuple[Distribution, ...]:
        return (
            super().required_input_distributions()
            if self.mode == "partial"
            else (SinglePartition(),)
        )

    def output_partitioning(self) -> Partitioning:
        return self.input.output_partitioning() if self.mode == "partial" else SINGLE

    def output_ordering(self) -> tuple[SortSpec, ...]:
        return self.keys

    def explain_params(self) -> dict[str, str]:
        params = {
            "keys": sort_specs_str(self.keys),
            "limit": str(self.k if self.mode == "partial" else self.limit),
        }
        if self.offset and self.mode != "partial":
            params["offset"] = str(self.offset)
        return params

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        k = self.k
        best: pa.Table | None = None
        res = ctx.reserve(self)
        for batch in ctx.run(self.input):
            table = pa.Table.from_batches([batch])
            if best is not None:
                table = pa.concat_tables([best, table])
            # The heap plus the new batch, and the sorted copy of both. The batch is in
            # memory already and the copy lives for this step only: admitted past the
            # budget if need be; what must fit is the k rows kept (checked below).
            res.force_resize(2 * table.nbytes)
            best = sort_table(table, self.keys)
            if k is not None:
                best = best.slice(0, k)
            res.resize(0)
            res.resize(best.nbytes)  # raises when the k rows alone do not fit
        if best is None:
            return
        if self.mode != "partial":
            best = best.slice(self.offset, self.limit)
        yield from best.combine_chunks().to_batches(max_chunksize=ctx.settings.batch_rows)
