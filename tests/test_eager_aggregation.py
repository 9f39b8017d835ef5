"""Aggregations moved across joins (TPC-DS q4 / q11 / q74, q14, q23), against DuckDB and
by their plans.

- An aggregation over an inner join whose aggregates read one side pre-aggregates that
  side on the columns the keys and the join read (a partial aggregate with no exchange)
  and merges the partial sums / counts / min / max above the join — also past a join
  the side is joined under first, and not below a join that drops most of its rows.
- An aggregation with keys over a cross join with one row aggregates the other input
  first; MIN / MAX of the row's columns are its values.
- A semi join's right side is made distinct on its join columns (pushed below a join
  where that shrinks it).
- A conjunct a projection's constant decides is folded (TRUE conjuncts dropped).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from support.cases import Case, check_case, o, u
from support.parquet_tables import connect, write_tables

N_FACT = 40_000
N_CUST = 1_500
N_DAYS = 730


def _tables() -> dict[str, pa.Table]:
    rng = np.random.default_rng(4)
    cust = rng.integers(0, N_CUST + 100, N_FACT)  # some keys miss: inner join drops them
    return {
        "fact": pa.table(
            {
                "f_cust": pa.array([None if i % 97 == 0 else int(c) for i, c in enumerate(cust)]),
                "f_day": pa.array(rng.integers(0, N_DAYS, N_FACT), pa.int64()),
                "f_item": pa.array(rng.integers(0, 300, N_FACT), pa.int64()),
                "f_wk": pa.array(rng.integers(0, 60, N_FACT), pa.int64()),
                "f_qty": pa.array(
                    [
                        None if i % 13 == 0 else int(v)
                        for i, v in enumerate(rng.integers(1, 9, N_FACT))
                    ]
                ),
                "f_price": pa.array(np.round(rng.random(N_FACT) * 100, 2)),
            }
        ),
        "cust": pa.table(
            {
                "c_sk": pa.array(range(N_CUST), pa.int64()),
                "c_id": pa.array([f"C{i:08d}" for i in range(N_CUST)]),
                "c_name": pa.array(
                    [None if i % 50 == 0 else f"name{i % 400}" for i in range(N_CUST)]
                ),
            }
        ),
        "days": pa.table(
            {
                "d_sk": pa.array(range(N_DAYS), pa.int64()),
                "d_year": pa.array([2000 + i // 365 for i in range(N_DAYS)], pa.int64()),
                "d_moy": pa.array([1 + (i % 365) // 31 for i in range(N_DAYS)], pa.int64()),
            }
        ),
        "weeks": pa.table({"w_sk": pa.array(range(60), pa.int64())}),
        "item": pa.table(
            {
                "i_sk": pa.array(range(300), pa.int64()),
                "i_brand": pa.array([i % 17 for i in range(300)], pa.int64()),
                "i_class": pa.array([None if i % 41 == 0 else i % 5 for i in range(300)]),
            }
        ),
    }


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tables(
        tmp_path_factory.mktemp("eager"),
        _tables(),
        {"fact": 5000, "cust": 500, "days": 730, "item": 300, "weeks": 60},
    )


YEAR_TOTAL = """
    SELECT c_id, c_name, d_year, sum(f_qty * f_price) AS total, count(*) AS n,
           count(f_qty) AS nq, min(f_price) AS lo, max(f_qty) AS hi
    FROM fact, cust, days
    WHERE f_cust = c_sk AND f_day = d_sk AND d_year IN (2000, 2001)
    GROUP BY c_id, c_name, d_year"""

SELECTIVE = """
    SELECT i_brand, sum(f_price) FROM fact, item, weeks
    WHERE f_item = i_sk AND f_wk = w_sk AND w_sk < 20 GROUP BY i_brand"""


CASES = [
    u("year_total", YEAR_TOTAL),
    u(
        "year_total_union_filtered",
        f"""WITH yt AS (SELECT c_id, d_year, total, 's' AS kind FROM ({YEAR_TOTAL}) a
                        UNION ALL
                        SELECT c_id, d_year, total, 'w' AS kind FROM ({YEAR_TOTAL}) b)
        SELECT x.c_id, x.total, y.total FROM yt x, yt y
        WHERE x.c_id = y.c_id AND x.kind = 's' AND y.kind = 'w'
          AND x.d_year = 2000 AND y.d_year = 2001""",
    ),
    o(
        "global_over_nothing",
        "SELECT count(*), count(f_qty), sum(f_price) FROM fact, cust "
        "WHERE f_cust = c_sk AND f_price < 0",
    ),
    u(
        "distinct_dim_attributes",
        "SELECT DISTINCT i_brand, i_class FROM fact, item, days "
        "WHERE f_item = i_sk AND f_day = d_sk AND d_year = 2001",
    ),
    u(
        "intersect",
        """SELECT i_brand, i_class FROM fact, item WHERE f_item = i_sk AND f_qty > 3
        INTERSECT
        SELECT i_brand, i_class FROM fact, item WHERE f_item = i_sk AND f_price > 10""",
    ),
    u(
        "in_subquery_over_join",
        """SELECT f_item, count(*) FROM fact
        WHERE f_cust IN (SELECT c_sk FROM fact f2, cust WHERE f2.f_cust = c_sk AND c_name < 'name2')
        GROUP BY f_item""",
    ),
    u(
        "having_against_one_row",
        """WITH top AS (SELECT max(f_price) AS m FROM fact WHERE f_qty = 8)
        SELECT c_sk, sum(f_price) AS s, max(m) AS mm FROM fact, cust, top
        WHERE f_cust = c_sk GROUP BY c_sk HAVING sum(f_price) > 0.05 * max(m)""",
    ),
    u(
        "one_row_missing",
        """SELECT c_sk, min(m), count(*) FROM fact, cust,
               (SELECT max(f_price) AS m FROM fact WHERE f_qty > 100) t
        WHERE f_cust = c_sk GROUP BY c_sk""",
    ),
    u("selective_join", SELECTIVE),
    u(
        "one_row_key",
        """SELECT m, c_name, count(*) FROM fact, cust, (SELECT min(f_day) AS m FROM fact) t
        WHERE f_cust = c_sk GROUP BY m, c_name""",
    ),
]


@pytest.mark.parametrize("partitions", [1, 3])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_duckdb(parquet_dir: Path, case: Case, partitions: int) -> None:
    con = connect(parquet_dir, list(_tables()), partitions)
    check_case(con, case, _tables(), partitions)


def _lines(parquet_dir: Path, sql: str) -> list[str]:
    con = connect(parquet_dir, list(_tables()), 3)
    return [line.strip() for line in con.explain(sql).splitlines()]


def test_the_fact_side_is_grouped_on_integers_before_the_string_keys_join(
    parquet_dir: Path,
) -> None:
    lines = _lines(parquet_dir, YEAR_TOTAL)
    pre = [x for x in lines if x.startswith("Aggregate[partial] keys=[f_cust, d_year]")]
    assert len(pre) == 1, "\n".join(lines)
    assert "count(*) AS count_star$pre" in pre[0]
    # Above the join: the merged partial counts, cast back to BIGINT.
    assert any("sum(count_star$pre) AS count_star" in x for x in lines)
    assert any("coalesce(CAST(count_star AS BIGINT), 0)" in x for x in lines)
    # The pre-aggregation has no exchange of its own: it sits in the scan's stage.
    at = lines.index(pre[0])
    assert not any(x.startswith("Stage") for x in lines[at : at + 4]), "\n".join(lines)


def test_no_pre_aggregation_below_a_join_that_drops_most_rows(parquet_dir: Path) -> None:
    """The weeks join keeps a third of the fact rows: they are grouped by item after it,
    not by (item, week) before it, though that would shrink them too."""
    lines = _lines(parquet_dir, SELECTIVE)
    pre = [x for x in lines if "$pre" in x and x.startswith("Aggregate[partial]")]
    assert pre, "\n".join(lines)
    assert not any("f_wk" in x.split(" aggs=")[0] for x in pre), "\n".join(lines)


def test_the_one_row_side_joins_above_the_aggregation(parquet_dir: Path) -> None:
    lines = _lines(parquet_dir, CASES[6].sql)  # having_against_one_row
    nlj = next(i for i, x in enumerate(lines) if x.startswith("NestedLoopJoin"))
    assert lines[nlj + 1].startswith("Aggregate[final] keys=[c_sk"), "\n".join(lines)
    assert not any("max(m)" in x for x in lines), "\n".join(lines)


def test_a_semi_joins_right_side_is_made_distinct_below_its_join(parquet_dir: Path) -> None:
    lines = _lines(parquet_dir, CASES[4].sql)
    # The right side of the INTERSECT: distinct brand/class over distinct items.
    assert any(x.startswith("Aggregate[partial] keys=[f_item_2]") for x in lines), "\n".join(lines)


def test_a_projected_constant_decides_a_conjunct(parquet_dir: Path) -> None:
    lines = _lines(parquet_dir, CASES[1].sql)
    assert not any("'s' = " in x or "'w' = " in x for x in lines), "\n".join(lines)
