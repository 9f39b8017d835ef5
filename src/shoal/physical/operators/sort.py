"""Sort: orders each partition by its keys.

Needs: any distribution. Gives: its input's partitioning, each partition sorted
(``output_ordering`` = its keys). An ORDER BY sort (``preserve_partitioning`` False)
is made global by EnforceDistribution: an ordered-merge exchange above it, unless it
already runs on one partition. A sort placed by EnforceSorting for an operator that
needs sorted partitions (a window) keeps its partitioning and is never merged. Holds
its partition in memory while the query's pool allows (reserving twice the rows' bytes:
sorting makes one copy, taken batch by batch from one concatenation of the rows). Spills: past the budget the rows held so far are sorted and
written as a run, and at the end the runs are merged by the ordered-merge exchange's
k-way merge (``exchange/merge.py``), at most ``fan_in`` at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from shoal.exchange.merge import merge_sorted
from shoal.memory.pool import Reservation, release_unused
from shoal.memory.spill import SpillFile
from shoal.physical.context import TaskContext
from shoal.physical.plan import PhysicalPlan, SortSpec, sort_specs_str
from shoal.sorting import sorted_batches

# Rows per batch in a spilled run: the merge holds about one batch per run at once.
_RUN_BATCH_ROWS = 1 << 14


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
        metrics = ctx.operator_metrics(self)
        res = ctx.reserve(self)
        runs: list[SpillFile] = []
        held: list[pa.RecordBatch] = []
        rows = 0
        try:
            for batch in ctx.run(self.input):
                rows += batch.num_rows
                metrics.peak_state_rows = max(metrics.peak_state_rows, rows)
                # Twice the batch: sorting what is held makes a copy of it.
                if not res.try_grow(2 * batch.nbytes):
                    if held:
                        runs.append(self._spill_run(ctx, held, res))
                        held, rows = [], batch.num_rows
                    res.force_grow(2 * batch.nbytes)
                held.append(batch)
            if not runs:
                if held:
                    out = sorted_batches(
                        pa.Table.from_batches(held, self.input.schema),
                        self.keys,
                        ctx.settings.batch_rows,
                    )
                    held = []  # the sort's concatenation is all that holds the rows now
                    yield from out
                return
            if held:
                runs.append(self._spill_run(ctx, held, res))
                held = []
            metrics.spill_passes = 1
            yield from self._merge_runs(ctx, runs, res)
        finally:
            for run in runs:
                run.delete()

    def _spill_run(
        self, ctx: TaskContext, held: list[pa.RecordBatch], res: Reservation
    ) -> SpillFile:
        batches = sorted_batches(
            pa.Table.from_batches(held, self.input.schema), self.keys, _RUN_BATCH_ROWS
        )
        held.clear()  # the sort's concatenation is all that holds the rows now
        run = ctx.spill.new_file(self.input.schema, ctx.operator_metrics(self))
        for batch in batches:
            run.write(batch)
        del batches
        run.close()
        res.resize(0)
        release_unused()
        return run

    def _merge_runs(
        self, ctx: TaskContext, runs: list[SpillFile], res: Reservation
    ) -> Iterator[pa.RecordBatch]:
        metrics = ctx.operator_metrics(self)
        # A merge round holds about one batch per run, plus its concatenation and the
        # sorted copy: three batches' worth per run.
        batch_bytes = max(1, max(r.data_bytes * _RUN_BATCH_ROWS // max(r.rows, 1) for r in runs))
        fan_in = len(runs)
        while fan_in > 2 and not res.try_grow(3 * batch_bytes * fan_in):
            fan_in //= 2
        if fan_in <= 2 and not res.size:
            res.force_grow(3 * batch_bytes * 2)
            fan_in = 2
        while len(runs) > fan_in:
            # Too many runs to merge at once: merge groups of them into longer runs.
            metrics.spill_passes += 1
            longer: list[SpillFile] = []
            for start in range(0, len(runs), fan_in):
                group = runs[start : start + fan_in]
                if len(group) == 1:
                    longer.append(group[0])
                    continue
                out = ctx.spill.new_file(self.input.schema, metrics)
                for batch in merge_sorted([r.read() for r in group], self.keys, self.input.schema):
                    ctx.check_cancelled()
                    out.write(batch)
                out.close()
                for r in group:
                    r.delete()
                longer.append(out)
            runs[:] = longer
        rows = ctx.settings.batch_rows
        for batch in merge_sorted([r.read() for r in runs], self.keys, self.input.schema):
            # Merge rounds can be larger than batch_rows: bounded batches downstream.
            if batch.num_rows <= rows:
                yield batch
            else:
                for start in range(0, batch.num_rows, rows):
                    yield batch.slice(start, rows)
