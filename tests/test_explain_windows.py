"""EXPLAIN of window and grouping-set plans: whole stage graphs, not substrings.

Partitions are pinned to 3 and the table has 6 row groups, so every plan is parallel.
What the graphs show: a window needs its input hash-partitioned on the PARTITION BY
keys (gathered into one partition without them) and sorted within each partition; the
sort EnforceSorting places keeps its partitioning (``per=partition``) and is never an
ordered merge; windows whose sort requirement is a prefix of the one below share its
sort; a window over an aggregate on the same keys needs no exchange; a ranking filter
keeps each partition's top rows before and after the exchange (WindowTopK); ROLLUP reads
its input once and merges each set's states in the task (Expand[states]); an aggregate's own ORDER BY shows inside its call. Every query's result is also checked against DuckDB.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.compare import assert_same_result, duckdb_result

import shoal

ROWS = 3_000


def _table() -> pa.Table:
    rng = np.random.default_rng(42)
    keys = np.array(["a", "b", "c", "d", "e", "f", "g"])
    return pa.table(
        {
            "id": pa.array(rng.permutation(ROWS), type=pa.int64()),
            "k": pa.array(keys[rng.integers(0, len(keys), ROWS)], mask=rng.random(ROWS) < 0.05),
            "x": pa.array(rng.integers(0, 1_000, ROWS), type=pa.int64()),
            "v": pa.array(rng.uniform(0, 100, ROWS)),
        }
    )


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return _table()


@pytest.fixture(scope="module")
def con(table: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> shoal.Connection:
    path = tmp_path_factory.mktemp("explain-windows") / "t.parquet"
    pq.write_table(table, path, row_group_size=500)
    c = shoal.connect(partitions=3)
    c.register_parquet("t", path)
    return c


# (id, query, the whole EXPLAIN text)
PLANS: list[tuple[str, str, str]] = [
    (
        "partitioned_rank",
        "SELECT id, rank() OVER (PARTITION BY k ORDER BY x) AS r FROM t",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_2, rank AS r
    Window partition=[k] order=[x ASC] calls=[rank() AS rank]
      Sort keys=[k ASC, x ASC] per=partition
        ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k, x] splits=6 source=parquet
""",
    ),
    (
        "unpartitioned_row_number",
        "SELECT id, row_number() OVER (ORDER BY id) AS r FROM t",
        """\
Stage 1 (partitions=1) -> result
  Project id AS id_2, row_number AS r
    Window partition=[] order=[id ASC] calls=[row_number() AS row_number]
      Sort keys=[id ASC] per=partition
        ExchangeRead from=stage 0
Stage 0 (partitions=3) -> Gather to stage 1
  Scan t columns=[id] splits=6 source=parquet
""",
    ),
    (
        "no_order_whole_partition",
        "SELECT id, sum(x) OVER (PARTITION BY k) AS s FROM t",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_2, sum AS s
    Window partition=[k] order=[] calls=[sum(x) ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING AS sum]
      Sort keys=[k ASC] per=partition
        ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k, x] splits=6 source=parquet
""",
    ),
    (
        "empty_over",
        "SELECT id, count(*) OVER () AS n FROM t",
        """\
Stage 1 (partitions=1) -> result
  Project id AS id_2, count_star AS n
    Window partition=[] order=[] calls=[count(*) ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING AS count_star]
      ExchangeRead from=stage 0
Stage 0 (partitions=3) -> Gather to stage 1
  Scan t columns=[id] splits=6 source=parquet
""",
    ),
    (
        "two_calls_one_spec",
        "SELECT id, sum(x) OVER w AS s, avg(v) OVER w AS a FROM t WINDOW w AS (PARTITION BY k ORDER BY id)",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_2, sum AS s, avg AS a
    Window partition=[k] order=[id ASC] calls=[sum(x) RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW AS sum, avg(v) RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW AS avg]
      Sort keys=[k ASC, id ASC] per=partition
        ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k, x, v] splits=6 source=parquet
""",
    ),
    (
        "prefix_spec_shares_sort",
        "SELECT id, rank() OVER (PARTITION BY k ORDER BY x, id) AS r, sum(x) OVER (PARTITION BY k ORDER BY x) AS s FROM t",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_2, rank AS r, sum AS s
    Window partition=[k] order=[x ASC] calls=[sum(x) RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW AS sum]
      Window partition=[k] order=[x ASC, id ASC] calls=[rank() AS rank]
        Sort keys=[k ASC, x ASC, id ASC] per=partition
          ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k, x] splits=6 source=parquet
""",
    ),
    (
        "partition_only_reuses_sort",
        "SELECT id, row_number() OVER (PARTITION BY k ORDER BY id) AS r, count(*) OVER (PARTITION BY k) AS n FROM t",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_2, row_number AS r, count_star AS n
    Window partition=[k] order=[] calls=[count(*) ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING AS count_star]
      Window partition=[k] order=[id ASC] calls=[row_number() AS row_number]
        Sort keys=[k ASC, id ASC] per=partition
          ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k] splits=6 source=parquet
""",
    ),
    (
        "different_keys_two_shuffles",
        "SELECT id, rank() OVER (PARTITION BY k ORDER BY x) AS a, rank() OVER (PARTITION BY x % 10 ORDER BY id) AS b FROM t",
        """\
Stage 2 (partitions=3) -> result
  Project id AS id_2, rank AS a, rank_2 AS b
    Window partition=[window_arg] order=[id ASC] calls=[rank() AS rank_2]
      Sort keys=[window_arg ASC, id ASC] per=partition
        ExchangeRead from=stage 1
Stage 1 (partitions=3) -> HashRepartition[window_arg] x3 to stage 2
  Window partition=[k] order=[x ASC] calls=[rank() AS rank]
    Sort keys=[k ASC, x ASC] per=partition
      ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Project id, k, x, (x % 10) AS window_arg
    Scan t columns=[id, k, x] splits=6 source=parquet
""",
    ),
    (
        "different_order_same_partition",
        "SELECT id, row_number() OVER (PARTITION BY k ORDER BY id) AS a, row_number() OVER (PARTITION BY k ORDER BY x DESC, id) AS b FROM t",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_2, row_number AS a, row_number_2 AS b
    Window partition=[k] order=[id ASC] calls=[row_number() AS row_number]
      Sort keys=[k ASC, id ASC] per=partition
        Window partition=[k] order=[x DESC, id ASC] calls=[row_number() AS row_number_2]
          Sort keys=[k ASC, x DESC, id ASC] per=partition
            ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k, x] splits=6 source=parquet
""",
    ),
    (
        "partitioned_then_global",
        "SELECT id, sum(x) OVER (PARTITION BY k) AS a, row_number() OVER (ORDER BY id) AS b FROM t",
        """\
Stage 2 (partitions=1) -> result
  Project id AS id_2, sum AS a, row_number AS b
    Window partition=[] order=[id ASC] calls=[row_number() AS row_number]
      Sort keys=[id ASC] per=partition
        ExchangeRead from=stage 1
Stage 1 (partitions=3) -> Gather to stage 2
  Window partition=[k] order=[] calls=[sum(x) ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING AS sum]
    Sort keys=[k ASC] per=partition
      ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k, x] splits=6 source=parquet
""",
    ),
    (
        "window_then_order_by",
        "SELECT id, rank() OVER (PARTITION BY k ORDER BY x) AS r FROM t ORDER BY id",
        """\
Stage 2 (partitions=1) -> result
  ExchangeRead from=stage 1
Stage 1 (partitions=3) -> OrderedMerge[id_2 ASC] to stage 2
  Sort keys=[id_2 ASC]
    Project id AS id_2, rank AS r
      Window partition=[k] order=[x ASC] calls=[rank() AS rank]
        Sort keys=[k ASC, x ASC] per=partition
          ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k, x] splits=6 source=parquet
""",
    ),
    (
        "window_then_limit",
        "SELECT id, rank() OVER (PARTITION BY k ORDER BY x) AS r FROM t ORDER BY r, id LIMIT 5",
        """\
Stage 2 (partitions=1) -> result
  TopK[final] keys=[r ASC, id_2 ASC] limit=5
    ExchangeRead from=stage 1
Stage 1 (partitions=3) -> Gather to stage 2
  TopK[partial] keys=[r ASC, id_2 ASC] limit=5
    Project id AS id_2, rank AS r
      Window partition=[k] order=[x ASC] calls=[rank() AS rank]
        Sort keys=[k ASC, x ASC] per=partition
          ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k, x] splits=6 source=parquet
""",
    ),
    (
        "window_over_aggregate_colocated",
        "SELECT k, sum(x) AS s, rank() OVER (PARTITION BY k ORDER BY sum(x)) AS r FROM t GROUP BY k",
        """\
Stage 1 (partitions=3) -> result
  Project k_2 AS k_3, sum_x AS s, rank AS r
    Window partition=[k_2] order=[sum_x ASC] calls=[rank() AS rank]
      Sort keys=[k_2 ASC, sum_x ASC] per=partition
        Aggregate[final] keys=[k_2] aggs=[sum(x) AS sum_x]
          ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k_2] x3 to stage 1
  Aggregate[partial] keys=[k AS k_2] aggs=[sum(x) AS sum_x]
    Scan t columns=[k, x] splits=6 source=parquet encoded=[k]
""",
    ),
    (
        "window_over_aggregate_global",
        "SELECT k, sum(x) AS s, rank() OVER (ORDER BY sum(x) DESC) AS r FROM t GROUP BY k",
        """\
Stage 2 (partitions=1) -> result
  Project k_2 AS k_3, sum_x AS s, rank AS r
    Window partition=[] order=[sum_x DESC] calls=[rank() AS rank]
      Sort keys=[sum_x DESC] per=partition
        ExchangeRead from=stage 1
Stage 1 (partitions=3) -> Gather to stage 2
  Aggregate[final] keys=[k_2] aggs=[sum(x) AS sum_x]
    ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k_2] x3 to stage 1
  Aggregate[partial] keys=[k AS k_2] aggs=[sum(x) AS sum_x]
    Scan t columns=[k, x] splits=6 source=parquet encoded=[k]
""",
    ),
    (
        "share_of_total",
        "SELECT k, sum(x) * 1.0 / sum(sum(x)) OVER () AS share FROM t GROUP BY k",
        """\
Stage 2 (partitions=1) -> result
  Project k_2 AS k_3, (CAST((sum_x * 1.0) AS DOUBLE) / CAST(sum AS DOUBLE)) AS share
    Window partition=[] order=[] calls=[sum(sum_x) ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING AS sum]
      ExchangeRead from=stage 1
Stage 1 (partitions=3) -> Gather to stage 2
  Aggregate[final] keys=[k_2] aggs=[sum(x) AS sum_x]
    ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k_2] x3 to stage 1
  Aggregate[partial] keys=[k AS k_2] aggs=[sum(x) AS sum_x]
    Scan t columns=[k, x] splits=6 source=parquet encoded=[k]
""",
    ),
    (
        "qualify_filter_above_window",
        "SELECT id, k FROM t QUALIFY row_number() OVER (PARTITION BY k ORDER BY v DESC, id) = 1",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_2, k AS k_2
    Filter (row_number = 1)
      Window partition=[k] order=[v DESC, id ASC] calls=[row_number() AS row_number]
        WindowTopK[final] partition=[k] order=[v DESC, id ASC] fn=row_number k=1
          ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  WindowTopK[partial] partition=[k] order=[v DESC, id ASC] fn=row_number k=1
    Scan t columns=[id, k, v] splits=6 source=parquet
""",
    ),
    (
        "computed_partition_key",
        "SELECT id, max(v) OVER (PARTITION BY x % 7 ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS m FROM t",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_2, max AS m
    Window partition=[window_arg] order=[id ASC] calls=[max(v) ROWS BETWEEN 2 PRECEDING AND CURRENT ROW AS max]
      Sort keys=[window_arg ASC, id ASC] per=partition
        ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[window_arg] x3 to stage 1
  Project id, v, (x % 7) AS window_arg
    Scan t columns=[id, x, v] splits=6 source=parquet
""",
    ),
    (
        "lag_lead_one_window",
        "SELECT id, lag(x) OVER (PARTITION BY k ORDER BY id) AS p, lead(x, 2, 0) OVER (PARTITION BY k ORDER BY id) AS n FROM t",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_2, lag AS p, lead AS n
    Window partition=[k] order=[id ASC] calls=[lag(x, 1) AS lag, lead(x, 2, 0) AS lead]
      Sort keys=[k ASC, id ASC] per=partition
        ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k, x] splits=6 source=parquet
""",
    ),
    (
        "range_frame",
        "SELECT id, sum(v) OVER (PARTITION BY k ORDER BY x RANGE BETWEEN 10 PRECEDING AND 10 FOLLOWING) AS s FROM t",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_2, sum AS s
    Window partition=[k] order=[x ASC] calls=[sum(v) RANGE BETWEEN 10 PRECEDING AND 10 FOLLOWING AS sum]
      Sort keys=[k ASC, x ASC] per=partition
        ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k, x, v] splits=6 source=parquet
""",
    ),
    (
        "filter_on_partition_key_below_window",
        "SELECT * FROM (SELECT id, k, rank() OVER (PARTITION BY k ORDER BY x) AS r FROM t) s WHERE k = 'a'",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_3, k AS k_3, rank AS r_2
    Window partition=[k] order=[x ASC] calls=[rank() AS rank]
      Sort keys=[k ASC, x ASC] per=partition
        ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k, x] filter=(k = 'a') splits=6 source=parquet
""",
    ),
    (
        "filter_on_result_stays_above",
        "SELECT * FROM (SELECT id, k, rank() OVER (PARTITION BY k ORDER BY x) AS r FROM t) s WHERE r <= 2",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_3, k AS k_3, rank AS r_2
    Filter (rank <= 2)
      Window partition=[k] order=[x ASC] calls=[rank() AS rank]
        WindowTopK[final] partition=[k] order=[x ASC] fn=rank k=2
          ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  WindowTopK[partial] partition=[k] order=[x ASC] fn=rank k=2
    Scan t columns=[id, k, x] splits=6 source=parquet
""",
    ),
    (
        "window_over_join_partitioned",
        "SELECT a.id, rank() OVER (PARTITION BY a.k ORDER BY b.x) AS r FROM t a JOIN t b ON a.id = b.id",
        """\
Stage 2 (partitions=3) -> result
  Project id AS id_3, rank AS r
    Window partition=[k] order=[x_2 ASC] calls=[rank() AS rank]
      Sort keys=[k ASC, x_2 ASC] per=partition
        ExchangeRead from=stage 1
Stage 1 (partitions=3) -> HashRepartition[k] x3 to stage 2
  HashJoin[inner] keys=[id = id_2] join_filters=[jf0] strategy=broadcast (build ~0.0MiB <= 32MiB) est=[probe~3,000 rows, build~3,000 rows/0.0MiB]
    Scan t columns=[id, k] splits=6 source=parquet join_filters=[jf0:id]
    ExchangeRead from=stage 0
Stage 0 (partitions=3) -> Broadcast x3 to stage 1
  Scan t columns=[id_2, x_2] splits=6 source=parquet
""",
    ),
    (
        "rollup_expand",
        "SELECT k, x % 2 AS p, sum(v) AS s FROM t GROUP BY ROLLUP (k, x % 2)",
        """\
Stage 1 (partitions=3) -> result
  Project k_2 AS k_3, key AS p, sum_v AS s
    Aggregate[final] keys=[k_2, key, grouping_set] aggs=[sum(v) AS sum_v]
      ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k_2, key, grouping_set] x3 to stage 1
  Expand[states] sets=3 merged_from=[input, 0, 1] columns=[k_2, key, grouping_set, sum_v$sum]
    Aggregate[partial] keys=[k AS grouping_key$0, (x % 2) AS grouping_key$1] aggs=[sum(v) AS sum_v]
      Scan t columns=[k, x, v] splits=6 source=parquet encoded=[k]
""",
    ),
    (
        "mode_is_a_window_below_the_aggregate",
        "SELECT k, mode(least(x, 900)) AS m FROM t GROUP BY k",
        """\
Stage 1 (partitions=3) -> result
  Project k_2 AS k_3, mode_least_x_900 AS m
    Aggregate[single] keys=[k AS k_2] aggs=[min(mode) AS mode_least_x_900]
      Window partition=[k] order=[quantile_arg ASC] calls=[mode(quantile_arg) AS mode]
        Sort keys=[k ASC, quantile_arg ASC] per=partition
          ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Project k, least(x, 900) AS quantile_arg
    Scan t columns=[k, x] splits=6 source=parquet""",
    ),
    (
        "array_agg_and_arg_max_windows_stack",
        "SELECT k, array_agg(id ORDER BY id) AS ids, arg_max(id, v) AS top FROM t GROUP BY k",
        """\
Stage 1 (partitions=3) -> result
  Project k_2 AS k_3, array_agg_id_order_by_id AS ids, arg_max_id_v AS top
    Aggregate[single] keys=[k AS k_2] aggs=[any_value(array_agg) AS array_agg_id_order_by_id, min(first_value) AS arg_max_id_v]
      Window partition=[k] order=[quantile_order DESC] calls=[first_value(quantile_arg) ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING AS first_value]
        Sort keys=[k ASC, quantile_order DESC] per=partition
          Window partition=[k] order=[id ASC] calls=[array_agg(id) AS array_agg]
            Sort keys=[k ASC, id ASC] per=partition
              ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Project id, k, CASE WHEN is_not_null(v) THEN id ELSE NULL END AS quantile_arg, CASE WHEN is_not_null(id) THEN v ELSE NULL END AS quantile_order
    Scan t columns=[id, k, v] splits=6 source=parquet""",
    ),
    (
        "unnest_above_the_select_list",
        "SELECT k, unnest(array_agg(x)) AS e FROM t WHERE x < 20 GROUP BY k",
        """\
Stage 1 (partitions=3) -> result
  Unnest column=e
    Project k_2 AS k_3, array_agg_x AS e
      Aggregate[single] keys=[k AS k_2] aggs=[any_value(array_agg) AS array_agg_x]
        Window partition=[k] order=[] calls=[array_agg(x) AS array_agg]
          Sort keys=[k ASC] per=partition
            ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[k, x] filter=(x < 20) splits=6 source=parquet""",
    ),
    (
        "new_aggregates_one_window_decomposed",
        "SELECT id, stddev_samp(x) OVER w AS sd, median(v) OVER w AS m, count(DISTINCT x) OVER w AS d FROM t WINDOW w AS (PARTITION BY k ORDER BY id ROWS BETWEEN 5 PRECEDING AND CURRENT ROW)",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_2, CASE WHEN (count > 1) THEN sqrt((CASE WHEN (CAST(((count * sum_2) - (CAST(sum AS DECIMAL(29,0)) * CAST(sum AS DECIMAL(29,0)))) AS DOUBLE) < 0.0) THEN 0.0 ELSE CAST(((count * sum_2) - (CAST(sum AS DECIMAL(29,0)) * CAST(sum AS DECIMAL(29,0)))) AS DOUBLE) END / CAST((count * (count - 1)) AS DOUBLE))) ELSE NULL END AS sd, quantile_cont AS m, count_2 AS d
    Window partition=[k] order=[id ASC] calls=[count(x) ROWS BETWEEN 5 PRECEDING AND CURRENT ROW AS count, sum(x) ROWS BETWEEN 5 PRECEDING AND CURRENT ROW AS sum, sum(window_arg) ROWS BETWEEN 5 PRECEDING AND CURRENT ROW AS sum_2, quantile_cont(v, 0.5) ROWS BETWEEN 5 PRECEDING AND CURRENT ROW AS quantile_cont, count(DISTINCT x) ROWS BETWEEN 5 PRECEDING AND CURRENT ROW AS count_2]
      Sort keys=[k ASC, id ASC] per=partition
        ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Project id, k, x, v, (x * x) AS window_arg
    Scan t columns=[id, k, x, v] splits=6 source=parquet""",
    ),
    (
        "lateral_unnest_of_distinct_array_agg",
        "SELECT k, u.e FROM (SELECT k, array_agg(DISTINCT x % 3) AS l FROM t GROUP BY k) s, unnest(s.l) AS u(e)",
        """\
Stage 1 (partitions=3) -> result
  Project k_3 AS k_4, unnest AS e
    Unnest column=unnest
      Project k_2 AS k_3, array_agg_distinct_x_3 AS unnest
        Aggregate[single] keys=[k AS k_2] aggs=[any_value(array_agg) AS array_agg_distinct_x_3]
          Window partition=[k] order=[] calls=[array_agg(DISTINCT quantile_arg) AS array_agg]
            Sort keys=[k ASC] per=partition
              ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Project k, (x % 3) AS quantile_arg
    Scan t columns=[k, x] splits=6 source=parquet""",
    ),
    (
        "order_by_inside_windowed_aggregates",
        """SELECT id, string_agg(k, ',' ORDER BY x DESC, id) OVER (PARTITION BY k ORDER BY id
               ROWS 2 PRECEDING) AS s,
               last(v ORDER BY x NULLS FIRST, id) OVER (PARTITION BY k) AS l FROM t""",
        """\
Stage 1 (partitions=3) -> result
  Project id AS id_2, string_agg AS s, last_value AS l
    Window partition=[k] order=[] calls=[last_value(v ORDER BY x ASC NULLS FIRST, id ASC) ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING AS last_value]
      Window partition=[k] order=[id ASC] calls=[string_agg(k, ',' ORDER BY x DESC, id ASC) ROWS BETWEEN 2 PRECEDING AND CURRENT ROW AS string_agg]
        Sort keys=[k ASC, id ASC] per=partition
          ExchangeRead from=stage 0
Stage 0 (partitions=3) -> HashRepartition[k] x3 to stage 1
  Scan t columns=[id, k, x, v] splits=6 source=parquet""",
    ),
]


@pytest.mark.parametrize(("sql", "plan"), [p[1:] for p in PLANS], ids=[p[0] for p in PLANS])
def test_window_plan(con: shoal.Connection, table: pa.Table, sql: str, plan: str) -> None:
    assert con.explain(sql).rstrip("\n") == plan.rstrip("\n")
    assert_same_result(
        con.sql(sql).to_arrow(), duckdb_result(sql, {"t": table}), ordered=False, context=sql
    )
