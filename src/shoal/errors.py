"""The error hierarchy: one base class, user errors apart from execution errors.

User errors (``UserError`` and below) are about the SQL text or the catalog; they
are never retried and, where they come from the SQL text, carry its line and
column. Execution errors happen while tasks run; they name the stage and task.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ShoalError(Exception):
    """Base of every error shoal raises on purpose."""


# --------------------------------------------------------------------- user errors


class UserError(ShoalError):
    """A problem with what the user asked for: never retried."""


class SqlSyntaxError(UserError):
    """The SQL text does not parse. ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"syntax error{where}: {message}")
        self.line = line
        self.column = column


class UnknownTableError(UserError):
    """A table name the catalog does not hold."""

    def __init__(self, name: str, known: Iterable[str]):
        super().__init__(f"unknown table '{name}'{_did_you_mean(name, known)}")
        self.name = name


class UnknownColumnError(UserError):
    """A column name that no table in scope provides.

    The binder raises and catches this while it looks for correlated columns, so the
    "did you mean" suggestion is only worked out when the message is read.
    """

    def __init__(self, name: str, known: Iterable[str] = ()):
        super().__init__(name)
        self.name = name
        self._known = tuple(known)

    def __str__(self) -> str:
        return f"unknown column '{self.name}'{_did_you_mean(self.name, self._known)}"

    def __reduce__(self) -> tuple[type[UnknownColumnError], tuple[str, tuple[str, ...]]]:
        return (type(self), (self.name, self._known))


class AmbiguousColumnError(UserError):
    """A column name that more than one table in scope provides."""


class TypeMismatchError(UserError):
    """An operator or function applied to types it does not accept."""


class UnsupportedError(UserError):
    """Valid SQL that shoal does not (yet) support; names the construct."""

    def __init__(self, construct: str):
        super().__init__(f"unsupported: {construct}")
        self.construct = construct


class CatalogError(UserError):
    """A registration that cannot be honoured (missing file, bad format, name clash)."""


class PlanError(ShoalError):
    """A plan that violates an invariant (e.g. an unmet distribution need).

    This is an internal error: it is likely caused by a bug in shoal.
    """


# ---------------------------------------------------------------- execution errors


class ExecutionError(ShoalError):
    """A failure while tasks ran. Names where it happened; chains the cause."""

    def __init__(
        self,
        message: str,
        stage: int | None = None,
        partition: int | None = None,
        attempt: int | None = None,
    ):
        where = []
        if stage is not None:
            where.append(f"stage {stage}")
        if partition is not None:
            where.append(f"task {partition}")
        if attempt is not None:
            where.append(f"attempt {attempt}")
        prefix = f"[{', '.join(where)}] " if where else ""
        super().__init__(prefix + message)
        self.stage = stage
        self.partition = partition
        self.attempt = attempt


class QueryCancelledError(ExecutionError):
    """The query was cancelled (by the user or because another task failed)."""


class QueryInterruptedError(QueryCancelledError, KeyboardInterrupt):
    """Ctrl-C (KeyboardInterrupt) in the caller's thread stopped the query.

    Both ``except KeyboardInterrupt`` and ``except QueryCancelledError`` catch it.
    """


class QueryTimeoutError(QueryCancelledError):
    """The query ran longer than its ``timeout`` and was stopped."""


class ResourceExhaustedError(ExecutionError):
    """A memory budget could not be met and the operator cannot spill.

    Names the operator, stage and task, the bytes it asked for, what it held, and
    the query's budget (``memory_limit``).
    """

    def __init__(
        self,
        operator: str,
        needed: int,
        held: int,
        reserved: int,
        budget: int,
        stage: int | None = None,
        task: int | None = None,
    ):
        super().__init__(
            f"{operator} needs {_bytes(needed)} more memory and cannot spill: it holds"
            f" {_bytes(held)}, the query has {_bytes(reserved)} reserved of its budget"
            f" memory_limit={_bytes(budget)}",
            stage=stage,
            partition=task,
            attempt=0 if stage is not None else None,
        )
        self.operator = operator
        self.needed = needed
        self.held = held
        self.reserved = reserved
        self.budget = budget

    def __reduce__(self) -> tuple[object, ...]:
        return (
            type(self),
            (self.operator, self.needed, self.held, self.reserved, self.budget)
            + (self.stage, self.partition),
        )


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return str(n)


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    candidates = sorted(set(known))
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in candidates], n=1)
    if close:
        original = next(c for c in candidates if c.lower() == close[0])
        return f"; did you mean '{original}'?"
    if candidates and len(candidates) <= 12:
        return f"; known: {', '.join(candidates)}"
    return ""
