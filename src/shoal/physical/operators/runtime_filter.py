"""Runtime filter: drops rows whose key no row of a join's held side has.

Needs: any. Gives: its input's partitioning and order (it only drops rows). Placed
by EnforceDistribution below the right side's hash exchange of a semi/anti join that
holds its left side (``build_left``): right rows whose key the left side lacks can
match nothing, so they need not be hashed, shipped or probed. NULL keys never match
in such a join and are dropped too. The keys arrive at run time from the join's
tasks (``runtime/filters.py``).

Holds its input while the keys are not yet known, up to
``runtime_filter_hold_bytes`` and reserved from the query's pool, reading ahead only
on a CPU slot no other task waits for (``TaskContext.yield_slot``): the tasks that
compute the keys go first. Past the hold bytes it waits for the keys (lending its CPU
slot): the publishing join publishes (or withdraws) before it reads this side, so the
wait ends, and what it saves is large — Q21's lineitem scan ran ahead of the keys,
and passing it on unfiltered shipped and probed 4.4M of its 6M rows instead of
~2.5M. Past the pool it gives up and passes everything on unfiltered (always
correct: the filter only saves work).
When its input ends before the keys arrive, it waits for them too. Never spills.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from shoal.physical.context import TaskContext
from shoal.physical.partitioning import Partitioning
from shoal.physical.plan import PhysicalPlan


@dataclass(frozen=True)
class RuntimeFilterExec(PhysicalPlan):
    input: PhysicalPlan
    keys: tuple[str, ...]  # columns of the input matched against the published keys
    filter_id: str  # unique within the query
    sources: int  # how many join tasks publish a partition of the keys

    label = "RuntimeFilter"
    shows_rows_in = True  # EXPLAIN ANALYZE: rows in and out tell what the filter saved

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return RuntimeFilterExec(children[0], self.keys, self.filter_id, self.sources)

    @property
    def schema(self) -> pa.Schema:
        return self.input.schema

    def output_partitioning(self) -> Partitioning:
        return self.input.output_partitioning()

    def maintains_input_order(self) -> bool:
        return True

    def explain_params(self) -> dict[str, str]:
        return {"": self.filter_id, "keys": "[" + ", ".join(self.keys) + "]"}

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        metrics = ctx.operator_metrics(self)
        res = ctx.reserve(self)
        held: list[pa.RecordBatch] = []
        held_bytes = 0
        keys: Any = None
        passing = False  # gave up waiting: everything passes unfiltered
        for batch in ctx.run(self.input):
            metrics.rows_in += batch.num_rows
            if keys is None and not passing:
                keys = ctx.poll_filter(self.filter_id, self.sources)
            if keys is None and not passing:
                held.append(batch)
                held_bytes += batch.nbytes
                if not res.try_grow(batch.nbytes):
                    passing = True  # the pool is short: hold nothing more
                    yield from held
                    held = []
                    res.free()
                elif held_bytes > ctx.settings.runtime_filter_hold_bytes:
                    keys = ctx.wait_filter(self.filter_id, self.sources)
                    if keys is None:  # a context without runtime filters
                        passing = True
                        yield from held
                        held = []
                        res.free()
                else:
                    ctx.yield_slot()  # reading ahead: only on a slot nobody waits for
                continue
            if held:
                yield from self._apply(keys, held) if keys is not None else held
                held = []
                res.free()
            if keys is None:
                yield batch
            else:
                yield from self._apply(keys, [batch])
        if held:
            if keys is None:
                keys = ctx.wait_filter(self.filter_id, self.sources)
            yield from self._apply(keys, held) if keys is not None else held
        res.free()

    def _apply(self, keys: Any, batches: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            found = keys.contains([batch.column(k) for k in self.keys])
            if found.all():
                yield batch
            elif found.any():
                yield batch.filter(pa.array(found))


__all__ = ["RuntimeFilterExec"]
