"""Many-way joins plan in polynomial time and still give DuckDB's answer.

The planning time itself is measured by ``bench/planning.py``, not asserted here.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from support.compare import assert_same_result, duckdb_result

import shoal
from shoal.optimizer.join_order import PAIRS_MAX_LEAVES, JoinOrderStrategy, strategy_for

from .oracle import check

TABLES = {"t": pa.table({"k": [1, 2, 3], "v": [10, 20, 30]})}


def chain(n: int) -> str:
    joins = " ".join(f"JOIN t AS t{i} ON t{i - 1}.k = t{i}.k" for i in range(1, n))
    return f"SELECT count(*), sum(t{n - 1}.v), min(t0.v) FROM t AS t0 {joins}"


def star(n: int) -> str:
    tables = ", ".join(f"t AS t{i}" for i in range(n))
    where = " AND ".join(f"t0.k = t{i}.k" for i in range(1, n))
    return f"SELECT t0.k, count(*), sum(t{n - 1}.v) FROM {tables} WHERE {where} GROUP BY t0.k"


@pytest.fixture(scope="module")
def con() -> shoal.Connection:
    con = shoal.connect(partitions=2)
    con.register_arrow("t", TABLES["t"])
    return con


def test_strategy_switches_above_the_threshold() -> None:
    assert strategy_for(PAIRS_MAX_LEAVES) is JoinOrderStrategy.PAIRS
    assert strategy_for(PAIRS_MAX_LEAVES + 1) is JoinOrderStrategy.LEFT_DEEP


@pytest.mark.parametrize(
    "sql",
    [chain(PAIRS_MAX_LEAVES), chain(PAIRS_MAX_LEAVES + 1), star(30)],
    ids=["chain_at_threshold", "chain_above_threshold", "star30"],
)
def test_many_way_join_matches_duckdb(con: shoal.Connection, sql: str) -> None:
    assert check(con, sql, TABLES) is None


EQUIVALENT = {
    "chain": (chain, "SELECT count(*), sum(v), min(v) FROM t"),
    "star": (star, "SELECT k, count(*), sum(v) FROM t GROUP BY k"),
}


@pytest.mark.parametrize("shape", EQUIVALENT)
def test_hundred_way_join_matches_duckdb_on_the_equivalent_query(
    con: shoal.Connection, shape: str
) -> None:
    """DuckDB itself needs ~20 s for the 100-way join; ``k`` is unique in ``t``, so the
    join has exactly ``t``'s rows and DuckDB answers the one-table form for it."""
    build, equivalent = EQUIVALENT[shape]
    expected = duckdb_result(equivalent, TABLES)
    assert_same_result(con.sql(build(100)).to_arrow(), expected, ordered=False)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [chain, star], ids=["chain", "star"])
def test_hundred_way_join_matches_duckdb(con: shoal.Connection, shape) -> None:
    assert check(con, shape(100), TABLES) is None


def test_hundred_way_join_has_no_cross_product(con: shoal.Connection) -> None:
    """Every join of the 100-way chain is an equi-join (a hash join), none a cross product."""
    plan = con.explain(chain(100))
    assert plan.count("HashJoin[inner]") == 99
    assert "NestedLoopJoin" not in plan


def test_left_deep_keeps_a_cross_join_last() -> None:
    """Two unconnected groups above the threshold: equi-joins first, one cross join."""
    n = PAIRS_MAX_LEAVES + 4
    left = " AND ".join(f"a{i - 1}.k = a{i}.k" for i in range(1, n // 2))
    right = " AND ".join(f"b{i - 1}.k = b{i}.k" for i in range(1, n // 2))
    tables = ", ".join(
        [f"t AS a{i}" for i in range(n // 2)] + [f"t AS b{i}" for i in range(n // 2)]
    )
    sql = f"SELECT count(*) FROM {tables} WHERE {left} AND {right}"
    con = shoal.connect(partitions=2)
    con.register_arrow("t", TABLES["t"])
    assert check(con, sql, TABLES) is None
    assert con.explain(sql).count("NestedLoopJoin") == 1
