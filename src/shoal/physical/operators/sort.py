"""Sort: orders each partition by its keys.

Needs: any distribution. Gives: its input's partitioning, each partition sorted
(a global order comes from an ordered-merge exchange above it, or from running
on a single partition). Holds its whole partition in memory; does not spill yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from shoal.expr.floats import has_nan, needs_nan_key
from shoal.physical.context import TaskContext
from shoal.physical.plan import PhysicalPlan, SortSpec, sort_specs_str


def sort_table(table: pa.Table, keys: tuple[SortSpec, ...]) -> pa.Table:
    if table.num_rows <= 1:
        return table
    return table.take(sort_indices(table, keys))


def sort_indices(table: pa.Table, keys: tuple[SortSpec, ...]) -> pa.Array:
    """The SQL order of ``table``'s rows: NULLs where each key says, NaN above every number.

    Where Arrow would put NaN beside the NULLs (``floats.needs_nan_key``), an
    ``is_nan`` key sorted first puts it at the far end instead.
    """
    sort_keys: list[tuple[str, str, str]] = []
    for i, k in enumerate(keys):
        column = table.column(k.column)
        if needs_nan_key(column.type, k.ascending, k.nulls_first) and has_nan(column):
            name = f"$nan{i}"
            table = table.append_column(name, pc.is_nan(column))
            sort_keys.append((name, k.arrow()[1], k.arrow()[2]))
        sort_keys.append(k.arrow())
    return pc.sort_indices(table, sort_keys=sort_keys)


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
