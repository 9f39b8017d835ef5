"""The body of one Ray task: a stage fragment for one partition, object buffers in and out.

``run_object_task`` runs in a Ray worker process. Its arguments are the stage (one
driver-owned object per stage, shared by all its tasks), the settings, which
attempt this is, and the IPC buffers of its inputs, which Ray fetched to the
worker's node before starting it; it returns ``1 + object_count(stage.output)``
values: an ``ObjectTaskResult`` (figures, where it ran, or the error), then one
IPC buffer per destination. Being task return values, the buffers are owned by
the driver that submitted the task: they outlive the worker (a worker that exits
leaves them in its node's object store) and, when their node is lost, the driver
learns it and re-runs the task. Nothing here calls ``ray.put``: an object put by
a task is owned by that task's worker and dies with it.

Application errors never escape as Ray errors: the result carries the error
itself (every ``ShoalError`` pickles intact) plus the remote traceback as text,
so the driver raises the same typed error the embedded runtime would.
"""

from __future__ import annotations

import os
import pickle
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from shoal.errors import ExecutionError
from shoal.exchange.objects import ObjectOutput, object_count, read_objects
from shoal.metrics.operator import OperatorMetrics
from shoal.metrics.task import TaskFigures
from shoal.physical.context import Settings
from shoal.runtime.faults import Fault
from shoal.runtime.task import TaskServices, run_fragment
from shoal.stages.graph import Stage


@dataclass
class ObjectTaskResult:
    """What one attempt reports to the driver (the task's first return value)."""

    node: str  # Ray node id
    worker: str  # Ray worker id
    pid: int
    elapsed: float
    started_at: float = 0.0  # wall clock (time.time()) when the task body began
    serialize_seconds: float = 0.0  # writing the output buffers (Arrow IPC)
    operators: dict[int, OperatorMetrics] = field(default_factory=dict)
    figures: TaskFigures | None = None  # busy CPU time, rows in and out
    rows: list[int] = field(default_factory=list)  # per returned buffer
    bytes: list[int] = field(default_factory=list)
    batches: int = 0
    error: BaseException | None = None
    remote_traceback: str = ""


def run_object_task(
    stage: Stage,
    settings: Settings,
    partition: int,
    attempt: int,
    faults: tuple[Fault, ...],
    layout: tuple[int, ...],
    ranges: tuple[tuple[int, int] | None, ...],
    *buffers: pa.Buffer,
) -> tuple[object, ...]:
    """Run ``stage`` for ``partition``; ``layout[i]`` buffers belong to ``stage.inputs[i]``
    (as the driver chose them: one per producer task in producer order, or what an
    adaptive task plan reads); ``ranges`` keeps a row range of some buffers (or is
    empty)."""
    import ray  # only ever called inside a Ray worker

    context = ray.get_runtime_context()
    started = time.perf_counter()
    result = ObjectTaskResult(
        context.get_node_id(), context.get_worker_id(), os.getpid(), 0.0, time.time()
    )
    output = ObjectOutput(stage.output, stage.fragment.schema)
    count = object_count(stage.output)
    inputs: dict[int, Callable[[], Iterator[pa.RecordBatch]]] = {}
    offset = 0
    for producer, n in zip(stage.inputs, layout, strict=True):
        inputs[producer] = _reader(
            stage, producer, buffers[offset : offset + n], ranges[offset : offset + n]
        )
        offset += n
    figures = TaskFigures(partition)
    try:
        result.operators = run_fragment(
            stage,
            partition,
            attempt,
            settings,
            inputs,
            output.write,
            lambda: False,  # ray.cancel interrupts the task's thread instead
            TaskServices.standalone(),
            faults,
            shares_across_tasks=False,
            figures=figures,
        )
        result.figures = figures
        result.rows = output.rows()
        result.batches = output.batches()
        serialize_started = time.perf_counter()
        out = output.finish()
        result.serialize_seconds = time.perf_counter() - serialize_started
        result.bytes = [b.size for b in out]
    except Exception as err:  # noqa: BLE001 - the driver decides what a failure means
        result.error = _portable(err)
        result.remote_traceback = traceback.format_exc()
        out = [pa.py_buffer(b"")] * count
    result.elapsed = time.perf_counter() - started
    return (result, *out)


def _reader(
    stage: Stage,
    producer: int,
    buffers: tuple[pa.Buffer, ...],
    ranges: tuple[tuple[int, int] | None, ...],
) -> Callable[[], Iterator[pa.RecordBatch]]:
    read = next(op for op in stage.fragment.walk() if getattr(op, "stage_id", None) == producer)
    spec = read.spec  # type: ignore[attr-defined]
    schema = read.schema
    return lambda: read_objects(spec, schema, buffers, ranges)


def _portable(err: Exception) -> BaseException:
    """``err`` itself when it survives pickling, else an ``ExecutionError`` naming it."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:  # noqa: BLE001 - any failure to round-trip means: send text
        return ExecutionError(f"{type(err).__name__}: {err}")


__all__ = ["ObjectTaskResult", "run_object_task"]
