"""TPC-H queries through shoal, checked against the reference answers.

To cover more queries, extend ``QUERIES`` (``ALL_QUERIES`` is 1..22).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.runtime import runtime_under_test
from support.tpch import assert_matches_answer, query_text, tpch_connection

#: The queries shoal is expected to answer correctly.
QUERIES: list[int] = list(range(1, 23))

#: Partition counts for SF 0.1; 7 does not divide the 4 files per table evenly. On Ray
#: (``SHOAL_RUNTIME=ray``) 1 and 4: every query there pays task launches per stage.
PARTITIONS: list[int] = [1, 4] if runtime_under_test() == "ray" else [1, 2, 4, 7]


@pytest.mark.parametrize("partitions", PARTITIONS, ids=lambda p: f"p{p}")
@pytest.mark.parametrize("q", QUERIES, ids=lambda q: f"q{q:02d}")
def test_tpch_sf01(tpch_sf01_dir: Path, q: int, partitions: int) -> None:
    # SHOAL_RETRY_POLICY=task runs these materialized too (as the differential suites).
    policy = os.environ.get("SHOAL_RETRY_POLICY", "none")
    con = tpch_connection(tpch_sf01_dir, partitions=partitions, retry_policy=policy)
    result = con.sql(query_text(q)).to_arrow()
    assert_matches_answer(result, "0.1", q)


@pytest.mark.parametrize("partitions", [1, 4], ids=lambda p: f"p{p}")
@pytest.mark.parametrize("q", QUERIES, ids=lambda q: f"q{q:02d}")
def test_tpch_sf01_materialized(tpch_sf01_dir: Path, q: int, partitions: int) -> None:
    """Every exchange through the spool (retry_policy="task"): the same answers."""
    con = tpch_connection(tpch_sf01_dir, partitions=partitions, retry_policy="task")
    result = con.sql(query_text(q))
    assert_matches_answer(result.to_arrow(), "0.1", q)
    assert result.metrics is not None and result.metrics.exchange_mode == "materialized"


@pytest.mark.slow
@pytest.mark.parametrize("retry_policy", ["none", "task"])
@pytest.mark.parametrize("q", QUERIES, ids=lambda q: f"q{q:02d}")
def test_tpch_sf1(tpch_sf1_dir: Path, q: int, retry_policy: str) -> None:
    con = tpch_connection(tpch_sf1_dir, partitions=4, retry_policy=retry_policy)
    result = con.sql(query_text(q)).to_arrow()
    assert_matches_answer(result, "1", q)


def test_q5_explain_shows_join_strategies_and_estimates(tpch_sf01_dir: Path) -> None:
    """Small dimensions are broadcast; each join says why, with the estimates behind it."""
    con = tpch_connection(tpch_sf01_dir, partitions=4)
    text = con.explain(query_text(5))
    joins = [line.strip() for line in text.splitlines() if "HashJoin[" in line]
    assert len(joins) == 5, text
    for line in joins:
        assert "strategy=" in line and "est=[probe~" in line and "build~" in line, line
    # The dimensions (and the filtered orders) are small next to lineitem: they are
    # broadcast to the lineitem scan's tasks, and lineitem itself is never shuffled.
    assert sum("strategy=broadcast" in j for j in joins) >= 3, text
    assert "Broadcast x4" in text
    assert "HashRepartition[l_" not in text
    # Repartitioning of a join is chosen only above the broadcast threshold.
    small = con.settings.broadcast_threshold_bytes
    con2 = tpch_connection(tpch_sf01_dir, partitions=4, broadcast_threshold_bytes=1)
    assert small > 1
    text2 = con2.explain(query_text(5))
    assert "strategy=partitioned" in text2 and "HashRepartition[" in text2
    assert con2.sql(query_text(5)).to_arrow().num_rows == con.sql(query_text(5)).to_arrow().num_rows


#: A budget far below SF 0.1's working set: 15 of the 22 queries spill (aggregates,
#: joins, sorts); the rest hold less than this.
TIGHT_BUDGET = "3MiB"


@pytest.mark.parametrize("q", QUERIES, ids=lambda q: f"q{q:02d}")
def test_tpch_sf01_spilling(tpch_sf01_dir: Path, q: int, tmp_path: Path) -> None:
    policy = os.environ.get("SHOAL_RETRY_POLICY", "none")
    con = tpch_connection(
        tpch_sf01_dir,
        partitions=2,
        memory_limit=TIGHT_BUDGET,
        spill_dir=tmp_path,
        retry_policy=policy,
    )
    result = con.sql(query_text(q))
    assert_matches_answer(result.to_arrow(), "0.1", q)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("q", QUERIES, ids=lambda q: f"q{q:02d}")
def test_tpch_sf1_under_1gib(tpch_sf1_dir: Path, q: int) -> None:
    con = tpch_connection(tpch_sf1_dir, partitions=4, memory_limit="1GiB")
    result = con.sql(query_text(q))
    assert_matches_answer(result.to_arrow(), "1", q)
    assert result.metrics.memory_limit_bytes == 1 << 30
