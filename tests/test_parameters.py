"""Prepared parameters: ``?`` and ``$n`` bound as typed values, checked against DuckDB."""

from __future__ import annotations

import datetime
import decimal

import duckdb
import pyarrow as pa
import pytest

import shoal
from shoal.errors import TypeMismatchError, UserError
from shoal.sql.parameters import ParameterError

PEOPLE = pa.table(
    {
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "name": ["ann", "bob", "x' OR '1'='1", None],
        "score": pa.array([1.5, 2.5, None, 4.0]),
        "born": pa.array(
            [datetime.date(1990, 1, 1), datetime.date(2000, 6, 1), None, datetime.date(2010, 3, 3)]
        ),
    }
)


@pytest.fixture(scope="module")
def con() -> shoal.Connection:
    c = shoal.connect(partitions=2)
    c.register_arrow("people", PEOPLE)
    return c


@pytest.fixture(scope="module")
def duck() -> duckdb.DuckDBPyConnection:
    d = duckdb.connect()
    d.register("people", PEOPLE)
    return d


CASES = [
    ("SELECT id FROM people WHERE id > ? ORDER BY id", [2]),
    ("SELECT id FROM people WHERE name = ? ORDER BY id", ["bob"]),
    ("SELECT id FROM people WHERE score < ? ORDER BY id", [3.0]),
    ("SELECT id FROM people WHERE born >= ? ORDER BY id", [datetime.date(2000, 1, 1)]),
    ("SELECT id FROM people WHERE id = $1 OR id = $1 + 1 ORDER BY id", [2]),
    ("SELECT id FROM people WHERE id BETWEEN $2 AND $1 ORDER BY id", [3, 2]),
    ("SELECT ? + 1 AS v", [41]),
    ("SELECT ? * 2 AS v", [decimal.Decimal("1.25")]),
    ("SELECT count(*) AS n FROM people WHERE name = ?", [None]),
    ("SELECT id FROM people WHERE name IN (?, ?) ORDER BY id", ["ann", "nobody"]),
]


@pytest.mark.parametrize(("query", "params"), CASES)
def test_parameters_match_duckdb(
    con: shoal.Connection, duck: duckdb.DuckDBPyConnection, query: str, params: list[object]
) -> None:
    expected = duck.execute(query, params).fetchall()
    assert con.sql(query, params).fetchall() == expected


def test_string_parameter_is_one_value_never_sql(con: shoal.Connection) -> None:
    # The classic injection: as a value it matches nothing, and as a value it matches
    # the one row that holds exactly that text.
    assert con.sql("SELECT id FROM people WHERE name = ?", ["x' OR 1=1 --"]).fetchall() == []
    assert con.sql("SELECT id FROM people WHERE name = ?", ["x' OR '1'='1"]).fetchall() == [(3,)]


def test_every_supported_python_type_round_trips(con: shoal.Connection) -> None:
    values = [
        7,
        2.5,
        decimal.Decimal("12.340"),
        "text",
        b"\x00\xff",
        True,
        datetime.date(2024, 2, 29),
        datetime.datetime(2024, 2, 29, 12, 30, 1, 5),
        None,
    ]
    placeholders = ", ".join("?" for _ in values)
    row = con.sql(f"SELECT {placeholders}", values).fetchall()[0]
    assert list(row) == values


def test_parameter_errors_are_typed(con: shoal.Connection) -> None:
    with pytest.raises(ParameterError, match="1 parameter"):
        con.sql("SELECT ?", [])
    with pytest.raises(ParameterError, match="has none"):
        con.sql("SELECT 1", [1])
    with pytest.raises(ParameterError, match="not both"):
        con.sql("SELECT ?, $1", [1, 2])
    with pytest.raises(ParameterError, match="sequence"):
        con.sql("SELECT ?", "a")  # type: ignore[arg-type]
    with pytest.raises(TypeMismatchError, match="Python type"):
        con.sql("SELECT ?", [object()])
    assert issubclass(ParameterError, UserError)


def test_parameters_in_explain(con: shoal.Connection) -> None:
    assert "3" in con.explain("SELECT id FROM people WHERE id = ?", [3])


@pytest.mark.parametrize(
    "sql, params",
    [
        # Three conjuncts: a breadth-first walk would see the last placeholder first.
        (
            "SELECT id FROM people WHERE born >= ? AND born < ? AND name <> ? ORDER BY id",
            [datetime.date(1990, 1, 1), datetime.date(2005, 1, 1), "bob"],
        ),
        # A placeholder in the select list, in WHERE and in HAVING.
        (
            "SELECT ? AS tag, count(*) AS n FROM people WHERE score > ? AND name <> ? "
            "GROUP BY 1 HAVING count(*) >= ?",
            ["t", 1.0, "ann", 1],
        ),
    ],
)
def test_positional_parameters_bind_in_text_order(
    con: shoal.Connection, duck: duckdb.DuckDBPyConnection, sql: str, params: list[object]
) -> None:
    expected = duck.execute(sql, params).fetchall()
    assert con.sql(sql, params).fetchall() == expected
