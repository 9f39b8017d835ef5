"""The error hierarchy: one base class, user errors apart from execution errors.

User errors (``UserError`` and below) are about the SQL text or the catalog; they
are never retried and, where they come from the SQL text, carry its line and
column. Execution errors happen while tasks run; they name the stage and task.

The PEP 249 (DB-API 2.0) classes live here too, at the bottom, and every shoal
error is also one of them (``UserError`` is a ``ProgrammingError``,
``ExecutionError`` an ``OperationalError``, ...), so code written against
``shoal.dbapi`` catches shoal's own errors without any wrapping.
``InternalError`` is what the public API raises for anything unexpected: a bug
in shoal, with the original exception as its ``__cause__``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from shoal.units import human_bytes

# ------------------------------------------------------------ PEP 249 (DB-API 2.0)


class Error(Exception):
    """DB-API: base of all database errors."""


class InterfaceError(Error):
    """DB-API: misuse of the interface (e.g. a closed cursor)."""


class DatabaseError(Error):
    """DB-API: an error related to the database."""


class DataError(DatabaseError):
    """DB-API: a problem with the processed data (bad cast, overflow, division by zero)."""


class OperationalError(DatabaseError):
    """DB-API: the database's operation failed (I/O, cancelled, out of resources)."""


class IntegrityError(DatabaseError):
    """DB-API: relational integrity is affected (shoal enforces no constraints)."""


class ProgrammingError(DatabaseError):
    """DB-API: an error in what was asked (syntax, unknown table, wrong parameters)."""


class NotSupportedError(DatabaseError):
    """DB-API: a feature or API the database does not support."""


# ----------------------------------------------------------------------- shoal's own


class ShoalError(DatabaseError):
    """Base of every error shoal raises on purpose.

    Every subclass survives pickling intact (a task's error crosses process
    boundaries): it is rebuilt from its message and attributes, not by calling its
    ``__init__`` again, so classes with their own ``__init__`` need nothing extra.
    """

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


# --------------------------------------------------------------------- user errors


class UserError(ShoalError, ProgrammingError):
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


class AmbiguousColumnError(UserError):
    """A column name that more than one table in scope provides."""


class TypeMismatchError(UserError):
    """An operator or function applied to types it does not accept."""


class UnsupportedError(UserError, NotSupportedError):
    """Valid SQL that shoal does not (yet) support; names the construct."""

    def __init__(self, construct: str):
        super().__init__(f"unsupported: {construct}")
        self.construct = construct


class CatalogError(UserError):
    """A registration that cannot be honoured (missing file, bad format, name clash)."""


class AccessDeniedError(UserError):
    """SQL asked to read or write a path outside the directories it may use."""


class InternalError(ShoalError):
    """Something shoal did wrong: this is a bug in shoal.

    The public API (``api/boundary.py``) raises it in place of any exception that is
    not a ``ShoalError``, with the original chained as ``__cause__`` (``wrapping``).
    Also the DB-API's ``InternalError`` (a ``DatabaseError``, through ``ShoalError``).
    Not known to be deterministic, so a materialized query retries the task.
    """

    where: str | None = None

    @classmethod
    def wrapping(cls, where: str, cause: BaseException) -> InternalError:
        """The error for an unexpected ``cause`` met in ``where``."""
        error = cls(
            f"internal error in {where} (this is a bug in shoal): {type(cause).__name__}: {cause}"
        )
        error.where = where
        return error


class PlanError(InternalError):
    """A plan that violates an invariant (e.g. an unmet distribution need).

    This is an internal error: it is likely caused by a bug in shoal.
    """


# ---------------------------------------------------------------- execution errors


class ExecutionError(ShoalError, OperationalError):
    """A failure while tasks ran. Names where it happened; chains the cause.

    Unless it is a ``TransientError``, an execution error is taken as deterministic
    (the data makes it happen: a failed cast, an overflow, a division by zero) and is
    never retried. ``attempts`` is how many attempts the task had when the query gave
    up; ``worker`` names where the last one ran.
    """

    def __init__(
        self,
        message: str,
        stage: int | None = None,
        partition: int | None = None,
        attempt: int | None = None,
        *,
        attempts: int | None = None,
        worker: str | None = None,
    ):
        where = []
        if stage is not None:
            where.append(f"stage {stage}")
        if partition is not None:
            where.append(f"task {partition}")
        if attempt is not None:
            where.append(f"attempt {attempt}")
        if attempts is not None:
            where.append(f"{attempts} attempt{'s' if attempts != 1 else ''}")
        if worker is not None:
            where.append(f"worker {worker}")
        prefix = f"[{', '.join(where)}] " if where else ""
        super().__init__(prefix + message)
        self.stage = stage
        self.partition = partition
        self.attempt = attempt
        self.attempts = attempts
        self.worker = worker


class TransientError(ExecutionError):
    """A failure that may not happen again (an I/O hiccup, an injected fault).

    With ``retry_policy="task"`` the task re-runs alone on the same committed inputs.
    """


class WorkerLostError(TransientError):
    """The worker running a task went away (its process died, its node was lost)."""


class InvalidDataError(ExecutionError, DataError):
    """A value the query cannot process: a failed cast, an overflow, a division by zero."""


class QueryCancelledError(ExecutionError):
    """The query was cancelled (by the user or because another task failed)."""


class QueryInterruptedError(QueryCancelledError, KeyboardInterrupt):
    """Ctrl-C (KeyboardInterrupt) in the caller's thread stopped the query.

    Both ``except KeyboardInterrupt`` and ``except QueryCancelledError`` catch it.
    """


class QueryTimeoutError(QueryCancelledError):
    """The query ran longer than its ``timeout`` and was stopped."""


class ResultLimitError(ExecutionError):
    """A query's result grew past a limit set for it (rows or bytes) and was stopped."""


class ResourceError(ExecutionError):
    """A memory budget could not be met and the operator cannot spill."""


class ResourceExhaustedError(ResourceError):
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
        state_limit: int | None = None,
    ):
        room = (
            f" ({human_bytes(state_limit)} of it for operator state, the rest for batches in flight)"
            if state_limit is not None
            else ""
        )
        super().__init__(
            f"{operator} needs {human_bytes(needed)} more memory and cannot spill: it holds"
            f" {human_bytes(held)}, the query has {human_bytes(reserved)} reserved of its budget"
            f" memory_limit={human_bytes(budget)}{room}",
            stage=stage,
            partition=task,
            attempt=0 if stage is not None else None,
        )
        self.operator = operator
        self.needed = needed
        self.held = held
        self.reserved = reserved
        self.budget = budget
        self.state_limit = state_limit

    def __reduce__(self) -> tuple[object, ...]:
        return (
            type(self),
            (self.operator, self.needed, self.held, self.reserved, self.budget)
            + (self.stage, self.partition, self.state_limit),
        )


def _rebuild(
    cls: type[ShoalError], args: tuple[object, ...], state: dict[str, object]
) -> ShoalError:
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    candidates = sorted(set(known))
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in candidates], n=1)
    if close:
        original = next(c for c in candidates if c.lower() == close[0])
        return f"; did you mean '{original}'?"
    if candidates and len(candidates) <= 12:
        return f"; known: {', '.join(candidates)}"
    return ""
