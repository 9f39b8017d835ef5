"""Window: evaluates window functions over sorted partitions.

Needs: its input hash-distributed on the PARTITION BY keys (one partition when there
are none) and each partition sorted by the PARTITION BY keys then the ORDER BY keys
(EnforceSorting places that sort; a window over the output of another window with the
same or a longer sort requirement needs none). Gives: its input's partitioning and
order, with one column appended per call. Holds one window partition (PARTITION BY
group) at a time, plus complete ones gathered up to ``batch_rows`` rows, reserved from the
query's pool (``_WindowRun``). Spills: a partition past the budget goes to one IPC file as
it arrives and is computed from it in pieces (``_Pieces``) when its calls allow; when a
call needs the whole partition at once and it does not fit, ``ResourceExhaustedError``
names the operator, stage, task and figures.

Every function is computed for all rows at once with numpy over the partition, peer
group and frame boundaries (index arrays): ranks from boundary positions, lag / lead
and first / last / nth value as ``take`` at shifted indices, frame aggregates from
prefix sums (exact in integers for integer and decimal sums, long double for floats)
and frame MIN / MAX from a sparse table over dense ranks of the values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from shoal.arrays import as_int64, decimal128_from_unscaled, integer_like, unscaled_int64
from shoal.errors import ExecutionError
from shoal.expr.nodes import ColumnRef, Literal
from shoal.logical.plan import (
    BoundKind,
    FrameBound,
    FrameExclude,
    FrameUnit,
    WindowCall,
    WindowFunction,
)
from shoal.memory.pool import STATE_SHARE, release_unused
from shoal.memory.spill import SpillFile
from shoal.physical.context import TaskContext
from shoal.physical.operators import frame_aggregate
from shoal.physical.operators.frame_aggregate import valid_mask
from shoal.physical.partitioning import Distribution, HashDistributed, SinglePartition
from shoal.physical.plan import PhysicalPlan, SortSpec, sort_specs_str

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
#: A frame as row ranges ``[start, end)`` per row (several when EXCLUDE cuts it).
Spans = tuple[tuple[Ints, Ints], ...]


@dataclass(frozen=True)
class WindowExec(PhysicalPlan):
    input: PhysicalPlan
    partition_by: tuple[str, ...]
    order_by: tuple[SortSpec, ...]
    calls: tuple[tuple[str, WindowCall], ...]

    label = "Window"

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return WindowExec(children[0], self.partition_by, self.order_by, self.calls)

    @property
    def schema(self) -> pa.Schema:
        fields = list(self.input.schema)
        fields += [pa.field(n, c.type) for n, c in self.calls]
        return pa.schema(fields)

    @property
    def sort_keys(self) -> tuple[SortSpec, ...]:
        return tuple(SortSpec(k) for k in self.partition_by) + self.order_by

    def required_input_distributions(self) -> tuple[Distribution, ...]:
        if self.partition_by:
            return (HashDistributed(self.partition_by),)
        return (SinglePartition(),)

    def required_input_orderings(self) -> tuple[tuple[SortSpec, ...], ...]:
        return (self.sort_keys,)

    def maintains_input_order(self) -> bool:
        return True

    def explain_params(self) -> dict[str, str]:
        return {
            "partition": "[" + ", ".join(self.partition_by) + "]",
            "order": sort_specs_str(self.order_by),
            "calls": "[" + ", ".join(f"{c} AS {n}" for n, c in self.calls) + "]",
        }

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        run = _WindowRun(self, ctx)
        try:
            for batch in ctx.run(self.input):
                if batch.num_rows:
                    yield from run.add(batch)
            yield from run.finish()
        finally:
            run.close()


# ------------------------------------------------------------------ streaming


class _Carry(Enum):
    """What a frame starting at its partition's first row carries from one piece of a
    spilled partition to the next: the aggregate of the rows already left behind."""

    NONE = "none"
    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    FIRST = "first"


_RANKING = (
    WindowFunction.ROW_NUMBER,
    WindowFunction.RANK,
    WindowFunction.DENSE_RANK,
    WindowFunction.PERCENT_RANK,
    WindowFunction.CUME_DIST,
    WindowFunction.NTILE,
)
_PEER_RANKING = (
    WindowFunction.RANK,
    WindowFunction.DENSE_RANK,
    WindowFunction.PERCENT_RANK,
    WindowFunction.CUME_DIST,
)
# Without over_frame these read the whole partition sorted by their argument.
_WHOLE_PARTITION_FORMS = (
    WindowFunction.QUANTILE_CONT,
    WindowFunction.QUANTILE_DISC,
    WindowFunction.STRING_AGG,
    WindowFunction.MODE,
    WindowFunction.ARRAY_AGG,
    WindowFunction.ARG_MIN_N,
    WindowFunction.ARG_MAX_N,
)
#: The functions with a ``by`` argument (frame_aggregate's kernels).
_BY_FUNCTIONS = (
    WindowFunction.ARG_MIN,
    WindowFunction.ARG_MAX,
    WindowFunction.ARG_MIN_N,
    WindowFunction.ARG_MAX_N,
)
_RUNNING_CARRIES = {
    WindowFunction.COUNT_STAR: _Carry.COUNT,
    WindowFunction.COUNT: _Carry.COUNT,
    WindowFunction.SUM: _Carry.SUM,
    WindowFunction.AVG: _Carry.AVG,
    WindowFunction.MIN: _Carry.MIN,
    WindowFunction.MAX: _Carry.MAX,
    WindowFunction.FIRST_VALUE: _Carry.FIRST,
    WindowFunction.LAST_VALUE: _Carry.NONE,
}


@dataclass(frozen=True)
class _PieceNeeds:
    """How the calls of a window can be computed over a partition in pieces: each piece
    with ``before`` rows of context ahead of it and ``after`` behind it, cut only where a
    peer group starts when ``peers``, with a carry per call."""

    before: int
    after: int
    peers: bool
    carries: tuple[_Carry, ...]

    @classmethod
    def of(cls, calls: tuple[WindowCall, ...], ordered: bool) -> _PieceNeeds | None:
        """None when some call needs its whole partition at once."""
        before = after = 0
        peers = False
        carries = []
        for call in calls:
            carry = _Carry.NONE
            fn = call.fn
            if fn in _RANKING:
                peers |= fn in _PEER_RANKING
            elif fn in (WindowFunction.LAG, WindowFunction.LEAD):
                if call.ignore_nulls:
                    return None  # the offset-th non-NULL row may be any distance away
                before, after = max(before, abs(call.offset)), max(after, abs(call.offset))
            elif not call.over_frame and fn in _WHOLE_PARTITION_FORMS:
                return None
            else:
                frame = call.frame
                if frame.end.kind == BoundKind.UNBOUNDED_FOLLOWING:
                    return None
                if frame.unit in (FrameUnit.RANGE, FrameUnit.GROUPS):
                    # Offsets in values or peer groups reach an unknown number of rows.
                    if _has_offset(frame.start, frame.end):
                        return None
                    peers = True
                for bound in (frame.start, frame.end):
                    if bound.kind == BoundKind.PRECEDING:
                        before = max(before, int(bound.offset))
                    elif bound.kind == BoundKind.FOLLOWING:
                        after = max(after, int(bound.offset))
                if frame.start.kind == BoundKind.UNBOUNDED_PRECEDING:
                    if frame.exclude != FrameExclude.NO_OTHERS:
                        return None  # the row before an excluded one may be a piece back
                    found = _RUNNING_CARRIES.get(fn)
                    if (
                        found is None
                        or call.distinct
                        or call.over_frame
                        or call.within
                        or call.ignore_nulls
                    ):
                        return None
                    carry = found
            carries.append(carry)
        if peers and not ordered:
            return None  # without ORDER BY the whole partition is one peer group
        return cls(before, after, peers, tuple(carries))


class _WindowRun:
    """One task's window: its input arrives sorted by (PARTITION BY, ORDER BY), so each
    window partition is computed as soon as the next one starts.

    Complete partitions are gathered up to ``batch_rows`` rows and computed together;
    only those and the partition still arriving are held (reserved at twice their bytes:
    computing concatenates them). A partition that outgrows the budget is spilled to one
    IPC file as it arrives and, once complete, computed in pieces of about
    ``batch_rows`` rows read back from it (``_PieceNeeds``: each piece with the context
    rows its frames and offsets reach, carries for frames from the partition's start).
    Calls that need a partition at once (frames to its end, RANGE offsets, the
    whole-partition forms of mode / quantiles / lists, running frames of the other
    aggregates, ORDER BY inside one) cannot be split: such a partition is admitted while
    it stays within half the operator-state share of the budget (``_own_share``; other
    operators may hold the pool past it) and past that raises ``ResourceExhaustedError``.
    """

    def __init__(self, op: WindowExec, ctx: TaskContext):
        self.op = op
        self.ctx = ctx
        self.res = ctx.reserve(op)
        self.metrics = ctx.operator_metrics(op)
        self.schema = op.input.schema
        self.keys = list(op.partition_by)
        self.order = [k.column for k in op.order_by]
        self.needs = _PieceNeeds.of(tuple(c for _, c in op.calls), bool(self.order))
        self.chunk_rows = max(ctx.settings.batch_rows, 1)
        self.done: list[pa.RecordBatch] = []
        self.done_rows = 0
        self.done_bytes = 0
        self.current: list[pa.RecordBatch] = []
        self.current_rows = 0
        self.current_bytes = 0
        self.file: SpillFile | None = None
        self.last: pa.Table | None = None  # the last row's partition keys

    # --- input

    def add(self, batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        starts = self._partition_starts(batch)
        if not len(starts):
            yield from self._extend(batch)
            return
        first, last = int(starts[0]), int(starts[-1])
        if first > 0:
            yield from self._extend(batch.slice(0, first))
        yield from self._end_partition()
        if last > first:
            yield from self._complete(batch.slice(first, last - first))
        yield from self._extend(batch.slice(last))
        if self.done_rows >= self.chunk_rows:
            yield from self._flush_done()

    def finish(self) -> Iterator[pa.RecordBatch]:
        yield from self._end_partition()
        yield from self._flush_done()

    def close(self) -> None:
        if self.file is not None:
            self.file.delete()
            self.file = None
        self.res.free()

    def _partition_starts(self, batch: pa.RecordBatch) -> Ints:
        """Rows of ``batch`` where a window partition starts (row 0 when it does not
        continue the last one)."""
        if not self.keys:
            return np.empty(0, dtype=np.int64)
        keys = _decoded(pa.Table.from_batches([batch]).select(self.keys))
        flags = peer_changes(keys, self.keys)
        if self.last is not None:
            pair = pa.concat_tables([self.last, keys.slice(0, 1)])
            flags[0] = bool(peer_changes(pair, self.keys)[1])
        self.last = keys.slice(batch.num_rows - 1, 1).combine_chunks()
        return np.flatnonzero(flags).astype(np.int64)

    def _held(self, rows: int) -> None:
        held = self.done_rows + self.current_rows + rows
        self.metrics.peak_state_rows = max(self.metrics.peak_state_rows, held)

    def _extend(self, rows: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        """Rows of the partition still arriving."""
        if not rows.num_rows:
            return
        if self.file is not None:
            self.file.write(rows)
            return
        need = 2 * rows.nbytes
        if not self.res.try_grow(need):
            yield from self._flush_done()
            if not self.res.try_grow(need):
                if self.current and self.needs is not None:
                    self._spill_current()
                    assert self.file is not None
                    self.file.write(rows)
                    return
                if self.current and self.res.size + need > self._own_share():
                    self.res.grow(need)  # raises: the partition is needed at once
                # One batch (the least that makes progress), or a partition within this
                # operator's share while others hold the pool past the budget.
                self.res.force_grow(need)
        self._held(rows.num_rows)
        self.current.append(rows)
        self.current_rows += rows.num_rows
        self.current_bytes += need

    def _own_share(self) -> int:
        """What a partition that must be held at once may reserve when the rest of the
        pool is taken: half of the operator-state share of the budget."""
        return int(self.res.pool.limit * STATE_SHARE) // 2

    def _complete(self, rows: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        """Whole partitions."""
        need = 2 * rows.nbytes
        if not self.res.try_grow(need):
            yield from self._flush_done()
            self.res.force_grow(need)  # at most one batch
        self._held(rows.num_rows)
        self.done.append(rows)
        self.done_rows += rows.num_rows
        self.done_bytes += need

    def _end_partition(self) -> Iterator[pa.RecordBatch]:
        if self.file is not None:
            yield from self._flush_done()  # the partitions before it come first
            file, self.file = self.file, None
            try:
                yield from self._spilled_partition(file)
            finally:
                file.delete()
        elif self.current:
            self.done.extend(self.current)
            self.done_rows += self.current_rows
            self.done_bytes += self.current_bytes
            self.current, self.current_rows, self.current_bytes = [], 0, 0

    def _spill_current(self) -> None:
        self.file = self.ctx.spill.new_file(self.schema, self.metrics)
        self.metrics.spill_passes = 1
        for batch in self.current:
            self.file.write(batch)
        self.res.shrink(self.current_bytes)
        self.current, self.current_rows, self.current_bytes = [], 0, 0
        release_unused()

    # --- computing

    def _flush_done(self) -> Iterator[pa.RecordBatch]:
        if not self.done:
            return
        table = pa.Table.from_batches(self.done, self.schema).combine_chunks()
        self.done = []
        bounds = _Boundaries.of(table, self.op.partition_by, self.order)
        columns = list(table.columns)
        extra = 0
        for _, call in self.op.calls:
            self.ctx.check_cancelled()
            column = _evaluate(call, table, bounds, self.op.order_by)
            # The columns of rows already admitted, freed once passed on.
            self.res.force_grow(column.nbytes)
            extra += column.nbytes
            columns.append(column)
        out = pa.Table.from_arrays(columns, schema=self.op.schema)
        del table, columns
        self.res.shrink(self.done_bytes)
        self.done_rows = self.done_bytes = 0
        yield from out.to_batches(max_chunksize=self.chunk_rows)
        self.res.shrink(extra)

    def _spilled_partition(self, file: SpillFile) -> Iterator[pa.RecordBatch]:
        needs = self.needs
        assert needs is not None
        pieces = _Pieces(self.op, needs, file.rows)
        held: list[pa.RecordBatch] = []
        reserved: list[int] = []
        try:
            # What one piece needs at least: admitted past the budget if need be (the
            # operators around hold their batches too); more is a peer group or a
            # frame's context that outgrew the budget.
            least = 2 * self.chunk_rows + min(needs.before + needs.after, self.chunk_rows)
            rows = 0
            for batch in file.read():
                need = 2 * batch.nbytes
                rows += batch.num_rows
                if not self.res.try_grow(need):
                    if rows > least:
                        self.res.grow(need)  # raises
                    self.res.force_grow(need)
                held.append(batch)
                reserved.append(need)
                self.metrics.peak_state_rows = max(self.metrics.peak_state_rows, rows)
                yield from self._pieces(pieces, held, reserved, final=False)
                rows = sum(b.num_rows for b in held)
            yield from self._pieces(pieces, held, reserved, final=True)
        finally:
            self.res.shrink(sum(reserved))

    def _pieces(
        self, pieces: _Pieces, held: list[pa.RecordBatch], reserved: list[int], final: bool
    ) -> Iterator[pa.RecordBatch]:
        """Compute every piece the held rows allow; drop the rows no later piece reads."""
        while held:
            table = pa.Table.from_batches(held, self.schema)
            cut = pieces.cut(table, final, self.chunk_rows)
            if cut is None:
                return
            self.ctx.check_cancelled()
            out = pieces.compute(table, cut)
            self.res.force_grow(out.nbytes)  # one piece's columns, freed once passed on
            try:
                yield from out.to_batches(max_chunksize=self.chunk_rows)
            finally:
                self.res.shrink(out.nbytes)
            drop = pieces.advance(table, cut)
            while held and drop >= held[0].num_rows:
                drop -= held[0].num_rows
                held.pop(0)
                self.res.shrink(reserved.pop(0))
            if held and drop:
                held[0] = held[0].slice(drop)
            if pieces.pos == pieces.n:
                return


def _decoded(table: pa.Table) -> pa.Table:
    columns = [
        c.dictionary_decode() if pa.types.is_dictionary(c.type) else c
        for c in (table.column(i).combine_chunks() for i in range(table.num_columns))
    ]
    return pa.Table.from_arrays(columns, names=table.column_names)


class _Pieces:
    """One spilled window partition of ``n`` rows, computed piece by piece.

    ``pos`` is the first row not yet computed and ``h0`` the first row held: ``before``
    rows ahead of ``pos`` (or from row 0). ``carry`` holds, per call, the aggregate of
    rows ``[0, h0)`` for frames that start at the partition's first row; ``peer_groups``
    counts the peer groups before ``pos`` (dense_rank).
    """

    def __init__(self, op: WindowExec, needs: _PieceNeeds, n: int):
        self.op = op
        self.needs = needs
        self.n = n
        self.pos = 0
        self.h0 = 0
        self.order = [k.column for k in op.order_by]
        self.peer_groups = 0
        self.carry: list[Any] = [None] * len(op.calls)

    def cut(self, table: pa.Table, final: bool, rows: int) -> int | None:
        """The end of the next piece, or None until more rows are held."""
        h1 = self.h0 + table.num_rows
        if final:
            return self.n if self.pos < self.n else None
        end = h1 - self.needs.after
        if end - self.pos < rows:
            return None
        if not self.needs.peers:
            return end
        # Only where a peer group starts: a cut inside one would split its frames.
        last = min(end, h1 - 1)
        flags = peer_changes(_decoded(table.select(self.order)), self.order)
        starts = np.flatnonzero(flags[self.pos - self.h0 + 1 : last - self.h0 + 1])
        if not len(starts):
            return None
        return self.pos + 1 + int(starts[-1])

    def compute(self, table: pa.Table, cut: int) -> pa.Table:
        """Rows ``[pos, cut)`` with their window columns."""
        t0 = self.h0
        t1 = min(t0 + table.num_rows, cut + self.needs.after)
        part = table.slice(0, t1 - t0).combine_chunks()
        local = _Boundaries.of(part, (), self.order)
        a, b = self.pos - t0, cut - t0
        columns = [part.column(i).slice(a, b - a) for i in range(part.num_columns)]
        for i, (_, call) in enumerate(self.op.calls):
            column = self._call(i, call, part, local, t0, a, b)
            columns.append(column.slice(a, b - a))
        return pa.Table.from_arrays(columns, schema=self.op.schema)

    def _call(
        self, i: int, call: WindowCall, part: pa.Table, local: _Boundaries, t0: int, a: int, b: int
    ) -> pa.Array:
        fn = call.fn
        if fn == WindowFunction.DENSE_RANK:
            dense = local.peer_id - local.peer_id[a] + self.peer_groups + 1
            return pa.array(dense, pa.int64())
        if fn in _RANKING:
            shifted = _Boundaries(
                local.n,
                local.index + t0,
                np.zeros(local.n, dtype=np.int64),
                np.zeros(local.n, dtype=np.int64),
                np.full(local.n, self.n, dtype=np.int64),
                local.peer_id,
                local.peer_start + t0,
                local.peer_end + t0,
            )
            return _evaluate(call, part, shifted, self.op.order_by)
        carry = self.needs.carries[i]
        if carry == _Carry.AVG and t0 > 0:
            # The piece's own sums and counts, added to those of the rows before it.
            sums = _evaluate(
                replace(call, fn=WindowFunction.SUM, type=pa.float64()),
                part,
                local,
                self.op.order_by,
            )
            counts = _evaluate(
                replace(call, fn=WindowFunction.COUNT, type=pa.int64()),
                part,
                local,
                self.op.order_by,
            )
            total, count = self.carry[i] or (0.0, 0)
            s = np.asarray(sums.fill_null(0.0).to_numpy(zero_copy_only=False), dtype=np.float64)
            c = np.asarray(counts.to_numpy(zero_copy_only=False), dtype=np.int64) + count
            return pa.array((s + total) / np.maximum(c, 1), pa.float64(), mask=c == 0)
        column = _evaluate(call, part, local, self.op.order_by)
        value = self.carry[i]
        if carry == _Carry.NONE or t0 == 0:
            return column
        if carry == _Carry.COUNT:
            return pc.add(column, pa.scalar(int(value or 0), pa.int64()))
        if carry == _Carry.FIRST:
            return pa.repeat(value, len(column)).cast(call.type)
        if value is None or not value.is_valid:
            return column
        value = value.cast(call.type)
        if carry == _Carry.SUM:
            return pc.if_else(column.is_valid(), _plus(column, value), value).cast(call.type)
        if carry == _Carry.MIN:
            return pc.min_element_wise(column, value, skip_nulls=True).cast(call.type)
        return pc.max_element_wise(column, value, skip_nulls=True).cast(call.type)

    def advance(self, table: pa.Table, cut: int) -> int:
        """Move past ``[pos, cut)``; the number of held rows no later piece reads (their
        aggregates folded into the carries)."""
        if self.needs.peers and cut > self.pos:
            local = _Boundaries.of(
                table.slice(self.pos - self.h0, cut - self.pos).combine_chunks(), (), self.order
            )
            self.peer_groups += int(local.peer_id[-1]) + 1
        self.pos = cut
        h0 = max(self.h0, cut - self.needs.before)
        drop = h0 - self.h0
        if drop:
            gone = table.slice(0, drop)
            for i, (_, call) in enumerate(self.op.calls):
                kind = self.needs.carries[i]
                if kind != _Carry.NONE:
                    self.carry[i] = _fold(kind, self.carry[i], gone, call, self.h0 == 0)
        self.h0 = h0
        return drop


def _plus(column: pa.Array, value: pa.Scalar) -> pa.Array:
    """``column + value`` in ``column``'s type (decimals exact: Arrow's own decimal
    addition widens the precision, past 38 digits for a SUM's DECIMAL(38, s))."""
    t = column.type
    if pa.types.is_decimal(t):
        step = int(Decimal(value.as_py()).scaleb(t.scale))
        unscaled = unscaled_int64(column) if len(column) else None
        if unscaled is not None:
            valid = valid_mask(column)
            unscaled = np.where(valid, unscaled, 0)
            if int(np.abs(unscaled).max()) + abs(step) < 2**62:
                return decimal128_from_unscaled(unscaled + step, t.scale, valid).cast(t)
        plus = value.as_py()
        return pa.array([None if v is None else v + plus for v in column.to_pylist()], t)
    return pc.add(column, value.cast(t))


def _fold(kind: _Carry, carry: Any, rows: pa.Table, call: WindowCall, first: bool) -> Any:
    """``carry`` (the aggregate of earlier rows) with ``rows`` added."""
    arg = None if call.arg is None else _column(rows, call.arg)
    if kind == _Carry.COUNT:
        counted = rows.num_rows if arg is None else len(arg) - arg.null_count
        return int(carry or 0) + counted
    assert arg is not None
    if kind == _Carry.FIRST:
        return arg[0] if first else carry
    if kind == _Carry.AVG:
        total, count = carry or (0.0, 0)
        floats = pc.cast(arg, pa.float64())
        added = pc.sum(floats).as_py() if len(arg) > arg.null_count else 0.0
        return (total + added, count + len(arg) - arg.null_count)
    if kind == _Carry.SUM:
        added = pc.sum(arg)
        if carry is None or not carry.is_valid:
            return added
        if not added.is_valid:
            return carry
        return _plus(pa.array([carry.as_py()], call.type), added.cast(call.type))[0]
    reduce = pc.min if kind == _Carry.MIN else pc.max
    found = reduce(arg)
    if carry is None or not carry.is_valid:
        return found
    if not found.is_valid:
        return carry
    pick = pc.min_element_wise if kind == _Carry.MIN else pc.max_element_wise
    return pick(carry.cast(call.type), found.cast(call.type))


# ------------------------------------------------------------------ boundaries


def peer_changes(table: pa.Table, columns: list[str], nan_equal: bool = False) -> Bools:
    """True at row i when some column differs from row i-1 (NULL equals NULL, and NaN
    equals NaN when ``nan_equal``); row 0 True."""
    n = table.num_rows
    flags = np.zeros(n, dtype=bool)
    if n:
        flags[0] = True
    if n < 2:
        return flags
    for name in columns:
        col = table.column(name).combine_chunks()
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        a, b = col.slice(1), col.slice(0, n - 1)
        ne = pc.fill_null(pc.not_equal(a, b), False)
        if col.null_count:
            ne = pc.or_(ne, pc.xor(a.is_null(), b.is_null()))
        if nan_equal and pa.types.is_floating(col.type):
            both_nan = pc.fill_null(pc.and_(pc.is_nan(a), pc.is_nan(b)), False)
            ne = pc.and_(ne, pc.invert(both_nan))
        flags[1:] |= np.asarray(ne.to_numpy(zero_copy_only=False), dtype=bool)
    return flags


@dataclass
class _Boundaries:
    """Per row: its partition's [start, end) and its peer group's [start, end)."""

    n: int
    index: Ints
    part_id: Ints
    part_start: Ints
    part_end: Ints
    peer_id: Ints
    peer_start: Ints
    peer_end: Ints

    @classmethod
    def of(cls, table: pa.Table, partition: tuple[str, ...], order: list[str]) -> _Boundaries:
        n = table.num_rows
        part_flags = peer_changes(table, list(partition))
        peer_flags = part_flags | peer_changes(table, order)
        part_id, part_start, part_end = _segments(part_flags, n)
        peer_id, peer_start, peer_end = _segments(peer_flags, n)
        index = np.arange(n, dtype=np.int64)
        return cls(n, index, part_id, part_start, part_end, peer_id, peer_start, peer_end)

    @property
    def size(self) -> Ints:
        return self.part_end - self.part_start


def _segments(flags: Bools, n: int) -> tuple[Ints, Ints, Ints]:
    seg_id = np.cumsum(flags, dtype=np.int64) - 1
    starts = np.flatnonzero(flags).astype(np.int64)
    ends = np.append(starts[1:], n).astype(np.int64)
    return seg_id, starts[seg_id], ends[seg_id]


# ------------------------------------------------------------------ evaluation


def _evaluate(
    call: WindowCall, table: pa.Table, b: _Boundaries, order: tuple[SortSpec, ...]
) -> pa.Array:
    fn = call.fn
    if fn == WindowFunction.ROW_NUMBER:
        return pa.array(b.index - b.part_start + 1, pa.int64())
    if fn == WindowFunction.RANK:
        return pa.array(b.peer_start - b.part_start + 1, pa.int64())
    if fn == WindowFunction.DENSE_RANK:
        return pa.array(b.peer_id - b.peer_id[b.part_start] + 1, pa.int64())
    if fn == WindowFunction.PERCENT_RANK:
        size = b.size
        rank = (b.peer_start - b.part_start).astype(np.float64)
        out = np.where(size > 1, rank / np.maximum(size - 1, 1), 0.0)
        return pa.array(out, pa.float64())
    if fn == WindowFunction.CUME_DIST:
        return pa.array((b.peer_end - b.part_start) / b.size, pa.float64())
    if fn == WindowFunction.NTILE:
        return pa.array(_ntile(b, call.offset), pa.int64())
    arg = _argument(call, table)
    if fn in (WindowFunction.LAG, WindowFunction.LEAD):
        return _lag_lead(call, arg, table, b)
    fs, fe = _frame(call, table, b, order)
    if call.frame.exclude != FrameExclude.NO_OTHERS:
        return _excluding(call, arg, table, b, fs, fe)
    part = (b.part_id, b.part_start, b.part_end)
    if call.over_frame or call.within or fn in _BY_FUNCTIONS:
        assert arg is not None
        by = _column(table, call.by) if call.by is not None else None
        within = _within_codes(call, table) if call.within else None
        return frame_aggregate.evaluate(call, arg, by, fs, fe, part, within, _keep(call, table))
    if call.distinct and fn in (WindowFunction.COUNT, WindowFunction.SUM, WindowFunction.AVG):
        assert arg is not None
        # Frames that all start at the partition's first row (or all end at its last)
        # hold a value when they hold its first (last) occurrence: the plain kernels
        # over those occurrences alone answer DISTINCT.
        if np.array_equal(fs, b.part_start):
            arg = frame_aggregate.nulled(
                arg, frame_aggregate.occurrences(arg, b.part_id, False, False)
            )
        elif np.array_equal(fe, b.part_end):
            arg = frame_aggregate.nulled(
                arg, frame_aggregate.occurrences(arg, b.part_id, True, False)
            )
        else:
            return frame_aggregate.evaluate(call, arg, None, fs, fe, part)
    if call.ignore_nulls:
        return _value_ignoring_nulls(call, arg, fs, fe)
    if fn == WindowFunction.FIRST_VALUE:
        return _take(arg, fs, fs < fe)
    if fn == WindowFunction.LAST_VALUE:
        return _take(arg, fe - 1, fs < fe)
    if fn == WindowFunction.NTH_VALUE:
        pos = fs + call.offset - 1
        return _take(arg, pos, pos < fe)
    if fn == WindowFunction.COUNT_STAR:
        return pa.array(fe - fs, pa.int64())
    if fn in (WindowFunction.QUANTILE_CONT, WindowFunction.QUANTILE_DISC):
        return _quantile(call, arg, b)
    if fn == WindowFunction.STRING_AGG:
        return _string_agg(call, arg, b)
    if fn == WindowFunction.MODE:
        return _mode(arg, b)
    if fn == WindowFunction.ARRAY_AGG:
        return _array_agg(call, arg, b)
    assert arg is not None
    return _plain_aggregate(call, arg, ((fs, fe),), b)


def _plain_aggregate(
    call: WindowCall, arg: pa.Array | None, spans: Spans, b: _Boundaries
) -> pa.Array:
    """count / sum / avg / min / max over each row's frame, the row ranges ``spans``."""
    fn = call.fn
    assert arg is not None
    valid = np.asarray(arg.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    counts = _frame_total(valid.astype(np.int64), spans)
    if fn == WindowFunction.COUNT:
        return pa.array(counts, pa.int64())
    if fn in (WindowFunction.SUM, WindowFunction.AVG):
        return _sum_avg(call, arg, valid, counts, spans)
    if fn in (WindowFunction.MIN, WindowFunction.MAX):
        return _min_max(call, arg, valid, counts, spans, b)
    raise ExecutionError(f"window function {fn.value} has no kernel")


def _exclusion(call: WindowCall, b: _Boundaries, fs: Ints, fe: Ints) -> Spans:
    """A frame ``[fs, fe)`` less its EXCLUDE clause's rows, as row ranges in row order:
    the rows before the excluded ones, the current row (EXCLUDE TIES keeps it), the rows
    after them. Empty ranges are ``[x, x)``."""
    exclude = call.frame.exclude
    if exclude == FrameExclude.CURRENT_ROW:
        xs, xe = b.index, b.index + 1
    else:
        xs, xe = b.peer_start, b.peer_end
    cut_start = np.clip(xs, fs, fe)
    cut_end = np.clip(xe, fs, fe)
    inside = (b.index >= fs) & (b.index < fe) & (exclude == FrameExclude.TIES)
    current = (b.index, np.where(inside, b.index + 1, b.index))
    return ((fs, cut_start), current, (cut_end, fe))


def _excluding(
    call: WindowCall, arg: pa.Array | None, table: pa.Table, b: _Boundaries, fs: Ints, fe: Ints
) -> pa.Array:
    """A frame function over frames with an EXCLUDE clause (the binder admits count /
    sum / avg / min / max, first / last / nth_value and the aggregates of
    ``frame_aggregate.evaluate_spans``)."""
    spans = _exclusion(call, b, fs, fe)
    fn = call.fn
    if call.over_frame or call.distinct:
        assert arg is not None
        within = _within_codes(call, table) if call.within else None
        return frame_aggregate.evaluate_spans(call, arg, spans, within, _keep(call, table))
    if fn == WindowFunction.COUNT_STAR:
        count = np.zeros(b.n, dtype=np.int64)
        for s, e in spans:
            count = count + (e - s)
        return pa.array(count, pa.int64())
    if fn not in (WindowFunction.FIRST_VALUE, WindowFunction.LAST_VALUE, WindowFunction.NTH_VALUE):
        return _plain_aggregate(call, arg, spans, b)
    assert arg is not None
    # The k-th row (0-based) of the spans taken in order; with IGNORE NULLS the k-th
    # non-NULL one.
    nn = _NonNull(arg) if call.ignore_nulls else None
    sizes = [(nn.before[e] - nn.before[s]) if nn else (e - s) for s, e in spans]
    total = np.zeros(b.n, dtype=np.int64)
    for size in sizes:
        total = total + size
    if fn == WindowFunction.FIRST_VALUE:
        k = np.zeros(b.n, dtype=np.int64)
    elif fn == WindowFunction.LAST_VALUE:
        k = total - 1
    else:
        k = np.full(b.n, call.offset - 1, dtype=np.int64)
    found = (k >= 0) & (k < total)
    pos = np.zeros(b.n, dtype=np.int64)
    left = k.copy()
    for (s, _), size in zip(spans, sizes, strict=True):
        here = (left >= 0) & (left < size)
        at = nn.at(nn.before[s] + left, here) if nn else s + left
        pos = np.where(here, at, pos)
        left = left - size
    return _take(arg, pos, found)


def _keep(call: WindowCall, table: pa.Table) -> Bools | None:
    """The rows array_agg's FILTER lets in (None: every row)."""
    if call.keep is None:
        return None
    col = _column(table, call.keep).fill_null(False)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=bool)


def _within_codes(call: WindowCall, table: pa.Table) -> Ints:
    """Per row, its place under the aggregate's own ORDER BY: equal keys equal codes,
    smaller codes first (each key's direction and NULL placement applied)."""
    n = table.num_rows
    ranks = []
    for key in call.within:
        col = _column(table, key.expr)
        direction = "ascending" if key.ascending else "descending"
        # NULLs rank after every value (Arrow's default); NULLS FIRST moves them to 0.
        rank = np.asarray(pc.rank(col, sort_keys=direction, tiebreaker="dense"), dtype=np.int64)
        if key.nulls_first and col.null_count:
            rank = np.where(valid_mask(col), rank, 0)
        ranks.append(rank)
    if len(ranks) == 1:
        return ranks[0]
    order = np.lexsort(ranks[::-1])
    new = np.zeros(n, dtype=bool)
    if n:
        new[0] = True
    for r in ranks:
        new[1:] |= r[order][1:] != r[order][:-1]
    codes = np.empty(n, dtype=np.int64)
    codes[order] = np.cumsum(new) - 1
    return codes


def _argument(call: WindowCall, table: pa.Table) -> pa.Array | None:
    return None if call.arg is None else _column(table, call.arg)


def _column(table: pa.Table, ref: Any) -> pa.Array:
    assert isinstance(ref, ColumnRef), "the binder projects window arguments to columns"
    col = table.column(ref.name).combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    return col


def _ntile(b: _Boundaries, buckets: int) -> Ints:
    # The first (size % buckets) buckets hold one row more than the others.
    r = b.index - b.part_start
    size = b.size
    q = size // buckets
    rem = size % buckets
    big = rem * (q + 1)
    small = rem + (r - big) // np.maximum(q, 1)
    return np.where(r < big, r // (q + 1), small) + 1


def _value_ignoring_nulls(call: WindowCall, arg: pa.Array | None, fs: Ints, fe: Ints) -> pa.Array:
    """first_value / last_value / nth_value IGNORE NULLS: the frame's first, last or
    n-th non-NULL value (NULL when it has too few)."""
    assert arg is not None
    nn = _NonNull(arg)
    lo, hi = nn.before[fs], nn.before[fe]  # the frame's non-NULL values are [lo, hi)
    if call.fn == WindowFunction.FIRST_VALUE:
        k = lo
    elif call.fn == WindowFunction.LAST_VALUE:
        k = hi - 1
    else:
        k = lo + call.offset - 1
    found = (k >= lo) & (k < hi)
    return _take(arg, nn.at(k, found), found)


def _take(arg: pa.Array | None, positions: Ints, valid: Bools) -> pa.Array:
    assert arg is not None
    indices = pa.array(np.where(valid, positions, 0), pa.int64(), mask=~valid)
    return arg.take(indices)


class _NonNull:
    """The non-NULL rows of a column, for IGNORE NULLS: ``rows`` lists them in order and
    ``before[i]`` counts those before row ``i`` (so ``rows[before[i]]`` is the first at
    or after ``i``)."""

    def __init__(self, arg: pa.Array):
        valid = valid_mask(arg)
        self.rows = np.flatnonzero(valid).astype(np.int64)
        self.before = np.concatenate([[0], np.cumsum(valid, dtype=np.int64)])

    def at(self, k: Ints, found: Bools) -> Ints:
        """The row of the ``k``-th non-NULL value where ``found`` (0 elsewhere)."""
        if not len(self.rows):
            return np.zeros(len(k), dtype=np.int64)
        return self.rows[np.clip(np.where(found, k, 0), 0, len(self.rows) - 1)]


def _lag_lead(call: WindowCall, arg: pa.Array | None, table: pa.Table, b: _Boundaries) -> pa.Array:
    assert arg is not None
    if call.ignore_nulls and call.offset > 0:
        # The offset-th non-NULL value before (after) the row, within its partition.
        nn = _NonNull(arg)
        if call.fn == WindowFunction.LAG:
            k = nn.before[b.index] - call.offset
            valid = k >= nn.before[b.part_start]
        else:
            k = nn.before[b.index + 1] + call.offset - 1
            valid = k < nn.before[b.part_end]
        pos = nn.at(k, valid)
    else:
        shift = -call.offset if call.fn == WindowFunction.LAG else call.offset
        pos = b.index + shift
        valid = (pos >= b.part_start) & (pos < b.part_end)
    out = _take(arg, pos, valid)
    default = call.default
    if default is None or valid.all():
        return out
    if isinstance(default, Literal):
        if default.value is None:
            return out
        fill_values = pa.repeat(pa.scalar(default.value, call.type), b.n)
    else:
        assert isinstance(default, ColumnRef)
        fill_values = table.column(default.name).combine_chunks()
    fill = pa.array(~valid)
    return pc.if_else(fill, fill_values, out)


# ------------------------------------------------------------------ frames


def _frame(
    call: WindowCall, table: pa.Table, b: _Boundaries, order: tuple[SortSpec, ...]
) -> tuple[Ints, Ints]:
    """Each row's frame as [start, end) row positions, clipped to its partition."""
    frame = call.frame
    if frame.unit == FrameUnit.ROWS:
        fs = _rows_bound(frame.start, b, True)
        fe = _rows_bound(frame.end, b, False)
    elif frame.unit == FrameUnit.GROUPS:
        fs = _groups_bound(frame.start, b, True)
        fe = _groups_bound(frame.end, b, False)
    else:
        search = _RangeSearch.of(table, b, order) if _has_offset(frame.start, frame.end) else None
        fs = _range_bound(frame.start, b, search, True)
        fe = _range_bound(frame.end, b, search, False)
    fs = np.clip(fs, b.part_start, b.part_end)
    fe = np.clip(fe, b.part_start, b.part_end)
    return fs, np.maximum(fe, fs)


def _has_offset(*bounds: FrameBound) -> bool:
    return any(x.kind in (BoundKind.PRECEDING, BoundKind.FOLLOWING) for x in bounds)


def _rows_bound(bound: FrameBound, b: _Boundaries, start: bool) -> Ints:
    # Frame starts are inclusive, ends exclusive (hence the +1 on end bounds).
    extra = 0 if start else 1
    if bound.kind == BoundKind.UNBOUNDED_PRECEDING:
        return b.part_start
    if bound.kind == BoundKind.UNBOUNDED_FOLLOWING:
        return b.part_end
    if bound.kind == BoundKind.CURRENT_ROW:
        return b.index + extra
    offset = int(bound.offset)
    if bound.kind == BoundKind.PRECEDING:
        return b.index - offset + extra
    return b.index + offset + extra


def _groups_bound(bound: FrameBound, b: _Boundaries, start: bool) -> Ints:
    """A GROUPS bound: n PRECEDING / FOLLOWING count peer groups of the partition
    (the whole partition is one group without ORDER BY). A start past the partition's
    last group, or an end before its first, leaves the frame empty."""
    if bound.kind == BoundKind.UNBOUNDED_PRECEDING:
        return b.part_start
    if bound.kind == BoundKind.UNBOUNDED_FOLLOWING:
        return b.part_end
    if bound.kind == BoundKind.CURRENT_ROW:
        return b.peer_start if start else b.peer_end
    if not b.n:
        return b.index
    # Peer groups are numbered across partitions (a group never spans two): each
    # group's rows, and the first and last group of each row's partition.
    firsts = b.index[b.index == b.peer_start]
    group_start = firsts
    group_end = np.append(firsts[1:], b.n)
    first_group = b.peer_id[b.part_start]
    last_group = b.peer_id[b.part_end - 1]
    step = int(bound.offset) * (-1 if bound.kind == BoundKind.PRECEDING else 1)
    target = b.peer_id + step
    if start:
        # Frame starts are inclusive: the target group's first row.
        out = group_start[np.clip(target, first_group, last_group)]
        return np.where(target > last_group, b.part_end, out)
    # Frame ends are exclusive: past the target group's last row.
    out = group_end[np.clip(target, first_group, last_group)]
    return np.where(target < first_group, b.part_start, out)


def _range_bound(
    bound: FrameBound, b: _Boundaries, search: _RangeSearch | None, start: bool
) -> Ints:
    if bound.kind == BoundKind.UNBOUNDED_PRECEDING:
        return b.part_start
    if bound.kind == BoundKind.UNBOUNDED_FOLLOWING:
        return b.part_end
    if bound.kind == BoundKind.CURRENT_ROW:
        return b.peer_start if start else b.peer_end
    assert search is not None
    delta = -1 if bound.kind == BoundKind.PRECEDING else 1
    return search.find(bound.offset, delta, start, b)


@dataclass
class _RangeSearch:
    """RANGE offsets over one numeric / date ORDER BY key, for all rows at once.

    Within a partition the key runs ascending after flipping a DESC key's sign; each
    row's key is given a code (its rank among the distinct keys), and the sorted rows
    get a composite code ``partition * M + code`` (NULL keys below or above every
    value, as the sort placed them). A frame bound is then one ``searchsorted`` of
    ``partition * M + code(key ± offset)`` over those composite codes.
    """

    values: npt.NDArray[Any]
    valid: Bools
    distinct: npt.NDArray[Any]
    composite: Ints
    width: int
    scale: int

    @classmethod
    def of(cls, table: pa.Table, b: _Boundaries, order: tuple[SortSpec, ...]) -> _RangeSearch:
        key = order[0]
        col = table.column(key.column).combine_chunks()
        valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        scale = 0
        values: npt.NDArray[Any]
        if pa.types.is_decimal(col.type):
            unscaled = unscaled_int64(col)
            if unscaled is None:
                values = np.asarray(pc.cast(col, pa.float64()).fill_null(0).to_numpy())
            else:
                values, scale = unscaled, col.type.scale
        elif integer_like(col.type):
            values = as_int64(col)
        else:
            values = np.asarray(pc.cast(col, pa.float64()).fill_null(0).to_numpy())
        if not key.ascending:
            values = -values
        distinct = np.unique(values[valid])
        width = len(distinct) + 2
        code = np.searchsorted(distinct, values) + 1
        null_code = 0 if key.nulls_first else width - 1
        code = np.where(valid, code, null_code)
        composite = b.part_id * width + code
        return cls(values, valid, distinct, composite, width, scale)

    def find(self, offset: Any, delta: int, start: bool, b: _Boundaries) -> Ints:
        step = Decimal(offset) * (10**self.scale)
        amount: Any = int(step) if step == step.to_integral_value() else float(step)
        if self.values.dtype.kind == "f":
            amount = float(amount)
        target = self.values + delta * amount
        # Starts: the first row whose key >= target; ends: the first whose key > target.
        if start:
            code = np.searchsorted(self.distinct, target, side="left") + 1
        else:
            code = np.searchsorted(self.distinct, target, side="right") + 1
        pos = np.searchsorted(self.composite, b.part_id * self.width + code, side="left")
        # A NULL key's frame is its peer group (the other NULLs).
        return np.where(self.valid, pos, b.peer_start if start else b.peer_end)


# ------------------------------------------------------------------ aggregates


def _quantile(call: WindowCall, arg: pa.Array | None, b: _Boundaries) -> pa.Array:
    """The partition's quantile; its rows are sorted by the argument, NULLs last."""
    assert arg is not None
    valid = np.asarray(arg.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    prefix = np.concatenate([[0], np.cumsum(valid, dtype=np.int64)])
    count = prefix[b.part_end] - prefix[b.part_start]
    return frame_aggregate.quantile_of_sorted(call, arg, b.part_start, count)


def _string_agg(call: WindowCall, arg: pa.Array | None, b: _Boundaries) -> pa.Array:
    """Each partition's non-NULL strings, in row order, joined; NULL when there are none.
    Given on the partition's first row only (NULL on the others), so a group's joined
    text is held once, not once per row."""
    assert arg is not None
    valid = np.asarray(arg.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if call.distinct:
        valid &= frame_aggregate.occurrences(arg, b.part_id, False, False)
    rows = np.flatnonzero(valid)
    parts = int(b.part_id[-1]) + 1 if b.n else 0
    offsets = np.searchsorted(b.part_id[rows], np.arange(parts + 1)).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), arg.take(pa.array(rows)).cast(pa.string()))
    joined = pc.binary_join(lists, call.separator)
    counts = np.diff(offsets)
    joined = pc.if_else(pa.array(counts > 0), joined, pa.scalar(None, pa.string()))
    first = b.index == b.part_start
    return joined.take(pa.array(b.part_id, mask=~first)).cast(call.type)


def _mode(arg: pa.Array | None, b: _Boundaries) -> pa.Array:
    """The partition's most frequent non-NULL value; its rows are sorted by the argument,
    so equal values are one peer group. Ties go to the first (smallest) value."""
    assert arg is not None
    valid = np.asarray(arg.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    size = np.where(valid, b.peer_end - b.peer_start, 0)
    order = np.lexsort((b.index, -size, b.part_id))
    first = np.ones(b.n, dtype=bool)
    first[1:] = b.part_id[order][1:] != b.part_id[order][:-1]
    best = np.empty(int(b.part_id[-1]) + 1 if b.n else 0, dtype=np.int64)
    best[b.part_id[order][first]] = order[first]
    rows = best[b.part_id]
    return _take(arg, rows, size[rows] > 0)


def _array_agg(call: WindowCall, arg: pa.Array | None, b: _Boundaries) -> pa.Array:
    """Each partition's values in row order as a list on its first row (others NULL);
    the lists are views of the argument column (no copy)."""
    assert arg is not None
    first = b.index == b.part_start
    if call.distinct:
        # Each value's first row in its partition, NULL counted as a value (DuckDB).
        rows = np.flatnonzero(frame_aggregate.occurrences(arg, b.part_id, False, True))
        parts = int(b.part_id[-1]) + 1 if b.n else 0
        starts = np.searchsorted(b.part_id[rows], np.arange(parts + 1)).astype(np.int32)
        offsets = np.append(np.where(first, starts[b.part_id], starts[b.part_id + 1]), len(rows))
        arg = arg.take(pa.array(rows, pa.int64()))
    else:
        offsets = np.append(np.where(first, b.part_start, b.part_end), b.n)
    lists = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), arg, mask=pa.array(~first))
    return lists.cast(call.type) if lists.type != call.type else lists


def _frame_total(values: npt.NDArray[Any], spans: Spans) -> npt.NDArray[Any]:
    """Per row, the total of ``values`` over its frame: the row ranges ``spans`` (one,
    or the pieces EXCLUDE leaves)."""
    prefix = np.concatenate([np.zeros(1, dtype=values.dtype), np.cumsum(values)])
    total = prefix[spans[0][1]] - prefix[spans[0][0]]
    for fs, fe in spans[1:]:
        total = total + (prefix[fe] - prefix[fs])
    return total


def _sum_avg(call: WindowCall, arg: pa.Array, valid: Bools, counts: Ints, spans: Spans) -> pa.Array:
    has = counts > 0
    is_avg = call.fn == WindowFunction.AVG
    t = arg.type
    if pa.types.is_decimal(t) or integer_like(t):
        scale = t.scale if pa.types.is_decimal(t) else 0
        ints = unscaled_int64(arg) if pa.types.is_decimal(t) else as_int64(arg)
        if ints is not None:
            ints = np.where(valid, ints, 0)
            # int64 prefix sums are exact while the largest possible one fits.
            peak = int(np.abs(ints).max()) * len(ints) if len(ints) else 0
            if peak < 2**62:
                totals = _frame_total(ints, spans)
                if is_avg:
                    avg = totals / np.maximum(counts, 1) / (10.0**scale)
                    return pa.array(avg, pa.float64(), mask=~has)
                return decimal128_from_unscaled(totals, scale, has).cast(call.type)
        # Wider than int64 can carry: exact Python integers (rare).
        py = [0 if v is None else int(Decimal(v).scaleb(scale)) for v in arg.to_pylist()]
        obj = np.array(py, dtype=object)
        totals_obj = _frame_total(obj, spans)
        if is_avg:
            means = [
                float(Decimal(v).scaleb(-scale)) / c if c else 0.0
                for v, c in zip(totals_obj, counts, strict=True)
            ]
            return pa.array(means, pa.float64(), mask=~has)
        return pa.array(
            [
                Decimal(v).scaleb(-scale) if h else None
                for v, h in zip(totals_obj, has, strict=True)
            ],
            call.type,
        )
    floats = np.asarray(pc.cast(arg, pa.float64()).fill_null(0.0).to_numpy(), dtype=np.float64)
    floats = np.where(valid, floats, 0.0)
    nan = np.isnan(floats)
    pos_inf = np.isposinf(floats)
    neg_inf = np.isneginf(floats)
    finite = np.where(nan | pos_inf | neg_inf, 0.0, floats).astype(np.longdouble)
    totals_f = _frame_total(finite, spans).astype(np.float64)
    n_nan = _frame_total(nan.astype(np.int64), spans)
    n_pos = _frame_total(pos_inf.astype(np.int64), spans)
    n_neg = _frame_total(neg_inf.astype(np.int64), spans)
    totals_f = np.where(n_pos > 0, np.inf, totals_f)
    totals_f = np.where(n_neg > 0, -np.inf, totals_f)
    totals_f = np.where((n_nan > 0) | ((n_pos > 0) & (n_neg > 0)), np.nan, totals_f)
    if is_avg:
        totals_f = totals_f / np.maximum(counts, 1)
    return pa.array(totals_f, pa.float64(), mask=~has)


def _min_max(
    call: WindowCall,
    arg: pa.Array,
    valid: Bools,
    counts: Ints,
    spans: Spans,
    b: _Boundaries,
) -> pa.Array:
    has = counts > 0
    n = len(arg)
    # Dense ranks of the values (1..U); NULLs get a rank no MIN / MAX can pick.
    ranks = np.asarray(
        pc.rank(arg, sort_keys="ascending", tiebreaker="dense"),
        dtype=np.int64,
    )
    is_max = call.fn == WindowFunction.MAX
    blank = 0 if is_max else np.int64(n + 2)
    codes = np.where(valid, ranks, blank)
    part = (b.part_id, b.part_start, b.part_end)
    best = np.full(n, blank, dtype=np.int64)
    reduce = np.maximum if is_max else np.minimum
    for fs, fe in spans:
        # Empty frames (their result is NULL) are given one row so every lookup is in
        # range; an empty span leaves the extreme as it was.
        fs_in = np.minimum(fs, max(n - 1, 0))
        found = frame_aggregate.range_extreme(
            codes, fs_in, np.maximum(fe, fs_in + 1), is_max, *part
        )
        best = np.where(fe > fs, reduce(best, found), best) if len(spans) > 1 else found
    # Back from rank to a row holding that value.
    row_of_rank = np.zeros(n + 3, dtype=np.int64)
    row_of_rank[codes[::-1]] = np.arange(n - 1, -1, -1, dtype=np.int64)
    rows = row_of_rank[np.clip(best, 0, n + 2)]
    return _take(arg, rows, has & valid[rows]).cast(call.type)
