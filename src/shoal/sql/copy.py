"""``COPY ... TO 'folder' (PARTITION BY HASH (keys) INTO n)``: the SQL form of a partitioned write.

Accepted forms (sqlglot's DuckDB dialect parses them into ``exp.Copy``)::

    COPY (SELECT ...) TO 'path' (PARTITION BY HASH (k) INTO 8)
    COPY tablename TO 'path' (PARTITION BY HASH (k1, k2) INTO 4 SHARDS)
    COPY t TO 'path' (FORMAT PARQUET, PARTITION BY HASH (k) INTO 8, OVERWRITE)

The parenthesis around the options may be left out. ``FORMAT`` must be Parquet;
``OVERWRITE`` (optionally ``true``/``false``) replaces an earlier output. Anything else
is a ``SqlSyntaxError`` or, for valid SQL shoal does not do (``COPY ... FROM``, other
options), an ``UnsupportedError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from shoal.errors import SqlSyntaxError, UnsupportedError

COPY_USAGE = "COPY <table or (query)> TO '<folder>' (PARTITION BY HASH (<columns>) INTO <n>)"


@dataclass(frozen=True)
class CopyStatement:
    """A parsed partitioned COPY: exactly one of ``query`` (a query AST) or ``table``."""

    query: exp.Expr | None
    table: str | None
    path: str
    keys: tuple[str, ...]
    shards: int
    overwrite: bool = False


def parse_copy(statement: exp.Copy) -> CopyStatement:
    """The partitioned write a parsed COPY statement asks for (``classify`` said COPY)."""
    if statement.args.get("kind"):
        raise UnsupportedError("COPY ... FROM (shoal only writes: COPY ... TO)")

    source = statement.this
    query: exp.Expr | None = None
    table: str | None = None
    if isinstance(source, exp.Subquery):
        query = source.this
    elif isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
        if source.args.get("db") or source.args.get("catalog"):
            raise UnsupportedError(f"qualified table name {source.sql()} in COPY")
        table = source.name
    else:
        raise SqlSyntaxError(f"COPY needs a table name or a parenthesized query: {COPY_USAGE}")

    files = statement.args.get("files") or []
    if len(files) != 1 or not (isinstance(files[0], exp.Literal) and files[0].is_string):
        raise SqlSyntaxError(
            f"COPY ... TO needs the target folder as a string literal: {COPY_USAGE}"
        )
    path = files[0].this
    if not path:
        raise SqlSyntaxError("COPY ... TO needs a non-empty target folder")

    keys: tuple[str, ...] | None = None
    shards: int | None = None
    overwrite = False
    for param in statement.args.get("params") or []:
        name = param.this.name.upper() if isinstance(param.this, exp.Expr) else str(param.this)
        value = param.args.get("expression")
        if name in ("PARTITION BY", "PARTITION_BY"):
            keys = _hash_keys(value)
        elif name == "INTO":
            shards = _shard_count(value)
        elif name in ("SHARDS", "BUCKETS") and value is None:
            continue  # the unit after INTO n
        elif name == "FORMAT":
            fmt = value.name.upper() if isinstance(value, exp.Expr) else ""
            if fmt != "PARQUET":
                raise UnsupportedError(f"COPY format {fmt or value!s} (only PARQUET)")
        elif name == "OVERWRITE" or name == "OVERWRITE_OR_IGNORE":
            if name == "OVERWRITE_OR_IGNORE":
                raise UnsupportedError("COPY option OVERWRITE_OR_IGNORE (use OVERWRITE)")
            overwrite = _flag(value, name)
        else:
            raise UnsupportedError(f"COPY option {name}")
    if keys is None:
        raise SqlSyntaxError(f"COPY ... TO needs PARTITION BY HASH (<columns>): {COPY_USAGE}")
    if shards is None:
        raise SqlSyntaxError(f"PARTITION BY HASH needs INTO <number of shards>: {COPY_USAGE}")
    return CopyStatement(query, table, path, keys, shards, overwrite)


def _hash_keys(value: exp.Expr | None) -> tuple[str, ...]:
    if not (isinstance(value, exp.Anonymous) and str(value.this).upper() == "HASH"):
        shown = value.sql(dialect="duckdb") if isinstance(value, exp.Expr) else ""
        raise SqlSyntaxError(f"expected PARTITION BY HASH (<columns>), got PARTITION BY {shown}")
    keys = []
    for e in value.expressions:
        if not (isinstance(e, exp.Column) and not e.table):
            raise SqlSyntaxError(
                f"PARTITION BY HASH takes column names, got {e.sql(dialect='duckdb')}"
            )
        keys.append(e.name)
    if not keys:
        raise SqlSyntaxError("PARTITION BY HASH needs at least one column")
    return tuple(keys)


def _shard_count(value: exp.Expr | None) -> int:
    if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
        n = int(value.this)
        if n >= 1:
            return n
    shown = value.sql(dialect="duckdb") if isinstance(value, exp.Expr) else ""
    raise SqlSyntaxError(
        f"INTO needs a positive integer number of shards, got {shown or 'nothing'}"
    )


def _flag(value: exp.Expr | None, name: str) -> bool:
    if value is None:
        return True
    if isinstance(value, exp.Boolean):
        return bool(value.this)
    raise SqlSyntaxError(f"COPY option {name} takes true or false, got {value.sql()}")
