"""NULL-typed columns (an empty or all-NULL side, ``SELECT NULL``) through every operator.

Arrow has no kernels for the ``null`` type in places (``equal``); each query runs
with joins repartitioned and broadcast, at 1 and 3 partitions, against DuckDB.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

import shoal

from .oracle import check

TABLES = {
    "emp": pa.table({c: pa.array([], pa.null()) for c in ["a", "s", "f", "k", "dt"]}),
    "nn": pa.table({"n": pa.array([None, None, None], pa.null()), "k": [1, 2, 3]}),
    "t1": pa.table({"a": [1, 2, 3], "s": ["x", "y", "z"], "f": [0.5, 1.5, 2.5], "k": [1, 2, 3]}),
}

QUERIES = [
    "SELECT x.a, x.s, MAX(x.f), COUNT(DISTINCT x.k) FROM emp AS x FULL JOIN t1 AS y "
    "ON x.k = y.k WHERE x.dt IS NULL GROUP BY x.a, x.s",
    "SELECT DISTINCT n FROM nn",
    "SELECT n, count(*) FROM nn GROUP BY n",
    "SELECT count(DISTINCT n), min(n), max(n), sum(n), avg(n) FROM nn",
    "SELECT * FROM nn ORDER BY n, k",
    "SELECT * FROM nn ORDER BY n DESC, k LIMIT 2",
    "SELECT a.k FROM nn a JOIN nn b ON a.n = b.n",
    "SELECT a.k FROM nn a LEFT JOIN nn b ON a.n = b.n",
    "SELECT a.k, b.n FROM nn a FULL JOIN nn b ON a.n = b.n",
    "SELECT k FROM nn WHERE n IN (1, 2)",
    "SELECT coalesce(n, k) FROM nn",
    "SELECT n FROM nn INTERSECT SELECT n FROM nn",
    "SELECT n FROM nn EXCEPT SELECT NULL",
    "SELECT k FROM nn WHERE k IN (SELECT n FROM nn)",
    "SELECT k FROM nn WHERE k NOT IN (SELECT n FROM nn)",
    "SELECT k FROM nn a WHERE EXISTS (SELECT 1 FROM nn b WHERE b.n = a.n)",
    "SELECT n, k FROM nn UNION SELECT n, k FROM nn",
    "SELECT count(DISTINCT x.s), count(DISTINCT x.a) FROM emp x RIGHT JOIN t1 y ON x.k = y.k",
    "SELECT x.s, count(DISTINCT y.a) FROM emp x RIGHT JOIN t1 y ON x.k = y.k GROUP BY x.s",
    "SELECT y.a FROM t1 y LEFT JOIN emp x ON x.k = y.k ORDER BY x.s DESC, y.a",
    "SELECT x.f + 1, x.f * 2, -x.a FROM emp x RIGHT JOIN t1 y ON x.k = y.k",
    "SELECT y.a, x.s FROM t1 y LEFT JOIN emp x ON y.s = x.s AND y.a < x.a",
    "SELECT x.s || 'a', upper(x.s), x.s LIKE 'a%' FROM emp x RIGHT JOIN t1 y ON x.k = y.k",
    "SELECT y.k, x.n FROM t1 y LEFT JOIN nn x ON x.n = y.k ORDER BY y.k",
]

SETTINGS = [(1, 0), (3, 0), (3, 1 << 50)]


@pytest.fixture(scope="module", params=SETTINGS, ids=["p1", "p3-repart", "p3-bcast"])
def con(request: pytest.FixtureRequest) -> shoal.Connection:
    partitions, threshold = request.param
    con = shoal.connect(partitions=partitions, broadcast_threshold_bytes=threshold)
    for name, table in TABLES.items():
        con.register_arrow(name, table)
    return con


@pytest.mark.parametrize("sql", QUERIES)
def test_null_typed_columns_match_duckdb(con: shoal.Connection, sql: str) -> None:
    assert check(con, sql, TABLES, ordered="ORDER BY" in sql and "LIMIT" in sql) is None
