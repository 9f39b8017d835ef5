"""Runtime filters: a build-left semi/anti join's left keys filter its right side
before the right side's exchange.

Checked against DuckDB on tables small enough to read but planned as the large
case (a tiny broadcast threshold and several splits per table), with the filter
working, giving up (a tiny buffer budget) and absent (NOT IN must see NULL keys);
and against the TPC-H answers for the queries that use it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from support.cases import Case, check_case, u
from support.parquet_tables import connect, write_tables
from support.tpch import assert_matches_answer, query_text, tpch_connection

import shoal


def _tables() -> dict[str, pa.Table]:
    rng = np.random.default_rng(5)
    n_left, n_right = 80, 4000
    left_keys = [None if i % 11 == 0 else int(i) * 3 for i in range(n_left)]
    right_keys = [None if rng.random() < 0.03 else int(k) for k in rng.integers(0, 400, n_right)]
    return {
        "l": pa.table(
            {
                "k": pa.array(left_keys, pa.int64()),
                "s": pa.array([i % 7 for i in range(n_left)], pa.int64()),
            }
        ),
        "r": pa.table(
            {
                "k": pa.array(right_keys, pa.int64()),
                "s": pa.array(rng.integers(0, 7, n_right), pa.int64()),
            }
        ),
    }


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tables(tmp_path_factory.mktemp("runtime_filter"), _tables(), {"l": 20, "r": 250})


def _connection(parquet_dir: Path, partitions: int, **settings: int) -> shoal.Connection:
    return connect(parquet_dir, list(_tables()), partitions, **settings)


CASES: list[Case] = [
    u("exists", "SELECT l.k, l.s FROM l WHERE EXISTS (SELECT 1 FROM r WHERE r.k = l.k)"),
    u("not_exists", "SELECT l.k, l.s FROM l WHERE NOT EXISTS (SELECT 1 FROM r WHERE r.k = l.k)"),
    u(
        "exists_residual",
        "SELECT l.k FROM l WHERE EXISTS (SELECT 1 FROM r WHERE r.k = l.k AND r.s <> l.s)",
    ),
    u(
        "not_exists_residual",
        "SELECT l.k FROM l WHERE NOT EXISTS (SELECT 1 FROM r WHERE r.k = l.k AND r.s <> l.s)",
    ),
    u("in", "SELECT l.k FROM l WHERE l.k IN (SELECT k FROM r)"),
    u("not_in", "SELECT l.k FROM l WHERE l.k NOT IN (SELECT k FROM r WHERE k IS NOT NULL)"),
    # Set operations match NULL with NULL: no runtime filter may drop NULL keys.
    u("intersect", "SELECT k FROM l INTERSECT SELECT k FROM r"),
    u("except", "SELECT k FROM l EXCEPT SELECT k FROM r"),
]


# Past the hold bytes the filter waits for the keys; past the pool it gives up and
# passes everything (a pool of 16 KiB: the filter passes all 4,000 rows, the joins spill).
@pytest.mark.parametrize(
    "settings",
    [{}, {"runtime_filter_hold_bytes": 1}, {"memory_limit": 16 << 10}],
    ids=["filtering", "waits", "gives_up"],
)
@pytest.mark.parametrize("partitions", [1, 3])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_duckdb(
    parquet_dir: Path, case: Case, partitions: int, settings: dict[str, int]
) -> None:
    con = _connection(parquet_dir, partitions, **settings)
    check_case(con, case, _tables(), partitions)


def test_plan_and_figures(parquet_dir: Path) -> None:
    con = _connection(parquet_dir, 3)
    sql = "SELECT l.k FROM l WHERE EXISTS (SELECT 1 FROM r WHERE r.k = l.k)"
    assert "RuntimeFilter" in con.explain(sql)
    line = next(x for x in con.sql(sql).explain_analyze().splitlines() if "RuntimeFilter" in x)
    rows_out = int(line.split("(rows=")[1].split()[0])
    rows_in = int(line.split("rows_in=")[1].split()[0].rstrip(")"))
    assert rows_in == 4000 and rows_out < rows_in


@pytest.mark.parametrize("q", [4, 21, 22], ids=lambda q: f"q{q:02d}")
def test_tpch_answers_when_the_filter_holds_little(tpch_sf01_dir: Path, q: int) -> None:
    con = tpch_connection(tpch_sf01_dir, partitions=3, runtime_filter_hold_bytes=1)
    assert_matches_answer(con.sql(query_text(q)).to_arrow(), "0.1", q)


@pytest.mark.parametrize(
    "sql, rows",
    [
        # LIMIT 0: the join that publishes the keys is never pulled.
        ("SELECT l.k FROM l WHERE EXISTS (SELECT 1 FROM r WHERE r.k = l.k) LIMIT 0", 0),
        # NOT IN over a set holding NULL returns nothing without pulling its probe side,
        # which holds the publishing EXISTS join.
        (
            "SELECT l.k FROM l WHERE l.s NOT IN (SELECT k FROM r) "
            "AND EXISTS (SELECT 1 FROM r WHERE r.k = l.k)",
            0,
        ),
        # A LIMIT filled by the first UNION ALL branch never pulls the second's join.
        (
            "SELECT k FROM (SELECT l.k FROM l WHERE EXISTS (SELECT 1 FROM r WHERE r.k = l.k) "
            "UNION ALL SELECT l.k FROM l WHERE NOT EXISTS "
            "(SELECT 1 FROM r WHERE r.k = l.k AND r.s > 0)) t LIMIT 1",
            1,
        ),
    ],
    ids=["limit_0", "not_in_null", "limit_after_union"],
)
def test_a_filter_whose_keys_never_come_does_not_hang(
    parquet_dir: Path, sql: str, rows: int
) -> None:
    import threading

    con = _connection(parquet_dir, 3)
    done: list[pa.Table] = []
    worker = threading.Thread(target=lambda: done.append(con.sql(sql).to_arrow()), daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "query hung waiting for runtime filter keys"
    assert done[0].num_rows == rows
