"""Malformed SQL that sqlglot accepts: a ``SqlSyntaxError`` at the offending token.

Each text is rejected by DuckDB too; the look-alikes below them are valid and must
still give DuckDB's answer.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

import shoal
from shoal.errors import SqlSyntaxError

from .oracle import check, duckdb_outcome

TABLES = {"t": pa.table({"a": [1, 2, 3], "b": [4, 5, 6], "c": [0, 9, 2]})}

# (sql, the 1-based line and column of the token the error names)
MALFORMED = [
    ("SELECT a , , b FROM t", 1, 12),
    ("SELECT sum( , a) FROM t", 1, 13),
    ("SELECT a, b FROM t GROUP BY a, , b", 1, 32),
    ("SELECT 1 FROM t WHERE EXISTS (SELECT FROM t)", 1, 31),
    ("SELECT a < b < c FROM t", 1, 14),
    ("SELECT DATE 0", 1, 13),
    ("SELECT a IN 300 FROM t", 1, 13),
    ("SELECT + * FROM t", 1, 10),
    ("SELECT a\nFROM t\nWHERE a = b = c", 3, 13),
    ("SELECT , a FROM t", 1, 8),
    ("SELECT a FROM t ORDER BY , a", 1, 26),
    ("SELECT 1 + 1 < 3 = true", 1, 18),
    ("SELECT - * FROM t", 1, 10),
]

VALID_LOOKALIKES = [
    "SELECT a, b, FROM t",  # DuckDB allows a trailing comma
    "SELECT (a < b) < (b < c) FROM t",
    "SELECT a FROM t WHERE a < b AND b < c + 10",
    "SELECT a BETWEEN 1 AND 2 = true FROM t",
    "SELECT CASE WHEN a = 1 THEN b = 4 ELSE c = 2 END FROM t",
    "SELECT DATE '2020-01-01' + INTERVAL 1 DAY",
    "SELECT count(*), t.* FROM t GROUP BY ALL",
    "SELECT a * b, 2 * 3 FROM t",
    "SELECT a FROM t WHERE a IN (1, 3)",
    "SELECT a FROM t WHERE a IN (SELECT c FROM t)",
    "SELECT DISTINCT a FROM t ORDER BY a",
]


@pytest.fixture(scope="module")
def con() -> shoal.Connection:
    con = shoal.connect(partitions=2)
    for name, table in TABLES.items():
        con.register_arrow(name, table)
    return con


@pytest.mark.parametrize(("sql", "line", "column"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_sql_is_a_syntax_error(
    con: shoal.Connection, sql: str, line: int, column: int
) -> None:
    assert not isinstance(duckdb_outcome(sql, TABLES), pa.Table), f"DuckDB accepts {sql!r}"
    with pytest.raises(SqlSyntaxError) as info:
        con.sql(sql)
    assert (info.value.line, info.value.column) == (line, column), str(info.value)
    assert f"(line {line}, column {column})" in str(info.value)


@pytest.mark.parametrize("sql", VALID_LOOKALIKES)
def test_valid_lookalikes_still_answer(con: shoal.Connection, sql: str) -> None:
    assert check(con, sql, TABLES) is None


def test_connection_answers_after_syntax_errors(con: shoal.Connection) -> None:
    for sql, _, _ in MALFORMED:
        with pytest.raises(SqlSyntaxError):
            con.sql(sql)
    assert con.sql("SELECT sum(a) FROM t").fetchall()[0][0] == 6
