"""DB-API 2.0 (PEP 249) over an embedded shoal connection, plus Arrow fetches.

    import shoal.dbapi
    with shoal.dbapi.connect(tables={"t": "data/t.parquet"}) as con:
        cur = con.cursor()
        cur.execute("SELECT name FROM t WHERE id = ? AND day >= ?", (7, date(2024, 1, 1)))
        cur.fetchall()              # [(...), ...]
        cur.fetch_arrow_table()     # what is left, as a pyarrow.Table

``paramstyle`` is ``qmark``: each ``?`` is bound to its value as a typed literal
(``Connection.sql(text, params)``), never pasted into the text. shoal has no
transactions: every statement takes effect on its own, so ``commit`` and ``rollback``
do nothing. The exception classes are shoal's own (``shoal.errors``): a
``SqlSyntaxError`` *is* a ``ProgrammingError``, an ``InvalidDataError`` a
``DataError``, ``UnsupportedError`` a ``NotSupportedError``, and so on.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import pyarrow as pa

import shoal
from shoal.errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
)
from shoal.sql.statements import StatementKind

__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "Binary",
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Warning",
    "apilevel",
    "connect",
    "paramstyle",
    "threadsafety",
]

apilevel = "2.0"
# Threads may share the module, not connections: a connection's catalog is not locked.
threadsafety = 1
paramstyle = "qmark"


class Warning(Exception):  # PEP 249's name (it shadows the builtin here only)
    """DB-API: important warnings (shoal raises none)."""


# ------------------------------------------------------------- types (PEP 249)


class DBAPITypeObject:
    """Compares equal to the ``type_code`` of every column of its kind."""

    def __init__(self, name: str, *predicates: Any) -> None:
        self.name = name
        self._predicates = predicates

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return other is self
        if isinstance(other, pa.DataType):
            return any(p(other) for p in self._predicates)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"<DBAPITypeObject {self.name}>"


STRING = DBAPITypeObject(
    "STRING", pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view
)
BINARY = DBAPITypeObject(
    "BINARY", pa.types.is_binary, pa.types.is_large_binary, pa.types.is_fixed_size_binary
)
NUMBER = DBAPITypeObject(
    "NUMBER", pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal, pa.types.is_boolean
)
DATETIME = DBAPITypeObject(
    "DATETIME", pa.types.is_date, pa.types.is_timestamp, pa.types.is_time, pa.types.is_duration
)
ROWID = DBAPITypeObject("ROWID")  # shoal has no row ids: equal to no column

Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime
Binary = bytes


def DateFromTicks(ticks: float) -> datetime.date:
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> datetime.time:
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> datetime.datetime:
    return Timestamp(*time.localtime(ticks)[:6])


# ------------------------------------------------------------------- connect


def connect(
    database: str | os.PathLike[str] | None = None,
    *,
    tables: Mapping[str, str | os.PathLike[str]] | None = None,
    partitions: int | None = None,
    **settings: Any,
) -> Connection:
    """A DB-API connection to an embedded engine.

    ``database`` is a folder whose Parquet/CSV files and sub-folders become tables
    (as the shell's ``.open``); ``tables`` maps more names to paths. ``partitions``
    and ``settings`` are those of ``shoal.connect``.
    """
    from shoal.shell.registration import open_path, register_path

    con = shoal.connect(partitions=partitions, **settings)
    if database is not None:
        open_path(con, os.fspath(database))
    for name, path in (tables or {}).items():
        register_path(con, name, os.fspath(path))
    return Connection(con)


class Connection:
    """PEP 249 connection. ``engine`` is the ``shoal.Connection`` underneath, for
    registering more tables (``con.engine.register_arrow(...)``)."""

    # PEP 249's optional extension: the error classes as connection attributes.
    Error = Error
    Warning = Warning
    InterfaceError = InterfaceError
    DatabaseError = DatabaseError
    DataError = DataError
    OperationalError = OperationalError
    IntegrityError = IntegrityError
    InternalError = InternalError
    ProgrammingError = ProgrammingError
    NotSupportedError = NotSupportedError

    def __init__(self, engine: shoal.Connection) -> None:
        self._engine: shoal.Connection | None = engine

    @property
    def engine(self) -> shoal.Connection:
        if self._engine is None:
            raise InterfaceError("the connection is closed")
        return self._engine

    @property
    def closed(self) -> bool:
        return self._engine is None

    def cursor(self) -> Cursor:
        return Cursor(self)

    def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> Cursor:
        """A new cursor that has run ``operation`` (as sqlite3 and DuckDB offer)."""
        return self.cursor().execute(operation, parameters)

    def commit(self) -> None:
        """Nothing to commit: every statement takes effect when it runs."""
        self.engine  # noqa: B018 - raises on a closed connection

    def rollback(self) -> None:
        """Nothing to roll back (no transactions); kept so generic callers work."""
        self.engine  # noqa: B018

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


Description = tuple[str, pa.DataType, None, None, int | None, int | None, bool]


class Cursor:
    """PEP 249 cursor. Results are read in full by ``execute``; fetches page through them."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.arraysize = 1
        self._table: pa.Table | None = None
        self._pos = 0
        self._rowcount = -1
        self._closed = False

    # --------------------------------------------------------------- state

    @property
    def description(self) -> list[Description] | None:
        """Per column: name, type_code (a ``pyarrow.DataType``, equal to one of STRING,
        BINARY, NUMBER, DATETIME), display size, internal size, precision, scale, null_ok;
        None before any statement ran."""
        if self._table is None:
            return None
        out: list[Description] = []
        for f in self._table.schema:
            precision = f.type.precision if pa.types.is_decimal(f.type) else None
            scale = f.type.scale if pa.types.is_decimal(f.type) else None
            out.append((f.name, f.type, None, None, precision, scale, f.nullable))
        return out

    @property
    def rowcount(self) -> int:
        """Rows the last statement returned (for COPY: rows written); -1 before any."""
        return self._rowcount

    @property
    def rownumber(self) -> int | None:
        return None if self._table is None else self._pos

    lastrowid = None

    # ----------------------------------------------------------- statements

    def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> Cursor:
        """Run one statement; ``parameters`` bind its ``?`` placeholders in order."""
        engine = self._open_engine()
        if parameters is not None and isinstance(parameters, Mapping):
            raise ProgrammingError("paramstyle is qmark: give parameters as a sequence")
        result = engine.sql(operation, list(parameters) if parameters is not None else None)
        table = result.to_arrow()
        self._table, self._pos = table, 0
        if engine.statement_kind(operation) is StatementKind.COPY:
            self._rowcount = int(table.column("rows")[0].as_py())
        else:
            self._rowcount = table.num_rows
        return self

    def executemany(self, operation: str, seq_of_parameters: Sequence[Sequence[Any]]) -> Cursor:
        """``execute`` once per parameter sequence; rowcount is the sum, the last result
        is the one fetched."""
        total = 0
        ran = False
        for parameters in seq_of_parameters:
            self.execute(operation, parameters)
            total += max(self._rowcount, 0)
            ran = True
        self._rowcount = total if ran else -1
        return self

    # --------------------------------------------------------------- fetches

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self._take(1)
        return rows[0] if rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        n = self.arraysize if size is None else size
        if n < 0:
            raise ProgrammingError(f"fetchmany size must be >= 0, got {n}")
        return self._take(n)

    def fetchall(self) -> list[tuple[Any, ...]]:
        table = self._result()
        return self._take(table.num_rows - self._pos)

    def fetch_arrow_table(self) -> pa.Table:
        """The rows not fetched yet, as a ``pyarrow.Table``."""
        table = self._result()
        rest = table.slice(self._pos)
        self._pos = table.num_rows
        return rest

    def fetch_record_batch(self) -> pa.RecordBatchReader:
        """The rows not fetched yet, as a ``pyarrow.RecordBatchReader``."""
        rest = self.fetch_arrow_table()
        return pa.RecordBatchReader.from_batches(rest.schema, rest.to_batches())

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    # ----------------------------------------------------------- no-ops (PEP 249)

    def setinputsizes(self, sizes: Any) -> None:
        """Accepted and ignored: parameter types come from the values."""

    def setoutputsize(self, size: Any, column: int | None = None) -> None:
        """Accepted and ignored: results are Arrow columns of any size."""

    def close(self) -> None:
        self._closed = True
        self._table = None

    def __enter__(self) -> Cursor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --------------------------------------------------------------- helpers

    def _open_engine(self) -> shoal.Connection:
        if self._closed:
            raise InterfaceError("the cursor is closed")
        return self.connection.engine

    def _result(self) -> pa.Table:
        self._open_engine()
        if self._table is None:
            raise ProgrammingError("no statement has been executed on this cursor")
        return self._table

    def _take(self, n: int) -> list[tuple[Any, ...]]:
        table = self._result()
        part = table.slice(self._pos, n)
        self._pos += part.num_rows
        columns = [c.to_pylist() for c in part.columns]
        return list(zip(*columns, strict=True)) if columns else [()] * part.num_rows
