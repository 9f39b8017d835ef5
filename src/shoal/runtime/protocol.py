"""The contract between the scheduler and an executor: task descriptions in, reports out.

The scheduler (``scheduler/``) decides which task attempts run when; an
``Executor`` runs them. A ``TaskDescription`` is plain data that pickles: the
stage's fragment, the partition and attempt, the settings, which committed
producer attempts to read (``SpoolInput``), where to write (``SpoolLocation``) and
any injected faults. An executor runs it with ``run_spooled_task``
(``runtime/task.py``) — in a thread here, in a worker process elsewhere — and
completes the handle's future with a ``TaskReport`` or with the task's error.

Rules an executor keeps:

- Run exactly the description given: a retried task reads the same committed
  inputs and, for a scan, the same splits (its fixed share) as the attempt it
  replaces. Never retry on your own: the scheduler counts attempts.
- Complete the future with the error the task raised, unchanged (every
  ``ShoalError`` pickles intact). An executor that loses the worker (a process
  died, a node went away) completes it with ``WorkerLostError`` naming the worker.
- ``TaskHandle.cancel()`` asks the attempt to stop; it may still complete later
  (the scheduler ignores reports it no longer waits for: zombie fencing).
- A report's ``written`` names the attempt's files; the scheduler alone decides
  which attempt of a partition consumers read.
- A worker in another process builds its ``TaskServices`` with
  ``TaskServices.standalone()`` (one per query and process, so a broadcast join
  builds its index once there) and needs access to the spool root the
  description names (for ``s3://`` roots: credentials in its environment).

A connection runs materialized queries on ``Connection.executor_factory(settings)``
when it is set, else on ``runtime/threads.py`` ``ThreadExecutor``.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

from shoal.exchange.spool import SpoolInput, SpoolLocation, SpoolWritten
from shoal.exchange_spec import InputSlice
from shoal.metrics.operator import OperatorMetrics
from shoal.metrics.task import TaskFigures
from shoal.physical.context import Settings
from shoal.runtime.faults import Fault
from shoal.stages.graph import Stage


@dataclass(frozen=True)
class TaskId:
    """One attempt of one task: (query, stage, partition, attempt)."""

    query_id: str
    stage: int
    partition: int
    attempt: int

    def __str__(self) -> str:
        return f"{self.query_id}/s{self.stage}/p{self.partition}/a{self.attempt}"


@dataclass(frozen=True)
class TaskDescription:
    """Everything one task attempt needs to run: plain data (pickles).

    ``inputs`` holds, per producer stage the fragment reads, the committed attempt of
    every producer partition; ``output`` is the query's spool folder, where the
    attempt writes ``s<stage>/p<partition>.a<attempt>.*``. ``faults`` are the injected
    faults that match this attempt (empty unless a test or demo asked).
    """

    query_id: str
    stage: Stage
    partition: int
    attempt: int = 0
    settings: Settings = field(default_factory=Settings)
    inputs: tuple[SpoolInput, ...] = ()
    output: SpoolLocation | None = None
    faults: tuple[Fault, ...] = ()
    # Per input (same order as ``inputs``), the part of it this task reads when the
    # scheduler re-planned the stage's tasks (scheduler/adaptive.py); empty: each input's
    # destination ``partition``.
    reads: tuple[InputSlice, ...] = ()

    @property
    def task_id(self) -> TaskId:
        return TaskId(self.query_id, self.stage.id, self.partition, self.attempt)


@dataclass
class TaskReport:
    """What a finished attempt reports: its figures and what it committed."""

    task: TaskId
    worker: str  # where it ran ("local:<thread>", a Ray node/worker id, ...)
    elapsed: float
    # Operator index in the stage fragment (``fragment.walk()`` order) -> figures.
    operators: dict[int, OperatorMetrics] = field(default_factory=dict)
    written: SpoolWritten | None = None
    # Its busy CPU time and rows in and out.
    figures: TaskFigures | None = None


class TaskHandle(Protocol):
    """A submitted attempt: its outcome, and a way to ask it to stop."""

    @property
    def future(self) -> Future[TaskReport]: ...

    @property
    def worker(self) -> str | None:
        """Where the attempt runs or ran, once known (named in failure messages)."""
        ...

    def cancel(self) -> None: ...


class Executor(Protocol):
    """Runs task descriptions. The local runtime's threads are one; a Ray cluster another."""

    def submit(self, task: TaskDescription) -> TaskHandle:
        """Start ``task``; its handle's future gets the ``TaskReport`` or the error."""
        ...

    def close(self) -> None:
        """Stop accepting tasks and release the executor's resources (idempotent)."""
        ...


__all__ = ["Executor", "TaskDescription", "TaskHandle", "TaskId", "TaskReport"]
