"""Filter: keeps rows whose predicate is true (NULL counts as false).

Needs: any distribution. Gives: its input's partitioning and order. Streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from shoal.expr.evaluate import filter_batch
from shoal.expr.nodes import Expr
from shoal.physical.context import TaskContext
from shoal.physical.plan import PhysicalPlan


@dataclass(frozen=True)
class FilterExec(PhysicalPlan):
    input: PhysicalPlan
    predicate: Expr

    label = "Filter"

    def maintains_input_order(self) -> bool:
        return True

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return FilterExec(children[0], self.predicate)

    @property
    def schema(self) -> pa.Schema:
        return self.input.schema

    def explain_params(self) -> dict[str, str]:
        return {"": str(self.predicate)}

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        for batch in ctx.run(self.input):
            out = filter_batch(self.predicate, batch)
            if out.num_rows:
                yield out
