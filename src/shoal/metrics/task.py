"""One record per task attempt: where it ran and how it ended (EXPLAIN ANALYZE, tests)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TaskOutcome(StrEnum):
    OK = "ok"  # committed: its output is what consumers read
    FAILED = "failed"  # raised an error
    WORKER_LOST = "worker lost"  # its worker process or node went away while it ran
    INPUT_LOST = "input lost"  # never ran: an input it needed was lost with its node
    OUTPUT_LOST = "output lost"  # had committed, but its output was lost with its node
    CANCELLED = "cancelled"  # stopped because the query stopped


@dataclass
class TaskRun:
    stage: int
    partition: int
    attempt: int
    outcome: TaskOutcome
    node: str = ""  # where it ran ("" when not known: a lost worker reports nothing)
    worker: str = ""
    pid: int = 0
    seconds: float = 0.0
    # From submission to the task body starting: placement, worker start, input fetch.
    launch_seconds: float = 0.0
    serialize_seconds: float = 0.0  # writing its output buffers
    error: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "stage": self.stage,
            "partition": self.partition,
            "attempt": self.attempt,
            "outcome": str(self.outcome),
            "node": self.node,
            "worker": self.worker,
            "pid": self.pid,
            "seconds": round(self.seconds, 6),
            "launch_seconds": round(self.launch_seconds, 6),
            "serialize_seconds": round(self.serialize_seconds, 6),
            "error": self.error,
        }


@dataclass
class TaskFigures:
    """What one committed task did: busy CPU time (its thread's, not wall) and rows.

    ``rows_in`` counts the rows its leaf operators produced (scans and exchange
    reads, so a broadcast input counts in every task that reads it); ``rows_out``
    the rows it wrote. Cheap to take: two thread clock reads per task.
    """

    partition: int
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    rows_in: int = 0
    rows_out: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "partition": self.partition,
            "cpu_seconds": round(self.cpu_seconds, 6),
            "wall_seconds": round(self.wall_seconds, 6),
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
        }


__all__ = ["TaskFigures", "TaskOutcome", "TaskRun"]
