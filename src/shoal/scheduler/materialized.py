"""Materialized scheduling: stages run when their inputs are committed; failed tasks re-run.

For a query with ``retry_policy="task"`` every exchange goes through the spool
(``exchange/spool.py``). The scheduler's driver thread owns the stage graph and
tracks every task as (query, stage, partition, attempt)::

    stage ready (all input stages committed) ──submit──▶ executor ──report──▶ commit
          ▲                                                 │ error
          └── next stage whose inputs are now all committed  ▼
                                       retryable and attempts left? ─yes─▶ re-submit
                                                            │ no            (backoff)
                                                            ▼
                                              the query fails: root cause, stage,
                                              task, attempts, worker

A task's first successful report commits its partition; a later report for the
same partition (a zombie) is counted and ignored, and its files are never read:
consumers are handed exactly the committed attempt of each producer partition. A
re-run gets the same description but the attempt number — the same committed
inputs, the same scan splits. The root stage writes to the spool too, so a failed
final task re-runs like any other; its committed partitions are read to the
caller in partition order as they commit.

A stage's tasks are planned when it starts, from what its committed inputs
measured (``scheduler/adaptive.py``): small partitions coalesced, a skewed join
partition split, and a repartition join whose build side turned out small
switched to broadcast (its probe stage, held back until then, fused into the
join stage). ``self.graph`` is then the graph as it runs; EXPLAIN ANALYZE shows
both and every decision.

The spool folder of the query is removed when it ends, however it ends: after
the last batch is read, or when the query fails, times out or is cancelled (once
every attempt has stopped, so no late writer recreates a file).
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from shoal.errors import (
    ExecutionError,
    QueryCancelledError,
    QueryInterruptedError,
    QueryTimeoutError,
    TransientError,
    UserError,
    WorkerLostError,
)
from shoal.exchange.spool import (
    SpoolFile,
    SpoolInput,
    SpoolLocation,
    SpoolWritten,
    create_query_folder,
    read_spooled,
    remove_query_folder,
)
from shoal.exchange_spec import ExchangeKind, ExchangeMode
from shoal.metrics.exchange import ExchangeMetrics
from shoal.metrics.query import QueryMetrics, StageMetrics
from shoal.physical.context import Settings
from shoal.runtime.faults import Fault, faults_for
from shoal.runtime.protocol import Executor, TaskDescription, TaskHandle, TaskReport
from shoal.scheduler.adaptive import (
    BroadcastCandidate,
    ProducerFigures,
    TaskPlan,
    apply_broadcast,
    broadcast_candidates,
    plan_tasks,
    should_switch,
)
from shoal.scheduler.retry import FailureKind, RetryRules, classify
from shoal.stages.graph import Stage, StageGraph

_POLL = 0.05


@dataclass
class TaskBook:
    """Attempt bookkeeping of one query: who committed, how many attempts each task had.

    ``commit`` is the fence: the first report for a (stage, partition) wins, any
    later one is refused.
    """

    committed: dict[tuple[int, int], TaskReport] = field(default_factory=dict)
    attempts: dict[tuple[int, int], int] = field(default_factory=dict)
    # stage -> tasks it runs, once the scheduler planned them (else its partitions)
    counts: dict[int, int] = field(default_factory=dict)

    def tasks(self, stage: Stage) -> int:
        return self.counts.get(stage.id, stage.num_partitions)

    def next_attempt(self, stage: int, partition: int) -> int:
        n = self.attempts.get((stage, partition), 0)
        self.attempts[(stage, partition)] = n + 1
        return n

    def commit(self, report: TaskReport) -> bool:
        key = (report.task.stage, report.task.partition)
        if key in self.committed:
            return False
        self.committed[key] = report
        return True

    def is_committed(self, stage: int, partition: int) -> bool:
        return (stage, partition) in self.committed

    def stage_committed(self, stage: Stage) -> bool:
        return all((stage.id, p) in self.committed for p in range(self.tasks(stage)))

    def figures(self, stage: Stage) -> ProducerFigures:
        """What the committed stage sent, per task and destination (for adaptive plans)."""
        written = [self.committed[(stage.id, p)].written for p in range(self.tasks(stage))]
        return ProducerFigures(
            stage.id,
            tuple(tuple(w.rows_per_destination) for w in written if w is not None),
            tuple(tuple(w.bytes_per_destination) for w in written if w is not None),
        )

    def files(self, stage: Stage) -> tuple[SpoolFile, ...]:
        out = []
        for p in range(self.tasks(stage)):
            written = self.committed[(stage.id, p)].written
            assert written is not None
            out.append(written.file)
        return tuple(out)


_END = object()


class MaterializedRun:
    """One running materialized query: the driver thread, the spool, the result queue.

    Same surface as the pipelined ``QueryRun`` (``batches``, ``read_all``, ``cancel``,
    ``close``, ``metrics``, ``finished``), so the API does not care which it has.
    """

    def __init__(
        self,
        graph: StageGraph,
        settings: Settings,
        executor: Executor,
        timeout: float | None = None,
        faults: Sequence[Fault] = (),
        query_id: str | None = None,
    ):
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.graph = graph
        self.settings = settings
        self.executor = executor
        self.timeout = timeout
        self.faults = tuple(faults)
        self.query_id = query_id or uuid.uuid4().hex[:16]
        self.rules = RetryRules(
            settings.retry_policy, settings.task_retries, settings.retry_backoff_seconds
        )
        self.metrics = QueryMetrics(exchange_mode=ExchangeMode.MATERIALIZED)
        for stage in graph.stages:
            self.metrics.stages[stage.id] = StageMetrics(stage.id, stage.num_partitions)
        self.book = TaskBook()
        # Adaptive re-planning (scheduler/adaptive.py): the joins that may still switch
        # to broadcast (by probe stage), each started stage's tasks.
        self.candidates: dict[int, BroadcastCandidate] = broadcast_candidates(graph, settings)
        self.task_plans: dict[int, list[TaskPlan]] = {}
        self.location: SpoolLocation | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.stop_reason: QueryCancelledError | None = None
        self.error: BaseException | None = None
        self._events: queue.Queue[tuple[TaskDescription, TaskHandle]] = queue.Queue()
        self._results: queue.Queue[object] = queue.Queue()
        self._running: dict[tuple[int, int, int], TaskHandle] = {}
        self._started_stages: set[int] = set()
        self._retries: list[tuple[float, int, int]] = []  # (due, stage, partition)
        self._next_root = 0
        self._driver: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._finished = False
        self._spool_removed = False
        self._cleanup_error: TransientError | None = None
        self._started_at = 0.0

    # ------------------------------------------------------------------ caller side

    @property
    def schema(self) -> pa.Schema:
        return self.graph.root.fragment.schema

    @property
    def finished(self) -> bool:
        return self._finished

    def start(self) -> None:
        self._started_at = time.perf_counter()
        self.location = create_query_folder(self.settings.spool, self.query_id)
        self._driver = threading.Thread(
            target=self._drive, name=f"shoal-scheduler-{self.query_id}", daemon=True
        )
        self._driver.start()
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
        """The result's batches, root partition by root partition as each commits."""
        try:
            while not self._stop.is_set():
                item = self._next_result()
                if item is _END or item is None:
                    break
                assert isinstance(item, SpoolInput)
                try:
                    for batch in read_spooled(item, 0):
                        if self._stop.is_set():
                            break
                        if batch.num_rows:
                            self.metrics.result_rows += batch.num_rows
                            yield batch
                except Exception:
                    if self._stop.is_set():
                        break  # stopped meanwhile (its spool may be gone): _join says why
                    raise
        except KeyboardInterrupt:
            self.cancel(QueryInterruptedError("query interrupted (Ctrl-C)"))
        except GeneratorExit:
            self.cancel(QueryCancelledError("query cancelled: the caller closed the result"))
            self._join(raise_errors=False)
            raise
        self._join(raise_errors=True)

    def _next_result(self) -> object:
        while True:
            try:
                return self._results.get(timeout=_POLL)
            except queue.Empty:
                if self._stop.is_set() and (self._driver is None or not self._driver.is_alive()):
                    return None

    def read_all(self) -> pa.Table:
        return pa.Table.from_batches(list(self.batches()), schema=self.schema)

    def cancel(self, reason: QueryCancelledError | None = None) -> None:
        """Stop every task (from any thread); the reader then raises ``reason``."""
        with self._lock:
            if self.stop_reason is None and self.error is None and not self._finished:
                self.stop_reason = reason or QueryCancelledError("query cancelled by the caller")
        self._stop.set()

    def close(self) -> None:
        """Stop the query if it still runs, wait for it, remove its spool; raises nothing."""
        if not self._finished:
            self.cancel(QueryCancelledError("query cancelled: the caller closed the result"))
            self._join(raise_errors=False)

    def _join(self, raise_errors: bool) -> None:
        if not self._finished:
            while True:
                try:
                    if self._driver is not None:
                        self._driver.join()
                    break
                except KeyboardInterrupt:
                    self.cancel(QueryInterruptedError("query interrupted (Ctrl-C)"))
            if self._timer is not None:
                self._timer.cancel()
            self._remove_spool()
            self.metrics.elapsed = time.perf_counter() - self._started_at
            self._finished = True
        if raise_errors:
            if self.error is not None:
                raise self.error
            if self.stop_reason is not None:
                raise self.stop_reason
            if self._cleanup_error is not None:
                raise self._cleanup_error

    def _remove_spool(self) -> None:
        """Delete the query's spool folder once; a failure to do so is kept and raised by
        the reader only when nothing else went wrong (the root cause matters more)."""
        if self.location is not None and not self._spool_removed:
            self._spool_removed = True
            try:
                remove_query_folder(self.location)
            except OSError as err:
                self._cleanup_error = TransientError(
                    f"could not remove the spool folder {self.location.query_folder!r}: {err}"
                )

    # ------------------------------------------------------------------ driver

    def _drive(self) -> None:
        try:
            self._launch_ready()
            while not self._stop.is_set():
                if self.book.stage_committed(self.graph.root):
                    break
                self._launch_due_retries()
                wait = _POLL
                if self._retries:
                    wait = max(0.0, min(wait, self._retries[0][0] - time.monotonic()))
                try:
                    task, handle = self._events.get(timeout=wait)
                except queue.Empty:
                    continue
                self._on_done(task, handle)
        except BaseException as err:  # noqa: BLE001 - the query fails with it
            self._fail(err)
        finally:
            for handle in list(self._running.values()):
                handle.cancel()
            try:
                self.executor.close()
            finally:
                if self._stop.is_set():
                    # Failed or stopped: nothing will read the spool any more.
                    self._remove_spool()
                self._results.put(_END)

    def _launch_ready(self) -> None:
        for stage in self.graph.stages:
            if stage.id in self._started_stages or stage.fused_into is not None:
                continue
            candidate = self.candidates.get(stage.id)
            if candidate is not None and not self.book.stage_committed(
                self.graph.stage(candidate.build_stage)
            ):
                continue  # a probe side held back: its join may yet be broadcast
            if all(self.book.stage_committed(self.graph.stage(s)) for s in stage.inputs):
                self._started_stages.add(stage.id)
                self.candidates.pop(stage.id, None)
                figures = {s: self.book.figures(self.graph.stage(s)) for s in stage.inputs}
                tasks, decisions = plan_tasks(stage, figures, self.settings)
                self.task_plans[stage.id] = tasks
                self.book.counts[stage.id] = len(tasks)
                self.metrics.stages[stage.id].tasks = len(tasks)
                self.metrics.decisions.extend(decisions)
                for p in range(len(tasks)):
                    self._submit(stage, p)

    def _maybe_broadcast(self) -> None:
        """Decide every held-back join whose build side has committed: switch it to
        broadcast if that side turned out small (and look again: a fused stage is a new
        producer, whose own consumer's join may now be a candidate)."""
        changed = True
        while changed:
            changed = False
            for probe, candidate in list(self.candidates.items()):
                build = self.graph.stage(candidate.build_stage)
                if not self.book.stage_committed(build):
                    continue
                del self.candidates[probe]
                figures = self.book.figures(build)
                if probe in self._started_stages or not should_switch(
                    candidate, figures, self.settings
                ):
                    continue
                self.graph, decision = apply_broadcast(self.graph, candidate, figures.total_bytes)
                self.metrics.decisions.append(decision)
                self.metrics.ran_graph = self.graph
                self.metrics.stages[probe].tasks = 0
                self.candidates = {
                    p: c
                    for p, c in broadcast_candidates(self.graph, self.settings).items()
                    if p not in self._started_stages
                }
                changed = True
                break

    def _launch_due_retries(self) -> None:
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now:
            _, sid, p = heapq.heappop(self._retries)
            self._submit(self.graph.stage(sid), p)

    def _submit(self, stage: Stage, partition: int) -> None:
        assert self.location is not None
        attempt = self.book.next_attempt(stage.id, partition)
        plan = self.task_plans[stage.id][partition]
        inputs = tuple(
            SpoolInput(
                sid,
                self.graph.stage(sid).output,
                self.graph.stage(sid).fragment.schema,
                self.location,
                self.book.files(self.graph.stage(sid)),
            )
            for sid in stage.inputs
        )
        task = TaskDescription(
            self.query_id,
            stage,
            partition,
            attempt,
            self.settings,
            inputs,
            self.location,
            faults_for(self.faults, stage.id, partition, attempt),
            plan.reads,
        )
        sm = self.metrics.stages[stage.id]
        sm.attempts += 1
        sm.attempts_per_task[partition] = attempt + 1
        if attempt > 0:
            sm.retries += 1
        handle = self.executor.submit(task)
        self._running[(stage.id, partition, attempt)] = handle
        handle.future.add_done_callback(lambda _f: self._events.put((task, handle)))

    def _on_done(self, task: TaskDescription, handle: TaskHandle) -> None:
        self._running.pop((task.stage.id, task.partition, task.attempt), None)
        sm = self.metrics.stages[task.stage.id]
        if handle.future.cancelled():
            # The executor dropped the attempt without running it to an end.
            err: BaseException | None = WorkerLostError(
                f"the executor cancelled attempt {task.task_id}"
            )
        else:
            err = handle.future.exception()
        if err is None:
            report = handle.future.result()
            if not self.book.commit(report):
                sm.ignored_attempts += 1
                return
            self._record(task.stage, report)
            if self.book.stage_committed(task.stage):
                self._stage_committed(task.stage)
            return
        if self.book.is_committed(task.stage.id, task.partition):
            sm.ignored_attempts += 1  # a zombie that failed: nothing to do
            return
        if classify(err) is FailureKind.CANCELLED and self._stop.is_set():
            return
        sm.failed_attempts += 1
        if self.rules.should_retry(err, task.attempt + 1):
            retry = task.attempt + 1
            due = time.monotonic() + self.rules.backoff(retry)
            heapq.heappush(self._retries, (due, task.stage.id, task.partition))
            return
        self._fail(self._task_error(task, handle, err))

    def _record(self, stage: Stage, report: TaskReport) -> None:
        sm = self.metrics.stages[stage.id]
        sm.elapsed = max(sm.elapsed, report.elapsed)
        sm.workers[report.task.partition] = report.worker
        for index, om in report.operators.items():
            sm.operators.setdefault(index, type(om)()).merge(om)
        if report.figures is not None:
            sm.task_figures[report.task.partition] = report.figures
        if stage.id == self.graph.root.id:
            # Hand the caller the root's partitions in order, each once it is committed.
            while self.book.is_committed(stage.id, self._next_root):
                written = self.book.committed[(stage.id, self._next_root)].written
                assert written is not None and self.location is not None
                self._results.put(
                    SpoolInput(
                        stage.id, None, stage.fragment.schema, self.location, (written.file,)
                    )
                )
                self._next_root += 1

    def _stage_committed(self, stage: Stage) -> None:
        if stage.output is not None:
            self.metrics.exchanges[stage.id] = self._exchange_metrics(stage)
        self._maybe_broadcast()
        self._launch_ready()

    def _exchange_metrics(self, stage: Stage) -> ExchangeMetrics:
        assert stage.output is not None
        spec = stage.output
        destinations = 1 if spec.kind == ExchangeKind.MERGE else spec.num_partitions
        m = ExchangeMetrics(spec.kind, stage.id, stage.consumer, mode="materialized")
        m.rows_per_partition = [0] * destinations
        m.bytes_per_partition = [0] * destinations
        for p in range(self.book.tasks(stage)):
            written: SpoolWritten | None = self.book.committed[(stage.id, p)].written
            assert written is not None
            for d in range(destinations):
                m.rows_per_partition[d] += written.rows_per_destination[d]
                m.bytes_per_partition[d] += written.bytes_per_destination[d]
            m.batches += written.batches
            m.spooled_bytes += written.spooled_bytes
        return m

    def _task_error(
        self, task: TaskDescription, handle: TaskHandle, err: BaseException
    ) -> BaseException:
        """The error the query fails with: the root cause, where, after how many attempts."""
        if isinstance(err, UserError):
            return err  # the query is wrong: as it is, never retried
        attempts = task.attempt + 1
        kind = classify(err)
        if kind in (FailureKind.TRANSIENT, FailureKind.INTERNAL):
            if self.rules.max_attempts == 1:
                why = "not retried: retry_policy='none'"
            else:
                why = f"gave up after {attempts} attempts (task_retries={self.rules.max_attempts - 1})"
        else:
            why = f"not retried: {kind.value} error"
        cause = str(err) if isinstance(err, ExecutionError) else f"{type(err).__name__}: {err}"
        cls = type(err) if isinstance(err, ExecutionError) else ExecutionError
        try:
            wrapped = cls(
                f"{cause} ({why})",
                task.stage.id,
                task.partition,
                task.attempt,
                attempts=attempts,
                worker=handle.worker,
            )
        except TypeError:  # an ExecutionError subclass with its own __init__
            wrapped = ExecutionError(
                f"{cause} ({why})",
                task.stage.id,
                task.partition,
                task.attempt,
                attempts=attempts,
                worker=handle.worker,
            )
        wrapped.__cause__ = err
        return wrapped

    def _fail(self, err: BaseException) -> None:
        with self._lock:
            if self.error is None and self.stop_reason is None:
                self.error = err
        self._stop.set()


__all__ = ["MaterializedRun", "TaskBook"]
