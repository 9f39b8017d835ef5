"""Regressions for SQL semantics found in review, each checked against DuckDB."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from support.compare import assert_same_result, duckdb_result

import shoal
from shoal.hashing import NULL_HASH


@pytest.fixture
def tables() -> dict[str, pa.Table]:
    null_twin = int(NULL_HASH.astype("int64"))  # the BIGINT whose row hash is NULL's
    return {
        "n": pa.table(
            {
                "a": pa.array([7, -7, 7, -7, 5, None, 0], pa.int64()),
                "b": pa.array([2, 2, -2, -2, 1, 3, 4], pa.int64()),
                "big": pa.array([2**62, 2**62, 2**62, 1, 1, 1, 1], pa.int64()),
            }
        ),
        "outer_t": pa.table({"k": pa.array([1, 2, 3], pa.int64())}),
        "ts_t": pa.table(
            {
                "ts": pa.array(
                    [dt.datetime(2024, 1, 31, 10, 0), dt.datetime(2024, 3, 5, 12, 30), None],
                    pa.timestamp("us"),
                )
            }
        ),
        "inner_t": pa.table({"k": pa.array([1, 1, 2], pa.int64()), "x": [10, 20, 30]}),
        "l": pa.table({"k": pa.array([None, 1, null_twin], pa.int64())}),
        "d": pa.table(
            {
                "m": pa.array(["10.25", "-7.50", None], pa.string()).cast(pa.decimal128(10, 2)),
                "s": ["  hello ", "xxhixx", None],
                "z": pa.array([0, 2, 5], pa.int64()),
            }
        ),
        "r": pa.table({"k": pa.array([1, null_twin], pa.int64())}),
        "txt": pa.table(
            {
                "s": [
                    "special requests",
                    "requests special",
                    "a.b then c+d",
                    "special\nrequests",
                    "x%y_z",
                    None,
                    "specialrequests",
                ]
            }
        ),
    }


CASES = [
    # LIKE with several literal parts runs as an unanchored regex: order, regex
    # metacharacters, newlines and NULL must behave as LIKE does.
    "SELECT s FROM txt WHERE s LIKE '%special%requests%'",
    "SELECT s FROM txt WHERE s NOT LIKE '%special%requests%'",
    "SELECT s FROM txt WHERE s LIKE '%a.b%c+%'",
    "SELECT s FROM txt WHERE s LIKE '%x%y%'",
    "SELECT a, b, a // b FROM n",
    "SELECT SUM(big) FROM n",
    "SELECT k, (SELECT COUNT(*) + 1 FROM inner_t i WHERE i.k = o.k) FROM outer_t o",
    "SELECT k, (SELECT COALESCE(SUM(x), 0) FROM inner_t i WHERE i.k = o.k) FROM outer_t o",
    "SELECT CAST(2.5 AS INTEGER), CAST(-2.5 AS INTEGER), CAST(2.4 AS INTEGER)",
    "SELECT k FROM l INTERSECT SELECT k FROM r",
    "SELECT k FROM l EXCEPT SELECT k FROM r",
    # Guarded evaluation: CASE branches and AND-ed filters see only their rows.
    "SELECT CASE WHEN z = 0 THEN NULL ELSE 7 % z END FROM d",
    "SELECT CASE WHEN z > 100 THEN CAST(s AS INTEGER) ELSE z END FROM d",
    "SELECT z FROM d WHERE z <> 0 AND 10 % z = 0",
    "SELECT m % 3, m % 0.4 FROM d",
    "SELECT substring(s, -3), substring(s, -3, 2), substring(s, 0, 2) FROM d",
    "SELECT ltrim(s), rtrim(s), trim(s), trim(s, 'x'), trim(leading 'x' from s) FROM d",
    "SELECT NULL = NULL, NULL < 1, 9223372036854775808, 1 < 9223372036854775808",
    "SELECT a, a + 1 AS c, sum(b) FROM n GROUP BY ALL",
    "SELECT b, count(*) FILTER (WHERE a > 0), sum(a) FILTER (WHERE a < 7) FROM n GROUP BY b",
    "SELECT b, sum(a) AS total FROM n GROUP BY b HAVING total > 0",
    "SELECT count(*) FROM ts_t WHERE ts < TIMESTAMP '2024-02-01 00:00:00'",
    "SELECT ts + INTERVAL 1 DAY, ts - INTERVAL 2 HOUR, ts + INTERVAL 1 MONTH, year(ts) FROM ts_t",
    # JOIN ... USING shows the key once (the preserved side's for outer joins).
    "SELECT * FROM inner_t JOIN outer_t USING (k)",
    "SELECT k, x FROM outer_t LEFT JOIN inner_t USING (k)",
    "SELECT k, x FROM inner_t RIGHT JOIN outer_t USING (k)",
]


@pytest.mark.parametrize("partitions", [1, 3])
@pytest.mark.parametrize("sql", CASES)
def test_matches_duckdb(tables: dict[str, pa.Table], sql: str, partitions: int) -> None:
    con = shoal.connect(partitions=partitions)
    for name, table in tables.items():
        con.register_arrow(name, table)
    assert_same_result(con.sql(sql).to_arrow(), duckdb_result(sql, tables), ordered=False)


def test_enforce_distribution_is_idempotent(tables: dict[str, pa.Table]) -> None:
    from shoal.physical.rules.enforce_distribution import enforce_distribution
    from shoal.physical.rules.sanity_check import sanity_check

    con = shoal.connect(partitions=3)
    con.register_arrow("n", tables["n"])
    for sql in ["SELECT a FROM n ORDER BY a", "SELECT b, count(*) FROM n GROUP BY b"]:
        from shoal.optimizer.optimizer import optimize
        from shoal.physical.planner import PhysicalPlanner
        from shoal.sql.binder import Binder
        from shoal.sql.parser import parse_sql

        logical = optimize(Binder(con.catalog).bind_statement(parse_sql(sql)))
        once = enforce_distribution(PhysicalPlanner(con.settings).plan(logical.plan), con.settings)
        twice = enforce_distribution(once, con.settings)
        assert twice == once
        sanity_check(twice)


@pytest.mark.parametrize("sql", ["SELECT a // 0 FROM n", "SELECT a % (b - b) FROM n"])
def test_integer_division_by_zero_is_an_error(tables: dict[str, pa.Table], sql: str) -> None:
    """As in DuckDB: integer // and % by zero fail (float / by zero is inf)."""
    con = shoal.connect(partitions=2)
    con.register_arrow("n", tables["n"])
    with pytest.raises(shoal.ExecutionError, match="division by zero"):
        con.sql(sql)
    assert con.sql("SELECT count(*) FROM n").fetchall() == [(7,)]


@pytest.mark.parametrize("partitions", [1, 2])
def test_many_groups_with_small_batches(partitions: int) -> None:
    """Partial aggregates that pass states on early, finals that merge by doubling."""
    import numpy as np

    rng = np.random.default_rng(7)
    n = 20_000
    table = pa.table(
        {
            "k": rng.integers(0, 5_000, n),
            "v": rng.integers(-100, 100, n),
            "s": pa.array([f"s{i % 37}" for i in range(n)]),
        }
    )
    sql = "SELECT k, count(*), sum(v), avg(v), min(s), max(v) FROM t GROUP BY k"
    con = shoal.connect(partitions=partitions, batch_rows=64)
    con.register_arrow("t", table)
    assert_same_result(con.sql(sql).to_arrow(), duckdb_result(sql, {"t": table}), ordered=False)
    one = "SELECT count(*), sum(v) FROM t WHERE v > 1000"
    assert_same_result(con.sql(one).to_arrow(), duckdb_result(one, {"t": table}), ordered=False)


@pytest.mark.parametrize(
    "sql",
    [
        "WITH c(x, y) AS (SELECT 1) SELECT * FROM c",
        "SELECT a FROM n LIMIT 2.5",
        "SELECT a FROM n ORDER BY 1.5",
        "SELECT a FROM n LIMIT -1",
        "WITH x AS (SELECT * FROM x) SELECT * FROM x",
    ],
)
def test_bad_clauses_are_user_errors(tables: dict[str, pa.Table], sql: str) -> None:
    con = shoal.connect(partitions=2)
    con.register_arrow("n", tables["n"])
    with pytest.raises(shoal.UserError):
        con.sql(sql)
