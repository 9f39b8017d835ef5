"""EXPLAIN of ranking filters (WindowTopK) and ROLLUP state merging: whole stage graphs.

Partitions are pinned to 3 and the table has 6 row groups, so every plan is parallel.
What the graphs show: a filter keeping rows ranked ``<= k`` over a window of ranking
calls puts a partial top-k below the exchange that feeds the window (a gather without
PARTITION BY) and a final one above it, whose sorted output needs no sort below the
window; a ROLLUP's Expand over partial states merges each set from the one before it
(``merged_from``: the set each is merged from). A window that also computes a call
over the whole partition gets no top-k. Every query's result is also checked against
DuckDB.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.compare import assert_same_result, duckdb_result

import shoal

ROWS = 3_000


@pytest.fixture(scope="module")
def table() -> pa.Table:
    rng = np.random.default_rng(7)
    keys = np.array(["a", "b", "c", "d", "e"])
    return pa.table(
        {
            "id": pa.array(rng.permutation(ROWS), type=pa.int64()),
            "k": pa.array(keys[rng.integers(0, len(keys), ROWS)], mask=rng.random(ROWS) < 0.05),
            "x": pa.array(rng.integers(0, 100, ROWS), type=pa.int64()),
            "v": pa.array(rng.uniform(0, 100, ROWS)),
        }
    )


@pytest.fixture(scope="module")
def con(table: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> shoal.Connection:
    path = tmp_path_factory.mktemp("explain-window-topk") / "t.parquet"
    pq.write_table(table, path, row_group_size=500)
    c = shoal.connect(partitions=3)
    c.register_parquet("t", path)
    return c


PLANS: list[tuple[str, str, str]] = [
    (
        "rank_per_partition",
        "SELECT id, k, x FROM t QUALIFY rank() OVER (PARTITION BY k ORDER BY x DESC) <= 3",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_2, k AS k_2, x AS x_2
    Filter (rank <= 3)
      Window partition=[k] order=[x DESC] calls=[rank() AS rank]
        WindowTopK[final] partition=[k] order=[x DESC] fn=rank k=3
          ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  WindowTopK[partial] partition=[k] order=[x DESC] fn=rank k=3
    Scan t columns=[id, k, x] splits=6 source=parquet
""",
    ),
    (
        "dense_rank_without_partition_by_gathers",
        "SELECT id, x FROM t QUALIFY dense_rank() OVER (ORDER BY x DESC) <= 3",
        """\
Stage 1 (partitions=1) -> result
  Project id AS id_2, x AS x_2
    Filter (dense_rank <= 3)
      Window partition=[] order=[x DESC] calls=[dense_rank() AS dense_rank]
        WindowTopK[final] partition=[] order=[x DESC] fn=dense_rank k=3
          ExchangeRead from=stage 0
Stage 0 (partitions=3) -> Gather to stage 1
  WindowTopK[partial] partition=[] order=[x DESC] fn=dense_rank k=3
    Scan t columns=[id, x] splits=6 source=parquet
""",
    ),
    (
        "row_number_less_than",
        "SELECT * FROM (SELECT id, k, row_number() OVER (PARTITION BY k ORDER BY v, id) AS rn "
        "FROM t) s WHERE rn < 3",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_3, k AS k_3, row_number AS rn_2
    Filter (row_number < 3)
      Window partition=[k] order=[v ASC, id ASC] calls=[row_number() AS row_number]
        WindowTopK[final] partition=[k] order=[v ASC, id ASC] fn=row_number k=2
          ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  WindowTopK[partial] partition=[k] order=[v ASC, id ASC] fn=row_number k=2
    Scan t columns=[id, k, v] splits=6 source=parquet
""",
    ),
    (
        "rank_over_rollup",
        "SELECT * FROM (SELECT k, x % 3 AS m, sum(v) AS s, "
        "rank() OVER (PARTITION BY k ORDER BY sum(v) DESC) AS r "
        "FROM t GROUP BY ROLLUP (k, x % 3)) q WHERE r <= 2",
        """\
Stage 2 (partitions=3) -> result
  Project k_2 AS k_4, key AS m_2, sum_v AS s_2, rank AS r_2
    Filter (rank <= 2)
      Window partition=[k_2] order=[sum_v DESC] calls=[rank() AS rank]
        WindowTopK[final] partition=[k_2] order=[sum_v DESC] fn=rank k=2
          ExchangeRead from=stage 1
Stage 1 (partitions=3) -> HashRepartition[k_2] x3 to stage 2
  WindowTopK[partial] partition=[k_2] order=[sum_v DESC] fn=rank k=2
    Aggregate[final] keys=[k_2, key, grouping_set] aggs=[sum(v) AS sum_v]
      ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k_2, key, grouping_set] x3 to stage 1
  Expand[states] sets=3 merged_from=[input, 0, 1] columns=[k_2, key, grouping_set, sum_v$sum]
    Aggregate[partial] keys=[k AS grouping_key$0, (x % 3) AS grouping_key$1] aggs=[sum(v) AS sum_v]
      Scan t columns=[k, x, v] splits=6 source=parquet encoded=[k]
""",
    ),
    (
        "grouping_sets_merged_from_the_narrowest_wider_set",
        "SELECT k, x % 3 AS m, x % 2 AS e, count(*) AS c, avg(v) AS a FROM t "
        "GROUP BY GROUPING SETS ((k, x % 3, x % 2), (k, x % 2), (k), (x % 3), ())",
        """\
Stage 1 (partitions=3) -> result
  Project k_2 AS k_3, key AS m, key_2 AS e, count_star AS c, avg_v AS a
    Aggregate[final] keys=[k_2, key, key_2, grouping_set] aggs=[count(*) AS count_star, avg(v) AS avg_v]
      ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k_2, key, key_2, grouping_set] x3 to stage 1
  Expand[states] sets=5 merged_from=[input, 0, 1, 0, 2] columns=[k_2, key, key_2, grouping_set, count_star$count, avg_v$sum, avg_v$count]
    Aggregate[partial] keys=[k AS grouping_key$0, (x % 3) AS grouping_key$1, (x % 2) AS grouping_key$2] aggs=[count(*) AS count_star, avg(v) AS avg_v]
      Scan t columns=[k, x, v] splits=6 source=parquet encoded=[k]
""",
    ),
    (
        "rank_beside_a_partition_count_keeps_every_row",
        "SELECT id, k FROM (SELECT id, k, rank() OVER (PARTITION BY k ORDER BY x) AS r, "
        "count(*) OVER (PARTITION BY k) AS c FROM t) s WHERE r <= 2 AND c > 0",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_3, k AS k_3
    Filter ((rank <= 2) AND (count_star > 0))
      Window partition=[k] order=[] calls=[count(*) ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING AS count_star]
        Window partition=[k] order=[x ASC] calls=[rank() AS rank]
          Sort keys=[k ASC, x ASC] per=partition
            ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k, x] splits=6 source=parquet
""",
    ),
]


@pytest.mark.parametrize(("sql", "plan"), [p[1:] for p in PLANS], ids=[p[0] for p in PLANS])
def test_topk_plan(con: shoal.Connection, table: pa.Table, sql: str, plan: str) -> None:
    assert con.explain(sql).rstrip("\n") == plan.rstrip("\n")
    assert_same_result(
        con.sql(sql).to_arrow(), duckdb_result(sql, {"t": table}), ordered=False, context=sql
    )
