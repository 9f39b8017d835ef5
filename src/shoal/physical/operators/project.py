"""Project: computes named expressions per row.

Needs: any distribution. Gives: its input's partitioning, with hash keys renamed
when they pass through as plain columns (else Unknown). Keeps order. Streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import pyarrow as pa

from shoal.expr.evaluate import Memo, evaluate_column
from shoal.expr.nodes import ColumnRef, Expr
from shoal.physical.context import TaskContext
from shoal.physical.partitioning import HashPartitioned, Partitioning, UnknownPartitioning
from shoal.physical.plan import PhysicalPlan, SortSpec


@dataclass(frozen=True)
class ProjectExec(PhysicalPlan):
    input: PhysicalPlan
    exprs: tuple[tuple[str, Expr], ...]

    label = "Project"

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return ProjectExec(children[0], self.exprs)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(n, e.type) for n, e in self.exprs])

    def output_partitioning(self) -> Partitioning:
        p = self.input.output_partitioning()
        if isinstance(p, HashPartitioned):
            renamed = {e.name: n for n, e in self.exprs if isinstance(e, ColumnRef)}
            if all(k in renamed for k in p.keys):
                return HashPartitioned(tuple(renamed[k] for k in p.keys), p.num_partitions)
            return UnknownPartitioning(p.num_partitions)
        return p

    def maintains_input_order(self) -> bool:
        return True

    def output_ordering(self) -> tuple[SortSpec, ...]:
        # The input's order, under the output names, as far as its keys pass through.
        renamed = {e.name: n for n, e in self.exprs if isinstance(e, ColumnRef)}
        out: list[SortSpec] = []
        for key in self.input.output_ordering():
            if key.column not in renamed:
                break
            out.append(replace(key, column=renamed[key.column]))
        return tuple(out)

    def explain_params(self) -> dict[str, str]:
        return {"": ", ".join(n if str(e) == n else f"{e} AS {n}" for n, e in self.exprs)}

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        schema = self.schema
        for batch in ctx.run(self.input):
            memo: Memo = {}  # shared subexpressions are computed once per batch
            arrays = [evaluate_column(e, batch, memo) for _, e in self.exprs]
            if any(pa.types.is_dictionary(a.type) for a in arrays):
                # Group keys a scan left dictionary-encoded (KeepGroupKeysEncoded) pass
                # through as they are.
                yield pa.RecordBatch.from_arrays(arrays, names=schema.names)
            else:
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)
