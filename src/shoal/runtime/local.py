"""The local runtime (the embedded default): every task a thread in this process.

All tasks of all stages start together and stream through pipelined exchanges,
so a stage's consumer runs while its producer still produces. Threads are cheap
while they wait; what is bounded is how many tasks *compute* at once
(``max_running_tasks`` CPU slots, default: the core count). A task gives up its
slot whenever it blocks on an exchange, so waiting never holds a slot and
bounded buffers cannot deadlock the pool. pyarrow kernels are called with their
own threading off inside operators, so tasks don't oversubscribe the cores.

A failing task cancels the query: every other task is woken and stops, all
threads are joined, and the first root cause is raised, naming stage and task.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pyarrow as pa

from shoal.errors import (
    ExecutionError,
    InternalError,
    QueryCancelledError,
    ShoalError,
    UnsupportedError,
)
from shoal.exchange.local import LocalExchange
from shoal.metrics.exchange import ExchangeMetrics
from shoal.metrics.operator import OperatorMetrics
from shoal.physical.context import Settings, TaskContext
from shoal.physical.operators.hash_join import HashJoinExec
from shoal.recursion import deep_recursion, start_thread
from shoal.runtime.filters import RuntimeFilters
from shoal.runtime.shared import SharedValues
from shoal.stages.graph import Stage, StageGraph


@dataclass
class StageMetrics:
    stage_id: int
    tasks: int
    attempts: int = 0
    failed_attempts: int = 0
    elapsed: float = 0.0
    operators: dict[int, OperatorMetrics] = field(default_factory=dict)


@dataclass
class QueryMetrics:
    elapsed: float = 0.0
    stages: dict[int, StageMetrics] = field(default_factory=dict)
    exchanges: dict[int, ExchangeMetrics] = field(default_factory=dict)  # by producer stage


class TaskSlots:
    """At most ``n`` tasks compute at once; a blocked task lends its slot out."""

    def __init__(self, n: int):
        self._sem = threading.Semaphore(max(1, n))

    def acquire(self) -> None:
        self._sem.acquire()

    def release(self) -> None:
        self._sem.release()


class LocalRuntime:
    def __init__(self, settings: Settings):
        self.settings = settings

    def execute(self, graph: StageGraph) -> tuple[pa.Table, QueryMetrics]:
        run = _QueryRun(graph, self.settings)
        # Evaluating a deeply nested expression recurses as deep as binding it did.
        with deep_recursion():
            return run.run()


class _QueryRun:
    def __init__(self, graph: StageGraph, settings: Settings):
        self.graph = graph
        self.settings = settings
        self.slots = TaskSlots(settings.max_running_tasks)
        self.shared = SharedValues(self.slots)
        self.filters = RuntimeFilters(self.slots)
        self.cancel_event = threading.Event()
        self.errors: list[tuple[Stage, int, BaseException]] = []
        self.lock = threading.Lock()
        self.metrics = QueryMetrics()
        self.exchanges: dict[int, LocalExchange] = {}
        root = graph.root
        self.results: list[list[pa.RecordBatch]] = [[] for _ in range(root.num_partitions)]
        for stage in graph.stages:
            self.metrics.stages[stage.id] = StageMetrics(stage.id, stage.num_partitions)
            if stage.output is not None:
                self.exchanges[stage.id] = LocalExchange(
                    stage.output,
                    stage.fragment.schema,
                    stage.num_partitions,
                    stage.id,
                    stage.consumer,
                    settings.exchange_buffer_bytes,
                    self.cancel_event.is_set,
                    self.slots,
                )

    def run(self) -> tuple[pa.Table, QueryMetrics]:
        start = time.perf_counter()
        threads: list[threading.Thread] = []
        try:
            # Consumers first: they park on their inputs without taking a CPU slot.
            for stage in reversed(self.graph.stages):
                for p in range(stage.num_partitions):
                    threads.append(
                        start_thread(self._task, (stage, p), name=f"shoal-s{stage.id}-t{p}")
                    )
            for th in threads:
                th.join()
        except BaseException:
            # KeyboardInterrupt in the driver: stop every task before leaving.
            self._cancel()
            for th in threads:
                th.join()
            raise
        self.metrics.elapsed = time.perf_counter() - start
        for sid, ex in self.exchanges.items():
            self.metrics.exchanges[sid] = ex.finish_metrics()
        if self.errors:
            self._raise_root_cause()
        root = self.graph.root
        batches = [b for part in self.results for b in part]
        table = pa.Table.from_batches(batches, schema=root.fragment.schema)
        return table, self.metrics

    def _task(self, stage: Stage, partition: int) -> None:
        ctx = TaskContext(
            stage_id=stage.id,
            partition=partition,
            num_partitions=stage.num_partitions,
            attempt=0,
            settings=self.settings,
            exchange_inputs={sid: self.exchanges[sid].reader(partition) for sid in stage.inputs},
            cancelled=self.cancel_event.is_set,
            shared=self.shared.get,
            shared_pending=self.shared.pending,
            publish_filter=self.filters.publish,
            poll_filter=self.filters.poll,
            wait_filter=lambda fid, sources: self.filters.wait(
                fid, sources, self.cancel_event.is_set
            ),
            shares_across_tasks=True,
        )
        # Operators are keyed by their position in the fragment, so all tasks'
        # figures for one operator land together.
        ctx.operator_ids = {id(op): i for i, op in enumerate(stage.fragment.walk())}
        out = self.exchanges.get(stage.id)
        rr = [partition]
        # Runtime filters this stage's joins publish to: reported on the task's end.
        publishes = [
            op.publishes
            for op in stage.fragment.walk()
            if isinstance(op, HashJoinExec) and op.publishes is not None
        ]
        self.slots.acquire()
        started = time.perf_counter()
        try:
            for batch in ctx.run(stage.fragment):
                if self.cancel_event.is_set():
                    raise QueryCancelledError("query cancelled")
                if out is not None:
                    out.write(partition, batch, rr)
                else:
                    self.results[partition].append(batch)
        except BaseException as err:  # noqa: BLE001 - every failure must cancel the query
            with self.lock:
                self.errors.append((stage, partition, err))
            self._cancel()
        finally:
            for filter_id in publishes:
                self.filters.task_ended(filter_id, partition)
            if out is not None:
                out.close(partition)
            self.slots.release()
            with self.lock:
                sm = self.metrics.stages[stage.id]
                sm.attempts += 1
                sm.elapsed = max(sm.elapsed, time.perf_counter() - started)
                for key, m in ctx.metrics.items():
                    sm.operators.setdefault(key, OperatorMetrics()).merge(m)

    def _cancel(self) -> None:
        self.cancel_event.set()
        for ex in self.exchanges.values():
            ex.wake_all()

    def _raise_root_cause(self) -> None:
        # The root cause is the first error that is not a consequence of cancelling.
        real = [e for e in self.errors if not isinstance(e[2], QueryCancelledError)]
        stage, partition, err = (real or self.errors)[0]
        self.metrics.stages[stage.id].failed_attempts += 1
        if isinstance(err, ShoalError) and not isinstance(err, ExecutionError):
            raise err
        if isinstance(err, ExecutionError) and err.stage is not None:
            raise err
        where = f"stage {stage.id}, task {partition}, attempt 0"
        if isinstance(err, RecursionError):
            raise UnsupportedError(
                f"expressions nested more deeply than shoal can evaluate ({where})"
            ) from err
        if not isinstance(err, (ExecutionError, *_DATA_ERRORS)):
            # Not a failure the data can cause (a TypeError, a missing Arrow kernel…).
            raise InternalError(where, err) from err
        message = str(err) if isinstance(err, ExecutionError) else f"{type(err).__name__}: {err}"
        raise ExecutionError(message, stage=stage.id, partition=partition, attempt=0) from err


#: Exceptions that values in the data can provoke inside a kernel (an overflow, a
#: string that does not cast, an out-of-range date): execution errors, not bugs.
_DATA_ERRORS = (pa.ArrowInvalid, pa.ArrowIndexError, OverflowError, MemoryError)
