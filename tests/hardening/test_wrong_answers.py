"""Answers that used to be silently wrong, each compared with DuckDB.

Decimal and integer overflow, LIKE escapes, -0.0 and NaN (one value each, NaN the
greatest) in every place values meet, CSV defects, and extreme LIMIT / OFFSET.
"""

from __future__ import annotations

import decimal
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import shoal
from shoal.errors import CatalogError, ExecutionError
from shoal.hashing import partition_ids

from .oracle import check

D = decimal.Decimal
NAN = float("nan")
# A NaN with another payload: equal to NaN all the same.
OTHER_NAN = float(np.array([0x7FF8000000000001], dtype=np.uint64).view(np.float64)[0])

TABLES = {
    "big": pa.table(
        {
            "x": pa.array([D("9" * 38)] * 3, pa.decimal128(38, 0)),
            "y": pa.array([D("9" * 36 + ".99")] * 3, pa.decimal128(38, 2)),
            "g": [1, 1, 2],
            "i": pa.array([2**62, 2**62, 1], pa.int64()),
            "m": pa.array([-(2**63), 1, 2], pa.int64()),
        }
    ),
    "fl": pa.table(
        {
            "f": [0.0, -0.0, NAN, OTHER_NAN, 1.0, None, -1.5, float("inf")],
            "id": list(range(8)),
        }
    ),
    "fr": pa.table({"f": [-0.0, NAN, 1.0, None, 2.0], "w": [10, 20, 30, 40, 50]}),
    "s": pa.table({"s": ["", "\\", "a\\b", "a%", "a_b", "ab", "a!b", "%", None]}),
    "t": pa.table({"a": list(range(10))}),
}

OVERFLOW = [
    "SELECT sum(x) FROM big",
    "SELECT sum(y) FROM big",
    "SELECT avg(x) FROM big",
    "SELECT g, sum(x) FROM big GROUP BY g",
    "SELECT g, sum(y), count(*) FROM big GROUP BY g HAVING g = 1",
    "SELECT x + x FROM big",
    "SELECT x - (-x) FROM big",
    "SELECT x * 10 FROM big",
    "SELECT i + i FROM big",
    "SELECT i * 4 FROM big",
    "SELECT -m FROM big",
    "SELECT abs(m) FROM big",
    "SELECT m - 1 FROM big",
    "SELECT m // -1 FROM big",
    "SELECT CAST(m AS INTEGER) FROM big",
    "SELECT -a FROM (SELECT -9223372036854775807 - 1 AS a)",
]
EXACT = [
    "SELECT sum(i), avg(i) FROM big",
    "SELECT g, sum(i) FROM big GROUP BY g",
    "SELECT m % -1 FROM big",
    "SELECT sum(x) FROM big WHERE g = 2",
]


@pytest.fixture(
    scope="module", params=[(1, None), (3, 0), (3, 1 << 50)], ids=["p1", "p3-repart", "p3-bcast"]
)
def con(request: pytest.FixtureRequest) -> shoal.Connection:
    partitions, threshold = request.param
    extra = {} if threshold is None else {"broadcast_threshold_bytes": threshold}
    con = shoal.connect(partitions=partitions, **extra)
    for name, table in TABLES.items():
        con.register_arrow(name, table)
    return con


@pytest.mark.parametrize("sql", OVERFLOW)
def test_overflow_is_an_error_as_in_duckdb(con: shoal.Connection, sql: str) -> None:
    err = check(con, sql, TABLES, error=ExecutionError)
    assert err is not None and ("overflow" in str(err).lower() or "cast" in str(err))


@pytest.mark.parametrize("sql", EXACT)
def test_exact_arithmetic_matches_duckdb(con: shoal.Connection, sql: str) -> None:
    assert check(con, sql, TABLES) is None


def test_negating_the_smallest_bigint_literal(con: shoal.Connection) -> None:
    """DuckDB types this constant expression HUGEINT and answers 2**63; shoal has no
    HUGEINT, so it reports the BIGINT overflow (as DuckDB does for a column)."""
    with pytest.raises(ExecutionError, match="overflow in negation"):
        con.sql("SELECT -(-9223372036854775807 - 1)")


# ------------------------------------------------------------------------- LIKE

LIKE = [
    "SELECT s, s LIKE '\\' FROM s",
    "SELECT s, s LIKE 'a\\b', s LIKE '%\\%' FROM s",
    "SELECT s, s LIKE 'a!%' ESCAPE '!', s LIKE 'a!_b' ESCAPE '!' FROM s",
    "SELECT s, s NOT LIKE '!%' ESCAPE '!', s ILIKE 'A!%' ESCAPE '!' FROM s",
    "SELECT s, s LIKE 'a!!b' ESCAPE '!', s LIKE 'a\\\\b' ESCAPE '\\' FROM s",
    "SELECT s, s LIKE 'a_b', s LIKE '%', s LIKE '' FROM s",
    "SELECT s, s LIKE 'a%' ESCAPE '' FROM s",
    "SELECT count(*) FROM s WHERE s LIKE '%\\%'",
    "SELECT s FROM s WHERE s LIKE 'a!' ESCAPE '!'",
    "SELECT s FROM s WHERE s LIKE 'a' ESCAPE '!!'",
]


@pytest.mark.parametrize("sql", LIKE)
def test_like_matches_duckdb(con: shoal.Connection, sql: str) -> None:
    check(con, sql, TABLES)


# ---------------------------------------------------------------- -0.0 and NaN

FLOATS = [
    "SELECT f, count(*) FROM fl GROUP BY f",
    "SELECT count(DISTINCT f), count(f) FROM fl",
    "SELECT DISTINCT f FROM fl",
    "SELECT min(f), max(f) FROM fl",
    "SELECT min(f), max(f) FROM fl WHERE f IS NULL OR f <> f OR f > 100",
    "SELECT min(f), max(f) FROM fl WHERE f = 'NaN'::DOUBLE",
    "SELECT id % 2 AS p, min(f), max(f) FROM fl GROUP BY p",
    "SELECT id, f = 0, f = f, f < 1e308, f > 1e308, f <= 'NaN'::DOUBLE, f <> f FROM fl",
    "SELECT id FROM fl WHERE f = 'NaN'::DOUBLE",
    "SELECT id FROM fl WHERE f > 'inf'::DOUBLE",
    "SELECT id FROM fl WHERE f IN (0.0, 'NaN'::DOUBLE)",
    "SELECT id FROM fl WHERE f IN (-0.0)",
    "SELECT id, f FROM fl ORDER BY f, id",
    "SELECT id, f FROM fl ORDER BY f DESC, id",
    "SELECT id, f FROM fl ORDER BY f DESC NULLS FIRST, id",
    "SELECT id, f FROM fl ORDER BY f ASC NULLS FIRST, id",
    "SELECT id, f FROM fl ORDER BY f DESC, id LIMIT 3",
    "SELECT fl.id, fr.w FROM fl JOIN fr ON fl.f = fr.f",
    "SELECT fl.id, fr.w FROM fl LEFT JOIN fr ON fl.f = fr.f",
    "SELECT fl.id, fr.w FROM fl FULL JOIN fr ON fl.f = fr.f",
    "SELECT id FROM fl WHERE f IN (SELECT f FROM fr)",
    "SELECT id FROM fl WHERE f NOT IN (SELECT f FROM fr WHERE f IS NOT NULL)",
    "SELECT f FROM fl INTERSECT SELECT f FROM fr",
    "SELECT f FROM fl EXCEPT SELECT f FROM fr",
    "SELECT f, count(*) FROM (SELECT f FROM fl UNION ALL SELECT f FROM fr) GROUP BY f",
]


def _ordered(sql: str) -> bool:
    return "ORDER BY" in sql


@pytest.mark.parametrize("sql", FLOATS)
def test_float_semantics_match_duckdb(con: shoal.Connection, sql: str) -> None:
    assert check(con, sql, TABLES, ordered=_ordered(sql)) is None


def test_exchange_hash_agrees_for_equal_floats() -> None:
    """Rows that SQL calls equal go to one partition: -0.0 with 0.0, NaN with NaN."""
    column = pa.array([0.0, -0.0, NAN, OTHER_NAN, -NAN])
    ids = partition_ids([column], 1 << 20)
    assert ids[0] == ids[1] and ids[2] == ids[3] == ids[4]
    assert ids[0] != ids[2]


# ------------------------------------------------------------------- CSV defects


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        (b"a,b\n1,2\n3,\xff\xfe\n4,5\n", 3, "invalid UTF-8"),
        (b'a,b\n1,2\n3,"abc\n4,5\n6,7\n', 3, "unterminated"),
    ],
    ids=["invalid_utf8", "unterminated_quote"],
)
def test_csv_defects_are_errors_naming_file_and_line(
    tmp_path: Path, content: bytes, line: int, problem: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    # DuckDB read with shoal's dialect (its sniffer would otherwise drop the quote char).
    dialect = "quote='\"', header=true, columns={'a': 'INTEGER', 'b': 'VARCHAR'}"
    with pytest.raises(duckdb.Error):
        duckdb.sql(f"SELECT * FROM read_csv('{path}', {dialect})").fetchall()
    con = shoal.connect(partitions=1)
    with pytest.raises(CatalogError) as info:
        con.register_csv("bad", path)
        con.sql("SELECT * FROM bad").fetchall()
    assert str(path) in str(info.value)
    assert f"line {line}" in str(info.value)
    assert problem in str(info.value)


def test_csv_quoted_line_breaks_still_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_bytes(b'a,b\n1,"x\ny"\n2,"say ""hi"""\n')
    con = shoal.connect(partitions=1)
    con.register_csv("ok", path)
    assert (
        con.sql("SELECT * FROM ok ORDER BY a").fetchall()
        == duckdb.read_csv(str(path)).order("a").fetchall()
    )


# ------------------------------------------------------------------ LIMIT / OFFSET

LIMITS = [
    "SELECT a FROM t LIMIT 5 OFFSET 9223372036854775807",
    "SELECT a FROM t ORDER BY a LIMIT 5 OFFSET 9223372036854775807",
    "SELECT a FROM t ORDER BY a LIMIT 9223372036854775807 OFFSET 9223372036854775807",
    "SELECT a FROM t ORDER BY a DESC LIMIT 9223372036854775807 OFFSET 8",
    "SELECT a FROM t LIMIT 9223372036854775808",
]


@pytest.mark.parametrize("sql", LIMITS)
def test_extreme_limit_and_offset(con: shoal.Connection, sql: str) -> None:
    assert (
        check(con, sql, TABLES, ordered="ORDER BY" in sql) in (None,)
        or "9223372036854775808" in sql
    )
