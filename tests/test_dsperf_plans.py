"""Plan changes TPC-DS q72 and q95 exposed, each against DuckDB and by its plan.

- A DISTINCT aggregate beside plain aggregates that merge (SUM, COUNT, MIN, MAX) is one
  pass over its input: group by (keys, x) with partial aggregates, then merge.
- A runtime filter goes as deep as its key columns lead: through projections and
  exchanges, into the probe side of a join that passes the keys on, and into the build
  side of an inner join on those keys.
- An equi-join with a key unique in its table (an integer key spanning at least the
  table's rows) divides by that table's distinct count, not by the other side's — or,
  that side filtered, by the other side's distinct count (containment); a key a join
  repeats is no longer unique.
- A constant comparison of an integer/date column keeps its share of the column's range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from support.cases import Case, check_case, o, u
from support.parquet_tables import connect, write_tables

import shoal
from shoal.logical.plan import Join, Scan
from shoal.optimizer.statistics import estimate_rows


def _tables() -> dict[str, pa.Table]:
    rng = np.random.default_rng(95)
    n = 4000
    return {
        "sales": pa.table(
            {
                "order_no": pa.array(rng.integers(0, 600, n), pa.int64()),
                "wh": pa.array(rng.integers(0, 4, n), pa.int64()),
                "day": pa.array(rng.integers(100, 130, n), pa.int64()),
                "cost": pa.array(
                    [
                        None if i % 9 == 0 else round(float(v), 2)
                        for i, v in enumerate(rng.random(n))
                    ]
                ),
                "tag": pa.array([None if i % 7 == 0 else "abc"[i % 3] for i in range(n)]),
            }
        ),
        "returns": pa.table({"r_order": pa.array(rng.integers(0, 600, 300), pa.int64())}),
        "days": pa.table(
            {
                "day_sk": pa.array(range(2000), pa.int64()),
                "yr": pa.array([1990 + i // 100 for i in range(2000)], pa.int64()),
            }
        ),
    }


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tables(
        tmp_path_factory.mktemp("dsperf"), _tables(), {"sales": 500, "returns": 100, "days": 500}
    )


DISTINCT_CASES = [
    u(
        "global",
        "SELECT count(DISTINCT order_no), sum(cost), count(*), count(cost), min(tag), max(day) "
        "FROM sales",
    ),
    u(
        "global_empty",
        "SELECT count(DISTINCT order_no), count(*), sum(cost) FROM sales WHERE day < 0",
    ),
    o(
        "grouped",
        "SELECT wh, count(DISTINCT order_no), sum(cost), count(tag), max(cost) FROM sales "
        "GROUP BY wh ORDER BY wh",
    ),
    o(
        "distinct_sum_beside_count",
        "SELECT tag, sum(DISTINCT day), count(*) FROM sales GROUP BY tag ORDER BY tag NULLS FIRST",
    ),
    # AVG does not merge from partial results: still the join of two aggregations.
    o("with_avg", "SELECT wh, count(DISTINCT day), avg(cost) FROM sales GROUP BY wh ORDER BY wh"),
]

Q95_LIKE = u(
    "self_join_under_in",
    """WITH pairs AS (SELECT s1.order_no, s1.wh AS wh1, s2.wh AS wh2 FROM sales s1, sales s2
                      WHERE s1.order_no = s2.order_no AND s1.wh <> s2.wh)
    SELECT count(DISTINCT order_no), sum(cost) FROM sales s
    WHERE s.day = 105 AND s.tag = 'a'
      AND s.order_no IN (SELECT order_no FROM pairs)
      AND s.order_no IN (SELECT r_order FROM returns, pairs WHERE r_order = pairs.order_no)""",
)


@pytest.mark.parametrize("partitions", [1, 3])
@pytest.mark.parametrize("case", [*DISTINCT_CASES, Q95_LIKE], ids=lambda c: c.id)
def test_matches_duckdb(parquet_dir: Path, case: Case, partitions: int) -> None:
    con = connect(parquet_dir, list(_tables()), partitions)
    check_case(con, case, _tables(), partitions)


def test_distinct_beside_mergeable_aggregates_is_one_pass(parquet_dir: Path) -> None:
    con = connect(parquet_dir, list(_tables()), 1)
    text = con.explain("SELECT count(DISTINCT order_no), sum(cost), count(*) FROM sales")
    assert [line.strip() for line in text.splitlines()] == [
        "Stage 0 (partitions=1) -> result",
        "Project count_distinct_order_no AS count_distinct_order_no_2, sum_cost AS sum_cost_2, "
        "coalesce(CAST(count_star AS BIGINT), 0) AS count_star_2",
        "Aggregate[single] keys=[] aggs=[count(count_distinct_order_no$value) AS "
        "count_distinct_order_no, sum(sum_cost$part) AS sum_cost, "
        "sum(count_star$part) AS count_star]",
        "Aggregate[single] keys=[order_no AS count_distinct_order_no$value] "
        "aggs=[sum(cost) AS sum_cost$part, count(*) AS count_star$part]",
        "Scan sales columns=[order_no, cost] splits=8 source=parquet",
    ]
    assert "Join" not in text


def test_runtime_filter_reaches_both_sides_of_the_self_join(parquet_dir: Path) -> None:
    """The self-join broadcast (a 64 KiB threshold: its 4,000-row build fits, the 8,000
    estimated pairs the semi joins build do not), so its output is not hash
    partitioned and each IN subquery's semi join (a small left side) shuffles it behind
    a runtime filter: both readers of the CTE are filtered, and each reads a copy of
    its own (physical/shared.py). Join filters are off: they would drop the same rows
    in the scans first, leaving the runtime filters nothing to drop."""
    con = shoal.connect(partitions=3, broadcast_threshold_bytes=1 << 16, join_filters=False)
    for name in _tables():
        con.register_parquet(name, str(parquet_dir / f"{name}.parquet"))
    lines = con.explain(Q95_LIKE.sql).splitlines()
    below = [lines[i + 1].strip() for i, x in enumerate(lines) if "RuntimeFilter" in x]
    # Both IN subqueries' self-joins have the filter on both scans (probe and build),
    # the second also on the returns scan; none is left above a join.
    assert len(below) == 5 and all(b.startswith("Scan ") for b in below), below
    analyzed = con.sql(Q95_LIKE.sql).explain_analyze().splitlines()
    for line in analyzed:
        if "RuntimeFilter" in line:
            rows = int(line.split("(rows=")[1].split()[0])
            rows_in = int(line.split("rows_in=")[1].split()[0].rstrip(")"))
            assert rows < rows_in, line


def test_a_unique_key_divides_the_join_estimate(parquet_dir: Path) -> None:
    """sales.day spans 30 values, days.day_sk 2,000 (one per row): every sale finds at
    most one day, so the join is estimated at the sales rows, not 2,000 / 30 times them."""
    con = connect(parquet_dir, list(_tables()), 1)
    logical = con.prepare("SELECT * FROM sales JOIN days ON day = day_sk").logical.plan
    join = next(n for n in _walk(logical) if isinstance(n, Join))
    assert all(isinstance(n, Scan) for n in join.children())
    assert estimate_rows(join) == pytest.approx(4000)


def _walk(plan):  # type: ignore[no-untyped-def]
    yield plan
    for c in plan.children():
        yield from _walk(c)


@pytest.mark.parametrize(
    ("where", "kinds"),
    [
        # store_returns LEFT JOIN … , reason WHERE sr_reason_sk = r_reason_sk (TPC-DS q93):
        # the equality drops the NULL-extended rows, so the left join is inner.
        ("r.r_order = d.day_sk", ["inner", "inner"]),
        ("r.r_order IS NOT NULL AND d.yr = 1990", ["cross", "inner"]),
        ("r.r_order > 5 OR r.r_order < 2", ["cross", "inner"]),
        # NULL-tolerant conjuncts leave it a left join.
        ("r.r_order IS NULL", ["cross", "left"]),
        ("coalesce(r.r_order, 0) = 0", ["cross", "left"]),
        ("r.r_order > 5 OR s.wh = 1", ["cross", "left"]),
    ],
)
def test_a_filter_rejecting_nulls_makes_the_outer_join_inner(
    parquet_dir: Path, where: str, kinds: list[str]
) -> None:
    con = connect(parquet_dir, list(_tables()), 1)
    sql = (
        "SELECT s.order_no, d.yr FROM sales s LEFT JOIN returns r ON s.order_no = r.r_order, "
        f"days d WHERE {where}"
    )
    logical = con.prepare(sql).logical.plan
    found = sorted(n.kind for n in _walk(logical) if isinstance(n, Join))
    assert found == sorted(kinds)


def test_an_uncorrelated_scalar_subquery_moves_onto_the_input_it_filters(
    parquet_dir: Path,
) -> None:
    """TPC-DS q6's ``d_month_seq = (SELECT …)``: the one-row join sits on ``days``, so the
    comparison filters ``days`` before it joins ``sales``."""
    con = connect(parquet_dir, list(_tables()), 1)
    sql = (
        "SELECT count(*) FROM sales s, days d "
        "WHERE s.day = d.day_sk AND d.yr = (SELECT max(yr) - 9 FROM days)"
    )
    logical = con.prepare(sql).logical.plan
    scalar = next(n for n in _walk(logical) if isinstance(n, Join) and n.single_row)
    inner = next(n for n in _walk(logical) if isinstance(n, Join) and n.kind == "inner")
    assert {s.table for s in _walk(scalar.left) if isinstance(s, Scan)} == {"days"}
    assert any(n is scalar for n in _walk(inner))


def test_a_moved_scalar_subquery_still_rejects_two_rows(parquet_dir: Path) -> None:
    con = connect(parquet_dir, list(_tables()), 1)
    sql = (
        "SELECT count(*) FROM sales s, days d "
        "WHERE s.day = d.day_sk AND d.yr = (SELECT yr FROM days WHERE day_sk < 2)"
    )
    with pytest.raises(shoal.ExecutionError):
        con.sql(sql).to_arrow()


def _scan(con: shoal.Connection, sql: str) -> Scan:
    logical = con.prepare(sql).logical.plan
    return next(n for n in _walk(logical) if isinstance(n, Scan))


@pytest.mark.parametrize(
    ("where", "rows"),
    [
        # days.yr spans 1990..2009: one year is 1/20 of the 2,000 rows.
        ("yr = 1995", 100),
        ("yr IN (1995, 1996, 1995)", 200),
        ("yr = 1995 OR yr = 1996 OR yr = 1995", 200),
        # A repeated conjunct filters once.
        ("(yr = 1995 OR yr = 1996) AND (yr = 1995 OR yr = 1996)", 200),
        # An OR of two half-years: 2,000 × (0.025 + 0.025 - 0.025²). The ORs pushdown
        # derives from it (yr = 1995 OR yr = 1996, ...) are implied and do not count again.
        ("(yr = 1995 AND day_sk < 1000) OR (yr = 1996 AND day_sk >= 1000)", 98.75),
        # One interval of day_sk (0..1999), from two comparisons or one BETWEEN.
        ("day_sk >= 100 AND day_sk < 200", 100),
        ("day_sk BETWEEN 100 AND 199", 100),
        ("200 > day_sk AND day_sk > 99", 100),
        # Outside the column's range: no rows, estimated at one value's share.
        ("day_sk > 5000", 1),
        # Two columns: the shares multiply.
        ("yr = 1995 AND day_sk <= 999", 50),
    ],
)
def test_a_constant_comparison_keeps_its_share_of_the_columns_range(
    parquet_dir: Path, where: str, rows: int
) -> None:
    con = connect(parquet_dir, list(_tables()), 1)
    scan = _scan(con, f"SELECT day_sk FROM days WHERE {where}")
    assert scan.filters
    assert estimate_rows(scan) == pytest.approx(rows)


def test_a_filtered_unique_side_keeps_its_share_of_the_other_keys(parquet_dir: Path) -> None:
    """sales.day spans 100..129; days.day_sk 0..1999 (unique). Fifteen days inside that
    span keep half the sales (containment), not 15 / 2,000 of them."""
    con = connect(parquet_dir, list(_tables()), 1)
    sql = "SELECT * FROM sales JOIN days ON day = day_sk WHERE day_sk BETWEEN 100 AND 114"
    logical = con.prepare(sql).logical.plan
    join = next(n for n in _walk(logical) if isinstance(n, Join))
    assert estimate_rows(join) == pytest.approx(2000)
    expected = con.sql(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
    assert 1000 < expected < 3000


def test_a_key_repeated_by_a_join_is_no_longer_unique(parquet_dir: Path) -> None:
    """``d1 ⋈ d2`` on ``yr`` repeats each d1.day_sk 100 times: joining sales to it on that
    key multiplies the sales rows (as TPC-DS q72's ``d1 ⋈ d2`` on ``d_week_seq``)."""
    con = connect(parquet_dir, list(_tables()), 1)
    sql = (
        "SELECT * FROM sales s, days d1, days d2 "
        "WHERE s.day = d1.day_sk AND d1.yr = d2.yr AND d1.yr = 1991"
    )
    logical = con.prepare(sql).logical.plan
    top = next(n for n in _walk(logical) if isinstance(n, Join))
    actual = con.sql(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
    assert actual == 400_000
    assert actual / 4 < estimate_rows(top) < actual * 4


def test_a_join_on_two_keys_divides_by_both(parquet_dir: Path) -> None:
    """order_no (600 values) and wh (4) together take 2,400 combinations: the self-join
    is estimated by both keys (as TPC-DS q72's ``inventory`` on date and item), within
    2× of its true size, where the better key alone overestimates it 2.5 times."""
    con = connect(parquet_dir, list(_tables()), 1)
    sql = "SELECT * FROM sales s1 JOIN sales s2 ON s1.order_no = s2.order_no AND s1.wh = s2.wh"
    logical = con.prepare(sql).logical.plan
    join = next(n for n in _walk(logical) if isinstance(n, Join))
    actual = con.sql(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
    assert estimate_rows(join) == pytest.approx(4000 * 4000 / 2400)
    assert actual / 2 < estimate_rows(join) < actual * 2


def test_a_joins_other_conjuncts_filter_its_matches(parquet_dir: Path) -> None:
    con = connect(parquet_dir, list(_tables()), 1)
    sql = "SELECT * FROM sales s JOIN days d ON s.day = d.day_sk AND s.wh < d.yr - 1990"
    logical = con.prepare(sql).logical.plan
    join = next(n for n in _walk(logical) if isinstance(n, Join))
    assert estimate_rows(join) == pytest.approx(4000 * 0.3)


def test_a_column_comparison_across_a_join_bounds_each_side(parquet_dir: Path) -> None:
    """``d.day_sk < s.day`` with sales.day in 100..129: only days before 129 can match, so
    the days scan keeps ``day_sk < 129`` (TPC-DS q72's ``inv_quantity_on_hand <
    cs_quantity``); ``s.day > 0`` would drop no sale (its days start at 100) and is not
    added."""
    con = connect(parquet_dir, list(_tables()), 1)
    sql = "SELECT count(*) FROM sales s JOIN days d ON d.day_sk < s.day"
    logical = con.prepare(sql).logical.plan
    scans = {n.table: n for n in _walk(logical) if isinstance(n, Scan)}
    assert [str(f) for f in scans["days"].filters] == ["(day_sk < 129)"]
    assert scans["sales"].filters == ()
    expected = sum(_tables()["sales"].column("day").to_pylist())  # day_sk 0..day-1
    assert con.sql(sql).fetchall()[0][0] == expected


def test_a_column_comparison_bound_is_exact_past_float_precision(tmp_path: Path) -> None:
    """The bound taken from the other column's max is an exact integer: 2^60 + 1 as a
    float is 2^60, and ``a < 2^60`` would drop the row ``a = 2^60`` that ``a < b`` keeps."""
    big = 2**60
    tables = {
        "ta": pa.table({"a": pa.array([big - 1, big, big + 1], pa.int64())}),
        "tb": pa.table({"b": pa.array([5, big + 1], pa.int64())}),
    }
    con = connect(write_tables(tmp_path, tables, {"ta": 10, "tb": 10}), list(tables), 1)
    sql = "SELECT a FROM ta JOIN tb ON ta.a < tb.b ORDER BY a"
    scans = {n.table: n for n in _walk(con.prepare(sql).logical.plan) if isinstance(n, Scan)}
    assert [str(f) for f in scans["ta"].filters] == [f"(a < {big + 1})"]
    assert con.sql(sql).fetchall() == [(big - 1,), (big,)]


# TPC-DS q78's shape: an aggregation (``a``, itself a join) keys another aggregation
# (``b``) that a left join looks up. The magic-set rule reduces ``b`` to ``a``'s keys;
# ``a`` joins and aggregates, so it is a shared CTE computed once for both its readers.
Q78_LIKE = u(
    "aggregate_keying_aggregates",
    """WITH a AS (SELECT wh, day, sum(cost) AS c FROM sales LEFT JOIN returns
                  ON r_order = order_no WHERE r_order IS NULL GROUP BY wh, day),
         b AS (SELECT wh AS bwh, day AS bday, count(*) AS n FROM sales GROUP BY wh, day),
         c AS (SELECT wh AS cwh, day AS cday, max(cost) AS m FROM sales WHERE tag = 'a'
               GROUP BY wh, day)
    SELECT wh, day, c, n, m FROM a LEFT JOIN b ON bwh = wh AND bday = day
      LEFT JOIN c ON cwh = wh AND cday = day
    WHERE coalesce(n, 0) + coalesce(m, 0) > 0""",
)


@pytest.mark.parametrize("partitions", [1, 3])
def test_a_costly_key_source_is_computed_once(parquet_dir: Path, partitions: int) -> None:
    con = connect(parquet_dir, list(_tables()), partitions)
    text = con.explain(Q78_LIKE.sql)
    assert "(shared CTE join_keys: 2 readers)" in text
    assert text.count("keys=[order_no = r_order]") == 1, text
    check_case(con, Q78_LIKE, _tables(), partitions)


def test_a_scan_key_source_is_read_twice_not_shared(parquet_dir: Path) -> None:
    """A key source that only scans and filters costs less to read again than to share."""
    con = connect(parquet_dir, list(_tables()), 1)
    sql = (
        "SELECT s.wh, s.day, t.n FROM sales s LEFT JOIN "
        "(SELECT day, count(*) AS n FROM sales GROUP BY day) t ON t.day = s.day "
        "WHERE s.order_no = 7"
    )
    text = con.explain(sql)
    assert "join_keys" not in text and "$magic" in text, text
    check_case(con, u("scan_source", sql), _tables(), 1)
