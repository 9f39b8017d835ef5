"""What a running task can see: its partition, its inputs, its settings, its metrics.

The runtime builds one ``TaskContext`` per task. Operators read exchange inputs
through it, report metrics into it, and take their memory reservations and spill
files from the query's pool and spill folder through it; they hold no other
shared state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from shoal.errors import QueryCancelledError
from shoal.exchange_spec import RetryPolicy
from shoal.memory.pool import MemoryPool, Reservation
from shoal.memory.size import default_memory_limit
from shoal.memory.spill import SpillSpace
from shoal.metrics.operator import OperatorMetrics

if TYPE_CHECKING:
    from shoal.physical.operators.join_filter import JoinKeyFilter
    from shoal.physical.plan import PhysicalPlan


@dataclass(frozen=True)
class Settings:
    """Per-query execution settings (plain data; travels with tasks)."""

    partitions: int = 2
    batch_rows: int = 1 << 17
    # Per destination (and the result's buffer). A couple of batches: more adds
    # memory (64 MiB per destination peaked TPC-H SF 1 far above DuckDB), not speed.
    exchange_buffer_bytes: int = 16 << 20
    max_running_tasks: int = 2
    # A join whose build side is estimated below this is broadcast, else both sides repartition.
    broadcast_threshold_bytes: int = 32 << 20
    # A scan runs as min(partitions, its splits) tasks, but past two tasks per CPU slot no
    # more than one per scan_task_min_bytes it decodes (rows x the width of the columns it
    # reads): at a high partition count a small table is not cut into tiny tasks; 0: no limit.
    scan_task_min_bytes: int = 16 << 20
    # Row groups decoded by one scan and held for the other scans of the same source in
    # the query (operators/scan_share.py), at most this many bytes at a time; 0: off.
    # 64 MiB had Q17, Q18 and Q21 (SF 1) decode 303 lineitem row groups, 128 MiB 209,
    # 256 MiB 172: each re-decode is CPU make bench pays, for tens of MB of peak RSS.
    scan_share_bytes: int = 256 << 20
    # What a runtime filter holds while its keys are not yet known (operators/
    # runtime_filter.py); past it the filter waits for them. 64 MiB set TPC-H SF 1's
    # peak RSS at Q21 (~690 MB, two filters on lineitem; 32 MiB: ~645).
    runtime_filter_hold_bytes: int = 32 << 20
    # "none": pipelined exchanges, a failure fails the query; "task": materialized
    # exchanges (written to ``spool``) and transient task failures re-run the task alone.
    retry_policy: RetryPolicy = RetryPolicy.NONE
    # Re-runs a failing task gets under retry_policy="task" (so task_retries + 1 attempts).
    task_retries: int = 3
    # Wait before re-run k (k = 1, 2, ...): retry_backoff_seconds * 2 ** (k - 1).
    retry_backoff_seconds: float = 0.05
    # Where materialized exchanges are written: a folder or a pyarrow filesystem URI
    # (s3://bucket/prefix); None: the system temp folder.
    spool: str | None = None
    # Runtime filters (rules/enforce_distribution.py); a materialized query has none.
    runtime_filters: bool = True
    # Adaptive decisions of a materialized query (scheduler/adaptive.py), taken after a
    # stage commits from its exchange's measured rows and bytes per destination:
    # a repartition join whose build side measured below broadcast_threshold_bytes
    # becomes a broadcast join (its probe side is then not shuffled);
    adaptive_broadcast: bool = True
    # consecutive small partitions are read by one task, about coalesce_target_bytes each;
    adaptive_coalesce: bool = True
    coalesce_target_bytes: int = 64 << 20
    # a join partition whose probe side holds more than skew_factor x the median rows
    # and at least skew_min_bytes is split into sub-tasks (each a slice of the probe side
    # against the whole build partition).
    skew_join: bool = True
    skew_factor: float = 4.0
    skew_min_bytes: int = 8 << 20
    # A partial hash aggregate whose input does not shrink (high cardinality) passes its
    # rows through ungrouped but pre-aggregates the hot keys it finds (heavy hitters), so
    # no final task gets a hot key's rows raw (operators/aggregate.py); False: every
    # partial aggregate groups all its input, chunk by chunk.
    hot_key_aggregate: bool = True
    # A CTE read more than once (and joining / aggregating) is computed once for all its
    # readers (sql/ctes.py, physical/shared.py); False: each reference computes its own.
    share_ctes: bool = True
    # Join filters (rules/join_filters.py): a hash join's build keys filter the scan
    # below its probe side, in the same task.
    join_filters: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "retry_policy", RetryPolicy(self.retry_policy))

    # The query's memory budget in bytes (memory/pool.py); operators that hold state
    # spill or fail with ResourceExhaustedError past it. Default: 60% of physical memory.
    memory_limit: int = field(default_factory=default_memory_limit)
    # Where spill folders go (one per query, removed when it ends); None: the temp folder.
    spill_dir: str | None = None


@dataclass
class TaskContext:
    stage_id: int
    partition: int
    num_partitions: int
    attempt: int
    settings: Settings
    # stage id -> function returning the iterator of batches addressed to this task
    exchange_inputs: dict[int, Callable[[], Iterator[pa.RecordBatch]]] = field(default_factory=dict)
    metrics: dict[int, OperatorMetrics] = field(default_factory=dict)
    operator_ids: dict[int, int] = field(default_factory=dict)
    cancelled: Callable[[], bool] = lambda: False
    # (key, make) -> a value computed once per query and process (see runtime/shared.py);
    # without a runtime that shares, every task computes its own.
    shared: Callable[[Hashable, Callable[[], Any]], Any] = lambda key, make: make()
    # Whether another task is making ``key``'s shared value right now.
    shared_pending: Callable[[Hashable], bool] = lambda key: False
    # Runtime filters (runtime/filters.py): a join task publishes its partition of the
    # keys; a filter polls for (or waits for) all ``sources`` partitions combined.
    # Without a runtime that carries them: nothing is published and filters pass
    # everything.
    publish_filter: Callable[[str, int, list[pa.Array]], None] = lambda fid, part, keys: None
    poll_filter: Callable[[str, int], Any] = lambda fid, sources: None
    wait_filter: Callable[[str, int], Any] = lambda fid, sources: None
    # A publishing task that will not publish (its side spilled): the filter passes all.
    withdraw_filter: Callable[[str, int], None] = lambda fid, part: None
    # Work ahead of need (a filter's input read before its keys exist) calls this
    # between batches: the task's CPU slot goes to a task waiting for one, if any
    # (runtime/slots.py).
    yield_slot: Callable[[], None] = lambda: None
    # True when ``shared`` really is shared by all tasks of the stage: scans may then
    # hand out their splits on demand (a split queue) instead of a fixed share each.
    shares_across_tasks: bool = False
    # The query's memory pool and spill folder (one each per query; without a runtime
    # that carries them, an unlimited pool and a folder of this task's own).
    memory: MemoryPool = field(default_factory=MemoryPool)
    spill: SpillSpace = field(default_factory=SpillSpace)
    # Join filters (operators/join_filter.py) published by this task's hash joins once
    # built, by filter id; the scans below their probe sides read them. Task-local,
    # except that a runtime that shares them across stages (runtime/task.py) lets this
    # mapping see the query's stage filters too (``HashJoinExec.stage_filters``).
    join_filters: MutableMapping[str, JoinKeyFilter] = field(default_factory=dict)
    # Stage filters: whether ``filter_id`` is still to be published (a runtime without
    # them: never), and publishing it for every task of the query in this process.
    stage_filter_wanted: Callable[[str], bool] = lambda filter_id: False
    publish_stage_filter: Callable[[str, JoinKeyFilter], None] = lambda filter_id, f: None
    # Every reservation taken through ``reserve``: the runtime frees them when the
    # task ends, however it ends.
    reservations: list[Reservation] = field(default_factory=list)

    def reserve(self, op: PhysicalPlan) -> Reservation:
        """A reservation of the query's pool held by ``op`` in this task."""
        r = self.memory.reservation(
            op.label, self.stage_id, self.partition, self.operator_metrics(op)
        )
        self.reservations.append(r)
        return r

    def free_memory(self) -> None:
        for r in self.reservations:
            r.free()

    def operator_metrics(self, op: PhysicalPlan) -> OperatorMetrics:
        key = self.operator_ids.get(id(op), id(op))
        m = self.metrics.get(key)
        if m is None:
            m = self.metrics[key] = OperatorMetrics()
        return m

    def check_cancelled(self) -> None:
        """Raise ``QueryCancelledError`` once the query is being stopped.

        Every batch passed between operators checks (``run``); a loop that can go long
        without producing a batch calls this itself.
        """
        if self.cancelled():
            raise QueryCancelledError("query cancelled")

    def run(self, op: PhysicalPlan) -> Iterator[pa.RecordBatch]:
        """Execute ``op`` for this task, counting its output rows, batches and time."""
        m = self.operator_metrics(op)
        it = op.execute(self)
        while True:
            start = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                m.elapsed += time.perf_counter() - start
                return
            m.elapsed += time.perf_counter() - start
            self.check_cancelled()
            m.rows_out += batch.num_rows
            m.batches_out += 1
            yield batch
