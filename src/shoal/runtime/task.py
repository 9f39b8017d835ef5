"""Running one task attempt: a stage fragment for one partition, into an output.

``run_fragment`` is the body every executor shares: it builds the operators'
``TaskContext``, applies injected faults, pulls the fragment and hands each batch
to ``write``. ``run_spooled_task`` runs a whole ``TaskDescription`` of a
materialized query: it reads the committed inputs the description names, writes
the attempt's spool file and commits it, and returns the ``TaskReport`` — what a
worker in another process calls too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from shoal.errors import QueryCancelledError
from shoal.exchange.channel import NoSlots, Slots
from shoal.exchange.spool import SpoolInput, SpoolWriter, read_spooled, read_spooled_slice
from shoal.exchange_spec import InputSlice
from shoal.memory.pool import MemoryPool, PressureRelease, release_thread_unused
from shoal.memory.spill import SpillSpace
from shoal.metrics.operator import OperatorMetrics
from shoal.metrics.task import TaskFigures
from shoal.physical.context import Settings, TaskContext
from shoal.physical.operators.hash_join import HashJoinExec
from shoal.recursion import deep_recursion
from shoal.runtime.faults import Fault, FaultPoint
from shoal.runtime.filters import RuntimeFilters, StageFilters
from shoal.runtime.protocol import TaskDescription, TaskReport
from shoal.runtime.shared import SharedValues
from shoal.stages.graph import Stage


@dataclass
class TaskServices:
    """What the tasks of one query in one process share: CPU slots, write-once values
    (broadcast join indexes, scan caches) and — pipelined only — runtime filters."""

    slots: Slots
    shared: SharedValues
    filters: RuntimeFilters | None = None
    # The query's memory pool and spill folder; None: each task has its own (a task in a
    # process of its own, or a materialized attempt).
    memory: MemoryPool | None = None
    spill: SpillSpace | None = None
    # The join filters that cross stages (rules/join_filters.py): the first task of a
    # publishing join to build puts its filter here and every scan task of the query
    # reads it. Pipelined only (the producer runs beside the join); None: no stage
    # filter is published.
    stage_filters: StageFilters | None = None

    @staticmethod
    def standalone(slots: Slots | None = None) -> TaskServices:
        """Services for tasks in a process of their own (an executor's worker)."""
        s = slots or NoSlots()
        return TaskServices(s, SharedValues(s))


def run_fragment(
    stage: Stage,
    partition: int,
    attempt: int,
    settings: Settings,
    inputs: dict[int, Callable[[], Iterator[pa.RecordBatch]]],
    write: Callable[[pa.RecordBatch], None],
    cancelled: Callable[[], bool],
    services: TaskServices,
    faults: tuple[Fault, ...] = (),
    *,
    shares_across_tasks: bool,
    metrics: dict[int, OperatorMetrics] | None = None,
    figures: TaskFigures | None = None,
) -> dict[int, OperatorMetrics]:
    """Run ``stage``'s fragment for ``partition`` and pass every batch to ``write``.

    The caller holds a CPU slot. ``shares_across_tasks`` lets scans draw splits from a
    queue all the stage's tasks share (pipelined only: a re-run must read the same
    splits, so a materialized task reads its fixed share). Returns the operator
    figures by operator index (also filled into ``metrics`` when given, so a caller
    keeps them when the task fails) and fills ``figures`` (the task's CPU time and
    rows in and out); raises what the task raised.
    """
    filters = services.filters
    ctx = TaskContext(
        stage_id=stage.id,
        partition=partition,
        num_partitions=stage.num_partitions,
        attempt=attempt,
        settings=settings,
        exchange_inputs=inputs,
        cancelled=cancelled,
        shared=services.shared.get,
        shared_pending=services.shared.pending,
        shares_across_tasks=shares_across_tasks,
    )
    # Without the query's pool and folder (a materialized attempt, a task in a process
    # of its own) the task takes the query's budget and spill folder for itself: its
    # operators spill under that budget as they do in a pipelined run.
    ctx.memory = services.memory or MemoryPool(settings.memory_limit)
    ctx.spill = services.spill or SpillSpace(settings.spill_dir)
    if metrics is not None:
        ctx.metrics = metrics
    board = services.stage_filters
    if board is not None:
        ctx.join_filters = board.for_task(cancelled)
        ctx.stage_filter_wanted = board.wanted
        ctx.publish_stage_filter = board.publish
    if filters is not None:
        ctx.publish_filter = filters.publish
        ctx.poll_filter = filters.poll
        ctx.yield_slot = services.slots.yield_to_waiting
        ctx.wait_filter = lambda fid, sources: filters.wait(fid, sources, cancelled)
        ctx.withdraw_filter = filters.task_ended
    # Operators are keyed by their position in the fragment, so all tasks'
    # figures for one operator land together.
    ctx.operator_ids = {id(op): i for i, op in enumerate(stage.fragment.walk())}
    # Runtime filters this stage's joins publish to: reported on the task's end.
    publishes = (
        [
            op.publishes
            for op in stage.fragment.walk()
            if isinstance(op, HashJoinExec) and op.publishes is not None
        ]
        if filters is not None
        else []
    )
    fault = FaultPoint.of(faults, stage.id, partition, attempt) if faults else None
    # The thread's CPU clock: time blocked on an exchange or a slot is not busy time.
    cpu_started = time.thread_time()
    wall_started = time.perf_counter()
    rows_out = 0
    pressure = PressureRelease(ctx.memory)
    # Evaluating a deeply nested expression recurses as deep as binding it did.
    try:
        with deep_recursion():
            if fault is not None:
                services.slots.release()  # a slow task sleeps without a CPU slot
                try:
                    fault.before_start(cancelled)
                finally:
                    services.slots.acquire()
            for batch in ctx.run(stage.fragment):
                if cancelled():
                    raise QueryCancelledError("query cancelled")
                if fault is not None:
                    fault.before_output()
                rows_out += batch.num_rows
                write(batch)
                pressure.output(batch)
            if fault is not None:
                fault.before_output()
    finally:
        if figures is not None:
            figures.cpu_seconds = time.thread_time() - cpu_started
            figures.wall_seconds = time.perf_counter() - wall_started
            figures.rows_out = rows_out
            figures.rows_in = _leaf_rows(stage, ctx.metrics)
        held = sum(r.peak for r in ctx.reservations)
        ctx.free_memory()
        # This thread's allocator heap is about to be abandoned (a task's thread ends
        # with it): under budget pressure, free its empty pages while it owns them.
        release_thread_unused(held, ctx.memory)
        if services.spill is None:
            ctx.spill.remove()  # the task's own spill folder, made for this attempt
        if filters is not None:
            for filter_id in publishes:
                filters.task_ended(filter_id, partition)
        if board is not None:
            for filter_id in stage_filter_ids(stage):
                board.task_ended(filter_id)
    return ctx.metrics


def stage_filter_ids(stage: Stage) -> list[str]:
    """The stage filters that ``stage``'s joins publish."""
    return [
        filter_id
        for op in stage.fragment.walk()
        if isinstance(op, HashJoinExec)
        for _, filter_id in op.stage_filters
    ]


def _leaf_rows(stage: Stage, metrics: dict[int, OperatorMetrics]) -> int:
    """Rows the fragment's leaves (scans, exchange reads) produced in this task."""
    total = 0
    for i, op in enumerate(stage.fragment.walk()):
        if not op.children():
            m = metrics.get(i)
            if m is not None:
                total += m.rows_out
    return total


def run_spooled_task(
    task: TaskDescription,
    services: TaskServices,
    cancelled: Callable[[], bool],
    worker: str | None = None,
) -> TaskReport:
    """Run one attempt of a materialized query: read its committed inputs from the
    spool, write its output there and commit it. The caller holds a CPU slot.

    On failure or cancellation the attempt's partial file is deleted and the error
    raised as it is; on success the report names the committed files.
    """
    stage = task.stage
    if task.output is None:
        raise ValueError("a spooled task needs an output location")
    started = time.perf_counter()
    if task.reads:
        inputs = {
            source.stage: _slice_reader(source, part)
            for source, part in zip(task.inputs, task.reads, strict=True)
        }
    else:
        inputs = {source.stage: _reader(source, task.partition) for source in task.inputs}
    writer = SpoolWriter(
        task.output,
        stage.id,
        task.partition,
        task.attempt,
        stage.output,
        stage.fragment.schema,
    )
    figures = TaskFigures(task.partition)
    try:
        operators = run_fragment(
            stage,
            task.partition,
            task.attempt,
            task.settings,
            inputs,
            writer.write,
            cancelled,
            services,
            task.faults,
            shares_across_tasks=False,
            figures=figures,
        )
        written = writer.commit()
    except BaseException:
        writer.abort()
        raise
    return TaskReport(
        task.task_id,
        worker or f"local:{threading.current_thread().name}",
        time.perf_counter() - started,
        operators,
        written,
        figures,
    )


def _reader(source: SpoolInput, partition: int) -> Callable[[], Iterator[pa.RecordBatch]]:
    return lambda: read_spooled(source, partition)


def _slice_reader(source: SpoolInput, part: InputSlice) -> Callable[[], Iterator[pa.RecordBatch]]:
    return lambda: read_spooled_slice(source, part)


__all__ = ["TaskServices", "run_fragment", "run_spooled_task"]
