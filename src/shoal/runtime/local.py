"""The local runtime (the embedded default): every task a thread in this process.

All tasks of all stages start together and stream through pipelined exchanges,
so a stage's consumer runs while its producer still produces. Threads are cheap
while they wait; what is bounded is how many tasks *compute* at once
(``max_running_tasks`` CPU slots, default: the core count). A task gives up its
slot whenever it blocks on an exchange, so waiting never holds a slot and
bounded buffers cannot deadlock the pool. pyarrow kernels are called with their
own threading off inside operators, so tasks don't oversubscribe the cores.

The root stage's tasks write into a bounded result channel that the caller's
thread reads (``QueryRun.batches``): results stream to the caller as they are
made, and a caller that stops reading holds the query back (backpressure).

A failing task cancels the query: every other task is woken and stops, all
threads are joined, and the first root cause is raised, naming stage and task.
The caller can cancel too (``QueryRun.cancel``, a timeout, or Ctrl-C while it
waits for the next batch); it then gets ``QueryCancelledError``,
``QueryTimeoutError`` or ``QueryInterruptedError``.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Sequence

import pyarrow as pa

from shoal.errors import (
    ExecutionError,
    InternalError,
    QueryCancelledError,
    QueryInterruptedError,
    QueryTimeoutError,
    ShoalError,
    TransientError,
    UnsupportedError,
    UserError,
)
from shoal.exchange.channel import Channel
from shoal.exchange.local import LocalExchange
from shoal.memory.allocator import retained_bytes
from shoal.memory.pool import HolderKind, MemoryPool, release_if_above
from shoal.memory.spill import SpillSpace
from shoal.metrics.operator import OperatorMetrics
from shoal.metrics.progress import ProgressListener, StageShape
from shoal.metrics.query import QueryMetrics, StageMetrics
from shoal.metrics.task import TaskFigures
from shoal.physical.context import Settings
from shoal.recursion import start_thread
from shoal.runtime.faults import Fault
from shoal.runtime.filters import RuntimeFilters, StageFilters
from shoal.runtime.shared import SharedValues
from shoal.runtime.slots import TaskSlots
from shoal.runtime.task import TaskServices, run_fragment, stage_filter_ids
from shoal.stages.graph import Stage, StageGraph


class LocalRuntime:
    def __init__(self, settings: Settings):
        self.settings = settings

    def start(
        self,
        graph: StageGraph,
        timeout: float | None = None,
        faults: Sequence[Fault] = (),
        progress: ProgressListener | None = None,
    ) -> QueryRun:
        """Start every task of ``graph``; read the result from the returned run."""
        run = QueryRun(graph, self.settings, timeout, faults, progress)
        run.start()
        return run

    def execute(self, graph: StageGraph) -> tuple[pa.Table, QueryMetrics]:
        run = self.start(graph)
        return run.read_all(), run.metrics


class QueryRun:
    """One running query: its task threads, exchanges and the result channel."""

    def __init__(
        self,
        graph: StageGraph,
        settings: Settings,
        timeout: float | None = None,
        faults: Sequence[Fault] = (),
        progress: ProgressListener | None = None,
    ):
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.graph = graph
        self.settings = settings
        self.timeout = timeout
        self.slots = TaskSlots(settings.max_running_tasks)
        # The query's memory budget and spill folder (memory/): operators, exchange
        # buffers and the result channel reserve from the pool; both are emptied when
        # the query ends, however it ends.
        self.memory = MemoryPool(settings.memory_limit)
        self.spill = SpillSpace(settings.spill_dir)
        # A run dropped without being read or closed still leaves no spill files.
        weakref.finalize(self, self.spill.remove)
        self.shared = SharedValues(self.slots)
        self.filters = RuntimeFilters(self.slots, self.memory)
        self.services = TaskServices(
            self.slots,
            self.shared,
            self.filters,
            memory=self.memory,
            spill=self.spill,
            stage_filters=StageFilters(
                {f: s.num_partitions for s in graph.stages for f in stage_filter_ids(s)},
                self.slots,
            )
            if settings.runtime_filters
            else None,
        )
        self.faults = tuple(faults)
        self.progress = progress
        self.cancel_event = threading.Event()
        # Why the caller stopped the query (cancel, timeout, Ctrl-C); None while it may run.
        self.stop_reason: QueryCancelledError | None = None
        self.errors: list[tuple[Stage, int, BaseException]] = []
        self.lock = threading.Lock()
        self.metrics = QueryMetrics()
        self.exchanges: dict[int, LocalExchange] = {}
        self.threads: list[threading.Thread] = []
        self._timer: threading.Timer | None = None
        self._finished = False
        self._started_at = 0.0
        root = graph.root
        self.results = Channel(
            settings.exchange_buffer_bytes,
            root.num_partitions,
            self.cancel_event.is_set,
            self.slots,
            self.memory.reservation("ResultBuffer", root.id, kind=HolderKind.BUFFER),
        )
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
                    self.memory,
                    readers=stage.readers,
                )

    @property
    def schema(self) -> pa.Schema:
        return self.graph.root.fragment.schema

    @property
    def finished(self) -> bool:
        return self._finished

    def start(self) -> None:
        self._started_at = time.perf_counter()
        if self.progress is not None:
            shapes = [StageShape(s.id, s.num_partitions, s.inputs) for s in self.graph.stages]
            self.progress.query_started(shapes)
        # Consumers first: they park on their inputs without taking a CPU slot. Task
        # threads have big stacks: evaluating a deeply nested expression recurses.
        for stage in reversed(self.graph.stages):
            for p in range(stage.num_partitions):
                name = f"shoal-s{stage.id}-t{p}"
                self.threads.append(start_thread(self._task, (stage, p), name=name))
        if self.timeout is not None:
            limit = self.timeout
            self._timer = threading.Timer(
                limit,
                lambda: self.cancel(
                    QueryTimeoutError(f"query stopped: it ran past its timeout of {limit:g} s")
                ),
            )
            self._timer.daemon = True
            self._timer.start()

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The result's batches as the root stage's tasks make them.

        Ends by joining every task and raising the root cause if the query failed or
        was stopped. Ctrl-C while waiting stops the query (``QueryInterruptedError``).
        """
        try:
            while True:
                try:
                    batch = self.results.get(lend_slot=False)
                except QueryCancelledError:
                    break  # a task failed or the caller stopped the query: finish() says why
                if batch is None:
                    break
                self.metrics.result_rows += batch.num_rows
                yield batch
        except KeyboardInterrupt:
            self.cancel(QueryInterruptedError("query interrupted (Ctrl-C)"))
        except GeneratorExit:
            # The caller stopped reading: stop the query quietly.
            self.cancel(QueryCancelledError("query cancelled: the caller closed the result"))
            self._join(raise_errors=False)
            raise
        self._join(raise_errors=True)

    def read_all(self) -> pa.Table:
        return pa.Table.from_batches(list(self.batches()), schema=self.schema)

    def cancel(self, reason: QueryCancelledError | None = None) -> None:
        """Stop every task (from any thread); the reader then raises ``reason``."""
        with self.lock:
            if self.stop_reason is None and not self._finished:
                self.stop_reason = reason or QueryCancelledError("query cancelled by the caller")
        self._cancel()

    def close(self) -> None:
        """Stop the query if it still runs and wait for its tasks; raises nothing."""
        if not self._finished:
            self.cancel(QueryCancelledError("query cancelled: the caller closed the result"))
            self._join(raise_errors=False)

    def _join(self, raise_errors: bool) -> None:
        if not self._finished:
            while True:
                try:
                    for th in self.threads:
                        th.join()
                    break
                except KeyboardInterrupt:
                    # Ctrl-C again while tasks wind down: keep stopping, keep waiting.
                    self.cancel(QueryInterruptedError("query interrupted (Ctrl-C)"))
            if self._timer is not None:
                self._timer.cancel()
            self.metrics.elapsed = time.perf_counter() - self._started_at
            self.metrics.result_buffer_high_water_bytes = self.results.high_water_bytes
            for sid, ex in self.exchanges.items():
                self.metrics.exchanges[sid] = ex.finish_metrics()
            # Every task has ended: nothing can use the spill files or reservations.
            self.spill.remove()
            self.memory.free_all()
            # Freed pages stay for the next query unless the process holds much.
            release_if_above(retained_bytes(self.memory.limit))
            self.metrics.memory_limit_bytes = self.memory.limit
            self.metrics.peak_reserved_bytes = self.memory.peak
            self.metrics.spilled_bytes = self.spill.bytes
            self.metrics.spill_files = self.spill.files
            self.metrics.peak_rss_bytes = _peak_rss_bytes()
            self._finished = True
            if self.progress is not None:
                self.progress.query_finished()
        if raise_errors and (self.errors or self.stop_reason is not None):
            self._raise_root_cause()

    def _task(self, stage: Stage, partition: int) -> None:
        out = self.exchanges.get(stage.id)
        rr = [partition]
        progress = self.progress
        emitted = [0, 0]  # rows, bytes

        def write(batch: pa.RecordBatch) -> None:
            if progress is not None:
                emitted[0] += batch.num_rows
                emitted[1] += batch.nbytes
                progress.task_output(stage.id, partition, batch.num_rows, batch.nbytes)
            if out is not None:
                out.write(partition, batch, rr)
            elif batch.num_rows:
                self.results.put(batch)

        inputs = {sid: self.exchanges[sid].reader(partition) for sid in stage.inputs}
        operators: dict[int, OperatorMetrics] = {}
        figures = TaskFigures(partition)
        failed = False
        self.slots.acquire()
        started = time.perf_counter()
        if progress is not None:
            progress.task_started(stage.id, partition)
        try:
            run_fragment(
                stage,
                partition,
                0,
                self.settings,
                inputs,
                write,
                self.cancel_event.is_set,
                self.services,
                self.faults,
                shares_across_tasks=True,
                metrics=operators,
                figures=figures,
            )
        except BaseException as err:  # noqa: BLE001 - every failure must cancel the query
            failed = True
            with self.lock:
                self.errors.append((stage, partition, err))
            self._cancel()
        finally:
            # A failed producer is not an ended one: its consumers must not take what
            # they got for the whole stream.
            if out is not None:
                out.close(partition, failed=failed)
            else:
                self.results.close(failed=failed)
            self.slots.release()
            if progress is not None:
                progress.task_finished(stage.id, partition, emitted[0], emitted[1])
            with self.lock:
                sm = self.metrics.stages[stage.id]
                sm.attempts += 1
                sm.attempts_per_task[partition] = 1
                sm.workers[partition] = f"local:{threading.current_thread().name}"
                sm.elapsed = max(sm.elapsed, time.perf_counter() - started)
                sm.task_figures[partition] = figures
                for key, m in operators.items():
                    sm.operators.setdefault(key, OperatorMetrics()).merge(m)

    def _cancel(self) -> None:
        self.cancel_event.set()
        for ex in self.exchanges.values():
            ex.wake_all()
        self.results.wake()

    def _raise_root_cause(self) -> None:
        # The root cause is the first error that is not a consequence of cancelling.
        real = [e for e in self.errors if not isinstance(e[2], QueryCancelledError)]
        if not real and self.stop_reason is not None:
            raise self.stop_reason
        stage, partition, err = (real or self.errors)[0]
        self.metrics.stages[stage.id].failed_attempts += 1
        if isinstance(err, UserError):
            raise err
        if isinstance(err, ExecutionError) and err.stage is not None:
            raise err
        where = f"stage {stage.id}, task {partition}, attempt 0"
        if isinstance(err, RecursionError):
            raise UnsupportedError(
                f"expressions nested more deeply than shoal can evaluate ({where})"
            ) from err
        if not isinstance(err, (ExecutionError, *DATA_ERRORS)):
            # Not a failure the data can cause (a TypeError, a missing Arrow kernel…).
            raise InternalError.wrapping(where, err) from err
        message = str(err) if isinstance(err, ExecutionError) else f"{type(err).__name__}: {err}"
        if isinstance(err, TransientError | InternalError) or not isinstance(err, ShoalError):
            # What retry_policy="task" would have re-run.
            message += " (not retried: retry_policy='none')"
        # Keep the subclass (InvalidDataError, TransientError …): callers map error classes
        # to meanings (the DB-API's DataError, the retry rules).
        cls = type(err) if isinstance(err, ExecutionError) else ExecutionError
        worker = self.metrics.stages[stage.id].workers.get(partition)
        raise cls(
            message, stage=stage.id, partition=partition, attempt=0, attempts=1, worker=worker
        ) from err


#: Exceptions that values in the data can provoke inside a kernel (an overflow, a
#: string that does not cast, an out-of-range date): execution errors, not bugs.
DATA_ERRORS = (pa.ArrowInvalid, pa.ArrowIndexError, OverflowError, MemoryError)


def _peak_rss_bytes() -> int:
    """The process's peak resident set so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
