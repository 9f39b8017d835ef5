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


# ----------------------------------------------------- CREATE TABLE with a Parquet target


def test_ctas_with_parquet_path_registers_a_parquet_table(tmp_path: Path) -> None:
    con = shoal.connect(partitions=3)
    target = tmp_path / "out" / "sales.parquet"
    con.register_arrow("src", pa.table({"k": [1, 2, 2, None], "v": [1.5, 2.0, None, 4.0]}))
    con.sql(
        f"CREATE TABLE sales WITH (format = 'parquet', path = '{target}') AS "
        "SELECT k, sum(v) AS total FROM src GROUP BY k"
    )
    assert target.is_file()
    assert type(con.catalog.get("sales")).__name__ == "ParquetSource"
    written = pq.read_table(target)
    assert sorted(written.to_pylist(), key=repr) == sorted(
        [{"k": 1, "total": 1.5}, {"k": 2, "total": 2.0}, {"k": None, "total": 4.0}], key=repr
    )
    assert sorted(con.sql("SELECT * FROM sales").fetchall(), key=repr) == sorted(
        [(1, 1.5), (2, 2.0), (None, 4.0)], key=repr
    )
    # The file exists: only OR REPLACE writes it again.
    with pytest.raises(UserError, match="already exists"):
        con.sql(f"CREATE TABLE other WITH (format = 'parquet', path = '{target}') AS SELECT 1")
    con.sql(
        f"CREATE OR REPLACE TABLE sales WITH (format = 'parquet', path = '{target}') AS "
        "SELECT 7 AS k"
    )
    assert con.sql("SELECT * FROM sales").fetchall() == [(7,)]
    assert pq.read_table(target).to_pylist() == [{"k": 7}]


def test_ctas_to_a_quoted_parquet_path_is_named_by_its_stem(tmp_path: Path) -> None:
    con = shoal.connect(partitions=2)
    target = tmp_path / "daily.parquet"
    con.sql(f"CREATE TABLE '{target}' AS SELECT * FROM (VALUES (1, 'a'), (2, 'b')) t(x, y)")
    assert sorted(con.sql("SELECT x, y FROM daily").fetchall()) == [(1, "a"), (2, "b")]
    assert sorted(con.sql(f"SELECT x FROM '{target}'").fetchall()) == [(1,), (2,)]
    # DuckDB reads what was written.
    assert sorted(duckdb.sql(f"SELECT * FROM '{target}'").fetchall()) == [(1, "a"), (2, "b")]


@pytest.mark.parametrize(
    ("sql", "error", "match"),
    [
        (
            "CREATE TABLE t WITH (format = 'csv', path = 'x.csv') AS SELECT 1",
            UnsupportedError,
            "format 'csv'",
        ),
        ("CREATE TABLE t WITH (format = 'parquet') AS SELECT 1", UserError, "needs path"),
        (
            "CREATE TABLE t WITH (path = 'x.parquet', compression = 'zstd') AS SELECT 1",
            UnsupportedError,
            "option",
        ),
        (
            "CREATE VIEW v WITH (path = 'x.parquet') AS SELECT 1",
            UnsupportedError,
            "options of CREATE VIEW",
        ),
        ("CREATE TABLE 'x.csv' AS SELECT 1", UnsupportedError, "only a Parquet file"),
    ],
)
def test_ctas_target_errors(sql: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        shoal.connect(partitions=1).sql(sql)


def test_ctas_parquet_target_respects_restricted_writes(tmp_path: Path) -> None:
    con = shoal.connect(partitions=1)
    con.restrict_writes([str(tmp_path / "allowed")])
    with pytest.raises(UserError, match="may not write"):
        con.sql(f"CREATE TABLE t WITH (path = '{tmp_path / 'elsewhere.parquet'}') AS SELECT 1")
    assert not (tmp_path / "elsewhere.parquet").exists()


# ------------------------------------------------------------ statement dispatch


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT 1", "query"),
        ("  (SELECT 1) UNION ALL (SELECT 2)", "query"),
        ("VALUES (1)", "query"),
        ("EXPLAIN SELECT 1", "explain"),
        ("explain\n  analyze SELECT 1", "explain"),
        ("EXPLAIN (FORMAT JSON) SELECT 1", "explain"),
        ("-- a comment first\nEXPLAIN SELECT 1", "explain"),
        ("/* block */ COPY (SELECT 1 AS a) TO 'x' (PARTITION BY HASH (a) INTO 2)", "copy"),
        ("CREATE VIEW v AS SELECT 1", "create view"),
        ("CREATE TABLE t AS SELECT 1", "create table as"),
        ("DROP TABLE IF EXISTS t", "drop"),
        ("SHOW TABLES", "show tables"),
        ("DESCRIBE SELECT 1", "describe"),
    ],
)
def test_every_statement_kind_is_named_after_parsing(sql: str, kind: str) -> None:
    assert shoal.connect(partitions=1).statement_kind(sql).value == kind


def test_a_comment_before_explain_or_copy_still_dispatches(tmp_path: Path) -> None:
    # Prefix-sniffing the text missed these; the parsed statement does not.
    con = shoal.connect(partitions=2)
    plan = con.sql("-- why\nEXPLAIN SELECT 1 AS a").to_arrow().column_names
    assert plan == ["plan"]
    out = con.sql(
        f"/* note */ COPY (SELECT 1 AS a) TO '{tmp_path / 'o'}' (PARTITION BY HASH (a) INTO 2)"
    ).fetchall()
    assert out == [(str(tmp_path / "o"), 1, 2)]


def test_explain_and_copy_errors_after_classification() -> None:
    con = shoal.connect(partitions=1)
    with pytest.raises(shoal.SqlSyntaxError, match="COPY .*TO"):
        con.sql("COPY t TO")
    with pytest.raises(UnsupportedError, match="only a query is prepared"):
        con.prepare("EXPLAIN SELECT 1")
    with pytest.raises(shoal.SqlSyntaxError, match="unknown EXPLAIN option"):
        con.sql("EXPLAIN (VERBOSE) SELECT 1")
    assert con.parameter_count("EXPLAIN SELECT ? + ?") == 2
    assert con.sql("EXPLAIN SELECT ? AS p", [5]).to_arrow().num_rows > 0
