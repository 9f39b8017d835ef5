"""Hash aggregate in three modes: partial, final and single.

    partial:  rows -> per-group states (counts, sums, min/max), per task, before an exchange
    final:    states hash-partitioned on the keys -> merged states -> SQL results
    single:   rows -> results, when the input is already co-located on the keys

Needs: partial / single(co-located) any; final ``HashDistributed(keys)``, or
``SinglePartition`` without keys. Gives: final ``Hash(keys, n)``; partial
``Unknown(n)``. Holds one state row per group (the partial folds its input in
chunks so it holds at most a chunk of raw rows plus the states), reserved from the
query's pool. Spills: past the budget a partial aggregate passes its states on
early; final and single aggregates write their states to hash partitions (grace,
``spill_partitions.py``), keep folding, and at the end merge and finish one
partition at a time, partitioning a partition again (next hash seed) when its
groups still do not fit.

AVG is carried as (sum, count) and divided at the end, so the answer is exact up
to the final division, as DuckDB's is.

Hot keys (``Settings.hot_key_aggregate``): a partial aggregate folds its first chunk
as always, and samples it for heavy hitters (keys holding at least ``HOT_FRACTION``
of the sampled rows). When the other (cold) keys do not shrink (groups / rows at
least ``PASSTHROUGH_RATIO``: grouping them costs more than the final saves), it stops
grouping them: each cold row goes on as a one-row state, while the hot keys (found
in the first chunk, or later in a strided sample of each batch) are still folded
in the task, so no final task receives a hot key's rows raw. Needs no re-planning
and holds only the hot keys' states (a chunk of their rows at most) beside a batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shoal.errors import ResourceExhaustedError
from shoal.expr import floats
from shoal.expr.evaluate import Memo, evaluate_array, evaluate_column
from shoal.expr.nodes import ColumnRef, Expr
from shoal.hashing import hash_columns, partition_ids
from shoal.memory.pool import Reservation, release_unused
from shoal.physical.context import TaskContext
from shoal.physical.operators import hll
from shoal.physical.operators.dense_grouping import dense_group_by
from shoal.physical.operators.spill_partitions import MAX_LEVELS, SpillPartitions, buffer_bytes
from shoal.physical.operators.sum_overflow import narrow_sum, widen_risky_sums
from shoal.physical.partitioning import (
    SINGLE,
    Distribution,
    HashDistributed,
    HashPartitioned,
    Partitioning,
    SinglePartition,
    UnknownPartitioning,
)
from shoal.physical.plan import PhysicalPlan
from shoal.types import is_float, sum_type

PARTIAL, FINAL, SINGLE_MODE = "partial", "final", "single"

# Hot-key mitigation of partial aggregates (see the module docstring). A key is hot
# from this share of the sampled rows up: a key that size already adds half a
# partition's worth to one final task at 100 partitions.
HOT_FRACTION = 0.005
# At most this many hot keys per task (the largest found first): their states are
# held until the task ends, and routing rows to them costs a lookup per row.
MAX_HOT_KEYS = 64
# Cold rows pass through ungrouped when their groups / rows reach this: grouping
# them would spare the exchange and the final aggregate under 30% of the rows.
PASSTHROUGH_RATIO = 0.7
# Every SAMPLE_STRIDE-th row is sampled (the first chunk: every FIRST_STRIDE-th).
SAMPLE_STRIDE = 16
FIRST_STRIDE = 8
# A first chunk of over FEW_GROUPS rows a group on average is folded on, unsampled.
FEW_GROUPS = 16
# The first chunk a partial aggregate samples for hot keys, and the state rows past
# which it passes its states on, are this many batches of rows. Raw rows are folded
# a batch_rows at a time: folding four batches at once held them and the grouper's
# table together (TPC-H Q1 reserved 222 MiB, 89 MiB folding one; no slower).
CHUNK_BATCHES = 4
# A key must be seen this many times in one sample to be called hot.
MIN_HOT_SAMPLES = 8


@dataclass(frozen=True)
class AggSpec:
    """One aggregate: its output name, function, argument (over the raw input) and type."""

    name: str
    #: count_star | count | sum | avg | min | max | approx_count_distinct (a HyperLogLog
    #: sketch, hll.py) | any_value (some non-NULL value of the group, for types Arrow's
    #: grouping cannot aggregate, such as lists)
    fn: str
    arg: Expr | None
    type: pa.DataType

    def states(self) -> list[tuple[str, str, pa.DataType]]:
        """(state column, pyarrow hash function over raw input, state type)."""
        n = self.name
        if self.fn == "count_star":
            return [(f"{n}$count", "count_all", pa.int64())]
        if self.fn == "count":
            return [(f"{n}$count", "count", pa.int64())]
        assert self.arg is not None
        if self.fn == "sum":
            return [(f"{n}$sum", "sum", self.type)]
        if self.fn == "approx_count_distinct":
            return [(f"{n}$hll", "hll", hll.SKETCH_TYPE)]
        if self.fn == "any_value":
            return [(f"{n}$any", "any_value", self.type)]
        if self.fn == "avg":
            return [
                (f"{n}$sum", "sum", sum_type(self.arg.type)),
                (f"{n}$count", "count", pa.int64()),
            ]
        return [(f"{n}${self.fn}", self.fn, self.arg.type)]

    def __str__(self) -> str:
        arg = "*" if self.arg is None else str(self.arg)
        fn = "count" if self.fn == "count_star" else self.fn
        return f"{fn}({arg}) AS {self.name}"


def _as_table(batches: list[pa.RecordBatch]) -> pa.Table:
    """One table of prepared batches. Dictionary-encoded keys (KeepGroupKeysEncoded)
    are grouped on their indices, which needs one dictionary per column; batches that
    disagree on encoding (a file that stored the column plainly) are all decoded."""
    first = batches[0].schema
    if all(b.schema.equals(first) for b in batches[1:]):
        table = pa.Table.from_batches(batches)
        encoded = any(pa.types.is_dictionary(t) for t in first.types)
        return table.unify_dictionaries() if encoded and len(batches) > 1 else table
    plain = [
        pa.RecordBatch.from_arrays(
            [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in b.columns],
            names=b.schema.names,
        )
        for b in batches
    ]
    return pa.Table.from_batches(plain)


def _decode_keys(grouped: pa.Table, keys: tuple[tuple[str, Expr], ...]) -> pa.Table:
    """Group key columns back to their declared type (one row per group: cheap)."""
    for name, e in keys:
        i = grouped.schema.get_field_index(name)
        if i >= 0 and pa.types.is_dictionary(grouped.schema.field(i).type):
            grouped = grouped.set_column(i, name, grouped.column(i).cast(e.type))
    return grouped


def _sums_as_decimal(a: AggSpec) -> bool:
    """SUM and AVG of integers run over the argument cast to DECIMAL(38,0)."""
    return a.fn in ("sum", "avg") and a.arg is not None and pa.types.is_integer(a.arg.type)


# Bytes of scratch Arrow's hash grouping takes per byte of its input (the hash table,
# the grouped output, a concatenation): measured ~1.3x for 1.5 M state rows of 625 K
# groups. Reserved before grouping, so a budget covers the grouper too.
_GROUPING_SCRATCH = 1.5

# A final (or grace) aggregate merging states stops grouping each chunk on its own
# once a chunk's groups were more than this share of its rows: its keys then come
# from one partial each (Q18's ``l_orderkey``), so grouping the chunk and again
# in the merge grouped every row twice. The merges, when the states have doubled
# and at the end, still group everything.
_FOLD_SHRINK = 0.5

# How states of each kind are merged: counts and sums add, min/max stay min/max.
_MERGE = {
    "count_all": "sum",
    "count": "sum",
    "sum": "sum",
    "min": "min",
    "max": "max",
    "hll": "hll",  # registers' maxima again
    "any_value": "any_value",
}


@dataclass(frozen=True)
class HashAggregateExec(PhysicalPlan):
    input: PhysicalPlan
    mode: str
    keys: tuple[tuple[str, Expr], ...]
    aggs: tuple[AggSpec, ...]
    #: Key values of a group the final / single aggregate emits even when no row has
    #: them (GROUPING SETS' grand total over an empty input); the task its key hashes
    #: to emits it.
    always_group: tuple[Any, ...] | None = None

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"Aggregate[{self.mode}]"

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return HashAggregateExec(children[0], self.mode, self.keys, self.aggs, self.always_group)

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.keys)

    @property
    def schema(self) -> pa.Schema:
        fields = [pa.field(n, e.type) for n, e in self.keys]
        if self.mode == PARTIAL:
            fields += [pa.field(s, t) for a in self.aggs for s, _, t in a.states()]
        else:
            fields += [pa.field(a.name, a.type) for a in self.aggs]
        return pa.schema(fields)

    def required_input_distributions(self) -> tuple[Distribution, ...]:
        if self.mode == FINAL:
            return (HashDistributed(self.key_names) if self.keys else SinglePartition(),)
        if self.mode == SINGLE_MODE:
            cols = [e.name for _, e in self.keys if isinstance(e, ColumnRef)]
            if self.keys and len(cols) == len(self.keys):
                return (HashDistributed(tuple(cols)),)
            return (SinglePartition(),)
        return super().required_input_distributions()

    def output_partitioning(self) -> Partitioning:
        child = self.input.output_partitioning()
        if child.num_partitions == 1 or not self.keys:
            return (
                SINGLE if child.num_partitions == 1 else UnknownPartitioning(child.num_partitions)
            )
        if self.mode == FINAL:
            return HashPartitioned(self.key_names, child.num_partitions)
        if self.mode == SINGLE_MODE and isinstance(child, HashPartitioned):
            # Co-located: the input's hash keys pass through as group keys, renamed.
            renamed = {e.name: n for n, e in self.keys if isinstance(e, ColumnRef)}
            if all(k in renamed for k in child.keys):
                return HashPartitioned(tuple(renamed[k] for k in child.keys), child.num_partitions)
        return UnknownPartitioning(child.num_partitions)

    def maintains_input_order(self) -> bool:
        return False

    def explain_params(self) -> dict[str, str]:
        keys = ", ".join(n if str(e) == n else f"{e} AS {n}" for n, e in self.keys)
        return {"keys": f"[{keys}]", "aggs": "[" + ", ".join(str(a) for a in self.aggs) + "]"}

    # ---------------------------------------------------------------- execute

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        res = ctx.reserve(self)
        try:
            prepared = (self._prepare(b) for b in ctx.run(self.input))
            if self._adaptive and ctx.settings.hot_key_aggregate:
                yield from self._adaptive_partial(ctx, res, prepared)
            else:
                yield from self._aggregate(ctx, res, prepared, self.mode != FINAL, 0)
        finally:
            res.free()

    @cached_property
    def _adaptive(self) -> bool:
        """Whether this can pass rows through with its hot keys pre-aggregated: a partial
        aggregate with keys the row hash supports."""
        if self.mode != PARTIAL or not self.keys:
            return False
        try:
            hash_columns([pa.array([], e.type) for _, e in self.keys])
        except (TypeError, pa.ArrowException):
            return False
        return True

    def _adaptive_partial(
        self, ctx: TaskContext, res: Reservation, batches: Iterator[pa.RecordBatch]
    ) -> Iterator[pa.RecordBatch]:
        """Fold the first chunk; then either go on folding (the input shrinks) or pass
        cold rows through as one-row states and fold only the hot keys."""
        metrics = ctx.operator_metrics(self)
        chunk_rows = ctx.settings.batch_rows * CHUNK_BATCHES
        first: list[pa.RecordBatch] = []
        rows = 0
        # The first batch_rows rows, folded: when they show few groups they decide alone.
        early: pa.Table | None = None
        early_batches = 0  # how many of ``first`` it folded
        for batch in batches:
            first.append(batch)
            rows += batch.num_rows
            if not res.try_grow(batch.nbytes):
                res.force_grow(batch.nbytes)  # in memory already
                break
            if early is None and rows >= ctx.settings.batch_rows:
                early, early_batches = self._fold(first), len(first)
                if early.num_rows * FEW_GROUPS < rows:
                    # Few groups already (Q1: 4): fold on without holding a whole
                    # chunk of raw rows for a sample that could not change the choice.
                    metrics.rows_in += rows
                    metrics.peak_state_rows = max(metrics.peak_state_rows, early.num_rows)
                    res.shrink(sum(b.nbytes for b in first))
                    yield from self._aggregate(ctx, res, batches, True, 0, early)
                    return
            if rows >= chunk_rows:
                break
        if rows < chunk_rows:
            # The whole input is one chunk (nothing to decide), or the pool has no room
            # for one: the plain path, which passes its states on when out of budget.
            # Holding a whole chunk past the budget would starve the operators below,
            # still running (a join's grace partitions then split down to a few rows).
            res.shrink(sum(b.nbytes for b in first))  # _aggregate reserves them again
            if early is not None:
                metrics.rows_in += sum(b.num_rows for b in first[:early_batches])
                rest = itertools.chain(first[early_batches:], batches)
                yield from self._aggregate(ctx, res, rest, True, 0, early)
                return
            yield from self._aggregate(ctx, res, itertools.chain(first, batches), True, 0)
            return
        metrics.rows_in += rows
        held = sum(b.nbytes for b in first)
        table = _as_table(first)
        rest_batches = first[early_batches:]
        if early is None:
            state = self._fold(rest_batches)
        elif rest_batches:  # fold only the rows after the early fold, and merge the two
            state = self._merge([early, self._fold(rest_batches)])
        else:
            state = early
        first = rest_batches = []
        res.shrink(held)
        metrics.peak_state_rows = max(metrics.peak_state_rows, state.num_rows)
        if state.num_rows * FEW_GROUPS < rows:
            # Many rows a group: folding pays whatever the hot keys are (and sampling
            # them would cost a hash of the chunk for nothing).
            yield from self._aggregate(ctx, res, batches, True, 0, state)
            return
        hashes = hash_columns([table.column(k) for k in self.key_names])
        hot = _heavy_hitters(hashes[::FIRST_STRIDE])
        hot_rows = int(np.isin(hashes, hot).sum()) if len(hot) else 0
        cold_rows = rows - hot_rows
        cold_groups = state.num_rows - len(hot)
        if cold_rows <= 0 or cold_groups < PASSTHROUGH_RATIO * cold_rows:
            # Grouping pays (few groups, or the hot keys are most of the rows): as always.
            yield from self._aggregate(ctx, res, batches, True, 0, state)
            return
        yield from self._emit(state, ctx)
        # The first chunk was folded whole: its hot keys' rows were absorbed there.
        metrics.hot_rows_absorbed += max(0, hot_rows - len(hot))
        yield from self._pass_through(ctx, res, batches, hot)

    def _pass_through(
        self,
        ctx: TaskContext,
        res: Reservation,
        batches: Iterator[pa.RecordBatch],
        hot: np.ndarray,
    ) -> Iterator[pa.RecordBatch]:
        """Cold rows out as one-row states; hot keys (by row hash) folded until the end."""
        metrics = ctx.operator_metrics(self)
        chunk_rows = ctx.settings.batch_rows * CHUNK_BATCHES
        hot_set = pa.array(hot, pa.uint64())
        hot_state: pa.Table | None = None
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        folded_rows = 0  # hot rows folded into hot_state
        cold: list[pa.RecordBatch] = []  # cold rows not yet passed on (under a batch)
        cold_rows = 0
        metrics.hot_keys = max(metrics.hot_keys, len(hot_set))

        def fold_pending() -> None:
            nonlocal hot_state, pending, pending_rows
            held = sum(b.nbytes for b in pending)
            parts = [self._fold(pending)] + ([hot_state] if hot_state is not None else [])
            hot_state = self._merge(parts) if len(parts) > 1 else parts[0]
            pending, pending_rows = [], 0
            res.shrink(held)
            res.resize(hot_state.nbytes)

        for batch in batches:
            metrics.rows_in += batch.num_rows
            keys = [batch.column(k) for k in self.key_names]
            if len(hot_set):
                hashes = hash_columns(keys)
                sample = hashes[::SAMPLE_STRIDE]
            else:
                hashes = None
                sample = hash_columns([_strided(k, SAMPLE_STRIDE) for k in keys])
            if len(hot_set) < MAX_HOT_KEYS:
                found = _heavy_hitters(sample)
                new = found[~np.isin(found, hot)][: MAX_HOT_KEYS - len(hot)]
                if len(new):
                    hot = np.concatenate([hot, new])
                    hot_set = pa.array(hot, pa.uint64())
                    metrics.hot_keys = max(metrics.hot_keys, len(hot))
                    if hashes is None:
                        hashes = hash_columns(keys)
            if hashes is not None and len(hot_set):
                is_hot = pc.is_in(pa.array(hashes, pa.uint64()), value_set=hot_set)
                hot_part = batch.filter(is_hot)
                if hot_part.num_rows:
                    res.force_grow(hot_part.nbytes)
                    pending.append(hot_part)
                    pending_rows += hot_part.num_rows
                    folded_rows += hot_part.num_rows
                    if pending_rows >= chunk_rows:
                        fold_pending()
                    batch = batch.filter(pc.invert(is_hot))
            if batch.num_rows:
                metrics.passthrough_rows += batch.num_rows
                cold.append(batch)
                cold_rows += batch.num_rows
                if cold_rows >= ctx.settings.batch_rows:
                    # Whole batches out: what is left of a mostly hot batch is small.
                    yield from self._emit(self._singletons(cold), ctx)
                    cold, cold_rows = [], 0
        if cold:
            yield from self._emit(self._singletons(cold), ctx)
        if pending:
            fold_pending()
        if hot_state is not None:
            metrics.hot_rows_absorbed += folded_rows - hot_state.num_rows
            metrics.peak_state_rows = max(metrics.peak_state_rows, hot_state.num_rows)
            yield from self._emit(hot_state, ctx)
        res.resize(0)

    def _singletons(self, batches: list[pa.RecordBatch]) -> pa.Table:
        """Prepared rows as states of one row each: what folding them alone would give
        (counts 0/1, sums and min/max the value itself), without grouping."""
        batch = _as_table(batches)
        arrays: list[pa.Array | pa.ChunkedArray] = []
        names: list[str] = []
        for name, e in self.keys:
            column = batch.column(name)
            if pa.types.is_dictionary(column.type):
                column = column.cast(e.type)
            arrays.append(column)
            names.append(name)
        ones: pa.Array | None = None
        for a in self.aggs:
            for state, fn, typ in a.states():
                if fn == "count_all":
                    if ones is None:
                        ones = pa.array(np.ones(batch.num_rows, np.int64))
                    value = ones
                else:
                    arg = batch.column(self._arg_columns[a.name])
                    if fn == "count":
                        value = pc.cast(pc.is_valid(arg), pa.int64())
                    else:
                        value = arg if arg.type == typ else arg.cast(typ)
                arrays.append(value)
                names.append(state)
        return pa.Table.from_arrays(arrays, names)

    def _aggregate(
        self,
        ctx: TaskContext,
        res: Reservation,
        batches: Iterator[pa.RecordBatch],
        raw: bool,
        level: int,
        initial: pa.Table | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Fold ``batches`` (prepared raw rows, or states when not ``raw``) into states
        and emit the results; past the budget, spill the states to hash partitions
        (grace) and finish those one at a time, recursing with the next level.
        ``initial``: states already folded (reserved here) that the rest joins."""
        metrics = ctx.operator_metrics(self)
        chunk_rows = ctx.settings.batch_rows * CHUNK_BATCHES
        states: list[pa.Table] = [] if initial is None else [initial]
        state_rows = 0 if initial is None else initial.num_rows
        merged_rows = state_rows  # state rows right after the last merge
        if initial is not None:
            res.force_grow(initial.nbytes)
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        emitted = False
        spill: SpillPartitions | None = None
        # States merged chunk by chunk only while that shrinks them (see _FOLD_SHRINK);
        # ``unfolded``: some table in ``states`` is raw input states, keys repeated.
        fold_pays = True
        unfolded = False

        def fold(batches: list[pa.RecordBatch]) -> pa.Table:
            if raw:
                return self._fold(batches)
            return self._merge([pa.Table.from_batches(batches, self._state_schema)])

        def make_room() -> Iterator[pa.RecordBatch]:
            """Out of budget: a partial aggregate passes its states on, the others spill."""
            nonlocal states, state_rows, merged_rows, pending, pending_rows, spill, emitted
            nonlocal unfolded
            if pending and self.keys and self.mode != PARTIAL and not fold_pays:
                # About to spill rows that grouping hardly shrinks: they go out as
                # they are (merged when their partition is finished) — out of room,
                # the grouper's table (~1.3x its input) had nowhere to go but past
                # the budget. (Rows of a few hot keys are still folded: that is what
                # lets their partition fit.)
                states.append(
                    self._singletons(pending)
                    if raw
                    else pa.Table.from_batches(pending, self._state_schema)
                )
                unfolded = True
                pending, pending_rows = [], 0
            elif pending:
                states.append(fold(pending))
                pending, pending_rows = [], 0
            if not self.keys:
                # One group: its state is one row, folded and kept (nothing to spill).
                if len(states) > 1 or unfolded:
                    states = [self._merge(states)]
                    unfolded = False
                state_rows = merged_rows = sum(t.num_rows for t in states)
                res.resize(sum(t.nbytes for t in states))
                return
            if self.mode == PARTIAL:
                for state in states:
                    yield from self._emit(state, ctx)
                emitted = True
            else:
                if spill is None:
                    spill = SpillPartitions(
                        ctx.spill,
                        self._state_schema,
                        self.key_names,
                        level,
                        metrics,
                        buffer=buffer_bytes(ctx.settings.memory_limit),
                    )
                while states:
                    spill.add(states.pop())  # each table freed once it is written
            states, state_rows, merged_rows, unfolded = [], 0, 0, False
            res.resize(0)
            if spill is not None:
                release_unused()

        try:
            for batch in batches:
                metrics.rows_in += batch.num_rows
                if not res.try_grow(batch.nbytes):
                    yield from make_room()
                    # The batch is in memory already; holding it alone is the least
                    # any aggregate can do.
                    res.force_grow(batch.nbytes)
                pending.append(batch)
                pending_rows += batch.num_rows
                if pending_rows < ctx.settings.batch_rows:
                    continue
                if not fold_pays:
                    # Held as they came (reserved already); the merges group them.
                    states.append(pa.Table.from_batches(pending, self._state_schema))
                    state_rows += pending_rows
                    pending, pending_rows, unfolded = [], 0, True
                    continue
                held = sum(b.nbytes for b in pending)
                scratch = int(held * _GROUPING_SCRATCH)
                if not res.try_grow(scratch):
                    # No room for the grouper's table: make_room groups this chunk with
                    # what is free and moves every state on (spilled or passed on).
                    yield from make_room()
                    continue
                states.append(fold(pending))
                if not raw and states[-1].num_rows > _FOLD_SHRINK * pending_rows:
                    fold_pays = False
                pending, pending_rows = [], 0
                state_rows += states[-1].num_rows
                res.shrink(held + scratch)
                if not res.try_grow(states[-1].nbytes):
                    yield from make_room()
                    continue
                metrics.peak_state_rows = max(metrics.peak_state_rows, state_rows)
                if self.mode == PARTIAL and state_rows >= chunk_rows:
                    # Many groups: pass the states on as they are instead of growing them
                    # (memory stays bounded; merging is the final aggregate's job, and
                    # merging here too would group the same rows twice).
                    for state in states:
                        yield from self._emit(state, ctx)
                    states, state_rows, emitted = [], 0, True
                    res.resize(0)
                elif state_rows >= max(chunk_rows, 2 * merged_rows) and len(states) > 1:
                    # Merge when the states have doubled: amortized, not quadratic. The
                    # merge concatenates the states and Arrow's grouper builds a hash
                    # table about as large: room for both first, else spill instead.
                    before = sum(t.nbytes for t in states)
                    if not res.try_grow(int((1 + _GROUPING_SCRATCH) * before)):
                        yield from make_room()
                        continue
                    states = [self._merge(states)]
                    state_rows = merged_rows = states[0].num_rows
                    unfolded = False
                    res.resize(states[0].nbytes)
            if pending or not (states or emitted or spill):
                # (Also with no input at all: a global aggregate still has one row.)
                if raw:
                    states.append(self._fold(pending))
                elif pending and not fold_pays and spill is None:
                    # Merged with the others just below: grouping them first is waste.
                    states.append(pa.Table.from_batches(pending, self._state_schema))
                    unfolded = True
                elif pending:
                    states.append(fold(pending))
                pending, pending_rows = [], 0
            merged: pa.Table | None = None
            if spill is None and states:
                if len(states) == 1 and (self.mode != FINAL or not raw) and not unfolded:
                    merged = states[0]
                elif res.try_grow(int((1 + _GROUPING_SCRATCH) * sum(t.nbytes for t in states))):
                    merged = self._merge(states)
                    res.resize(merged.nbytes)
                elif self.mode == PARTIAL:
                    for state in states:
                        yield from self._emit(state, ctx)
                    return
                else:
                    yield from make_room()
                states = []
            if self.always_group is not None and self.mode != PARTIAL and level == 0:
                # Only an empty input lacks the grand-total group, and it never spills.
                if merged is None and spill is None:
                    merged = pa.Table.from_batches([], self._state_schema)
                if merged is not None:
                    merged = self._with_always_group(merged, ctx)
            if merged is not None:
                metrics.peak_state_rows = max(metrics.peak_state_rows, merged.num_rows)
                yield from self._emit(merged if self.mode == PARTIAL else self._finish(merged), ctx)
                res.resize(0)  # emitted: the next grace partition starts from nothing
                return
            if spill is None:
                return
            # Everything goes to the partitions; each is then finished on its own.
            yield from make_room()
            for part in spill.partitions():
                if level + 1 >= MAX_LEVELS:
                    raise ResourceExhaustedError(
                        f"{self.label} (grace partition still too big after {level + 1} levels)",
                        needed=part.data_bytes,
                        held=res.size,
                        reserved=res.pool.reserved,
                        budget=res.pool.limit,
                        stage=ctx.stage_id,
                        task=ctx.partition,
                    )
                yield from self._aggregate(ctx, res, part.read(), False, level + 1)
        finally:
            if spill is not None:
                spill.delete()

    def _with_always_group(self, merged: pa.Table, ctx: TaskContext) -> pa.Table:
        """``merged`` plus the ``always_group`` state row (counts 0, the rest NULL) when
        no input row made it and it belongs to this task."""
        assert self.always_group is not None
        values = self.always_group
        keys = [pa.array([v], e.type) for v, (_, e) in zip(values, self.keys, strict=True)]
        n = self.input.output_partitioning().num_partitions
        if n > 1 and int(partition_ids(keys, n)[0]) != ctx.partition:
            return merged
        if merged.num_rows:
            present = None
            for value, (name, _) in zip(values, self.keys, strict=True):
                col = merged.column(name)
                same = (
                    pc.is_null(col) if value is None else pc.fill_null(pc.equal(col, value), False)
                )
                present = same if present is None else pc.and_(present, same)
            if present is not None and pc.any(present).as_py():
                return merged
        row = []
        for field in merged.schema:
            if field.name in self.key_names:
                row.append(keys[self.key_names.index(field.name)].cast(field.type))
            elif field.name.rsplit("$", 1)[-1] == "count":
                row.append(pa.array([0], field.type))
            else:
                row.append(pa.nulls(1, field.type))
        return pa.concat_tables([merged, pa.Table.from_arrays(row, schema=merged.schema)])

    @cached_property
    def _state_schema(self) -> pa.Schema:
        fields = [pa.field(n, e.type) for n, e in self.keys]
        fields += [pa.field(s, t) for a in self.aggs for s, _, t in a.states()]
        return pa.schema(fields)

    def _emit(self, out: pa.Table, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        out = out.cast(self.schema) if out.schema != self.schema else out
        yield from out.to_batches(max_chunksize=ctx.settings.batch_rows)

    @cached_property
    def _arg_columns(self) -> dict[str, str]:
        """Aggregate name → the prepared column holding its argument.

        Aggregates over the same argument share one column (Q1's ``sum(l_quantity)``
        and ``avg(l_quantity)``), and so share its evaluation and its hash sums.
        """
        columns: dict[tuple[Expr, str], str] = {}
        out: dict[str, str] = {}
        for a in self.aggs:
            if a.arg is not None:
                key = (a.arg, _argument_form(a))
                out[a.name] = columns.setdefault(key, f"{a.name}$arg")
        return out

    def _prepare(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Key columns and argument columns; in final mode the input already is states."""
        if self.mode == FINAL:
            return batch
        memo: Memo = {}
        # Float keys: -0.0 groups with 0.0 and every NaN with every NaN (floats.py).
        arrays = [floats.normalize(evaluate_column(e, batch, memo)) for _, e in self.keys]
        names = list(self.key_names)
        for a in self.aggs:
            if a.arg is None or self._arg_columns[a.name] in names:
                continue
            column = self._arg_columns[a.name]
            arg = evaluate_array(a.arg, batch, memo)
            if _sums_as_decimal(a):
                # Sum integers as DECIMAL(38,0): exact where BIGINT would wrap.
                arg = arg.cast(sum_type(arg.type))
            elif a.fn == "approx_count_distinct":
                arg = hll.codes(arg)
            arrays.append(arg)
            names.append(column)
        if not arrays:  # COUNT(*) alone: keep the row count
            return pa.RecordBatch.from_arrays([pa.nulls(batch.num_rows, pa.int8())], ["$rows"])
        return pa.RecordBatch.from_arrays(arrays, names)

    def _fold(self, batches: list[pa.RecordBatch]) -> pa.Table:
        """Raw rows (or states, in final mode) into one state row per group."""
        if self.mode == FINAL:
            return self._merge([pa.Table.from_batches(batches, self.input.schema)])
        table = _as_table(batches) if batches else self._empty_prepared()
        specs: list[tuple[str | list[str], str]] = []
        targets: list[tuple[str, pa.DataType]] = []
        for a in self.aggs:
            for state, fn, typ in a.states():
                column: str | list[str] = [] if fn == "count_all" else self._arg_columns[a.name]
                if fn == "count" and not table.column(self._arg_columns[a.name]).null_count:
                    column, fn = [], "count_all"  # no NULLs here: the same count, shared
                specs.append((column, fn))
                targets.append((state, typ))
        # Each distinct (column, function) is computed once; _arrange hands it out.
        distinct = list(dict.fromkeys((c if isinstance(c, str) else "", f) for c, f in specs))
        grouped = self._group(table, [(c or [], f) for c, f in distinct])
        return self._arrange(_decode_keys(grouped, self.keys), specs, targets)

    def _group(self, table: pa.Table, specs: list[tuple[str | list[str], str]]) -> pa.Table:
        """One row per group: direct addressing for one small-span integer key, else
        Arrow's hash grouping."""
        table, specs, nan_columns = _nan_aware_min_max(table, specs)
        table, specs, finish = _row_index_specs(table, specs, bool(self.key_names))
        if finish:
            if specs or self.key_names:
                grouped = table.group_by(list(self.key_names), use_threads=False).aggregate(specs)
            else:
                grouped = pa.table({"$one": pa.nulls(1, pa.int8())})
            return _finish_row_index_specs(table, grouped, finish)
        if len(self.key_names) == 1:
            dense = dense_group_by(table, self.key_names[0], specs)
            if dense is not None:
                return dense  # exact: its sums stay far below 2**53
        table = widen_risky_sums(table, specs)
        grouped = table.group_by(list(self.key_names), use_threads=False).aggregate(specs)
        return _restore_nan_min_max(grouped, nan_columns) if nan_columns else grouped

    def merge_states(self, states: pa.Table) -> pa.Table:
        """``states`` (this aggregate's state columns, keyed by its keys and maybe more)
        merged into one state row per group of its keys."""
        return self._merge([states])

    def _merge(self, states: list[pa.Table]) -> pa.Table:
        table = pa.concat_tables(states) if len(states) > 1 else states[0]
        specs: list[tuple[str | list[str], str]] = []
        targets: list[tuple[str, pa.DataType]] = []
        for a in self.aggs:
            for state, fn, typ in a.states():
                specs.append((state, _MERGE[fn]))
                targets.append((state, typ))
        return self._arrange(self._group(table, specs), specs, targets)

    def _arrange(
        self,
        grouped: pa.Table,
        specs: list[tuple[str | list[str], str]],
        targets: list[tuple[str, pa.DataType]],
    ) -> pa.Table:
        """Keys first, then states in declared order and types."""
        arrays = [grouped.column(k) for k in self.key_names]
        names = list(self.key_names)
        for (col, fn), (state, typ) in zip(specs, targets, strict=True):
            produced = grouped.column("count_all" if col == [] else f"{col}_{fn}")
            if "count" in state.rsplit("$", 1)[-1]:
                produced = pc.fill_null(produced, 0)
            if pa.types.is_decimal256(produced.type) and pa.types.is_decimal128(typ):
                produced = narrow_sum(produced, typ)  # summed wide: must fit again
            arrays.append(produced if produced.type == typ else produced.cast(typ))
            names.append(state)
        if not arrays:
            return pa.table({})
        return pa.Table.from_arrays(arrays, names)

    def _finish(self, states: pa.Table) -> pa.Table:
        arrays = [states.column(k) for k in self.key_names]
        names = list(self.key_names)
        for a in self.aggs:
            if a.fn == "approx_count_distinct":
                value = hll.estimate(states.column(f"{a.name}$hll"))
            elif a.fn == "avg":
                total = pc.cast(states.column(f"{a.name}$sum"), pa.float64())
                count = states.column(f"{a.name}$count")
                value = pc.if_else(
                    pc.equal(count, 0),
                    pa.scalar(None, pa.float64()),
                    pc.divide(total, pc.cast(count, pa.float64())),
                )
            else:
                value = states.column(a.states()[0][0])
            arrays.append(value if value.type == a.type else value.cast(a.type))
            names.append(a.name)
        return pa.Table.from_arrays(arrays, names)

    def _empty_prepared(self) -> pa.Table:
        fields = [pa.field(n, e.type) for n, e in self.keys]
        columns = {
            self._arg_columns[a.name]: _prepared_type(a) for a in self.aggs if a.arg is not None
        }
        fields += [pa.field(name, typ) for name, typ in columns.items()]
        if not fields:
            fields = [pa.field("$rows", pa.int8())]
        return pa.schema(fields).empty_table()


def _heavy_hitters(sample: np.ndarray) -> np.ndarray:
    """The row hashes holding at least ``HOT_FRACTION`` of ``sample`` (largest first, at
    most ``MAX_HOT_KEYS``)."""
    if len(sample) == 0:
        return np.empty(0, np.uint64)
    values, counts = np.unique(sample, return_counts=True)
    need = max(MIN_HOT_SAMPLES, int(HOT_FRACTION * len(sample)))
    chosen = np.flatnonzero(counts >= need)
    chosen = chosen[np.argsort(-counts[chosen], kind="stable")][:MAX_HOT_KEYS]
    return values[chosen].astype(np.uint64)


def _strided(column: pa.Array, stride: int) -> pa.Array:
    return column.take(pa.array(np.arange(0, len(column), stride, dtype=np.int64)))


def _prepared_type(a: AggSpec) -> pa.DataType:
    assert a.arg is not None
    if _sums_as_decimal(a):
        return sum_type(a.arg.type)
    if a.fn == "approx_count_distinct":
        return pa.int32()
    return a.arg.type


def _argument_form(a: AggSpec) -> str:
    """How an aggregate's argument column is prepared: aggregates over the same
    argument in the same form share one column."""
    if _sums_as_decimal(a):
        return "decimal"
    return "hll" if a.fn == "approx_count_distinct" else ""


def _row_index_specs(
    table: pa.Table, specs: list[tuple[str | list[str], str]], grouped_by_keys: bool
) -> tuple[pa.Table, list[tuple[str | list[str], str]], list[tuple[str, str, str]]]:
    """``any_value`` and ``hll`` specs as aggregates Arrow's grouping can do, over row
    numbers: the smallest row holding a value (any_value), every row of the group
    (hll; without keys the one group is every row). Returns the table with the row
    columns, the specs and (column, function, grouped row column) to finish them."""
    special = [(c, fn) for c, fn in specs if fn in ("any_value", "hll") and isinstance(c, str)]
    if not special:
        return table, specs, []
    rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
    out: list[tuple[str | list[str], str]] = []
    finish: list[tuple[str, str, str]] = []
    for col, fn in specs:
        if not (isinstance(col, str) and fn in ("any_value", "hll")):
            out.append((col, fn))
        elif fn == "any_value":
            name = f"{col}$row"
            if name not in table.column_names:
                valid = table.column(col).is_valid()
                table = table.append_column(
                    name, pc.if_else(valid, rows, pa.scalar(None, pa.int64()))
                )
            out.append((name, "min"))
            finish.append((col, fn, f"{name}_min"))
        else:
            if grouped_by_keys:
                if "$row" not in table.column_names:
                    table = table.append_column("$row", rows)
                out.append(("$row", "list"))
            finish.append((col, fn, "$row_list"))
    unique: dict[tuple[str, str], tuple[str | list[str], str]] = {}
    for col, fn in out:
        unique.setdefault((col if isinstance(col, str) else "", fn), (col, fn))
    return table, list(unique.values()), finish


def _finish_row_index_specs(
    table: pa.Table, grouped: pa.Table, finish: list[tuple[str, str, str]]
) -> pa.Table:
    """The any_value / hll results of ``_row_index_specs``, as ``{column}_{function}``."""
    n = grouped.num_rows
    for col, fn, rows_column in finish:
        values = table.column(col)
        if fn == "any_value":
            grouped = grouped.append_column(f"{col}_{fn}", values.take(grouped.column(rows_column)))
            continue
        if rows_column in grouped.column_names:
            lists = grouped.column(rows_column).combine_chunks()
            taken = np.asarray(pc.list_flatten(lists).to_numpy(zero_copy_only=False), np.int64)
            group = np.asarray(
                pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), np.int64
            )
        else:  # no keys: one group of every row
            taken = np.arange(table.num_rows, dtype=np.int64)
            group = np.zeros(table.num_rows, dtype=np.int64)
        picked = values.take(pa.array(taken)).combine_chunks() if len(taken) else None
        if picked is None:
            code = np.zeros(0, np.int32)
            group = np.zeros(0, np.int64)
        elif pa.types.is_list(picked.type):  # sketches being merged
            inner = np.asarray(
                pc.list_parent_indices(picked).to_numpy(zero_copy_only=False), np.int64
            )
            group = group[inner]
            code = np.asarray(pc.list_flatten(picked).to_numpy(zero_copy_only=False), np.int32)
        else:  # raw codes; NULL values count for nothing
            valid = np.asarray(picked.is_valid().to_numpy(zero_copy_only=False), bool)
            group = group[valid]
            code = np.asarray(picked.filter(pa.array(valid)).to_numpy(), np.int32)
        grouped = grouped.append_column(f"{col}_{fn}", hll.reduce(group, code, n))
    return grouped


def _nan_aware_min_max(
    table: pa.Table, specs: list[tuple[str | list[str], str]]
) -> tuple[pa.Table, list[tuple[str | list[str], str]], list[str]]:
    """Arrow's min/max skip NaN; in SQL (DuckDB) NaN is greater than every number.

    For each float column that a min/max reads and that holds a NaN: min/max run over
    a copy with NaN as +inf, beside the per-group max and min of ``is_nan``, from
    which ``_restore_nan_min_max`` puts NaN back (max: any NaN; min: only NaN).
    Returns the table, the rewritten specs and the columns so treated.
    """
    treated = [
        c
        for c in dict.fromkeys(c for c, fn in specs if fn in ("min", "max") and isinstance(c, str))
        if is_float(table.schema.field(c).type) and floats.has_nan(table.column(c))
    ]
    if not treated:
        return table, specs, []
    out = list(specs)
    for c in treated:
        column = table.column(c)
        nan = pc.is_nan(column)
        inf = pa.scalar(float("inf"), column.type)
        table = table.append_column(f"{c}$nonan", pc.if_else(nan, inf, column))
        table = table.append_column(f"{c}$isnan", pc.cast(nan, pa.int8()))
        out = [
            (f"{c}$nonan", fn) if col == c and fn in ("min", "max") else (col, fn)
            for col, fn in out
        ]
        out += [(f"{c}$isnan", "max"), (f"{c}$isnan", "min")]
    return table, out, treated


def _restore_nan_min_max(grouped: pa.Table, treated: list[str]) -> pa.Table:
    names = grouped.column_names
    for c in treated:
        any_nan = pc.equal(grouped.column(f"{c}$isnan_max"), 1)
        only_nan = pc.equal(grouped.column(f"{c}$isnan_min"), 1)
        for fn, flag in (("max", any_nan), ("min", only_nan)):
            name = f"{c}$nonan_{fn}"
            if name in names:
                value = grouped.column(name)
                fixed = pc.if_else(
                    pc.fill_null(flag, False), pa.scalar(floats.NAN, value.type), value
                )
                grouped = grouped.append_column(f"{c}_{fn}", fixed)
    return grouped
