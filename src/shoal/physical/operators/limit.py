"""Limit / offset without an order.

partial: each partition stops after ``limit + offset`` rows (runs before a gather).
final / single: skips ``offset`` rows of its single input, then passes ``limit``.

Needs: partial any; final/single ``SinglePartition``. Streams; holds nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from shoal.physical.context import TaskContext
from shoal.physical.partitioning import SINGLE, Distribution, Partitioning, SinglePartition
from shoal.physical.plan import PhysicalPlan


@dataclass(frozen=True)
class LimitExec(PhysicalPlan):
    input: PhysicalPlan
    mode: str
    limit: int | None
    offset: int = 0

    def maintains_input_order(self) -> bool:
        return True

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"Limit[{self.mode}]"

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return LimitExec(children[0], self.mode, self.limit, self.offset)

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

    def explain_params(self) -> dict[str, str]:
        if self.mode == "partial":
            return {"limit": str(None if self.limit is None else self.limit + self.offset)}
        return {"limit": str(self.limit), "offset": str(self.offset)}

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        skip = 0 if self.mode == "partial" else self.offset
        remaining = self.limit
        if remaining is not None and self.mode == "partial":
            # Each a BIGINT; their sum need not be (a slice's length is).
            remaining = min(remaining + self.offset, (1 << 63) - 1)
        if remaining == 0:
            return
        for batch in ctx.run(self.input):
            if skip:
                drop = min(skip, batch.num_rows)
                batch = batch.slice(drop)
                skip -= drop
            if remaining is not None:
                batch = batch.slice(0, remaining)
                remaining -= batch.num_rows
            if batch.num_rows:
                yield batch
            if remaining == 0:
                return
