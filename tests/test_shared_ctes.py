"""Shared CTEs: a WITH query read more than once is computed once for all its readers.

Each case runs with sharing on and off, pipelined and materialized, at partitions 1
and 3 (joins broadcast and repartitioned), against DuckDB; the stage graphs say which
stage is the shared body and how many leaves read it. Ray (marker ``ray``) runs the
same cases on the session's local Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from support.cases import Case, check_case, o, u
from support.parquet_tables import connect, write_tables

import shoal
from shoal.stages.graph import StageGraph


def _tables() -> dict[str, pa.Table]:
    rng = np.random.default_rng(12)
    n = 3000
    return {
        "t": pa.table(
            {
                "k": pa.array(
                    [None if i % 17 == 0 else int(v) for i, v in enumerate(rng.integers(0, 9, n))],
                    pa.int64(),
                ),
                "x": pa.array(rng.integers(0, 60, n), pa.int64()),
                "g": pa.array([["a", "b", "c"][i % 3] for i in range(n)]),
                "y": pa.array([None if i % 5 == 0 else float(i % 13) / 2 for i in range(n)]),
            }
        ),
        "d": pa.table(
            {
                "dk": pa.array(range(9), pa.int64()),
                "yr": pa.array([2000 + i % 3 for i in range(9)], pa.int64()),
            }
        ),
    }


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tables(tmp_path_factory.mktemp("shared_ctes"), _tables(), {"t": 400, "d": 9})


# (case, how many CTEs are shared, readers of each shared body in binding order)
CASES: list[tuple[Case, tuple[int, ...]]] = [
    (
        o(
            "self_join_of_an_aggregate",
            """WITH c AS (SELECT k, sum(x) AS s FROM t GROUP BY k)
            SELECT a.k, a.s, b.s FROM c a JOIN c b ON a.k = b.k ORDER BY 1""",
        ),
        (2,),
    ),
    (
        o(
            "readers_filter_differently",
            """WITH c AS (SELECT k, g, sum(x) AS s, count(*) AS n FROM t GROUP BY k, g)
            SELECT a.k, a.g, a.s, b.n FROM c a JOIN c b ON a.k = b.k AND a.g = b.g
            WHERE a.g = 'a' AND b.s > 10 ORDER BY 1, 2""",
        ),
        (2,),
    ),
    (
        o(
            "scalar_subquery_over_the_cte",
            """WITH c AS (SELECT k, sum(x) AS s FROM t GROUP BY k)
            SELECT * FROM c WHERE s > (SELECT avg(s) FROM c) ORDER BY 1""",
        ),
        (2,),
    ),
    (
        u(
            "a_cte_read_by_a_shared_cte",
            """WITH c AS (SELECT t1.k, t1.x FROM t t1 JOIN t t2 ON t1.x = t2.x
                          WHERE t1.g = 'a' AND t2.g = 'b'),
                 e AS (SELECT k, count(*) AS n FROM c GROUP BY k)
            SELECT e1.k, e1.n, e2.n FROM e e1, e e2 WHERE e1.k = e2.k AND e1.n > 0
            UNION ALL SELECT k, x, 0 FROM c WHERE x = 3""",
        ),
        (2, 2),
    ),
    (
        o(
            "window_in_the_body",
            """WITH c AS (SELECT g, k, x, rank() OVER (PARTITION BY g ORDER BY x) AS r FROM t)
            SELECT a.g, count(*) FROM c a JOIN c b ON a.g = b.g AND a.r = b.r + 1
            GROUP BY a.g ORDER BY 1""",
        ),
        (2,),
    ),
    (
        u(
            "one_partition_body",
            """WITH c AS (SELECT sum(x) AS s, count(y) AS n FROM t)
            SELECT (SELECT max(s) FROM c), (SELECT min(n) FROM c)""",
        ),
        (2,),
    ),
    (
        o(
            "year_over_year_like_tpcds_q4",
            """WITH yt AS (
                SELECT k, yr, 's' AS kind, sum(x) AS total FROM t JOIN d ON k = dk
                GROUP BY k, yr
                UNION ALL
                SELECT k, yr, 'w' AS kind, sum(y) AS total FROM t JOIN d ON k = dk
                GROUP BY k, yr)
            SELECT a.k, a.total, b.total, c.total FROM yt a, yt b, yt c
            WHERE a.k = b.k AND b.k = c.k AND a.kind = 's' AND b.kind = 's' AND c.kind = 'w'
              AND a.yr = 2000 AND b.yr = 2001 AND c.yr = 2001 AND a.total > 0
            ORDER BY 1""",
        ),
        (3,),
    ),
    (
        u(
            "three_readers_in_one_join_and_an_empty_one",
            """WITH c AS (SELECT g, k, max(x) AS m FROM t GROUP BY g, k)
            SELECT a.g, a.k, a.m, b.m, e.m FROM c a
            JOIN c b ON a.g = b.g AND a.k = b.k
            LEFT JOIN (SELECT * FROM c WHERE m < 0) e ON e.g = a.g AND e.k = a.k""",
        ),
        (3,),
    ),
]


def _shared(graph: StageGraph) -> list[tuple[str | None, int]]:
    return [(s.shared_cte, s.readers) for s in graph.stages if s.shared_cte is not None]


@pytest.mark.parametrize("policy", ["none", "task"])
@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_reference"])
@pytest.mark.parametrize("threshold", [1, 1 << 40], ids=["repartitioned", "broadcast"])
@pytest.mark.parametrize("partitions", [1, 3])
@pytest.mark.parametrize("case, readers", CASES, ids=[c.id for c, _ in CASES])
def test_matches_duckdb(
    parquet_dir: Path,
    case: Case,
    readers: tuple[int, ...],
    partitions: int,
    threshold: int,
    share: bool,
    policy: str,
) -> None:
    con = shoal.connect(
        partitions=partitions,
        broadcast_threshold_bytes=threshold,
        share_ctes=share,
        retry_policy=policy,
    )
    for name in _tables():
        con.register_parquet(name, str(parquet_dir / f"{name}.parquet"))
    graph = con.prepare(case.sql).graph
    assert [n for _, n in _shared(graph)] == (list(readers) if share else [])
    check_case(con, case, _tables(), partitions)


def test_not_shared_when_read_once_or_a_bare_scan(parquet_dir: Path) -> None:
    con = connect(parquet_dir, list(_tables()), 3)
    once = "WITH c AS (SELECT k, sum(x) AS s FROM t GROUP BY k) SELECT * FROM c"
    scan = "WITH c AS (SELECT k, x FROM t WHERE x > 5) SELECT * FROM c a JOIN c b ON a.k = b.k"
    assert _shared(con.prepare(once).graph) == []
    assert _shared(con.prepare(scan).graph) == []


def test_stage_graph(parquet_dir: Path) -> None:
    """The whole graph: the body is one stage (hash-partitioned on its group key, so
    the self-join on that key reads it co-located), read by two leaves of the root."""
    con = shoal.connect(partitions=2)
    con.register_parquet("t", str(parquet_dir / "t.parquet"))
    sql = """WITH c AS (SELECT k, sum(x) AS s FROM t GROUP BY k)
             SELECT a.k, a.s, b.s AS s2 FROM c a JOIN c b ON a.k = b.k"""
    lines = [line.split(" est=")[0] for line in con.explain(sql).splitlines()]
    assert lines == [
        "Stage 2 (partitions=2) -> result",
        "  Project k_3_2 AS k_4, s_2 AS s_4, s_3 AS s2",
        "    HashJoin[inner] keys=[k_3_2 = k_3_3] strategy=colocated "
        "(inputs already hash-partitioned on the keys)",
        "      Project k_3 AS k_3_2, s AS s_2",
        "        ExchangeRead from=stage 1",
        "      Project k_3 AS k_3_3, s AS s_3",
        "        ExchangeRead from=stage 1",
        "Stage 1 (partitions=2) -> HashRepartition[k_3] x2 to stage 2 (shared CTE c: 2 readers)",
        "  Project k_2 AS k_3, sum_x AS s",
        "    Aggregate[final] keys=[k_2] aggs=[sum(x) AS sum_x]",
        "      ExchangeRead from=stage 0",
        "Stage 0 (partitions=2) -> HashRepartition[k_2] x2 to stage 1",
        "  Aggregate[partial] keys=[k AS k_2] aggs=[sum(x) AS sum_x]",
        "    Scan t columns=[k, x] splits=8 source=parquet",
    ]
    analyzed = con.sql(sql).explain_analyze()
    # The body's scan ran once: 3,000 rows, not one pass per reader.
    scan = next(x for x in analyzed.splitlines() if x.strip().startswith("Scan t"))
    assert "(rows=3000 " in scan


@pytest.mark.ray
@pytest.mark.parametrize("case, readers", CASES[:4], ids=[c.id for c, _ in CASES[:4]])
def test_on_ray(ray_session: Any, case: Case, readers: tuple[int, ...]) -> None:
    con = shoal.connect(partitions=2, runtime="ray")
    for name, table in _tables().items():
        con.register_arrow(name, table)
    assert [n for _, n in _shared(con.prepare(case.sql).graph)] == list(readers)
    check_case(con, case, _tables(), 2)


FILTERED_READERS = o(
    "every_reader_runtime_filtered",
    """WITH w AS (SELECT a.k, a.x FROM t a JOIN t b ON a.k = b.k AND a.x <> b.x)
    SELECT count(*), sum(x) FROM t
    WHERE g = 'a' AND x < 3 AND x + 1 IN (SELECT x FROM w) AND x IN (SELECT x FROM w)""",
)


@pytest.mark.parametrize("policy", ["none", "task"])
def test_runtime_filtered_readers_get_their_own_copy(parquet_dir: Path, policy: str) -> None:
    """Pipelined, both readers sit under a runtime filter (IN over a large side): each
    gets its own copy, which its filter reaches into; materialized (no runtime
    filters) shares the body."""
    con = connect(parquet_dir, list(_tables()), 3, retry_policy=policy)
    graph = con.prepare(FILTERED_READERS.sql).graph
    note = "CTE w: computed per reader"
    if policy == "none":
        assert _shared(graph) == []
        assert any(n.startswith(note) for n in graph.notes)
        lines = con.explain(FILTERED_READERS.sql).splitlines()
        # Each copy's filter reaches its scan, below the copy's self-join.
        below = [lines[i + 1].strip() for i, x in enumerate(lines) if "RuntimeFilter" in x]
        assert below == ["Scan t columns=[k_2, x_2] splits=8 source=parquet"] * 2
    else:
        assert _shared(graph) == [("w", 2)]
        assert not any(n.startswith(note) for n in graph.notes)
    check_case(con, FILTERED_READERS, _tables(), 3)
