"""Retry rules: which task failures re-run the task, how often, after how long.

Failures fall into kinds (``classify``). Under ``retry_policy="task"`` a transient
failure (an I/O error, a lost worker, an injected fault) and an internal one (a
bug is not known to repeat) re-run the task alone, up to ``task_retries`` times,
waiting ``retry_backoff_seconds * 2**(k-1)`` before re-run k. A user error and a
deterministic execution error (the data makes it happen: a failed cast, an
overflow, a division by zero) fail the query at once: running again would fail
again. Under ``retry_policy="none"`` nothing is retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shoal.errors import (
    ExecutionError,
    QueryCancelledError,
    TransientError,
    UserError,
)
from shoal.exchange_spec import RetryPolicy


class FailureKind(StrEnum):
    USER = "user"  # the query is wrong: never retried
    DETERMINISTIC = "deterministic"  # the data makes it fail: never retried
    TRANSIENT = "transient"  # may not happen again: retried
    INTERNAL = "internal"  # a bug, not known to repeat: retried
    CANCELLED = "cancelled"  # the query is being stopped: not a failure of the task


def classify(err: BaseException) -> FailureKind:
    if isinstance(err, QueryCancelledError):
        return FailureKind.CANCELLED
    if isinstance(err, UserError):
        return FailureKind.USER
    if isinstance(err, TransientError):
        return FailureKind.TRANSIENT
    if isinstance(err, ExecutionError):
        return FailureKind.DETERMINISTIC
    if isinstance(err, OSError):  # pyarrow's I/O errors are OSErrors too
        return FailureKind.TRANSIENT
    return FailureKind.INTERNAL


RETRYABLE = frozenset({FailureKind.TRANSIENT, FailureKind.INTERNAL})


@dataclass(frozen=True)
class RetryRules:
    policy: RetryPolicy
    task_retries: int = 3
    backoff_seconds: float = 0.05

    def __post_init__(self) -> None:
        if self.task_retries < 0:
            raise ValueError(f"task_retries must be >= 0, got {self.task_retries}")

    @property
    def max_attempts(self) -> int:
        return 1 + (self.task_retries if self.policy is RetryPolicy.TASK else 0)

    def should_retry(self, err: BaseException, attempts_made: int) -> bool:
        """Whether a task that failed with ``err`` after ``attempts_made`` attempts runs again."""
        return classify(err) in RETRYABLE and attempts_made < self.max_attempts

    def backoff(self, retry: int) -> float:
        """Seconds to wait before re-run ``retry`` (1-based)."""
        return self.backoff_seconds * (2 ** (retry - 1))


__all__ = ["RETRYABLE", "FailureKind", "RetryRules", "classify"]
