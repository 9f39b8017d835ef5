"""Table scan: reads one task's splits with column projection and pushed filters.

Needs: nothing (a leaf). Gives: ``Unknown(n)`` partitioning over n tasks, each
reading a byte-balanced share of the table's splits (Parquet row groups, CSV
files, in-memory slices). Holds one batch at a time; never spills.

Pushed filters are evaluated here, batch by batch, right after decoding, and
Parquet row groups whose min/max statistics cannot match are not read at all.
String columns leave the scan as ``pa.string()`` whatever the file held.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shoal.catalog.sources import CsvSource, MemorySource, ParquetSource, Split, TableSource
from shoal.errors import ExecutionError
from shoal.expr.evaluate import evaluate_predicate
from shoal.expr.nodes import COMPARISONS, Call, ColumnRef, Expr, Literal, conjoin
from shoal.physical.context import TaskContext
from shoal.physical.partitioning import Partitioning, UnknownPartitioning
from shoal.physical.plan import PhysicalPlan


def assign_splits(splits: list[Split], n: int) -> tuple[tuple[int, ...], ...]:
    """Split indexes per task: largest first onto the least-loaded task, then file order."""
    loads = [0] * n
    assigned: list[list[int]] = [[] for _ in range(n)]
    order = sorted(range(len(splits)), key=lambda i: -max(splits[i].num_bytes, splits[i].num_rows))
    for i in order:
        task = loads.index(min(loads))
        assigned[task].append(i)
        loads[task] += max(splits[i].num_bytes, splits[i].num_rows, 1)
    return tuple(tuple(sorted(a)) for a in assigned)


@dataclass(frozen=True)
class ScanExec(PhysicalPlan):
    table: str
    source: TableSource = field(repr=False, compare=False)
    columns: tuple[str, ...]  # names in the source
    names: tuple[str, ...]  # internal names, same order
    filter: Expr | None
    splits: tuple[Split, ...]
    assignment: tuple[tuple[int, ...], ...]  # split indexes per task

    label = "Scan"

    @property
    def schema(self) -> pa.Schema:
        fields = {f.name: f for f in self.source.schema}
        return pa.schema(
            [pa.field(n, fields[c].type) for c, n in zip(self.columns, self.names, strict=True)]
        )

    def output_partitioning(self) -> Partitioning:
        return UnknownPartitioning(len(self.assignment))

    def explain_params(self) -> dict[str, str]:
        params = {"": self.table, "columns": "[" + ", ".join(self.names) + "]"}
        if self.filter is not None:
            params["filter"] = str(self.filter)
        params["splits"] = str(len(self.splits))
        params["source"] = self.source.describe().split()[0]
        return params

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        metrics = ctx.operator_metrics(self)
        mine = [self.splits[i] for i in self.assignment[ctx.partition]]
        for batch in self._read(mine, ctx, metrics):
            metrics.rows_in += batch.num_rows
            if self.filter is not None:
                batch = batch.filter(evaluate_predicate(self.filter, batch))
            if batch.num_rows:
                yield batch

    # ------------------------------------------------------------------ reading

    def _read(
        self, splits: list[Split], ctx: TaskContext, metrics: Any
    ) -> Iterator[pa.RecordBatch]:
        target = self.schema
        src = self.source
        if isinstance(src, ParquetSource):
            files: dict[str, pq.ParquetFile] = {}
            for split in splits:
                f = files.get(split.path)
                if f is None:
                    try:
                        f = files[split.path] = pq.ParquetFile(split.path)
                    except OSError as err:
                        raise ExecutionError(f"cannot open {split.path}: {err}") from err
                groups = [
                    rg
                    for rg in (split.row_groups or range(f.metadata.num_row_groups))
                    if self._row_group_may_match(f.metadata.row_group(rg))
                ]
                skipped = len(split.row_groups or ()) - len(groups)
                metrics.row_groups_skipped += skipped
                metrics.row_groups_read += len(groups)
                if not groups:
                    continue
                for batch in f.iter_batches(
                    batch_size=ctx.settings.batch_rows,
                    row_groups=groups,
                    columns=list(self.columns),
                    use_threads=False,
                ):
                    yield _conform(batch, target)
        elif isinstance(src, CsvSource):
            for split in splits:
                table = src.read(split, list(self.columns))
                for batch in table.to_batches(max_chunksize=ctx.settings.batch_rows):
                    yield _conform(batch, target)
        elif isinstance(src, MemorySource):
            for split in splits:
                part = src.table.slice(split.start, split.num_rows).select(list(self.columns))
                for batch in part.to_batches(max_chunksize=ctx.settings.batch_rows):
                    yield _conform(batch, target)
        else:
            raise ExecutionError(f"cannot scan a {type(src).__name__}")

    def _row_group_may_match(self, rg: pq.RowGroupMetaData) -> bool:
        """False when min/max statistics prove no row of the group passes the filter."""
        if self.filter is None:
            return True
        by_name = {self.names[i]: self.columns[i] for i in range(len(self.names))}
        col_index: dict[str, int] = {}
        for i in range(rg.num_columns):
            col_index[rg.column(i).path_in_schema] = i
        for conj in _conjuncts(self.filter):
            bounds = _column_bound(conj)
            if bounds is None:
                continue
            name, op, value = bounds
            idx = col_index.get(by_name.get(name, ""))
            if idx is None:
                continue
            stats = rg.column(idx).statistics
            if stats is None or not stats.has_min_max:
                continue
            try:
                lo, hi = stats.min, stats.max
                if op == "equal" and (value < lo or value > hi):
                    return False
                if op == "less" and not lo < value:
                    return False
                if op == "less_equal" and not lo <= value:
                    return False
                if op == "greater" and not hi > value:
                    return False
                if op == "greater_equal" and not hi >= value:
                    return False
            except TypeError:
                continue  # statistics of another Python type: no pruning
        return True


_FLIP = {
    "less": "greater",
    "less_equal": "greater_equal",
    "greater": "less",
    "greater_equal": "less_equal",
    "equal": "equal",
}


def _conjuncts(e: Expr) -> list[Expr]:
    if isinstance(e, Call) and e.fn == "and":
        return _conjuncts(e.args[0]) + _conjuncts(e.args[1])
    return [e]


def _column_bound(e: Expr) -> tuple[str, str, Any] | None:
    """``(column, op, value)`` for ``column op literal`` (either side), else None."""
    if not (isinstance(e, Call) and e.fn in COMPARISONS and e.fn != "not_equal"):
        return None
    a, b = e.args
    if isinstance(a, ColumnRef) and isinstance(b, Literal) and b.value is not None:
        return a.name, e.fn, b.value
    if isinstance(b, ColumnRef) and isinstance(a, Literal) and a.value is not None:
        return b.name, _FLIP[e.fn], a.value
    return None


def _conform(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """Cast to the engine's types and rename to internal names (positional)."""
    columns = []
    for col, f in zip(batch.columns, target, strict=True):
        columns.append(col if col.type == f.type else col.cast(f.type))
    return pa.RecordBatch.from_arrays(columns, schema=target)


__all__ = ["ScanExec", "assign_splits", "conjoin"]
