"""Expand[states]: GROUPING SETS over partial aggregate states, each set merged in the task.

Input: a partial aggregate's states keyed on the keys of all sets together
(``grouping_key$i``, EnforceDistribution's ``_partial_below_expand``). Output: what
``ExpandExec`` with the same projection lists gives — one row per set per group, the
set's missing keys NULL — except that each set's rows are first merged per group of
that set's keys, each from the set with the fewest keys already merged whose
keys include its own (a ROLLUP cascades: ``(a, b)`` from ``(a, b, c)``, ``(a)`` from
``(a, b)``). A set of all the keys is the input as it comes: the partial aggregate
merged it as far as it could hold it, and merging again seldom shrinks it enough
to pay for the grouping. So the exchange to the final aggregate
carries each set's groups of this task, not one copy of every fine group per set
(TPC-DS q67: 9 sets × ~212,000 state rows per task). The final aggregate merges the
tasks' states as before.

Needs: any distribution. Gives: unknown partitioning with its input's partition
count, no order. Holds its input's states, and each set's merged states until every
set merged from them is, reserved from the query's pool; past the budget it stops merging
and expands what it holds and the rest of its input as ``ExpandExec`` does (the
final aggregate merges them all the same).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from shoal.expr.evaluate import Memo, evaluate_column
from shoal.expr.nodes import ColumnRef, Expr
from shoal.memory.pool import Reservation
from shoal.physical.context import TaskContext
from shoal.physical.operators.aggregate import PARTIAL, AggSpec, HashAggregateExec
from shoal.physical.partitioning import Partitioning, UnknownPartitioning
from shoal.physical.plan import PhysicalPlan


@dataclass(frozen=True)
class ExpandStatesExec(PhysicalPlan):
    input: PhysicalPlan
    projections: tuple[tuple[tuple[str, Expr], ...], ...]
    #: The input's key columns (the partial aggregate's ``grouping_key$i``).
    keys: tuple[str, ...]
    aggs: tuple[AggSpec, ...]

    label = "Expand[states]"

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return ExpandStatesExec(children[0], self.projections, self.keys, self.aggs)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(n, e.type) for n, e in self.projections[0]])

    def output_partitioning(self) -> Partitioning:
        return UnknownPartitioning(self.input.output_partitioning().num_partitions)

    @property
    def set_keys(self) -> tuple[tuple[str, ...], ...]:
        """Per projection list, the input key columns it reads (in input order)."""
        out = []
        for projection in self.projections:
            read = {e.name for _, e in projection if isinstance(e, ColumnRef)}
            out.append(tuple(k for k in self.keys if k in read))
        return tuple(out)

    @property
    def sources(self) -> tuple[int, ...]:
        """Per projection list, the set it is merged from (-1: the input).

        Sets are merged widest first; each from the set with the fewest keys among
        those merged before it whose keys include its own (fewest keys: the fewest
        groups, as far as the plan can tell)."""
        keys = self.set_keys
        order = sorted(range(len(keys)), key=lambda i: -len(keys[i]))
        source = [-1] * len(keys)
        done: list[int] = []
        for i in order:
            wider = [j for j in done if set(keys[i]) <= set(keys[j])]
            if wider:
                source[i] = min(wider, key=lambda j: len(keys[j]))
            done.append(i)
        return tuple(source)

    def explain_params(self) -> dict[str, str]:
        sources = ", ".join("input" if s < 0 else str(s) for s in self.sources)
        return {
            "sets": str(len(self.projections)),
            "merged_from": f"[{sources}]",
            "columns": f"[{', '.join(self.schema.names)}]",
        }

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        res = ctx.reserve(self)
        try:
            held: list[pa.RecordBatch] = []
            batches = iter(ctx.run(self.input))
            for batch in batches:
                if not res.try_grow(batch.nbytes):
                    # Out of budget: expand every state row as it is.
                    for b in held:
                        yield from self._expand(b)
                    held = []
                    res.resize(0)
                    yield from self._expand(batch)
                    for rest in batches:
                        yield from self._expand(rest)
                    return
                held.append(batch)
            if not any(b.num_rows for b in held):
                return
            table = pa.Table.from_batches(held, self.input.schema)
            del held
            yield from self._merged(table, res, ctx)
        finally:
            res.free()

    def _merged(
        self, table: pa.Table, res: Reservation, ctx: TaskContext
    ) -> Iterator[pa.RecordBatch]:
        """Each set merged from its source, emitted, and dropped once no set reads it."""
        keys, sources = self.set_keys, self.sources
        readers = [sources.count(i) for i in range(len(keys))]
        merged: dict[int, pa.Table] = {}
        reserved = [0] * len(keys)  # bytes reserved for each set's own merged table
        metrics = ctx.operator_metrics(self)
        for i in sorted(range(len(keys)), key=lambda i: -len(keys[i])):
            source = sources[i]
            parent = table if source < 0 else merged[source]
            if keys[i] == (self.keys if source < 0 else keys[source]):
                # The same keys as its source: nothing to merge. (The set of all keys is
                # not merged again: the partial aggregate merged what it could hold.)
                states = parent
            else:
                states = self._merger(keys[i]).merge_states(parent)
                reserved[i] = states.nbytes
                res.force_grow(reserved[i])  # at most as large as its parent
            metrics.peak_state_rows = max(
                metrics.peak_state_rows, states.num_rows + sum(t.num_rows for t in merged.values())
            )
            for batch in states.to_batches(max_chunksize=ctx.settings.batch_rows):
                yield self._project(i, batch)
            if readers[i]:
                merged[i] = states
            else:
                res.shrink(reserved[i])
            if source >= 0:
                readers[source] -= 1
                if not readers[source]:
                    del merged[source]
                    res.shrink(reserved[source])

    def _merger(self, keys: tuple[str, ...]) -> HashAggregateExec:
        fields = {f.name: f.type for f in self.input.schema}
        return HashAggregateExec(
            self.input, PARTIAL, tuple((k, ColumnRef(k, fields[k])) for k in keys), self.aggs
        )

    def _expand(self, batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        for i in range(len(self.projections)):
            yield self._project(i, batch)

    def _project(self, i: int, batch: pa.RecordBatch) -> pa.RecordBatch:
        schema = self.schema
        memo: Memo = {}
        arrays = [evaluate_column(e, batch, memo) for _, e in self.projections[i]]
        arrays = [
            a if a.type == f.type else a.cast(f.type) for a, f in zip(arrays, schema, strict=True)
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=schema)
