"""Table scan: reads one task's splits with column projection and pushed filters.

Needs: nothing (a leaf). Gives: ``Unknown(n)`` partitioning over n tasks, each
reading a byte-balanced share of the table's splits (Parquet row groups, CSV
files, in-memory slices). Holds one batch at a time; never spills.

Pushed filters are evaluated here, batch by batch, right after decoding, and
Parquet row groups whose min/max statistics cannot match are not read at all.
String columns leave the scan as ``pa.string()`` whatever the file held.

A table with a usable hash layout (``catalog/layout.py``) is scanned shard-aligned
instead (``ScanExec.over_layout``): each task reads whole shards, so the output is
``Hash(keys, tasks)`` and a join or aggregate on the keys needs no exchange; a filter
``key = const`` (or ``IN``, ``IS NULL``, ORs of those) leaves the other shards unread.
"""

from __future__ import annotations

import collections
import functools
import math
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from shoal.catalog.layout import shards_for_values
from shoal.catalog.sources import (
    CsvSource,
    IpcSource,
    MemorySource,
    ParquetSource,
    Split,
    TableSource,
)
from shoal.errors import ExecutionError
from shoal.expr.evaluate import evaluate_array, evaluate_predicate, filter_batch, may_raise
from shoal.expr.nodes import (
    COMPARISONS,
    Call,
    Cast,
    ColumnRef,
    Expr,
    InList,
    Literal,
    conjoin,
    conjuncts,
)
from shoal.physical.context import Settings, TaskContext
from shoal.physical.operators.footer_facts import footer_facts
from shoal.physical.operators.scan_share import DecodedSplitCache, ScanShare
from shoal.physical.partitioning import HashPartitioned, Partitioning, UnknownPartitioning
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


def scan_task_count(splits: list[Split], settings: Settings, row_bytes: float) -> int:
    """Tasks of a scan: ``partitions``, no more than its splits, and — past two per CPU
    slot, so tasks can still even out — no more than one per ``scan_task_min_bytes`` of
    what it decodes (``row_bytes`` a row of the columns it reads; a split of unknown rows
    counts its file bytes)."""
    n = max(1, min(settings.partitions, len(splits)))
    if settings.scan_task_min_bytes <= 0:
        return n
    total = sum(s.num_rows * row_bytes if s.num_rows >= 0 else s.num_bytes for s in splits)
    by_bytes = max(2 * settings.max_running_tasks, math.ceil(total / settings.scan_task_min_bytes))
    return max(1, min(n, by_bytes))


class SplitQueue:
    """The splits of one scan, handed out one at a time to whichever task asks next.

    Order: file by file, row group by row group, so consecutive splits of a task tend
    to share an open file. Thread-safe; shared by the tasks of a stage in one process.
    """

    def __init__(self, splits: tuple[Split, ...], assignment: tuple[tuple[int, ...], ...]):
        order = sorted(
            (i for share in assignment for i in share),
            key=lambda i: (splits[i].path, splits[i].row_groups or (), splits[i].start),
        )
        self._pending = collections.deque(splits[i] for i in order)
        self._lock = threading.Lock()

    def drain(self) -> Iterator[Split]:
        while True:
            with self._lock:
                if not self._pending:
                    return
                split = self._pending.popleft()
            yield split


@dataclass(frozen=True)
class ScanExec(PhysicalPlan):
    table: str
    source: TableSource = field(repr=False, compare=False)
    columns: tuple[str, ...]  # names in the source
    names: tuple[str, ...]  # internal names, same order
    filter: Expr | None
    splits: tuple[Split, ...]
    assignment: tuple[tuple[int, ...], ...]  # split indexes per task
    # Set by ``over_layout``: the source's layout keys (source column names) when task i
    # reads exactly the rows that hash to i of len(assignment); the layout's shard count;
    # and how many shards are read after pruning.
    layout_keys: tuple[str, ...] = ()
    layout_shards: int = 0
    shards_read: int = 0
    # Set by ShareScans when other scans in the query read the same Parquet source.
    share: ScanShare | None = field(default=None, compare=False)
    # Set by KeepGroupKeysEncoded: output string columns that may leave this scan still
    # dictionary-encoded, because only group keys of the aggregate above read them.
    encoded: frozenset[str] = field(default=frozenset(), compare=False)
    # Set by rules/join_filters.py: (filter id, output column) for each hash join above
    # (same task) whose build keys this scan may filter that column by, once published.
    join_filters: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    label = "Scan"

    @classmethod
    def over_layout(
        cls,
        table: str,
        source: TableSource,
        columns: tuple[str, ...],
        names: tuple[str, ...],
        filter: Expr | None,
        partitions: int,
    ) -> ScanExec:
        """A scan of a hash-laid-out table whose tasks line up with the shards.

        Task count: ``partitions`` when it divides the shard count (task i then reads the
        ``shards / partitions`` consecutive shards ``[i*q, (i+1)*q)``), else one task per
        shard. Both are exact hash partitionings by the engine's own rule: a shard id is
        ``floor(h * n / 2**32)`` of the row hash's high word ``h``, so consecutive groups of
        ``q = n / p`` shards are precisely partitions ``floor(h * p / 2**32)`` of ``p``.
        Honouring ``partitions`` whenever the layout allows keeps the query's parallelism
        and lets a laid-out table co-locate with any side shuffled into ``partitions``
        (and with a table of a multiple of that many shards). When the counts do not fit,
        the shards win: the output is ``Hash(keys, shards)`` and EnforceDistribution
        shuffles only the other side of a join into that many partitions, with the same
        hash. (Never coarsen to a count that does not divide the shards: that would not be
        a hash partitioning at all.)

        Shard pruning: when the filter pins every layout key to literal values
        (``k = c``, ``k IN (...)``, ``k IS NULL``, ORs of them), only the shards those
        values hash to are read; the other tasks read nothing, so the partitioning stays
        exact and co-location with the other side of a join still holds.
        """
        layout = source.layout
        assert layout is not None, "over_layout needs a source with a usable layout"
        splits = tuple(source.splits())
        per_shard = source.shard_splits()
        keep = _pruned_shards(source, columns, names, filter)
        shards = layout.shards
        tasks = partitions if 1 <= partitions <= shards and shards % partitions == 0 else shards
        group = shards // tasks
        assignment = tuple(
            tuple(
                sorted(
                    i
                    for shard in range(t * group, (t + 1) * group)
                    if keep is None or shard in keep
                    for i in per_shard[shard]
                )
            )
            for t in range(tasks)
        )
        return cls(
            table,
            source,
            columns,
            names,
            filter,
            splits,
            assignment,
            layout.keys,
            shards,
            shards if keep is None else len(keep),
        )

    @property
    def schema(self) -> pa.Schema:
        fields = {f.name: f for f in self.source.schema}
        return pa.schema(
            [pa.field(n, fields[c].type) for c, n in zip(self.columns, self.names, strict=True)]
        )

    def output_partitioning(self) -> Partitioning:
        n = len(self.assignment)
        if self.layout_keys:
            # Claimed only when every key column is read: the partitioning names columns
            # of this operator's output (internal names).
            internal: dict[str, str] = {}
            for c, name in zip(self.columns, self.names, strict=True):
                internal.setdefault(c, name)
            if all(k in internal for k in self.layout_keys):
                return HashPartitioned(tuple(internal[k] for k in self.layout_keys), n)
        return UnknownPartitioning(n)

    def explain_params(self) -> dict[str, str]:
        params = {"": self.table, "columns": "[" + ", ".join(self.names) + "]"}
        if self.filter is not None:
            params["filter"] = str(self.filter)
        params["splits"] = str(len(self.splits))
        params["source"] = self.source.describe().split()[0]
        if self.encoded:
            params["encoded"] = "[" + ", ".join(sorted(self.encoded)) + "]"
        if self.join_filters:
            params["join_filters"] = "[" + ", ".join(f"{f}:{c}" for f, c in self.join_filters) + "]"
        if self.layout_keys:
            params["layout"] = f"hash[{', '.join(self.layout_keys)}]x{self.layout_shards}"
            params["shards"] = f"{self.shards_read}/{self.layout_shards}"
        return params

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        metrics = ctx.operator_metrics(self)
        target = self.schema
        # A share group whose members all have this filter applies it once, in the
        # member that decodes (_read_shared); rows_in then counts rows that passed.
        filtered = self.share is not None and self.share.filter is not None
        by_join = _JoinFiltering(self.join_filters, ctx) if self.join_filters else None
        for batch in self._read(self._my_splits(ctx), ctx, metrics):
            metrics.rows_in += batch.num_rows
            if by_join is not None:
                batch = by_join.apply(batch)
            if self.filter is not None and not filtered and batch.num_rows:
                batch = _filter(self.filter, batch, target)
            if batch.num_rows:
                yield _materialize(batch, target, keep=self.encoded)

    def _my_splits(self, ctx: TaskContext) -> Iterable[Split]:
        """This task's splits: its fixed share, or — when the output partitioning is
        Unknown anyway and the tasks share a process — whatever split is next in a
        queue all the stage's tasks draw from, so a task slowed by its neighbours or
        by a selective filter downstream does not leave the others idle at the end."""
        if self.layout_keys or not ctx.shares_across_tasks or len(self.assignment) < 2:
            return [self.splits[i] for i in self.assignment[ctx.partition]]
        key = ("scan-splits", ctx.stage_id, ctx.operator_ids.get(id(self), id(self)))
        queue: SplitQueue = ctx.shared(key, lambda: SplitQueue(self.splits, self.assignment))
        return queue.drain()

    # ------------------------------------------------------------------ reading

    def _read(
        self, splits: Iterable[Split], ctx: TaskContext, metrics: Any
    ) -> Iterator[pa.RecordBatch]:
        target = self.schema
        src = self.source
        if isinstance(src, ParquetSource) and self.share is not None:
            yield from self._read_shared(splits, ctx, metrics, self.share)
        elif isinstance(src, ParquetSource):
            files: dict[str, pq.ParquetFile] = {}
            for split in splits:
                f = files.get(split.path)
                if f is None:
                    try:
                        f = files[split.path] = _open_parquet(src, split.path, self.columns, target)
                    except (OSError, pa.ArrowInvalid) as err:
                        raise ExecutionError(f"cannot open {split.path}: {err}") from err
                groups = [
                    rg
                    for rg in (split.row_groups or range(f.metadata.num_row_groups))
                    if self.row_group_may_match(f.metadata, rg)
                    and self._join_filters_may_match(ctx, f.metadata, rg)
                ]
                skipped = len(split.row_groups or ()) - len(groups)
                metrics.row_groups_skipped += skipped
                metrics.row_groups_read += len(groups)
                if not groups:
                    continue
                batches = f.iter_batches(
                    batch_size=batch_rows_within_budget(ctx, f.metadata, groups, self.columns),
                    row_groups=groups,
                    columns=list(self.columns),
                    use_threads=False,
                )
                while True:
                    started = time.perf_counter()
                    batch = next(batches, None)
                    metrics.decode_seconds += time.perf_counter() - started
                    if batch is None:
                        break
                    yield _conform(batch, target)
        elif isinstance(src, CsvSource):
            for split in splits:
                table = src.read(split, list(self.columns))
                for batch in table.to_batches(max_chunksize=ctx.settings.batch_rows):
                    yield _conform(batch, target)
        elif isinstance(src, IpcSource):
            readers: dict[str, ipc.RecordBatchFileReader] = {}
            for split in splits:
                reader = readers.get(split.path)
                if reader is None:
                    try:
                        reader = readers[split.path] = ipc.open_file(src.open(split.path))
                    except (OSError, pa.ArrowInvalid) as err:
                        raise ExecutionError(f"cannot open {split.path}: {err}") from err
                for i in split.row_groups or range(reader.num_record_batches):
                    part = reader.get_batch(i).select(list(self.columns))
                    step = ctx.settings.batch_rows
                    for start in range(0, part.num_rows, step):
                        yield _conform(part.slice(start, step), target)
        elif isinstance(src, MemorySource):
            for split in splits:
                part = src.table.slice(split.start, split.num_rows).select(list(self.columns))
                for batch in part.to_batches(max_chunksize=ctx.settings.batch_rows):
                    yield _conform(batch, target)
        else:
            raise ExecutionError(f"cannot scan a {type(src).__name__}")

    def _read_shared(
        self, splits: Iterable[Split], ctx: TaskContext, metrics: Any, share: ScanShare
    ) -> Iterator[pa.RecordBatch]:
        """Like the Parquet branch of ``_read``, but each row group is decoded (with the
        share group's union of columns) by whichever member asks first."""
        target = self.schema
        fields = {f.name: f for f in self.source.schema}
        union = pa.schema([fields[c] for c in share.columns])
        source = self.source
        assert isinstance(source, ParquetSource)
        own = list(self.columns)
        cache: DecodedSplitCache = ctx.shared(
            ("scan-share", share.group),
            # Lives as long as the query (shared by its tasks): not a task's reservation.
            lambda: DecodedSplitCache(
                share, ctx.memory.reservation(f"ScanShareCache[{share.group}]", ctx.stage_id)
            ),
        )
        files: dict[str, pq.ParquetFile] = {}

        def decode(split: Split, groups: list[int]) -> list[pa.RecordBatch]:
            f = files.get(split.path)
            if f is None:
                f = files[split.path] = _open_parquet(source, split.path, share.columns, union)
            started = time.perf_counter()
            decoded = [
                _conform(batch, union)
                for batch in f.iter_batches(
                    batch_size=batch_rows_within_budget(ctx, f.metadata, groups, share.columns),
                    row_groups=groups,
                    columns=list(share.columns),
                    use_threads=False,
                )
            ]
            metrics.decode_seconds += time.perf_counter() - started
            if share.filter is not None:
                # Every member has this filter: apply it once, hold only what passes.
                decoded = [_filter(share.filter, batch, union) for batch in decoded]
            return decoded

        footers: dict[str, pq.FileMetaData] = {}
        for split in splits:
            footer = footers.get(split.path)
            if footer is None:
                try:
                    footer = footers[split.path] = source.footer(split.path)
                except (OSError, pa.ArrowInvalid) as err:
                    raise ExecutionError(f"cannot open {split.path}: {err}") from err
            groups = [
                rg
                for rg in (split.row_groups or range(footer.num_row_groups))
                if self.row_group_may_match(footer, rg)
            ]
            key = (split.path, tuple(groups))
            own_decode = False
            if self.join_filters and groups:
                kept = [rg for rg in groups if self._join_filters_may_match(ctx, footer, rg)]
                if len(kept) < len(groups):
                    # This member does not read the row groups the share group counted it
                    # for: the cache must not hold them for it. What it still reads it
                    # decodes itself.
                    cache.skip(key)
                    groups, own_decode = kept, True
            metrics.row_groups_skipped += len(split.row_groups or ()) - len(groups)
            metrics.row_groups_read += len(groups)
            if not groups:
                continue
            if own_decode:
                batches, reused = decode(split, groups), False
            else:
                batches, reused = cache.batches(key, functools.partial(decode, split, groups))
            if reused:
                metrics.row_groups_shared += len(groups)
            for batch in batches:
                yield _conform(batch.select(own), target)

    def _join_filters_may_match(self, ctx: TaskContext, metadata: pq.FileMetaData, rg: int) -> bool:
        """False when a published join filter's key range misses the row group's min/max."""
        if not self.join_filters or not ctx.join_filters:
            return True
        facts = footer_facts(metadata)
        by_name = self._source_names
        for filter_id, name in self.join_filters:
            found = ctx.join_filters.get(filter_id)
            if found is None:
                continue
            if found.empty:
                return False
            index = facts.positions.get(by_name[name])
            if index is None:
                continue
            bounds = facts.min_max(rg, index)
            if bounds is not None and not found.may_overlap(*bounds):
                return False
        return True

    @cached_property
    def _source_names(self) -> dict[str, str]:
        """Output column name → the source column it reads."""
        return dict(zip(self.names, self.columns, strict=True))

    @cached_property
    def _bounds(self) -> list[tuple[str, str, Any]]:
        """``(source column, op, literal)`` of each filter conjunct min/max can test."""
        by_name = dict(zip(self.names, self.columns, strict=True))
        found = []
        for conj in conjuncts(self.filter):
            bound = _column_bound(conj)
            if bound is not None and bound[0] in by_name:
                found.append((by_name[bound[0]], bound[1], bound[2]))
        return found

    def row_group_may_match(self, metadata: pq.FileMetaData, rg: int) -> bool:
        """False when min/max statistics prove no row of the group passes the filter."""
        if not self._bounds:
            return True
        facts = footer_facts(metadata)
        for column, op, value in self._bounds:
            index = facts.positions.get(column)
            if index is None:
                continue
            bounds = facts.min_max(rg, index)
            if bounds is None:
                continue
            lo, hi = bounds
            try:
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


# A join filter that has kept at least this share of the rows of its first
# ``_JUDGE_ROWS`` rows is dropped for the rest of the task: it costs what it saves.
_USELESS_KEPT_SHARE = 0.9
_JUDGE_ROWS = 1 << 19


class _JoinFiltering:
    """One scan task's application of the join filters published so far, batch by
    batch: the filter that has kept the smallest share of its rows goes first, and a
    mask that keeps most rows is ANDed with the next one instead of copying the batch
    (Q21's lineitem scan: ``l_suppkey`` keeps 4%, ``l_orderkey`` half; Q8's three
    filters). A filter that drops little is stopped after a while."""

    def __init__(self, targets: tuple[tuple[str, str], ...], ctx: TaskContext):
        self._targets = targets
        self._ctx = ctx
        self._seen: dict[str, int] = {}
        self._kept: dict[str, int] = {}
        self._stopped: set[str] = set()

    def _share_kept(self, target: tuple[str, str]) -> float:
        seen = self._seen.get(target[0], 0)
        return self._kept.get(target[0], 0) / seen if seen else 0.0

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        published = self._ctx.join_filters
        if not published:
            return batch
        pending: npt.NDArray[np.bool_] | None = None  # ANDed masks not applied yet
        for filter_id, name in sorted(self._targets, key=self._share_kept):
            found = published.get(filter_id)
            if found is None or filter_id in self._stopped or not batch.num_rows:
                continue
            rows = batch.num_rows
            mask = found.mask(batch.column(name))
            kept = rows if mask is None else int(np.count_nonzero(mask))
            seen = self._seen[filter_id] = self._seen.get(filter_id, 0) + rows
            total = self._kept[filter_id] = self._kept.get(filter_id, 0) + kept
            if seen >= _JUDGE_ROWS and total >= _USELESS_KEPT_SHARE * seen:
                self._stopped.add(filter_id)
            if mask is None:
                continue
            pending = mask if pending is None else np.logical_and(pending, mask, out=mask)
            if 2 * int(np.count_nonzero(pending)) <= rows:
                # Selective so far: copy the rows now, the next filters see fewer.
                batch, pending = batch.filter(pa.array(pending)), None
        return batch if pending is None else batch.filter(pa.array(pending))


_FLIP = {
    "less": "greater",
    "less_equal": "greater_equal",
    "greater": "less",
    "greater_equal": "less_equal",
    "equal": "equal",
}


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


# At most this many key-value combinations are hashed to find the shards to read.
_MAX_PRUNING_COMBINATIONS = 4096


def _pruned_shards(
    source: TableSource, columns: tuple[str, ...], names: tuple[str, ...], filter: Expr | None
) -> set[int] | None:
    """The shards that can hold rows passing ``filter``, or None when all can."""
    layout = source.layout
    if layout is None or filter is None:
        return None
    column_of = dict(zip(names, columns, strict=True))
    position = {k: i for i, k in enumerate(layout.keys)}
    allowed: list[list[Any] | None] = [None] * len(layout.keys)
    for conj in conjuncts(filter):
        found = _key_values(conj)
        if found is None:
            continue
        name, values = found
        i = position.get(column_of.get(name, ""))
        if i is None:
            continue
        prior = allowed[i]
        allowed[i] = values if prior is None else [v for v in prior if _contains(values, v)]
    if any(a is None for a in allowed):
        return None
    pinned = [a for a in allowed if a is not None]
    if math.prod(len(a) for a in pinned) > _MAX_PRUNING_COMBINATIONS:
        return None
    key_types = [source.schema.field(k).type for k in layout.keys]
    return shards_for_values(layout, key_types, pinned)


def _contains(values: list[Any], v: Any) -> bool:
    return any(
        v is None and w is None or v is not None and w is not None and v == w for w in values
    )


def _key_values(e: Expr) -> tuple[str, list[Any]] | None:
    """``(column, values)`` when ``e`` holds only if the column is one of ``values``.

    ``None`` in values stands for SQL NULL (from ``IS NULL``); ``= NULL`` matches nothing.
    """
    if isinstance(e, Call) and e.fn == "equal" and len(e.args) == 2:
        a, b = e.args
        if isinstance(a, Literal):
            a, b = b, a
        name = _key_column(a)
        if name is None or not isinstance(b, Literal):
            return None
        return name, [] if b.value is None else [b.value]
    if isinstance(e, InList) and not e.negated:
        name = _key_column(e.arg)
        if name is None:
            return None
        return name, [v.value for v in e.values if v.value is not None]
    if isinstance(e, Call) and e.fn == "is_null" and len(e.args) == 1:
        name = _key_column(e.args[0])
        return None if name is None else (name, [None])
    if isinstance(e, Call) and e.fn == "or" and len(e.args) == 2:
        left, right = _key_values(e.args[0]), _key_values(e.args[1])
        if left is None or right is None or left[0] != right[0]:
            return None
        return left[0], left[1] + [v for v in right[1] if not _contains(left[1], v)]
    return None


def _key_column(e: Expr) -> str | None:
    """The column ``e`` reads, when equality on ``e`` is equality on the column's value.

    A plain column, or a widening cast within integers or within decimals (what the binder
    puts on a column compared with a wider literal): such casts keep every value exactly,
    so the literal converted back to the column's type hashes like the matching rows. A
    narrowing cast (``CAST(d AS DECIMAL(4,1)) = 12.5``) may map several values to one and
    is never used for pruning.
    """
    if isinstance(e, ColumnRef):
        return e.name
    if isinstance(e, Cast) and isinstance(e.arg, ColumnRef) and _widens(e.arg.type, e.type):
        return e.arg.name
    return None


def _widens(src: pa.DataType, dst: pa.DataType) -> bool:
    """Does every value of ``src`` convert exactly (and distinctly) to ``dst``?"""
    if pa.types.is_integer(src) and pa.types.is_integer(dst):
        src_signed, dst_signed = pa.types.is_signed_integer(src), pa.types.is_signed_integer(dst)
        if src_signed == dst_signed:
            return bool(dst.bit_width >= src.bit_width)
        return bool(dst_signed and dst.bit_width > src.bit_width)
    if pa.types.is_decimal(src) and pa.types.is_decimal(dst):
        return bool(
            dst.scale >= src.scale and dst.precision - dst.scale >= src.precision - src.scale
        )
    return False


def _conform(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """Cast to the engine's types and rename to internal names (positional).

    Dictionary-decoded columns (see ``_open_parquet``) stay dictionaries here: the
    filter can judge them by their few distinct values, and ``_materialize`` turns
    them into plain arrays only for the rows that pass.
    """
    columns = [
        col if col.type == f.type or pa.types.is_dictionary(col.type) else col.cast(f.type)
        for col, f in zip(batch.columns, target, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, names=target.names)


def _materialize(
    batch: pa.RecordBatch,
    target: pa.Schema,
    only: set[str] | None = None,
    keep: frozenset[str] = frozenset(),
) -> pa.RecordBatch:
    """Dictionary columns (all, or those named in ``only``; never those in ``keep``) as
    plain arrays of the target type, by one ``take`` from their dictionary. The result
    has exactly the target schema unless some dictionaries were left in place."""
    columns = []
    encoded = False
    for col, f in zip(batch.columns, target, strict=True):
        if pa.types.is_dictionary(col.type):
            if f.name in keep or (only is not None and f.name not in only):
                encoded = True
            else:
                col = col.dictionary.take(col.indices)
                col = col if col.type == f.type else col.cast(f.type)
        columns.append(col)
    if encoded:
        return pa.RecordBatch.from_arrays(columns, names=target.names)
    return pa.RecordBatch.from_arrays(columns, schema=target)


def _filter(predicate: Expr, batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """Rows of ``batch`` passing ``predicate``; dictionary columns may stay encoded.

    A conjunct over one dictionary column alone (``l_shipmode IN ('MAIL', 'SHIP')``)
    is evaluated on the dictionary's values and its verdicts gathered by index. The
    other conjuncts see plain arrays. A predicate that can fail on some rows keeps
    the ordered, row-guarded evaluation of ``filter_batch``: it must not be tried on
    dictionary values no row holds.
    """
    encoded = {f.name for f in batch.schema if pa.types.is_dictionary(f.type)}
    if not encoded or may_raise(predicate):
        return filter_batch(predicate, _materialize(batch, target))
    masks: list[pa.Array] = []
    rest: list[Expr] = []
    for part in conjuncts(predicate):
        columns = part.columns()
        if len(columns) == 1 and next(iter(columns)) in encoded:
            masks.append(_judge_dictionary(part, batch.column(next(iter(columns))), target))
        else:
            rest.append(part)
    remaining = conjoin(rest)
    if remaining is None:
        return _keep(batch, masks)
    if masks:
        mask = _all_of(masks)
        if (pc.sum(mask).as_py() or 0) <= _EARLY_FILTER_SHARE * batch.num_rows:
            # The dictionary conjuncts are cheap and often selective (Q19 keeps 7% of
            # the rows with them): the other conjuncts only see the rows they kept.
            batch = _keep(batch, [mask])
            masks = []
        else:
            # They keep most rows (Q12's two ship modes of seven keep 28%): copying
            # every column twice costs more than judging the rest on every row.
            masks = [mask]
    if not batch.num_rows:
        return batch
    plain = _materialize(batch, target, remaining.columns() & encoded)
    return _keep(batch, [*masks, evaluate_predicate(remaining, plain)])


# Filter by the dictionary conjuncts first when they keep at most this share of the
# rows; above it, every conjunct is judged on the whole batch and the rows are copied once.
_EARLY_FILTER_SHARE = 0.25


def _all_of(masks: list[pa.Array]) -> pa.Array:
    """The AND of boolean masks, NULL counting as false."""
    mask = masks[0]
    for m in masks[1:]:
        mask = pc.and_kleene(mask, m)
    return pc.fill_null(mask, False) if mask.null_count else mask


def _keep(batch: pa.RecordBatch, masks: list[pa.Array]) -> pa.RecordBatch:
    """The rows every mask holds true for (NULL counts as false)."""
    mask = _all_of(masks)
    return batch if pc.all(mask).as_py() else batch.filter(mask)


def _judge_dictionary(part: Expr, column: pa.DictionaryArray, target: pa.Schema) -> pa.Array:
    """``part`` (over this column only) per row, evaluated once per distinct value; a
    NULL verdict comes out false (the row is dropped either way)."""
    (name,) = part.columns()
    values = column.dictionary
    wanted = target.field(name).type
    values = values if values.type == wanted else values.cast(wanted)
    indices = column.indices
    if indices.null_count:
        # NULL rows have NULL indices: judge NULL once too (``IS NULL`` holds for it).
        values = pa.concat_arrays([values, pa.nulls(1, wanted)])
        indices = indices.fill_null(len(values) - 1)
    verdicts = evaluate_array(part, pa.RecordBatch.from_arrays([values], names=[name]))
    if verdicts.null_count:
        verdicts = pc.fill_null(verdicts, False)
    # numpy's gather of one byte per row: Arrow's ``take`` of a boolean array by index
    # works bit by bit and cost Q12 more than the rest of its filter.
    table = verdicts.to_numpy(zero_copy_only=False)
    return pa.array(table[indices.to_numpy()], pa.bool_())


# A string column chunk averaging fewer uncompressed bytes per row than this holds
# dictionary indices, not values: the writer kept it dictionary-encoded throughout.
_DICTIONARY_BYTES_PER_ROW = 4.0


def _open_parquet(
    source: ParquetSource, path: str, columns: tuple[str, ...], target: pa.Schema
) -> pq.ParquetFile:
    """The file, set to decode low-cardinality string columns as dictionaries.

    Why: decoding a dictionary-encoded column into ``string_view`` (what tpchgen and
    other Arrow writers record) and casting it to ``string`` costs 3-8x more than
    reading its indices and taking from the small dictionary. Columns that fell back
    to plain encoding (comments, names) would pay to build a dictionary, so only
    chunks that stayed small per row are read this way, judged from the footer.
    """
    metadata = source.footer(path)
    wanted = [c for c, f in zip(columns, target, strict=True) if pa.types.is_string(f.type)]
    dictionary = _low_cardinality_columns(metadata, tuple(wanted)) if wanted else []
    # Local files open by path as before; object-store files through a ranged reader.
    # Pages are read through a small buffer instead of pre-buffering whole column
    # chunks: a 1M-row row group of wide strings otherwise sits in memory raw and
    # decompressed at once per task, outside any reservation (a scan of 1.5 GB of
    # strings peaked at 1.8 GB RSS with pre-buffering, 0.4 GB without).
    handle = path if source.filesystem is None else source.open(path)
    return pq.ParquetFile(
        handle,
        metadata=metadata,
        read_dictionary=dictionary or None,
        pre_buffer=False,
        buffer_size=_READ_BUFFER_BYTES,
    )


_READ_BUFFER_BYTES = 4 << 20
# A decoded batch may take at most this share of the query's memory budget.
_BATCHES_PER_BUDGET = 64
# ...but keeps at least this many rows: below it every operator above pays its per-batch
# cost on a few hundred rows (a 3 MiB budget made batches of ~600 rows of TPC-H orders,
# and SF 0.1's Q13 twice as slow), for memory that only a budget of a few MiB notices.
_MIN_BATCH_ROWS = 4096


def batch_rows_within_budget(
    ctx: TaskContext, metadata: pq.FileMetaData, groups: list[int], columns: Iterable[str]
) -> int:
    """``batch_rows``, or fewer when rows this wide would make one decoded batch more
    than 1/64 of the memory budget.

    Why: the batch a scan decodes, the reader's buffers behind it and the copy an
    exchange's split makes are in flight outside any reservation, about three batches
    per producing task. Under a small budget (512 MiB over rows of ~125 bytes: 16 MiB
    batches) that was 150 MiB beyond what the pool knew. The width comes from the
    footer (uncompressed column chunk sizes); under the default budget no TPC-H or
    TPC-DS row is wide enough to change anything. A dictionary-encoded column counts
    at its encoded size, less than it decodes to: the cap then bites less.
    """
    rows = ctx.settings.batch_rows
    cap = ctx.settings.memory_limit // _BATCHES_PER_BUDGET
    # First the row groups' whole size (every column): reading per-column figures costs
    # ~40 µs a column chunk, too much to pay on every split when nothing is near the cap.
    heads = [metadata.row_group(rg) for rg in groups]
    total_rows = sum(g.num_rows for g in heads)
    if not total_rows or sum(g.total_byte_size for g in heads) * rows <= cap * total_rows:
        return rows
    wanted = set(columns)
    width = 0
    for group in heads:
        for i in range(group.num_columns):
            chunk = group.column(i)
            if chunk.path_in_schema.split(".")[0] in wanted:
                width += chunk.total_uncompressed_size
    if width * rows <= cap * total_rows:
        return rows
    return max(_MIN_BATCH_ROWS, cap * total_rows // width)


def _low_cardinality_columns(metadata: pq.FileMetaData, wanted: tuple[str, ...]) -> list[str]:
    """The ``wanted`` string columns whose chunks stayed dictionary-encoded, judged by
    their uncompressed bytes per row."""
    known = footer_facts(metadata).dictionary_choice
    if wanted in known:
        return known[wanted]
    sizes: dict[str, int] = {}
    for rg in range(metadata.num_row_groups):
        group = metadata.row_group(rg)
        for i in range(group.num_columns):
            chunk = group.column(i)
            name = chunk.path_in_schema
            if name in wanted and chunk.has_dictionary_page:
                sizes[name] = sizes.get(name, 0) + chunk.total_uncompressed_size
    rows = max(metadata.num_rows, 1)
    chosen = [name for name, size in sizes.items() if size / rows < _DICTIONARY_BYTES_PER_ROW]
    known[wanted] = chosen
    return chosen


__all__ = ["ScanExec", "assign_splits", "conjoin", "scan_task_count"]
