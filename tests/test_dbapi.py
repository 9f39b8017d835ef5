"""shoal.dbapi against PEP 249: globals, connection and cursor methods, typed parameters,
exception classes, Arrow fetches and pandas.read_sql."""

from __future__ import annotations

import datetime as dt
import warnings
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shoal
import shoal.dbapi as dbapi
from shoal import errors


@pytest.fixture
def people(tmp_path: Path) -> Path:
    table = pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "name": pa.array(["ann", "x' OR '1'='1", "cy", None]),
            "score": pa.array([1.5, 2.5, None, 4.0]),
            "balance": pa.array(
                [Decimal("10.25"), Decimal("-3.50"), Decimal("0.00"), None], pa.decimal128(15, 2)
            ),
            "born": pa.array([dt.date(1990, 1, 2), dt.date(1985, 5, 6), None, dt.date(2000, 1, 1)]),
            "seen": pa.array(
                [dt.datetime(2024, 1, 2, 3, 4, 5), None, dt.datetime(2024, 6, 1), None],
                pa.timestamp("us"),
            ),
            "tag": pa.array([b"\x00\x01", b"zz", None, b""], pa.binary()),
            "code": pa.array(["1", "2", "x", "4"]),
        }
    )
    folder = tmp_path / "db"
    folder.mkdir()
    pq.write_table(table, folder / "people.parquet")
    return folder


@pytest.fixture
def con(people: Path) -> dbapi.Connection:
    return dbapi.connect(people)


def test_module_globals() -> None:
    assert dbapi.apilevel == "2.0"
    assert dbapi.threadsafety == 1
    assert dbapi.paramstyle == "qmark"
    assert dbapi.Date(2024, 1, 2) == dt.date(2024, 1, 2)
    assert dbapi.Time(3, 4, 5) == dt.time(3, 4, 5)
    assert dbapi.Timestamp(2024, 1, 2, 3) == dt.datetime(2024, 1, 2, 3)
    assert dbapi.Binary(b"ab") == b"ab"
    assert dbapi.DateFromTicks(0) == dt.date.fromtimestamp(0)
    assert dbapi.TimestampFromTicks(0) == dt.datetime.fromtimestamp(0)
    assert dbapi.TimeFromTicks(0) == dt.datetime.fromtimestamp(0).time()


def test_exception_hierarchy() -> None:
    assert issubclass(dbapi.Warning, Exception)
    assert issubclass(dbapi.Error, Exception)
    for cls in (dbapi.InterfaceError, dbapi.DatabaseError):
        assert issubclass(cls, dbapi.Error)
    for cls in (
        dbapi.DataError,
        dbapi.OperationalError,
        dbapi.IntegrityError,
        dbapi.InternalError,
        dbapi.ProgrammingError,
        dbapi.NotSupportedError,
    ):
        assert issubclass(cls, dbapi.DatabaseError)
    # shoal's own errors are the DB-API classes' subclasses.
    assert issubclass(errors.ShoalError, dbapi.DatabaseError)
    assert issubclass(errors.SqlSyntaxError, dbapi.ProgrammingError)
    assert issubclass(errors.UnknownTableError, dbapi.ProgrammingError)
    assert issubclass(errors.UnsupportedError, dbapi.NotSupportedError)
    assert issubclass(errors.InvalidDataError, dbapi.DataError)
    assert issubclass(errors.ExecutionError, dbapi.OperationalError)
    assert issubclass(errors.QueryTimeoutError, dbapi.OperationalError)
    assert issubclass(errors.PlanError, dbapi.InternalError)
    assert dbapi.Connection.ProgrammingError is dbapi.ProgrammingError


def test_cursor_execute_fetch_and_description(con: dbapi.Connection) -> None:
    cur = con.cursor()
    assert cur.description is None and cur.rowcount == -1 and cur.arraysize == 1
    assert cur.execute("SELECT id, name, score, balance, born, seen, tag FROM people") is cur
    assert cur.rowcount == 4
    desc = cur.description
    assert desc is not None
    assert [d[0] for d in desc] == ["id", "name", "score", "balance", "born", "seen", "tag"]
    assert all(len(d) == 7 for d in desc)
    codes = [d[1] for d in desc]
    assert codes[0] == dbapi.NUMBER and codes[0] != dbapi.STRING
    assert codes[1] == dbapi.STRING
    assert codes[2] == dbapi.NUMBER
    assert codes[3] == dbapi.NUMBER and desc[3][4:6] == (15, 2)
    assert codes[4] == dbapi.DATETIME and codes[5] == dbapi.DATETIME
    assert codes[6] == dbapi.BINARY
    assert all(d[1] != dbapi.ROWID for d in desc)

    first = cur.fetchone()
    assert first == (
        1, "ann", 1.5, Decimal("10.25"), dt.date(1990, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5),
        b"\x00\x01",
    )  # fmt: skip
    assert cur.rownumber == 1
    assert [r[0] for r in cur.fetchmany()] == [2]  # arraysize 1
    cur.arraysize = 5
    assert [r[0] for r in cur.fetchmany(1)] == [3]
    assert [r[0] for r in cur.fetchall()] == [4]
    assert cur.fetchone() is None and cur.fetchmany() == [] and cur.fetchall() == []


def test_iteration_and_arrow_fetches(con: dbapi.Connection) -> None:
    cur = con.cursor()
    cur.execute("SELECT id FROM people ORDER BY id")
    assert [r for (r,) in cur] == [1, 2, 3, 4]
    cur.execute("SELECT id, name FROM people ORDER BY id")
    cur.fetchone()
    rest = cur.fetch_arrow_table()
    assert isinstance(rest, pa.Table) and rest.column("id").to_pylist() == [2, 3, 4]
    assert cur.fetch_arrow_table().num_rows == 0
    cur.execute("SELECT id FROM people ORDER BY id")
    reader = cur.fetch_record_batch()
    assert reader.read_all().column("id").to_pylist() == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("sql", "value", "expected_ids"),
    [
        ("SELECT id FROM people WHERE id = ?", 3, [3]),
        ("SELECT id FROM people WHERE score > ?", 2.0, [2, 4]),
        ("SELECT id FROM people WHERE balance = ?", Decimal("-3.50"), [2]),
        ("SELECT id FROM people WHERE name = ?", "cy", [3]),
        ("SELECT id FROM people WHERE tag = ?", b"zz", [2]),
        ("SELECT id FROM people WHERE born < ?", dt.date(1990, 1, 1), [2]),
        ("SELECT id FROM people WHERE seen >= ?", dt.datetime(2024, 3, 1, 12, 0), [3]),
        ("SELECT id FROM people WHERE coalesce(name, '-') = coalesce(?, '-')", None, [4]),
        ("SELECT id FROM people WHERE name = ?", None, []),
        ("SELECT id FROM people WHERE coalesce(score, ?) = 0.0", 0.0, [3]),
    ],
)
def test_parameters_of_every_type(
    con: dbapi.Connection, sql: str, value: object, expected_ids: list[int]
) -> None:
    cur = con.cursor()
    cur.execute(sql + " ORDER BY id", (value,))
    assert [r[0] for r in cur.fetchall()] == expected_ids


def test_parameter_values_come_back_typed(con: dbapi.Connection) -> None:
    values = [
        7, 2.5, Decimal("12.345"), "s", b"\x00\xff", dt.date(2024, 2, 29),
        dt.datetime(2024, 2, 29, 23, 59, 1), None,
    ]  # fmt: skip
    cur = con.cursor()
    cur.execute("SELECT " + ", ".join("?" for _ in values), values)
    assert cur.fetchone() == tuple(values)


def test_injection_through_a_parameter_matches_nothing(con: dbapi.Connection) -> None:
    cur = con.cursor()
    cur.execute("SELECT id FROM people WHERE name = ?", ["x' OR '1'='2"])
    assert cur.fetchall() == []
    cur.execute("SELECT count(*) FROM people WHERE name = ?", ["nobody' OR '1'='1"])
    assert cur.fetchone() == (0,)
    # The same text stored as a value is found as one string, not as SQL.
    cur.execute("SELECT id FROM people WHERE name = ?", ["x' OR '1'='1"])
    assert cur.fetchall() == [(2,)]


def test_executemany(con: dbapi.Connection) -> None:
    cur = con.cursor()
    cur.executemany("SELECT id FROM people WHERE id >= ?", [(1,), (3,), (4,)])
    assert cur.rowcount == 4 + 2 + 1
    assert cur.fetchall() == [(4,)]  # the last statement's result
    cur.executemany("SELECT 1 WHERE ? = 1", [])
    assert cur.rowcount == -1


def test_copy_rowcount(con: dbapi.Connection, tmp_path: Path) -> None:
    cur = con.cursor()
    target = tmp_path / "copied"
    cur.execute(f"COPY (SELECT id FROM people) TO '{target}' (PARTITION BY HASH (id) INTO 2)")
    assert cur.rowcount == 4


def test_errors_are_dbapi_classes(con: dbapi.Connection) -> None:
    cur = con.cursor()
    with pytest.raises(dbapi.ProgrammingError) as info:
        cur.execute("SELEC id FROM people")
    assert isinstance(info.value, errors.SqlSyntaxError)
    with pytest.raises(dbapi.ProgrammingError) as info:
        cur.execute("SELECT * FROM nobody")
    assert isinstance(info.value, errors.UnknownTableError)
    with pytest.raises(dbapi.ProgrammingError):
        cur.execute("SELECT nope FROM people")
    # Bad data: a value that does not cast.
    with pytest.raises(dbapi.DataError) as data_info:
        cur.execute("SELECT CAST(code AS INTEGER) FROM people")
    assert isinstance(data_info.value, errors.InvalidDataError)
    with pytest.raises(dbapi.DataError):
        cur.execute("SELECT id // (id - id) FROM people")
    with pytest.raises(dbapi.NotSupportedError):
        cur.execute("SELECT kurtosis(id) FROM people")
    # Wrong parameter counts and styles are the caller's mistakes.
    with pytest.raises(dbapi.ProgrammingError):
        cur.execute("SELECT id FROM people WHERE id = ?", ())
    with pytest.raises(dbapi.ProgrammingError):
        cur.execute("SELECT id FROM people WHERE id = ?", {"id": 1})  # type: ignore[arg-type]
    # The cursor still works after errors.
    cur.execute("SELECT count(*) FROM people")
    assert cur.fetchone() == (4,)


def test_fetch_before_execute_is_an_error(con: dbapi.Connection) -> None:
    with pytest.raises(dbapi.ProgrammingError):
        con.cursor().fetchone()


def test_close_and_context_managers(people: Path) -> None:
    with dbapi.connect(people) as con:
        with con.cursor() as cur:
            cur.execute("SELECT 1")
            cur.setinputsizes([None])
            cur.setoutputsize(10)
            assert cur.fetchall() == [(1,)]
        with pytest.raises(dbapi.InterfaceError):
            cur.execute("SELECT 1")
        con.commit()
        con.rollback()
        assert con.execute("SELECT 2").fetchone() == (2,)
    assert con.closed
    with pytest.raises(dbapi.InterfaceError):
        con.cursor().execute("SELECT 1")
    with pytest.raises(dbapi.Error):
        con.commit()


def test_connect_with_tables_and_engine(people: Path) -> None:
    con = dbapi.connect(tables={"p": people / "people.parquet"}, partitions=2)
    con.engine.register_arrow("extra", pa.table({"x": [1, 2]}))
    assert isinstance(con.engine, shoal.Connection)
    cur = con.cursor()
    cur.execute("SELECT count(*) FROM p JOIN extra ON p.id = extra.x")
    assert cur.fetchone() == (2,)
    con.close()


def test_pandas_read_sql(con: dbapi.Connection) -> None:
    pd = pytest.importorskip("pandas")
    with warnings.catch_warnings():
        # pandas warns that it only tests SQLAlchemy and sqlite3 connections.
        warnings.simplefilter("ignore", UserWarning)
        frame = pd.read_sql("SELECT id, name FROM people WHERE id > ? ORDER BY id", con, params=[1])
        chunks = list(pd.read_sql("SELECT id FROM people ORDER BY id", con, chunksize=3))
    assert list(frame.columns) == ["id", "name"]
    assert frame["id"].tolist() == [2, 3, 4]
    assert frame["name"].tolist()[:2] == ["x' OR '1'='1", "cy"]
    assert [len(c) for c in chunks] == [3, 1]
