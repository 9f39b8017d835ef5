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
            "error": self.error,
        }


__all__ = ["TaskOutcome", "TaskRun"]
