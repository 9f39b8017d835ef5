"""The 99 TPC-DS queries through shoal, checked against the reference answers.

Every query runs at SF 0.1 with partitions 1 and 4 (SF 1 is marked slow). Queries that do
not pass yet are listed in :data:`EXPECTED_FAILURES`, each with the reason, as strict
expected failures: a query that starts passing fails the suite until it is taken off the
list.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.tpcds import ALL_QUERIES, assert_matches_answer, query_text, tpcds_connection

#: Queries that do not give the reference answer yet, and why (the first error met).
EXPECTED_FAILURES: dict[int, str] = {}

#: Expected failures that must not even be started (they would exhaust the machine's
#: memory); a subset of EXPECTED_FAILURES.
NOT_RUN: frozenset[int] = frozenset()

PARTITIONS: list[int] = [1, 4]


def _params() -> list[object]:
    assert NOT_RUN <= EXPECTED_FAILURES.keys()
    params: list[object] = []
    for q in ALL_QUERIES:
        if q in EXPECTED_FAILURES:
            mark = pytest.mark.xfail(strict=True, reason=EXPECTED_FAILURES[q], run=q not in NOT_RUN)
            params.append(pytest.param(q, marks=mark, id=f"q{q:02d}"))
        else:
            params.append(pytest.param(q, id=f"q{q:02d}"))
    return params


@pytest.mark.parametrize("partitions", PARTITIONS, ids=lambda p: f"p{p}")
@pytest.mark.parametrize("q", _params())
def test_tpcds_sf01(tpcds_sf01_dir: Path, q: int, partitions: int) -> None:
    con = tpcds_connection(tpcds_sf01_dir, partitions=partitions)
    result = con.sql(query_text(q)).to_arrow()
    assert_matches_answer(result, "0.1", q)


@pytest.mark.slow
@pytest.mark.parametrize("q", _params())
def test_tpcds_sf1(tpcds_sf1_dir: Path, q: int) -> None:
    con = tpcds_connection(tpcds_sf1_dir, partitions=4)
    result = con.sql(query_text(q)).to_arrow()
    assert_matches_answer(result, "1", q)
