"""Fault injection: make chosen task attempts fail or run slowly (tests, demos).

A ``Fault`` names a (stage, partition, attempt) — any of them may be left open to
match every value — and what happens there. Faults travel inside the task
descriptions of the tasks they match, so an executor in another process applies
them too. A task with no fault pays nothing; one with a fault fails when it is
about to hand over its first output batch (or at its end when it made none), so
some of its output may already have been written: what a real crash mid-task
leaves behind.

The command line form is ``stage=1,partition=0,attempt=0,kind=transient``
(``kind`` one of transient, internal, user, lost_worker, slow; ``seconds=`` for
slow; a missing stage/partition/attempt matches all).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from shoal.errors import InternalError, TransientError, UserError, WorkerLostError


class FaultKind(StrEnum):
    TRANSIENT = "transient"  # TransientError: retried under retry_policy="task"
    INTERNAL = "internal"  # InternalError: a bug; retried under retry_policy="task"
    USER = "user"  # UserError: never retried
    LOST_WORKER = "lost_worker"  # WorkerLostError: the worker went away; retried
    SLOW = "slow"  # the task sleeps ``seconds`` before it starts (cancellable)


class FaultSpecError(UserError):
    """A fault description that does not parse."""


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    stage: int | None = None  # None: every stage
    partition: int | None = None  # None: every task of the stage
    attempt: int | None = None  # None: every attempt (a persistent fault)
    seconds: float = 1.0  # how long a slow task sleeps

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))

    def matches(self, stage: int, partition: int, attempt: int) -> bool:
        return (
            (self.stage is None or self.stage == stage)
            and (self.partition is None or self.partition == partition)
            and (self.attempt is None or self.attempt == attempt)
        )

    def error(self, stage: int, partition: int, attempt: int) -> Exception:
        where = f"stage={stage}, partition={partition}, attempt={attempt}"
        if self.kind == FaultKind.TRANSIENT:
            return TransientError(f"injected transient fault ({where})")
        if self.kind == FaultKind.LOST_WORKER:
            return WorkerLostError(f"injected lost worker ({where})")
        if self.kind == FaultKind.INTERNAL:
            return InternalError(f"injected internal error ({where})")
        if self.kind == FaultKind.USER:
            return UserError(f"injected user error ({where})")
        raise AssertionError(self.kind)

    def __str__(self) -> str:
        parts = [
            f"{name}={value}"
            for name, value in (
                ("stage", self.stage),
                ("partition", self.partition),
                ("attempt", self.attempt),
            )
            if value is not None
        ]
        parts.append(f"kind={self.kind.value}")
        if self.kind == FaultKind.SLOW:
            parts.append(f"seconds={self.seconds:g}")
        return ",".join(parts)


def parse_fault(text: str) -> Fault:
    """``"stage=1,partition=0,attempt=0,kind=transient"`` -> ``Fault``."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep or name not in ("stage", "partition", "attempt", "kind", "seconds"):
            raise FaultSpecError(
                f"bad fault {text!r}: expected stage=S,partition=P,attempt=A,kind=K[,seconds=X]"
                f" (got {item.strip()!r})"
            )
        fields[name] = value.strip()
    kinds = ", ".join(k.value for k in FaultKind)
    try:
        kind = FaultKind(fields.get("kind", "").lower().replace("-", "_"))
    except ValueError:
        raise FaultSpecError(f"bad fault {text!r}: kind must be one of {kinds}") from None
    numbers: dict[str, int | None] = {}
    for name in ("stage", "partition", "attempt"):
        raw = fields.get(name)
        if raw is None or raw == "*":
            numbers[name] = None
            continue
        if not raw.isdigit():
            raise FaultSpecError(f"bad fault {text!r}: {name} must be a number or *, got {raw!r}")
        numbers[name] = int(raw)
    try:
        seconds = float(fields.get("seconds", "1"))
    except ValueError:
        raise FaultSpecError(f"bad fault {text!r}: seconds must be a number") from None
    return Fault(kind, numbers["stage"], numbers["partition"], numbers["attempt"], seconds)


def faults_for(
    faults: Iterable[Fault], stage: int, partition: int, attempt: int
) -> tuple[Fault, ...]:
    """The faults that apply to one task attempt."""
    return tuple(f for f in faults if f.matches(stage, partition, attempt))


class FaultPoint:
    """Applies one task attempt's faults: ``before_start`` sleeps, ``before_output``
    raises. Built only for a task with faults (``FaultPoint.of`` returns None otherwise)."""

    def __init__(self, faults: tuple[Fault, ...], stage: int, partition: int, attempt: int) -> None:
        self._faults = faults
        self._where = (stage, partition, attempt)
        self._fired = False

    @staticmethod
    def of(
        faults: tuple[Fault, ...], stage: int, partition: int, attempt: int
    ) -> FaultPoint | None:
        mine = faults_for(faults, stage, partition, attempt)
        return FaultPoint(mine, stage, partition, attempt) if mine else None

    def before_start(self, cancelled: Callable[[], bool]) -> None:
        for fault in self._faults:
            if fault.kind == FaultKind.SLOW:
                deadline = time.monotonic() + fault.seconds
                while time.monotonic() < deadline and not cancelled():
                    time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    def before_output(self) -> None:
        if self._fired:
            return
        for fault in self._faults:
            if fault.kind != FaultKind.SLOW:
                self._fired = True
                raise fault.error(*self._where)


__all__ = ["Fault", "FaultKind", "FaultPoint", "FaultSpecError", "faults_for", "parse_fault"]
