"""VALUES: constant rows. Needs nothing; gives a single partition; holds the rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from shoal.physical.context import TaskContext
from shoal.physical.partitioning import SINGLE, Partitioning
from shoal.physical.plan import PhysicalPlan


@dataclass(frozen=True)
class ValuesExec(PhysicalPlan):
    rows: tuple[tuple[Any, ...], ...]
    out_schema: pa.Schema = field(compare=False)

    label = "Values"

    @property
    def schema(self) -> pa.Schema:
        return self.out_schema

    def output_partitioning(self) -> Partitioning:
        return SINGLE

    def explain_params(self) -> dict[str, str]:
        return {"rows": str(len(self.rows))}

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        if not self.out_schema:
            # SELECT without FROM: rows with no columns.
            yield pa.RecordBatch.from_pydict({"_": [None] * len(self.rows)}).select([])
            return
        columns = [
            pa.array([r[i] for r in self.rows], type=f.type) for i, f in enumerate(self.out_schema)
        ]
        yield pa.RecordBatch.from_arrays(columns, schema=self.out_schema)
