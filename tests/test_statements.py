"""Statements besides queries: CREATE [OR REPLACE] [TEMP] VIEW, CREATE TABLE ... AS SELECT,
DROP VIEW / TABLE [IF EXISTS], SHOW TABLES, DESCRIBE, and files as tables (FROM 'path',
read_parquet, read_csv) — results checked against DuckDB where it answers the same."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import shoal
from shoal.errors import CatalogError, UnknownTableError, UnsupportedError, UserError


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    pq.write_table(pa.table({"a": [1, 2, 3], "b": ["x", "y", None]}), tmp_path / "p1.parquet")
    pq.write_table(pa.table({"a": [4, 5], "b": ["z", "x"]}), tmp_path / "p2.parquet")
    pacsv.write_csv(pa.table({"a": [1, 2, 5], "c": ["u", "v", "w"]}), tmp_path / "c.csv")
    return tmp_path


@pytest.fixture()
def con() -> shoal.Connection:
    return shoal.connect(partitions=2)


def _same(con: shoal.Connection, sql: str) -> None:
    ours = sorted(con.sql(sql).fetchall(), key=repr)
    theirs = sorted(duckdb.sql(sql).fetchall(), key=repr)
    assert ours == theirs, sql


@pytest.mark.parametrize(
    "template",
    [
        "SELECT * FROM '{d}/p1.parquet'",
        "SELECT a, b FROM '{d}/*.parquet' WHERE a > 1",
        "SELECT count(*), sum(a) FROM read_parquet('{d}/*.parquet')",
        "SELECT * FROM read_csv('{d}/c.csv')",
        "SELECT x.a, x.c, p.b FROM read_csv('{d}/c.csv') x JOIN '{d}/*.parquet' p ON x.a = p.a",
    ],
)
def test_files_as_tables(con: shoal.Connection, files: Path, template: str) -> None:
    _same(con, template.format(d=files))


def test_read_csv_delimiter(con: shoal.Connection, tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("a|b\n1|x\n2|y\n")
    rows = con.sql(f"SELECT a, b FROM read_csv('{tmp_path}/d.txt', delim='|') ORDER BY a")
    assert rows.fetchall() == [(1, "x"), (2, "y")]


def test_view_lifecycle(con: shoal.Connection, files: Path) -> None:
    con.sql(f"CREATE VIEW v AS SELECT a, b FROM '{files}/*.parquet' WHERE a > 1")
    assert con.sql("SELECT a FROM v ORDER BY a").fetchall() == [(2,), (3,), (4,), (5,)]
    # a view is bound where it is used: its source's new rows show up
    pq.write_table(pa.table({"a": [9], "b": ["n"]}), files / "p3.parquet")
    assert con.sql("SELECT max(a) FROM v").fetchall() == [(9,)]
    with pytest.raises(CatalogError, match="already exists"):
        con.sql("CREATE VIEW v AS SELECT 1")
    con.sql(f"CREATE OR REPLACE TEMP VIEW v AS SELECT a * 10 AS a10 FROM '{files}/p1.parquet'")
    assert con.sql("SELECT a10 FROM v ORDER BY 1").fetchall() == [(10,), (20,), (30,)]
    con.sql("CREATE VIEW w AS SELECT count(*) AS n FROM v")  # a view over a view
    assert con.sql("SELECT n FROM w").fetchall() == [(3,)]
    assert con.sql("SHOW TABLES").fetchall() == [("v",), ("w",)]
    con.sql("DROP VIEW w")
    con.sql("DROP VIEW IF EXISTS w")
    with pytest.raises(UnknownTableError):
        con.sql("DROP VIEW w")
    with pytest.raises(UnknownTableError, match="missing"):
        con.sql("CREATE VIEW bad AS SELECT * FROM missing")


def test_view_hides_outer_ctes(con: shoal.Connection) -> None:
    con.register_arrow("t", pa.table({"x": [1, 2]}))
    con.sql("CREATE VIEW v AS SELECT x FROM t")
    # the CTE named t does not leak into the view's body
    assert con.sql("WITH t AS (SELECT 100 AS x) SELECT sum(x) FROM v").fetchall() == [(3,)]


def test_create_table_as_select(con: shoal.Connection, files: Path) -> None:
    con.sql(f"CREATE TABLE t AS SELECT a, b, a + 1 AS c FROM '{files}/p1.parquet'")
    assert con.sql("SELECT c FROM t ORDER BY c").fetchall() == [(2,), (3,), (4,)]
    with pytest.raises(CatalogError, match="already exists"):
        con.sql("CREATE TABLE t AS SELECT 1 AS a")
    con.sql("CREATE TABLE IF NOT EXISTS t AS SELECT 1 AS a")  # kept as it was
    assert con.sql("SELECT count(*) FROM t").fetchall() == [(3,)]
    con.sql("CREATE OR REPLACE TABLE t AS SELECT 1 AS a")
    assert con.sql("SELECT * FROM t").fetchall() == [(1,)]
    with pytest.raises(CatalogError, match="is a table"):
        con.sql("DROP VIEW t")
    con.sql("DROP TABLE t")
    assert con.sql("SHOW TABLES").fetchall() == []


def test_describe(con: shoal.Connection) -> None:
    con.register_arrow("t", pa.table({"a": pa.array([1], pa.int32()), "s": ["x"]}))
    assert con.sql("DESCRIBE t").fetchall() == [("a", "INTEGER", "YES"), ("s", "VARCHAR", "YES")]
    described = con.sql("DESCRIBE SELECT a, sum(a) AS total, avg(a) FROM t GROUP BY a")
    assert [r[1:] for r in described.fetchall()] == [
        ("INTEGER", "YES"),
        ("DECIMAL(38,0)", "YES"),
        ("DOUBLE", "YES"),
    ]
    assert [r[0] for r in described.fetchall()][:2] == ["a", "total"]


@pytest.mark.parametrize(
    ("sql", "error", "words"),
    [
        ("CREATE TABLE u (a INTEGER)", UnsupportedError, "create table without as select"),
        ("CREATE INDEX i ON t (a)", UnsupportedError, "create"),
        ("DROP SCHEMA s", UnsupportedError, "drop schema"),
        ("SELECT * FROM read_json('x.json')", UnsupportedError, "read_json"),
        ("SELECT * FROM read_parquet(42)", UserError, "read_parquet needs a constant string"),
        ("SELECT * FROM read_csv('x.csv', header=true)", UnsupportedError, "read_csv option"),
    ],
)
def test_statement_errors_name_the_construct(
    con: shoal.Connection, sql: str, error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as info:
        con.sql(sql)
    assert words in str(info.value).lower()


def test_stream_refuses_statements(con: shoal.Connection) -> None:
    with pytest.raises(UnsupportedError, match="create view"):
        con.stream("CREATE VIEW v AS SELECT 1")
