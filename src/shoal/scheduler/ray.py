"""The Ray runtime's scheduler: the same stage graph, every task a Ray task.

Ray is the control plane (placement, worker processes, failure detection, the
object store); shoal keeps the stages, the exchanges, the scheduling and the
retry rules. The driver (``RayQueryRun``, in the caller's process) runs a stage's
tasks once every stage it reads has committed all its tasks; independent stages
run side by side. A task's outputs are its return values (``runtime/ray_task.py``):
one Arrow IPC buffer per destination, in the object store of the node it ran on,
owned by the driver. A consumer task is handed the references of its buffers as
arguments, so Ray moves them node to node; only the root stage's output comes to
the driver, as each root task commits, and is streamed to the caller.

Failure (``RetryRules``, the same rules as a materialized local query):

- a task whose worker process or node died (Ray reports it) re-runs alone, up to
  ``task_retries`` times; a transient shoal error likewise; a user error or a
  deterministic execution error fails the query at once;
- committed outputs that lived on a node that died are lost: every task that
  committed there and whose consumers have not all committed re-runs (and only
  those), found when a consumer reports a lost input or when a lost worker makes
  the driver look at which nodes are alive; a consumer that could not start for a
  lost input is re-submitted once its inputs are back, without using a retry;
- every attempt is recorded (``StageMetrics.task_runs``: node, worker, outcome).

A stage's tasks are made when it starts, by the same adaptive rules as the local
scheduler (``scheduler/adaptive.py``): a task may read several destinations'
buffers of every producer, or some producers' buffers with a row range each.

Tasks carry ``max_retries=0``: Ray never re-runs one behind the scheduler's back,
so each attempt is counted once, and lost objects are rebuilt by shoal re-running
their task rather than by Ray's lineage reconstruction.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pyarrow as pa

from shoal.errors import (
    ExecutionError,
    QueryCancelledError,
    QueryInterruptedError,
    QueryTimeoutError,
    UserError,
    WorkerLostError,
)
from shoal.exchange.objects import from_ipc, object_count, object_for
from shoal.exchange_spec import ExchangeKind, ExchangeMode
from shoal.metrics.exchange import ExchangeMetrics
from shoal.metrics.operator import OperatorMetrics
from shoal.metrics.query import QueryMetrics, StageMetrics
from shoal.metrics.task import TaskOutcome, TaskRun
from shoal.physical.context import Settings
from shoal.runtime.faults import Fault
from shoal.runtime.ray_session import RaySession, import_ray
from shoal.runtime.ray_task import ObjectTaskResult, run_object_task
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

# How long the driver waits for a report before it looks at cancel and timeout again.
_POLL_SECONDS = 0.1
# How often the driver asks Ray which nodes are alive while a query runs: a lost
# worker can be reported before its node is marked dead.
_NODE_CHECK_SECONDS = 1.0


class RemoteTraceback(Exception):
    """The traceback of an error raised in a Ray worker (the ``__cause__`` shown)."""


class _State(Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"


@dataclass
class _Task:
    stage: Stage
    partition: int
    plan: TaskPlan | None = None  # what it reads (None: destination ``partition`` of each)
    attempt: int = 0  # of the running attempt, or of the next one
    retries: int = 0  # re-runs spent on failures of this task itself
    state: _State = _State.PENDING
    not_before: float = 0.0  # retry backoff
    submitted_at: float = 0.0  # wall clock of the running attempt's submission
    worker: str | None = None  # where the last attempt that reported ran
    report: Any = None  # the running attempt's first return value (ObjectRef)
    outputs: list[Any] = field(default_factory=list)  # the committed attempt's buffers
    result: ObjectTaskResult | None = None  # the committed attempt's report
    run: TaskRun | None = None  # the committed attempt's record


class RayRuntime:
    """Runs stage graphs as Ray tasks in the session's cluster."""

    def __init__(self, session: RaySession):
        self.session = session

    def start(
        self,
        graph: StageGraph,
        settings: Settings,
        timeout: float | None = None,
        faults: tuple[Fault, ...] = (),
    ) -> RayQueryRun:
        return RayQueryRun(graph, settings, timeout, faults)


class RayQueryRun:
    """One query on Ray: the driver loop runs while the caller reads ``batches()``."""

    def __init__(
        self,
        graph: StageGraph,
        settings: Settings,
        timeout: float | None = None,
        faults: tuple[Fault, ...] = (),
    ):
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.ray = import_ray()
        self.graph = graph
        self.settings = settings
        self.timeout = timeout
        self.faults = faults
        self.query_id = uuid.uuid4().hex[:12]
        self.rules = RetryRules(
            settings.retry_policy, settings.task_retries, settings.retry_backoff_seconds
        )
        self.metrics = QueryMetrics(exchange_mode=ExchangeMode.MATERIALIZED)
        for stage in graph.stages:
            self.metrics.stages[stage.id] = StageMetrics(stage.id, stage.num_partitions)
        # A stage's tasks are made when it starts: adaptive re-planning
        # (scheduler/adaptive.py) picks their number from what its inputs measured.
        self.tasks: dict[tuple[int, int], _Task] = {}
        self.counts: dict[int, int] = {}
        self.candidates: dict[int, BroadcastCandidate] = broadcast_candidates(graph, settings)
        self.stop_reason: QueryCancelledError | None = None
        self.dead_nodes: set[str] = set()
        self._finished = False
        self._started = False
        self._started_at = 0.0
        # Object id (hex) of every committed buffer -> the task that made it.
        self._producer_of: dict[str, tuple[int, int]] = {}
        self._stage_refs: dict[int, Any] = {}
        self._remote = self.ray.remote(run_object_task)
        self._next_node_check = time.monotonic() + _NODE_CHECK_SECONDS

    @property
    def schema(self) -> pa.Schema:
        return self.graph.root.fragment.schema

    @property
    def finished(self) -> bool:
        return self._finished

    # ------------------------------------------------------------------ caller

    def batches(self) -> Iterator[pa.RecordBatch]:
        if self._started:
            raise QueryCancelledError("this query's result has already been read")
        self._started = True
        self._started_at = time.perf_counter()
        deadline = None if self.timeout is None else self._started_at + self.timeout
        try:
            yield from self._drive(deadline)
        except KeyboardInterrupt:
            self.cancel(QueryInterruptedError("query interrupted (Ctrl-C)"))
            self._cancel_running()
            self._end()
            raise self.stop_reason from None  # type: ignore[misc]
        except GeneratorExit:
            # The caller stopped reading: stop the query quietly.
            self.cancel(QueryCancelledError("query cancelled: the caller closed the result"))
            self._cancel_running()
            self._end()
            raise
        except BaseException:
            self._cancel_running()
            self._end()
            raise
        self._end()

    def read_all(self) -> pa.Table:
        return pa.Table.from_batches(list(self.batches()), schema=self.schema)

    def cancel(self, reason: QueryCancelledError | None = None) -> None:
        """Stop the query (from any thread); the reader then raises ``reason``."""
        if self.stop_reason is None and not self._finished:
            self.stop_reason = reason or QueryCancelledError("query cancelled by the caller")

    def close(self) -> None:
        if not self._finished:
            self.cancel(QueryCancelledError("query cancelled: the caller closed the result"))
            self._cancel_running()
            self._end()

    # ------------------------------------------------------------------ driver

    def _drive(self, deadline: float | None) -> Iterator[pa.RecordBatch]:
        ray = self.ray
        while True:
            root = self.graph.root
            if self.stop_reason is None and deadline is not None and time.perf_counter() > deadline:
                self.stop_reason = QueryTimeoutError(
                    f"query stopped: it ran past its timeout of {self.timeout:g} s"
                )
            if self.stop_reason is not None:
                self._cancel_running()
                raise self.stop_reason
            if self._stage_done(root.id):
                return
            if time.monotonic() >= self._next_node_check:
                self._look_for_dead_nodes()
            self._submit_ready()
            running = [t for t in self.tasks.values() if t.state is _State.RUNNING]
            if not running:
                time.sleep(min(_POLL_SECONDS, self._next_backoff()))
                continue
            refs = [t.report for t in running]
            ready, _ = ray.wait(refs, num_returns=1, timeout=_POLL_SECONDS)
            if ready:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            by_ref = {t.report: t for t in running}
            for ref in ready:
                task = by_ref[ref]
                yield from self._finish(task)

    def _next_backoff(self) -> float:
        now = time.monotonic()
        waits = [
            t.not_before - now
            for t in self.tasks.values()
            if t.state is _State.PENDING and t.not_before > now
        ]
        return max(0.001, min(waits, default=_POLL_SECONDS))

    def _stage_done(self, stage_id: int) -> bool:
        """Whether the stage started and all its tasks committed."""
        n = self.counts.get(stage_id)
        return n is not None and all(
            self.tasks[(stage_id, p)].state is _State.DONE for p in range(n)
        )

    def _inputs_ready(self, stage: Stage) -> bool:
        return all(self._stage_done(producer) for producer in stage.inputs)

    def _submit_ready(self) -> None:
        now = time.monotonic()
        for stage in self.graph.stages:
            if stage.fused_into is not None or not self._inputs_ready(stage):
                continue
            if stage.id not in self.counts and not self._start_stage(stage):
                continue
            for p in range(self.counts[stage.id]):
                task = self.tasks[(stage.id, p)]
                if task.state is _State.PENDING and task.not_before <= now:
                    self._submit(task)

    def _start_stage(self, stage: Stage) -> bool:
        """Plan ``stage``'s tasks from what its inputs measured; False: held back (a
        probe side whose join may yet switch to broadcast)."""
        candidate = self.candidates.get(stage.id)
        if candidate is not None and not self._stage_done(candidate.build_stage):
            return False
        self.candidates.pop(stage.id, None)
        figures = {s: self._figures(self.graph.stage(s)) for s in stage.inputs}
        plans, decisions = plan_tasks(stage, figures, self.settings)
        self.metrics.decisions.extend(decisions)
        self.metrics.stages[stage.id].tasks = len(plans)
        self.counts[stage.id] = len(plans)
        for plan in plans:
            self.tasks[(stage.id, plan.index)] = _Task(stage, plan.index, plan)
        # Driver-owned: one copy of each fragment for all of the stage's tasks.
        self._stage_refs[stage.id] = self.ray.put(stage)
        return True

    def _figures(self, stage: Stage) -> ProducerFigures:
        results = [self.tasks[(stage.id, p)].result for p in range(self.counts[stage.id])]
        return ProducerFigures(
            stage.id,
            tuple(tuple(r.rows) for r in results if r is not None),
            tuple(tuple(r.bytes) for r in results if r is not None),
        )

    def _maybe_broadcast(self) -> None:
        """Decide every held-back join whose build side has committed (as
        ``MaterializedRun._maybe_broadcast``)."""
        changed = True
        while changed:
            changed = False
            for probe, candidate in list(self.candidates.items()):
                if not self._stage_done(candidate.build_stage):
                    continue
                del self.candidates[probe]
                figures = self._figures(self.graph.stage(candidate.build_stage))
                if probe in self.counts or not should_switch(candidate, figures, self.settings):
                    continue
                self.graph, decision = apply_broadcast(self.graph, candidate, figures.total_bytes)
                self.metrics.decisions.append(decision)
                self.metrics.ran_graph = self.graph
                self.metrics.stages[probe].tasks = 0
                self.candidates = {
                    p: c
                    for p, c in broadcast_candidates(self.graph, self.settings).items()
                    if p not in self.counts
                }
                changed = True
                break

    def _input_args(self, task: _Task) -> tuple[list[Any], list[int], list[tuple[int, int] | None]]:
        """The buffers ``task`` reads, per input in ``stage.inputs`` order, and the row
        range kept of each (None: all of it)."""
        stage = task.stage
        args: list[Any] = []
        layout: list[int] = []
        ranges: list[tuple[int, int] | None] = []
        for i, producer_id in enumerate(stage.inputs):
            producer = self.graph.stage(producer_id)
            assert producer.output is not None
            spec = producer.output
            n = self.counts[producer_id]
            part = task.plan.reads[i] if task.plan is not None else None
            before = len(args)
            if part is None:
                index = object_for(spec, task.partition)
                args.extend(self.tasks[(producer_id, q)].outputs[index] for q in range(n))
                ranges.extend([None] * n)
            elif part.everything:
                for q in range(n):
                    outputs = self.tasks[(producer_id, q)].outputs
                    args.extend(outputs)
                    ranges.extend([None] * len(outputs))
            elif part.segments is not None:
                (d,) = part.destinations
                for q, first, end in part.segments:
                    args.append(self.tasks[(producer_id, q)].outputs[object_for(spec, d)])
                    ranges.append((first, end))
            else:
                indexes = sorted({object_for(spec, d) for d in part.destinations})
                for q in range(n):
                    outputs = self.tasks[(producer_id, q)].outputs
                    args.extend(outputs[j] for j in indexes)
                    ranges.extend([None] * len(indexes))
            layout.append(len(args) - before)
        return args, layout, ranges

    def _submit(self, task: _Task) -> None:
        stage = task.stage
        args, layout, ranges = self._input_args(task)
        faults = tuple(f for f in self.faults if f.matches(stage.id, task.partition, task.attempt))
        returns = 1 + object_count(stage.output)
        task.submitted_at = time.time()
        refs = self._remote.options(
            num_cpus=1,
            num_returns=returns,
            max_retries=0,
            name=f"shoal:{self.query_id}:s{stage.id}:p{task.partition}:a{task.attempt}",
        ).remote(
            self._stage_refs[stage.id],
            self.settings,
            task.partition,
            task.attempt,
            faults,
            tuple(layout),
            tuple(ranges) if any(r is not None for r in ranges) else (),
            *args,
        )
        task.report = refs[0]
        task.outputs = list(refs[1:])
        task.state = _State.RUNNING
        sm = self.metrics.stages[stage.id]
        sm.attempts += 1
        if task.attempt > 0:
            sm.retries += 1

    def _finish(self, task: _Task) -> Iterator[pa.RecordBatch]:
        ray = self.ray
        stage = task.stage
        sm = self.metrics.stages[stage.id]
        try:
            result: ObjectTaskResult = ray.get(task.report)
        except ray.exceptions.ObjectLostError as err:
            # An input of this attempt was lost with its node: it never ran.
            sm.task_runs.append(
                TaskRun(stage.id, task.partition, task.attempt, TaskOutcome.INPUT_LOST)
            )
            self._lost_object(getattr(err, "object_ref_hex", ""))
            self._again(task, counted=False)
            return
        except ray.exceptions.RayTaskError as err:
            # The task function itself failed outside the fragment (e.g. its arguments
            # did not unpickle in the worker): an internal error, retried by the rules.
            sm.failed_attempts += 1
            sm.task_runs.append(
                TaskRun(
                    stage.id,
                    task.partition,
                    task.attempt,
                    TaskOutcome.FAILED,
                    error=_first_line(err),
                )
            )
            cause = err.cause if isinstance(err.cause, BaseException) else err
            self._retry_or_fail(task, cause, RemoteTraceback(str(err)))
            return
        except ray.exceptions.TaskCancelledError:
            sm.task_runs.append(
                TaskRun(stage.id, task.partition, task.attempt, TaskOutcome.CANCELLED)
            )
            task.state = _State.PENDING
            return
        except ray.exceptions.RayError as err:
            # The worker process died or its node went away: Ray has no report.
            sm.failed_attempts += 1
            sm.task_runs.append(
                TaskRun(
                    stage.id,
                    task.partition,
                    task.attempt,
                    TaskOutcome.WORKER_LOST,
                    error=_first_line(err),
                )
            )
            self._look_for_dead_nodes()
            lost = WorkerLostError(
                f"the Ray worker running it was lost: {_first_line(err)}",
                stage=stage.id,
                partition=task.partition,
                attempt=task.attempt,
            )
            self._retry_or_fail(task, lost, err)
            return
        run = TaskRun(
            stage.id,
            task.partition,
            task.attempt,
            TaskOutcome.OK if result.error is None else TaskOutcome.FAILED,
            node=result.node,
            worker=result.worker,
            pid=result.pid,
            seconds=result.elapsed,
            # Wall clocks of two processes: on one machine the same clock.
            launch_seconds=max(0.0, result.started_at - task.submitted_at),
            serialize_seconds=result.serialize_seconds,
            error="" if result.error is None else _first_line(result.error),
        )
        sm.task_runs.append(run)
        task.worker = f"ray:{result.node[:12]}/{result.worker[:12]}"
        if result.error is not None:
            sm.failed_attempts += 1
            self._retry_or_fail(task, result.error, RemoteTraceback(result.remote_traceback))
            return
        task.state = _State.DONE
        task.report = None
        task.result = result
        task.run = run
        if stage.output is not None:
            for ref in task.outputs:
                self._producer_of[ref.hex()] = (stage.id, task.partition)
            if self._stage_done(stage.id):
                self._maybe_broadcast()
            return
        # A root task: its output is (part of) the result; bring it here now.
        try:
            buffer = ray.get(task.outputs[0])
        except ray.exceptions.ObjectLostError:
            run.outcome = TaskOutcome.OUTPUT_LOST
            self._again(task, counted=False)
            return
        task.outputs = []
        for batch in from_ipc(buffer):
            if batch.num_rows:
                self.metrics.result_rows += batch.num_rows
                yield batch

    def _again(self, task: _Task, counted: bool) -> None:
        """Run ``task`` again (a new attempt) once its inputs are committed."""
        task.state = _State.PENDING
        task.report = None
        task.outputs = []
        task.result = None
        task.run = None
        task.attempt += 1
        if counted:
            task.retries += 1
            task.not_before = time.monotonic() + self.rules.backoff(task.retries)

    def _retry_or_fail(self, task: _Task, err: BaseException, cause: BaseException) -> None:
        # Attempts are counted per task: re-runs caused by lost inputs or outputs are
        # the node's loss, not this task's failure, and don't use up its retries.
        if self.rules.should_retry(err, task.retries + 1):
            self._again(task, counted=True)
            return
        task.state = _State.PENDING  # ended: not among the attempts to cancel
        task.report = None
        raise _query_error(task, err, cause, self.rules)

    def _lost_object(self, object_hex: str) -> None:
        producer = self._producer_of.get(object_hex)
        if producer is not None:
            self._lose(self.tasks[producer])
        self._look_for_dead_nodes()

    def _look_for_dead_nodes(self) -> None:
        self._next_node_check = time.monotonic() + _NODE_CHECK_SECONDS
        dead = {n["NodeID"] for n in self.ray.nodes() if not n.get("Alive", False)}
        if not dead - self.dead_nodes:
            return
        self.dead_nodes |= dead
        for task in self.tasks.values():
            if (
                task.state is _State.DONE
                and task.result is not None
                and task.result.node in self.dead_nodes
                and self._still_needed(task)
            ):
                self._lose(task)

    def _still_needed(self, task: _Task) -> bool:
        # The graph's stage, not the task's copy: a broadcast switch may have fused the
        # consumer into its own consumer since. A root task's output is already with the
        # driver (no consumers); a shared CTE body's is needed while any of its consuming
        # stages is unfinished.
        consumers = self.graph.stage(task.stage.id).consumers
        return any(not self._stage_done(consumer) for consumer in consumers)

    def _lose(self, task: _Task) -> None:
        if task.state is not _State.DONE:
            return
        if task.run is not None:
            task.run.outcome = TaskOutcome.OUTPUT_LOST
        for ref in task.outputs:
            self._producer_of.pop(ref.hex(), None)
        self._again(task, counted=False)

    def _cancel_running(self) -> None:
        for task in self.tasks.values():
            if task.state is _State.RUNNING and task.report is not None:
                try:
                    self.ray.cancel(task.report, force=False)
                except Exception:  # noqa: BLE001 - it may have ended meanwhile
                    pass
                self.metrics.stages[task.stage.id].task_runs.append(
                    TaskRun(task.stage.id, task.partition, task.attempt, TaskOutcome.CANCELLED)
                )
                task.state = _State.PENDING
                task.report = None

    def _end(self) -> None:
        if self._finished:
            return
        self._finished = True
        self.metrics.elapsed = time.perf_counter() - self._started_at if self._started else 0.0
        for stage in self.graph.stages:
            sm = self.metrics.stages[stage.id]
            count = self.counts.get(stage.id, 0)
            done = [
                self.tasks[(stage.id, p)].result
                for p in range(count)
                if self.tasks[(stage.id, p)].result is not None
            ]
            for p in range(count):
                task = self.tasks[(stage.id, p)]
                sm.attempts_per_task[p] = task.attempt + 1
                if task.result is not None:
                    sm.workers[p] = f"ray:{task.result.node[:12]}/{task.result.worker[:12]}"
                    if task.result.figures is not None:
                        sm.task_figures[p] = task.result.figures
            for result in done:
                assert result is not None
                sm.elapsed = max(sm.elapsed, result.elapsed)
                for key, m in result.operators.items():
                    sm.operators.setdefault(key, OperatorMetrics()).merge(m)
            if stage.output is not None and count:
                self.metrics.exchanges[stage.id] = _exchange_metrics(stage, done)  # type: ignore[arg-type]
        # Dropping the references frees the objects in the cluster's object stores.
        for task in self.tasks.values():
            task.outputs = []
            task.report = None
        self._stage_refs.clear()
        self._producer_of.clear()


def _exchange_metrics(stage: Stage, done: list[ObjectTaskResult]) -> ExchangeMetrics:
    spec = stage.output
    assert spec is not None
    m = ExchangeMetrics(str(spec.kind), stage.id, stage.consumer)
    if object_count(spec) > 1:
        m.rows_per_partition = [sum(r.rows[d] for r in done) for d in range(spec.num_partitions)]
        m.bytes_per_partition = [sum(r.bytes[d] for r in done) for d in range(spec.num_partitions)]
    else:
        rows = sum(r.rows[0] for r in done)
        size = sum(r.bytes[0] for r in done)
        # A broadcast reaches every consumer; gather and merge reach the one.
        copies = spec.num_partitions if spec.kind == ExchangeKind.BROADCAST else 1
        m.rows_per_partition = [rows] * copies
        m.bytes_per_partition = [size] * copies
    m.batches = sum(r.batches for r in done)
    return m


def _query_error(
    task: _Task, err: BaseException, cause: BaseException, rules: RetryRules
) -> BaseException:
    """The error the query fails with, worded as the local scheduler words it: the
    root cause, where, after how many attempts, and why it was not retried."""
    if isinstance(err, UserError):
        final: BaseException = err  # the query is wrong: as it is, never retried
    else:
        attempts = task.attempt + 1
        kind = classify(err)
        if kind in (FailureKind.TRANSIENT, FailureKind.INTERNAL):
            if rules.max_attempts == 1:
                why = "not retried: retry_policy='none'"
            else:
                why = f"gave up after {attempts} attempts (task_retries={rules.max_attempts - 1})"
        else:
            why = f"not retried: {kind.value} error"
        text = str(err) if isinstance(err, ExecutionError) else f"{type(err).__name__}: {err}"
        worker = task.worker
        cls = type(err) if isinstance(err, ExecutionError) else ExecutionError
        where = (task.stage.id, task.partition, task.attempt)
        try:
            final = cls(f"{text} ({why})", *where, attempts=attempts, worker=worker)
        except TypeError:  # an ExecutionError subclass with its own __init__
            final = ExecutionError(f"{text} ({why})", *where, attempts=attempts, worker=worker)
        final.__cause__ = err
    # The worker's traceback is the readable cause at the end of the chain.
    tail, seen = final, {id(final)}
    while tail.__cause__ is not None and id(tail.__cause__) not in seen:
        tail = tail.__cause__
        seen.add(id(tail))
    if tail is not cause and tail.__cause__ is None:
        tail.__cause__ = cause
    return final


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


__all__ = ["RayQueryRun", "RayRuntime", "RemoteTraceback"]
