"""Statements other than queries: what a parsed statement asks for, decided in one place.

:func:`classify` names the kind of every parsed statement — nothing looks at the SQL
text before it is parsed; the connection runs each kind (``api/connection.py``
``Connection._dispatch``). EXPLAIN's options and COPY's are read from the parsed node
by ``sql/explain.py`` and ``sql/copy.py``. Views live in the catalog as their parsed query and are
bound where they are used (``sql/binder.py``), like a common table expression. Files
named in FROM (``FROM 'data/*.parquet'``, ``read_parquet(...)``, ``read_csv(...)``)
become table sources here (:func:`file_source`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum

import pyarrow as pa
from sqlglot import exp

from shoal.catalog.sources import CsvSource, ParquetSource, TableSource
from shoal.errors import SqlSyntaxError, UnsupportedError, UserError
from shoal.sql.copy import COPY_USAGE
from shoal.types import sql_type_name


class StatementKind(Enum):
    QUERY = "query"
    CREATE_VIEW = "create view"
    CREATE_TABLE_AS = "create table as"
    DROP = "drop"
    SHOW_TABLES = "show tables"
    DESCRIBE = "describe"
    EXPLAIN = "explain"
    COPY = "copy"


@dataclass(frozen=True)
class Create:
    """CREATE [OR REPLACE] [TEMP] VIEW / TABLE name AS query."""

    name: str
    query: exp.Expr
    replace: bool
    if_not_exists: bool
    #: CREATE TABLE only: the Parquet file the result is written to (the table then
    #: reads it); None keeps the result in memory.
    path: str | None = None


@dataclass(frozen=True)
class Drop:
    """DROP VIEW / TABLE [IF EXISTS] name, ..."""

    names: tuple[str, ...]
    view: bool
    if_exists: bool


def classify(node: exp.Expr) -> StatementKind:
    """The kind of a parsed statement; an ``UnsupportedError`` naming any other."""
    if isinstance(node, exp.Query | exp.Values):
        return StatementKind.QUERY
    if isinstance(node, exp.Command):
        if str(node.this).upper() == "EXPLAIN":
            return StatementKind.EXPLAIN
        if str(node.this).upper() == "COPY":
            # sqlglot could not parse it and kept the text.
            raise SqlSyntaxError(f"cannot parse this COPY statement; expected {COPY_USAGE}")
        raise UnsupportedError(f"statement {node.name!s}")
    if isinstance(node, exp.Copy):
        return StatementKind.COPY
    if isinstance(node, exp.Create):
        kind = str(node.args.get("kind") or "").upper()
        if kind == "VIEW":
            return StatementKind.CREATE_VIEW
        if kind == "TABLE":
            if node.args.get("expression") is None:
                raise UnsupportedError(
                    "CREATE TABLE without AS SELECT (register data with register_arrow / "
                    "register_parquet, or CREATE TABLE ... AS SELECT)"
                )
            return StatementKind.CREATE_TABLE_AS
        raise UnsupportedError(f"CREATE {kind or '?'}")
    if isinstance(node, exp.Drop):
        kind = str(node.args.get("kind") or "").upper()
        if kind not in ("VIEW", "TABLE"):
            raise UnsupportedError(f"DROP {kind or '?'}")
        return StatementKind.DROP
    if isinstance(node, exp.Show):
        if str(node.name).upper() == "TABLES":
            return StatementKind.SHOW_TABLES
        raise UnsupportedError(f"SHOW {node.name}")
    if isinstance(node, exp.Describe):
        return StatementKind.DESCRIBE
    raise UnsupportedError(f"statement {node.key.upper()}")


def create(node: exp.Create) -> Create:
    """CREATE VIEW / TABLE AS. A table goes to a Parquet file when its name is a quoted
    path (``CREATE TABLE 'out/sales.parquet' AS …``: the table is named by the file's
    stem, ``sales``) or when it says ``WITH (format = 'parquet', path = '…')``."""
    table = node.this
    kind = str(node.args.get("kind") or "").upper()
    if isinstance(table, exp.Schema):
        raise UnsupportedError(f"column list in CREATE {kind} {table.sql()}")
    if not isinstance(table, exp.Table) or table.args.get("db"):
        raise UnsupportedError(f"CREATE of {table.sql()} (a plain name is needed)")
    query = node.args["expression"]
    name, path = table.name, _parquet_target(node.args.get("properties"), kind)
    quoted = isinstance(table.this, exp.Identifier) and table.this.quoted
    if kind == "TABLE" and quoted and looks_like_file(name):
        if path is not None:
            raise UserError(f"CREATE TABLE names two targets: '{name}' and path '{path}'")
        if not name.lower().endswith(_PARQUET_SUFFIXES):
            raise UnsupportedError(f"CREATE TABLE '{name}' (only a Parquet file: .parquet)")
        path = name
        name = os.path.splitext(os.path.basename(name.rstrip("/")))[0]
    replace, exists = bool(node.args.get("replace")), bool(node.args.get("exists"))
    return Create(name, query, replace, exists, path)


def _parquet_target(properties: exp.Expr | None, kind: str) -> str | None:
    """The path of ``WITH (format = 'parquet', path = '…')``; other options are errors."""
    # TEMP is a property too; every table and view lives only as long as the connection.
    options = [
        p
        for p in (properties.expressions if properties is not None else [])
        if not isinstance(p, exp.TemporaryProperty)
    ]
    if not options:
        return None
    assert properties is not None
    if kind != "TABLE":
        raise UnsupportedError(f"options of CREATE {kind}: {properties.sql(dialect='duckdb')}")
    fmt: str | None = None
    path: str | None = None
    for prop in options:
        if isinstance(prop, exp.FileFormatProperty):
            fmt = prop.this.name.lower() if isinstance(prop.this, exp.Expr) else str(prop.this)
        elif isinstance(prop, exp.Property) and prop.name.lower() == "path":
            path = _string_argument(prop.args.get("value"), "CREATE TABLE path")
        else:
            raise UnsupportedError(
                f"CREATE TABLE option {prop.sql(dialect='duckdb')} "
                "(known: format = 'parquet', path = '...')"
            )
    if fmt not in (None, "parquet"):
        raise UnsupportedError(f"CREATE TABLE format '{fmt}' (only 'parquet')")
    if path is None:
        raise UserError("CREATE TABLE WITH (format = 'parquet') needs path = '<file>'")
    if not path:
        raise UserError("CREATE TABLE needs a non-empty path")
    return path


def drop(node: exp.Drop) -> Drop:
    names = []
    for table in node.args.get("tables") or [node.this]:
        if not isinstance(table, exp.Table) or table.args.get("db"):
            raise UnsupportedError(f"DROP of {table.sql()} (a plain name is needed)")
        names.append(table.name)
    view = str(node.args.get("kind")).upper() == "VIEW"
    return Drop(tuple(names), view, bool(node.args.get("exists")))


def describe_target(node: exp.Describe) -> exp.Expr:
    """The query whose columns DESCRIBE lists: ``SELECT * FROM t`` for a table name."""
    target = node.this
    if isinstance(target, exp.Table):
        return exp.select("*").from_(target.copy())
    if isinstance(target, exp.Query):
        return target
    raise UnsupportedError(f"DESCRIBE {target.sql()}")


def describe_table(names: list[str], schema: pa.Schema) -> pa.Table:
    """DESCRIBE's result: one row per column (name, SQL type, whether it may be NULL)."""
    return pa.table(
        {
            "column_name": pa.array(names, pa.string()),
            "column_type": pa.array([sql_type_name(f.type) for f in schema], pa.string()),
            "null": pa.array(["YES" if f.nullable else "NO" for f in schema], pa.string()),
        }
    )


# ---------------------------------------------------------------- files as tables

_PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
_CSV_SUFFIXES = (".csv", ".tsv", ".txt")


def looks_like_file(name: str) -> bool:
    """A quoted FROM name that is a path (``'data/*.parquet'``), not a table name."""
    lowered = name.lower().rstrip("/*")
    return any(lowered.endswith(s) for s in _PARQUET_SUFFIXES + _CSV_SUFFIXES) or "/" in name


def file_source(node: exp.Expr) -> TableSource:
    """A table source for ``'path'``, ``read_parquet('path')`` or ``read_csv('path', ...)``."""
    if isinstance(node, exp.Identifier):
        path = node.name
        if any(path.lower().endswith(s) for s in _CSV_SUFFIXES):
            return CsvSource(path, path)
        return ParquetSource(path, path)
    if isinstance(node, exp.ReadParquet):
        args = list(node.expressions)
        path = _string_argument(args[0] if args else None, "read_parquet")
        if len(args) > 1:
            raise UnsupportedError(f"read_parquet options: {node.sql()}")
        return ParquetSource(path, path)
    if isinstance(node, exp.ReadCSV):
        path = _string_argument(node.this, "read_csv")
        delimiter = ","
        for option in node.expressions:
            if isinstance(option, exp.EQ) and option.left.name.lower() in ("delim", "sep"):
                delimiter = _string_argument(option.right, "read_csv delim")
            else:
                raise UnsupportedError(f"read_csv option {option.sql()}")
        return CsvSource(path, path, delimiter)
    name = node.name if isinstance(node, exp.Anonymous) else node.sql()
    raise UnsupportedError(f"table function {name}")


def _string_argument(node: exp.Expr | None, what: str) -> str:
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    raise UserError(f"{what} needs a constant string path, got {node.sql() if node else 'nothing'}")
