"""TPC-H queries through shoal, checked against the reference answers.

To cover more queries, extend ``QUERIES`` (``ALL_QUERIES`` is 1..22).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.tpch import assert_matches_answer, query_text, tpch_connection

#: The queries shoal is expected to answer correctly.
QUERIES: list[int] = [1, 6]

#: Partition counts for SF 0.1; 7 does not divide the 4 files per table evenly.
PARTITIONS: list[int] = [1, 2, 4, 7]


@pytest.mark.parametrize("partitions", PARTITIONS, ids=lambda p: f"p{p}")
@pytest.mark.parametrize("q", QUERIES, ids=lambda q: f"q{q:02d}")
def test_tpch_sf01(tpch_sf01_dir: Path, q: int, partitions: int) -> None:
    con = tpch_connection(tpch_sf01_dir, partitions=partitions)
    result = con.sql(query_text(q)).to_arrow()
    assert_matches_answer(result, "0.1", q)


@pytest.mark.slow
@pytest.mark.parametrize("q", QUERIES, ids=lambda q: f"q{q:02d}")
def test_tpch_sf1(tpch_sf1_dir: Path, q: int) -> None:
    con = tpch_connection(tpch_sf1_dir, partitions=4)
    result = con.sql(query_text(q)).to_arrow()
    assert_matches_answer(result, "1", q)
