"""Window top-k: the rows a ranking filter above a window can keep, per window partition.

Under ``Filter(r <= k) <- Window(r = rank() OVER (PARTITION BY p ORDER BY o))`` only
the rows ranked at most ``k`` in their partition survive. This operator, below the
window, keeps for each value of ``p`` the rows whose ``fn`` (row_number, rank or
dense_rank) over ``o`` is at most ``k`` among the rows it sees; the window and the
filter above then compute the exact answer from those.

Why that is enough: a row's rank (dense_rank) among any subset of its partition is
at most its rank in the whole partition, so a partial top-k over a task's share of
the rows keeps every row the whole partition ranks within ``k`` (ties included).
For row_number it keeps ``k`` rows; the union over tasks still holds ``k`` rows
ordered no later than the partition's ``k``-th, so the rows the window numbers
``1..k`` are a correct answer (which tied rows is unspecified, as in SQL). And a
kept set that holds every row ordered before each kept row gives every ranking
function its value over the whole partition.

    partial: per task, before the repartition on ``p`` (or the gather without ``p``):
             only candidate rows cross the exchange
    final / single: per window partition, after it; output sorted by ``p`` then ``o``
             (the window's input order, so no sort is planned above)

Needs: partial any; final / single ``HashDistributed(p)`` (``SinglePartition``
without ``p``). Gives: its input's partitioning; final / single the window's sort
order. Holds the kept rows plus up to as many new ones (compacted when the new rows
reach the kept ones, so the work is amortized), reserved from the query's pool.
A partial that cannot hold them, or whose compactions keep most rows (partitions of
about ``k`` rows or fewer), passes its rows on instead. Final / single never spill:
past the budget they raise ``ResourceExhaustedError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from shoal.logical.plan import WindowFunction
from shoal.physical.context import TaskContext
from shoal.physical.operators.window import peer_changes
from shoal.physical.partitioning import Distribution, HashDistributed, Partitioning, SinglePartition
from shoal.physical.plan import PhysicalPlan, SortSpec, sort_specs_str
from shoal.sorting import sort_indices

#: The ranking functions whose ``<= k`` rows this operator can pick.
RANKING_FUNCTIONS = (WindowFunction.ROW_NUMBER, WindowFunction.RANK, WindowFunction.DENSE_RANK)

# Rows are compacted (sorted and cut) this many at a time at least (``batch_rows`` if
# fewer), so the first cutoff (``_Cutoff``) is known early and filters the rest
# before they are held.
_COMPACT_ROWS = 16_384
# A partial top-k whose compaction keeps more than this share of its rows stops
# compacting and passes rows on: the exchange would save less than the sorting costs.
_PASS_THROUGH_KEPT = 0.7


class TopKMode(Enum):
    PARTIAL = "partial"
    FINAL = "final"
    SINGLE = "single"


@dataclass(frozen=True)
class WindowTopKExec(PhysicalPlan):
    input: PhysicalPlan
    mode: TopKMode
    partition_by: tuple[str, ...]
    order_by: tuple[SortSpec, ...]
    fn: WindowFunction
    k: int

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"WindowTopK[{self.mode.value}]"

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return WindowTopKExec(
            children[0], self.mode, self.partition_by, self.order_by, self.fn, self.k
        )

    @property
    def schema(self) -> pa.Schema:
        return self.input.schema

    @property
    def sort_keys(self) -> tuple[SortSpec, ...]:
        """The window's input order: PARTITION BY keys, then ORDER BY keys."""
        return tuple(SortSpec(k) for k in self.partition_by) + self.order_by

    def required_input_distributions(self) -> tuple[Distribution, ...]:
        if self.mode == TopKMode.PARTIAL:
            return super().required_input_distributions()
        if self.partition_by:
            return (HashDistributed(self.partition_by),)
        return (SinglePartition(),)

    def output_partitioning(self) -> Partitioning:
        return self.input.output_partitioning()

    def output_ordering(self) -> tuple[SortSpec, ...]:
        # A partial may pass rows on unsorted; it always feeds an exchange anyway.
        return () if self.mode == TopKMode.PARTIAL else self.sort_keys

    def explain_params(self) -> dict[str, str]:
        return {
            "partition": "[" + ", ".join(self.partition_by) + "]",
            "order": sort_specs_str(self.order_by),
            "fn": self.fn.value,
            "k": str(self.k),
        }

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        res = ctx.reserve(self)
        partial = self.mode == TopKMode.PARTIAL
        batch_rows = ctx.settings.batch_rows
        compact_rows = min(_COMPACT_ROWS, batch_rows)
        kept: pa.Table | None = None
        cutoff: _Cutoff | None = None
        new: list[pa.RecordBatch] = []
        new_rows = 0
        try:
            batches = iter(ctx.run(self.input))
            for batch in batches:
                for piece in _pieces(batch, compact_rows):
                    if cutoff is not None:
                        piece = cutoff.apply(piece)
                    if not piece.num_rows:
                        continue
                    if partial and not res.try_grow(piece.nbytes):
                        # No room: what is held goes on as it is (any superset is correct).
                        yield from _held(kept, new, batch_rows)
                        kept, cutoff, new, new_rows = None, None, [], 0
                        res.resize(0)
                        yield piece
                        continue
                    if not partial:
                        res.grow(piece.nbytes)
                    new.append(piece)
                    new_rows += piece.num_rows
                    held = 0 if kept is None else kept.num_rows
                    if new_rows < max(compact_rows, held):
                        continue
                    before = held + new_rows
                    kept = self._compact(kept, new)
                    new, new_rows = [], 0
                    res.resize(kept.nbytes)
                    if partial and kept.num_rows > _PASS_THROUGH_KEPT * before:
                        # Few rows per partition: sorting them buys little. Pass on.
                        yield from kept.to_batches(max_chunksize=batch_rows)
                        res.resize(0)
                        yield from batches
                        return
                    cutoff = _Cutoff.of(self, kept)
            if new or kept is not None:
                kept = self._compact(kept, new)
                res.resize(kept.nbytes)
                yield from kept.combine_chunks().to_batches(max_chunksize=batch_rows)
        finally:
            res.free()

    def _compact(self, kept: pa.Table | None, new: list[pa.RecordBatch]) -> pa.Table:
        """The kept rows and the new ones, sorted, cut to rank ``<= k`` per partition.

        Only the key columns are sorted; the other columns are taken for the kept rows."""
        parts = [kept] if kept is not None else []
        if new:
            parts.append(pa.Table.from_batches(new))
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        names = list(dict.fromkeys(s.column for s in self.sort_keys))
        keys = table.select(names)
        order = sort_indices(keys, self.sort_keys)
        ranks = self.ranks(keys.take(order), self.fn)
        return table.take(order.filter(pa.array(ranks <= self.k))).combine_chunks()

    def ranks(self, table: pa.Table, fn: WindowFunction) -> npt.NDArray[np.int64]:
        """Each row's ``fn`` within its partition, ``table`` sorted by ``sort_keys``."""
        n = table.num_rows
        part = changes(table, list(self.partition_by))
        index = np.arange(n, dtype=np.int64)
        part_start = np.maximum.accumulate(np.where(part, index, 0))
        if fn == WindowFunction.ROW_NUMBER:
            return index - part_start + 1
        peer = part | changes(table, [s.column for s in self.order_by])
        if fn == WindowFunction.RANK:
            peer_start = np.maximum.accumulate(np.where(peer, index, 0))
            return peer_start - part_start + 1
        # dense_rank: peer groups begun since the partition began.
        peers = np.cumsum(peer, dtype=np.int64)
        return peers - peers[part_start] + 1


@dataclass(frozen=True)
class _Cutoff:
    """Per window partition, the last ORDER BY value the top ``k`` can still reach.

    Known once a partition holds ``k`` rows (``k`` peer groups for dense_rank): a new
    row ordered strictly after that value cannot rank ``<= k``, whatever else comes,
    so it is dropped before it is held or sorted. Only for one ORDER BY key that is
    not floating point (NaN's place is not a comparison's) and at most one PARTITION BY
    key (looked up with ``index_in``); None otherwise."""

    partition: str | None
    #: The partition key of each partition that has a cutoff (unique), and its value.
    keys: pa.Array | None
    values: pa.Array
    order: SortSpec

    @classmethod
    def of(cls, op: WindowTopKExec, kept: pa.Table) -> _Cutoff | None:
        if len(op.order_by) != 1 or len(op.partition_by) > 1 or not kept.num_rows:
            return None
        order = op.order_by[0]
        column = _decoded(kept.column(order.column))
        if pa.types.is_floating(column.type) or pa.types.is_nested(column.type):
            return None
        # The row that reaches k: a partition's k-th row (rank, row_number: the k rows
        # up to it are ordered before anything after its value), or the first row of
        # its k-th peer group (dense_rank).
        if op.fn == WindowFunction.DENSE_RANK:
            peers = changes(kept, list(op.partition_by) + [order.column])
            at = (op.ranks(kept, WindowFunction.DENSE_RANK) == op.k) & peers
        else:
            at = op.ranks(kept, WindowFunction.ROW_NUMBER) == op.k
        rows = pa.array(np.flatnonzero(at))
        if not len(rows):
            return None
        if not op.partition_by:
            return cls(None, None, column.take(rows.slice(0, 1)), order)
        name = op.partition_by[0]
        keys = _decoded(kept.column(name)).take(rows)
        return cls(name, keys, column.take(rows), order)

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        value = _decoded(batch.column(self.order.column))
        n = batch.num_rows
        if self.keys is None:
            has = np.ones(n, dtype=bool)
            limit = pa.repeat(self.values[0], n) if n else self.values.slice(0, 0)
        else:
            where = pc.index_in(_decoded(batch.column(self.partition)), value_set=self.keys)
            has = np.asarray(where.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            limit = self.values.take(where)
        compare = pc.greater if self.order.ascending else pc.less
        after = _bools(pc.fill_null(compare(value, limit), False))
        value_null = _bools(value.is_null())
        limit_null = _bools(limit.is_null())
        # NULLs sort first or last: a NULL is after a value when NULLs go last, a value
        # after a NULL when they go first (an absent cutoff is NULL too: ``has``).
        if self.order.nulls_first:
            after |= ~value_null & limit_null
        else:
            after |= value_null & ~limit_null
        drop = has & after
        if not drop.any():
            return batch
        return batch.filter(pa.array(~drop))


def _decoded(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.dictionary_decode() if pa.types.is_dictionary(column.type) else column


def _bools(array: pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)


def _pieces(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


def _held(
    kept: pa.Table | None, new: list[pa.RecordBatch], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    if kept is not None:
        yield from kept.to_batches(max_chunksize=batch_rows)
    yield from new


def changes(table: pa.Table, columns: list[str]) -> npt.NDArray[np.bool_]:
    """True at row i when some column differs from row i-1; row 0 True.

    NULL equals NULL and NaN equals NaN: under a coarser peer relation than the
    window's a row's rank is no larger, so this never drops a row the window keeps."""
    return peer_changes(table, columns, nan_equal=True)
