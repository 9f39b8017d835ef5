"""Every public entry point lets only ``ShoalError`` out; inputs that used to escape.

Deep nesting and long chains now answer as DuckDB does; the rest raise typed
errors where DuckDB raises too. ``InternalError`` ("a bug in shoal") is what any
unexpected exception becomes, chained as its cause.
"""

from __future__ import annotations

import datetime as dt
import inspect
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import shoal
from shoal import cli
from shoal.api.connection import Connection
from shoal.api.result import Result
from shoal.errors import CatalogError, InternalError, ShoalError

from .oracle import check

TABLES = {
    "t": pa.table(
        {
            "a": [1, 2, 3],
            "d": pa.array([dt.date(2020, 1, 1), dt.date(9999, 12, 1), None], pa.date32()),
        }
    ),
    "ns": pa.table(
        {"ts": pa.array([1, 1_500, None, 1_700_000_000_123_456_789], pa.timestamp("ns"))}
    ),
}

DEEP = {
    "parentheses_300": "SELECT " + "(" * 300 + "a" + ")" * 300 + " FROM t",
    "case_200": "SELECT " + "CASE WHEN a = 1 THEN " * 200 + "a" + " ELSE 0 END" * 200 + " FROM t",
    "plus_500": "SELECT " + " + ".join(["a"] * 500) + " FROM t",
    "and_5000": "SELECT count(*) FROM t WHERE " + " AND ".join(["a > 0"] * 5000),
    "or_5000": "SELECT count(*) FROM t WHERE " + " OR ".join(f"a = {i}" for i in range(5000)),
    "nested_subqueries_40": "SELECT * FROM " + "(SELECT a FROM " * 40 + "t" + ") s" * 40,
}


@pytest.fixture(scope="module")
def con() -> shoal.Connection:
    con = shoal.connect(partitions=2)
    for name, table in TABLES.items():
        con.register_arrow(name, table)
    return con


@pytest.mark.parametrize("sql", DEEP.values(), ids=DEEP.keys())
def test_deep_nesting_answers_like_duckdb(con: shoal.Connection, sql: str) -> None:
    assert check(con, sql, TABLES) is None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT DATE '9999-12-31' + INTERVAL 1 DAY",
        "SELECT d + INTERVAL 1 MONTH FROM t",
        "SELECT d + INTERVAL 10000 YEAR FROM t",
        "SELECT d + 3000000 FROM t",
    ],
)
def test_dates_past_year_9999(con: shoal.Connection, sql: str) -> None:
    """Arrow dates reach far past Python's: fetchall gives DuckDB's values (their ISO
    text past year 9999). DuckDB types ``date + INTERVAL`` as TIMESTAMP; the day is
    what must agree."""
    duck = duckdb.connect()
    duck.register("t", TABLES["t"])

    def days(rows: list[tuple[object, ...]]) -> list[str | None]:
        return [None if v is None else str(v)[:10] for (v,) in rows]

    assert days(con.sql(sql).fetchall()) == days(duck.sql(sql).fetchall())


def test_fetchall_of_nanosecond_timestamps(con: shoal.Connection) -> None:
    duck = duckdb.connect()
    duck.register("ns", TABLES["ns"])
    sql = "SELECT ts FROM ns"
    assert con.sql(sql).fetchall() == duck.sql(sql).fetchall()
    assert check(con, sql, TABLES) is None


@pytest.mark.parametrize("delimiter", ["", "ab", "\n", '"', None])
def test_register_csv_with_a_bad_delimiter(
    con: shoal.Connection, tmp_path: Path, delimiter: object
) -> None:
    """DuckDB takes multi-byte delimiters (and sniffs one for ''); shoal's reader splits on
    one character, so anything else is a CatalogError naming the delimiter, not a
    ValueError from pyarrow."""
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(CatalogError, match="delimiter"):
        con.register_csv("bad_csv", path, delimiter=delimiter)  # type: ignore[arg-type]
    assert "bad_csv" not in con.tables()


def test_a_table_with_no_columns_is_refused(con: shoal.Connection) -> None:
    with pytest.raises(duckdb.Error):
        duckdb.connect().register("z", pa.table({}))
    with pytest.raises(CatalogError, match="no columns"):
        con.register_arrow("z", pa.table({}))
    assert "z" not in con.tables()


# --------------------------------------------------------------- structural boundary


PUBLIC_CONNECTION = [
    "register_parquet",
    "register_csv",
    "register_ipc",
    "restrict_writes",
    "writes_allowed",
    "parameter_count",
    "statement_kind",
    "stream",
    "run_prepared",
    "interrupt",
    "register_arrow",
    "unregister",
    "tables",
    "prepare",
    "sql",
    "write_partitioned",
    "explain",
    "explain_analyze",
    "close",
]
PUBLIC_RESULT = ["to_pandas", "to_polars", "fetchall", "explain_analyze_json"]


def test_every_public_method_is_behind_the_boundary() -> None:
    """Each public method is wrapped by ``api.boundary.entry_point`` (it sets __wrapped__)."""
    public = {
        name
        for name, fn in inspect.getmembers(Connection, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public == set(PUBLIC_CONNECTION)
    for name in PUBLIC_CONNECTION:
        assert hasattr(getattr(Connection, name), "__wrapped__"), f"Connection.{name}"
    for name in PUBLIC_RESULT:
        assert hasattr(getattr(Result, name), "__wrapped__"), f"Result.{name}"
    assert hasattr(shoal.connect, "__wrapped__")


def _explode(*args: object, **kwargs: object) -> None:
    raise KeyError("planted")


@pytest.mark.parametrize(
    ("target", "call"),
    [
        ("shoal.api.connection.optimize", lambda c: c.sql("SELECT a FROM t")),
        ("shoal.api.connection.explain_graph", lambda c: c.explain("SELECT a FROM t")),
        ("shoal.api.connection.parse_sql", lambda c: c.prepare("SELECT a FROM t")),
        ("shoal.catalog.catalog.to_arrow_table", lambda c: c.register_arrow("u", TABLES["t"])),
        ("shoal.api.result.python_values", lambda c: c.sql("SELECT a FROM t").fetchall()),
        (
            "shoal.physical.operators.project.evaluate_column",
            lambda c: c.sql("SELECT a + 1 FROM t").to_arrow(),
        ),
    ],
    ids=["sql", "explain", "prepare", "register", "fetchall", "in_a_task"],
)
def test_an_unexpected_exception_becomes_internal_error(
    con: shoal.Connection, monkeypatch: pytest.MonkeyPatch, target: str, call
) -> None:
    monkeypatch.setattr(target, _explode)
    with pytest.raises(InternalError, match="bug in shoal") as info:
        call(con)
    assert isinstance(info.value.__cause__, KeyError)
    monkeypatch.undo()
    assert con.sql("SELECT sum(a) FROM t").fetchall()[0][0] == 6


def test_cli_reports_internal_errors_as_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a\n1\n")
    monkeypatch.setattr("shoal.api.connection.optimize", _explode)
    assert cli.main(["query", "SELECT a FROM x", "--table", f"x={path}"]) == 1
    assert "bug in shoal" in capsys.readouterr().err


def test_cli_prints_nanosecond_timestamps(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "ns.parquet"
    import pyarrow.parquet as pq

    pq.write_table(TABLES["ns"], path)
    assert cli.main(["query", "SELECT ts FROM ns", "--table", f"ns={path}"]) == 0
    assert "2023-11-14 22:13:20.123456" in capsys.readouterr().out


def test_errors_are_shoal_errors_after_many_failures(con: shoal.Connection) -> None:
    """A run of bad inputs leaves the connection answering."""
    for sql in ["SELECT", "SELECT nope FROM t", "SELECT 1 //", DEEP["plus_500"]]:
        try:
            con.sql(sql).fetchall()
        except ShoalError:
            pass
    assert con.sql("SELECT count(*) FROM t").fetchall() == [(3,)]
