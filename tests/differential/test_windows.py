"""Differential tests: window functions, QUALIFY, named windows, GROUPING SETS / ROLLUP /
CUBE, the variance family, concat and EXISTS / IN as values — shoal against DuckDB.

Window cases are generated from the cross product of functions, frames and
PARTITION BY keys (NULL keys, ties, empty frames and partitions included); every case
runs at 3 partitions and a rotating third of them also at 1 and 4. Windows whose
result depends on the order of tied rows (row_number, lag, ROWS frames, ...) order by
a total key (``id`` last). Joins under windows run with their build side broadcast and
repartitioned (``broadcast_threshold_bytes`` pinned).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.cases import Case, check_case, o, u

PARTITION_KEYS = ["", "PARTITION BY store", "PARTITION BY region, status"]

RANKING = [
    ("row_number", "row_number() OVER ({p} ORDER BY qty, id)"),
    ("rank", "rank() OVER ({p} ORDER BY qty)"),
    ("rank_desc_nulls_first", "rank() OVER ({p} ORDER BY qty DESC NULLS FIRST)"),
    ("dense_rank", "dense_rank() OVER ({p} ORDER BY order_date)"),
    ("percent_rank", "percent_rank() OVER ({p} ORDER BY price DESC)"),
    ("cume_dist", "cume_dist() OVER ({p} ORDER BY qty NULLS FIRST)"),
    ("ntile_4", "ntile(4) OVER ({p} ORDER BY weight, id)"),
    ("ntile_7", "ntile(7) OVER ({p} ORDER BY id DESC)"),
    ("row_number_string_key", "row_number() OVER ({p} ORDER BY product DESC, id)"),
]

VALUES = [
    ("lag", "lag(price) OVER ({p} ORDER BY id)"),
    ("lag_3_default", "lag(qty, 3, 0) OVER ({p} ORDER BY order_date, id)"),
    ("lead_2", "lead(region, 2) OVER ({p} ORDER BY id)"),
    ("lead_default_column", "lead(qty, 1, store) OVER ({p} ORDER BY id)"),
    ("first_value", "first_value(weight) OVER ({p} ORDER BY id)"),
    (
        "last_value_to_end",
        """last_value(weight) OVER ({p} ORDER BY id
        ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)""",
    ),
    ("last_value_default_frame", "last_value(qty) OVER ({p} ORDER BY qty)"),
    ("nth_value_2", "nth_value(product, 2) OVER ({p} ORDER BY id)"),
    (
        "nth_value_whole",
        "nth_value(price, 3) OVER ({p} ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)",
    ),
]

AGGREGATES = [
    ("sum_decimal", "sum(price)"),
    ("sum_int", "sum(qty)"),
    ("sum_float", "sum(weight)"),
    ("avg_int", "avg(qty)"),
    ("avg_decimal", "avg(price)"),
    ("count", "count(weight)"),
    ("count_star", "count(*)"),
    ("min_string", "min(region)"),
    ("max_date", "max(order_date)"),
    ("min_decimal", "min(price)"),
    ("max_float", "max(weight)"),
]

FRAMES = [
    ("whole", ""),
    ("running_ties", "ORDER BY qty"),
    ("rows_2p_cur", "ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW"),
    ("rows_1p_3f", "ORDER BY id ROWS BETWEEN 1 PRECEDING AND 3 FOLLOWING"),
    ("rows_cur_unb", "ORDER BY id ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING"),
    ("rows_unb_short", "ORDER BY id ROWS UNBOUNDED PRECEDING"),
    ("rows_following_only", "ORDER BY id ROWS BETWEEN 3 FOLLOWING AND 5 FOLLOWING"),
    ("rows_preceding_only", "ORDER BY id ROWS BETWEEN 5 PRECEDING AND 2 PRECEDING"),
    ("range_int_offsets", "ORDER BY qty RANGE BETWEEN 5 PRECEDING AND 5 FOLLOWING"),
    ("range_cur_unb", "ORDER BY qty DESC RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING"),
    (
        "range_desc_offsets",
        "ORDER BY qty DESC NULLS FIRST RANGE BETWEEN 2 PRECEDING AND 1 FOLLOWING",
    ),
    (
        "range_date_days",
        "ORDER BY order_date RANGE BETWEEN INTERVAL 30 DAY PRECEDING AND CURRENT ROW",
    ),
    ("range_decimal", "ORDER BY price RANGE BETWEEN 10 PRECEDING AND 2.5 FOLLOWING"),
]


def _window_cases() -> list[Case]:
    cases: list[Case] = []
    for fid, text in RANKING + VALUES:
        for i, p in enumerate(PARTITION_KEYS):
            call = " ".join(text.format(p=p).split())
            cases.append(u(f"{fid}_p{i}", f"SELECT id, store, region, {call} AS w FROM sales"))
    for k, (aid, agg) in enumerate(AGGREGATES):
        for j, (frame_id, frame) in enumerate(FRAMES):
            p = PARTITION_KEYS[(j + k) % len(PARTITION_KEYS)]
            over = " ".join(f"{p} {frame}".split())
            cases.append(u(f"{aid}_{frame_id}", f"SELECT id, {agg} OVER ({over}) AS w FROM sales"))
    return cases


OTHER: list[Case] = [
    # ------------------------------------------------- several windows, sharing sorts
    u(
        "several_windows_one_spec",
        """
        SELECT id, sum(qty) OVER w, avg(price) OVER w, rank() OVER w
        FROM sales WINDOW w AS (PARTITION BY store ORDER BY order_date)""",
    ),
    u(
        "windows_prefix_specs",
        """
        SELECT id, rank() OVER (PARTITION BY store ORDER BY qty, id) AS r,
               sum(qty) OVER (PARTITION BY store ORDER BY qty) AS s,
               count(*) OVER (PARTITION BY store) AS c
        FROM sales""",
    ),
    u(
        "windows_different_specs",
        """
        SELECT id, row_number() OVER (PARTITION BY region ORDER BY id) AS a,
               row_number() OVER (PARTITION BY status ORDER BY id DESC) AS b,
               sum(price) OVER () AS c
        FROM sales""",
    ),
    u(
        "named_window_extended",
        """
        SELECT id, sum(qty) OVER (w ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING),
               first_value(id) OVER (w ORDER BY qty, id)
        FROM sales WINDOW w AS (PARTITION BY store)""",
    ),
    # ------------------------------------------------------- windows and aggregates
    u(
        "window_over_aggregate",
        """
        SELECT store, sum(qty) AS s, rank() OVER (ORDER BY sum(qty) DESC) AS r,
               sum(sum(qty)) OVER () AS total
        FROM sales GROUP BY store""",
    ),
    u(
        "window_share_of_group",
        """
        SELECT region, status, sum(price) * 100 / sum(sum(price)) OVER (PARTITION BY region)
        FROM sales GROUP BY region, status""",
    ),
    u(
        "window_avg_of_sum_tpcds_style",
        """
        SELECT store, status, sum(qty) AS s,
               avg(sum(qty)) OVER (PARTITION BY store) AS a
        FROM sales GROUP BY store, status HAVING sum(qty) > 10""",
    ),
    o(
        "window_in_order_by",
        """
        SELECT id, qty FROM sales WHERE store = 3
        ORDER BY row_number() OVER (ORDER BY qty DESC NULLS LAST, id) LIMIT 20""",
    ),
    u(
        "window_expression_args",
        """
        SELECT id, sum(qty * 2 + 1) OVER (PARTITION BY store % 3 ORDER BY id) AS w FROM sales""",
    ),
    u(
        "window_then_distinct",
        """
        SELECT DISTINCT store, count(*) OVER (PARTITION BY store) FROM sales""",
    ),
    u(
        "window_in_subquery_filtered",
        """
        SELECT * FROM (SELECT id, store, rank() OVER (PARTITION BY store ORDER BY price DESC)
                       AS r FROM sales) t WHERE r <= 3""",
    ),
    u(
        "window_filter_on_partition_key_pushed",
        """
        SELECT * FROM (SELECT id, store, sum(qty) OVER (PARTITION BY store ORDER BY id) AS s
                       FROM sales) t WHERE store = 4""",
    ),
    # ------------------------------------------------------------------- QUALIFY
    u(
        "qualify_row_number",
        """
        SELECT id, store, qty FROM sales
        QUALIFY row_number() OVER (PARTITION BY store ORDER BY qty DESC, id) = 1""",
    ),
    u(
        "qualify_alias",
        """
        SELECT id, rank() OVER (PARTITION BY region ORDER BY price) AS r FROM sales
        QUALIFY r <= 2""",
    ),
    u(
        "qualify_with_group_by",
        """
        SELECT store, sum(qty) AS s FROM sales GROUP BY store
        QUALIFY rank() OVER (ORDER BY sum(qty) DESC) <= 3""",
    ),
    # ---------------------------------------------------------- edge inputs
    u(
        "window_empty_table",
        "SELECT id, rank() OVER (PARTITION BY store ORDER BY qty) FROM sales_empty",
    ),
    u(
        "window_everything_filtered",
        """
        SELECT id, sum(qty) OVER (ORDER BY id) FROM sales WHERE qty > 1000""",
    ),
    u(
        "window_tiny_nulls",
        """
        SELECT id, k, i, rank() OVER (PARTITION BY k ORDER BY i) AS r,
               sum(x) OVER (PARTITION BY k ORDER BY i, id) AS s,
               lag(s, 1, 'none') OVER (PARTITION BY k ORDER BY id) AS l
        FROM tiny""",
    ),
    u(
        "window_tiny_all_null_group",
        """
        SELECT id, k, min(x) OVER (PARTITION BY k), count(i) OVER (PARTITION BY k),
               avg(i) OVER (PARTITION BY k) FROM tiny""",
    ),
    u(
        "window_float_nan_inf_free_sum",
        """
        SELECT id, sum(x) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM tiny""",
    ),
    u(
        "window_people",
        """
        SELECT person_id, city, percent_rank() OVER (PARTITION BY city ORDER BY score),
               cume_dist() OVER (PARTITION BY city ORDER BY balance DESC)
        FROM people""",
    ),
    # ------------------------------------------------------------ grouping sets
    u(
        "rollup_two",
        "SELECT store, status, sum(qty), count(*) FROM sales GROUP BY ROLLUP (store, status)",
    ),
    u(
        "rollup_grouping",
        """
        SELECT region, status, sum(price), grouping(region), grouping(status),
               grouping(region, status)
        FROM sales GROUP BY ROLLUP (region, status)""",
    ),
    u(
        "cube_three",
        "SELECT store % 2, status, is_returned, avg(qty) FROM sales GROUP BY CUBE (store % 2, status, is_returned)",
    ),
    u(
        "grouping_sets_explicit",
        """
        SELECT store, region, min(order_date), max(weight)
        FROM sales GROUP BY GROUPING SETS ((store), (region), (store, region), ())""",
    ),
    u(
        "grouping_sets_duplicate_set",
        """
        SELECT status, count(*) FROM sales GROUP BY GROUPING SETS ((status), (status), ())""",
    ),
    u(
        "plain_key_and_rollup",
        """
        SELECT status, store, region, count(*) FROM sales
        WHERE store < 4 GROUP BY status, ROLLUP (store, region)""",
    ),
    u(
        "rollup_having",
        """
        SELECT store, status, sum(qty) AS s FROM sales GROUP BY ROLLUP (store, status)
        HAVING sum(qty) > 1000""",
    ),
    o(
        "rollup_order_nulls_first",
        """
        SELECT store, status, count(*) AS c FROM sales GROUP BY ROLLUP (store, status)
        ORDER BY store NULLS FIRST, status NULLS FIRST, c""",
    ),
    u(
        "rollup_with_window_tpcds_style",
        """
        SELECT region, status, sum(qty) AS s,
               rank() OVER (PARTITION BY grouping(region) + grouping(status)
                            ORDER BY sum(qty) DESC) AS r
        FROM sales GROUP BY ROLLUP (region, status)""",
    ),
    u(
        "rollup_count_distinct",
        """
        SELECT store, count(DISTINCT status), count(*) FROM sales GROUP BY ROLLUP (store)""",
    ),
    u(
        "grouping_plain_group_by",
        "SELECT status, grouping(status), count(*) FROM sales GROUP BY status",
    ),
    u("rollup_empty_input", "SELECT store, sum(qty) FROM sales_empty GROUP BY ROLLUP (store)"),
    # Aggregated below the Expand (states expanded, merged by the final aggregate).
    u(
        "rollup_counts_nullable_and_decimal_sums",
        """
        SELECT region, status, count(price), count(*), sum(price), avg(price), min(price),
               max(status)
        FROM sales GROUP BY ROLLUP (region, status)""",
    ),
    u(
        "cube_argument_expression_and_key_expression",
        """
        SELECT qty % 3 AS m, status, sum(qty * 2), count(cust_id), grouping(status)
        FROM sales GROUP BY CUBE (qty % 3, status)""",
    ),
    u(
        "grouping_sets_key_in_no_set_and_approx_distinct",
        """
        SELECT region, approx_count_distinct(product) AS d, count(*) FROM sales
        GROUP BY GROUPING SETS ((region), ())""",
    ),
    u(
        "rollup_empty_input_counts",
        "SELECT store, count(*), count(qty), avg(qty) FROM sales_empty GROUP BY ROLLUP (store)",
    ),
    u(
        "rollup_expression_key",
        """
        SELECT extract(year FROM order_date) AS y, status, count(*)
        FROM sales GROUP BY ROLLUP (extract(year FROM order_date), status)""",
    ),
    # ------------------------------------------------------------ variance family
    u(
        "stddev_family_int",
        """
        SELECT store, stddev_samp(qty), stddev_pop(qty), var_samp(qty), var_pop(qty),
               stddev(qty), variance(qty)
        FROM sales GROUP BY store""",
    ),
    u(
        "stddev_family_decimal",
        "SELECT status, stddev_samp(price), var_pop(discount) FROM sales GROUP BY status",
    ),
    u(
        "stddev_family_float",
        "SELECT region, stddev_samp(weight), var_samp(weight) FROM sales GROUP BY region",
    ),
    u("stddev_global_and_empty", "SELECT stddev_samp(qty), var_pop(price) FROM sales_empty"),
    u(
        "stddev_single_row_groups",
        "SELECT id, stddev_samp(qty), stddev_pop(qty) FROM sales WHERE id < 20 GROUP BY id",
    ),
    u(
        "stddev_tpcds_cov",
        """
        SELECT store, stddev_samp(qty) / avg(qty) AS cov FROM sales GROUP BY store
        HAVING stddev_samp(qty) / avg(qty) > 0.1""",
    ),
    # --------------------------------------------------------------- concat
    u("concat_nulls_are_empty", "SELECT id, concat(region, '-', store, '/', status) FROM sales"),
    u("concat_ws_skips_nulls", "SELECT id, concat_ws(', ', region, status, product) FROM sales"),
    u(
        "concat_types",
        "SELECT id, concat('x', qty, order_date, is_returned) FROM sales WHERE id < 50",
    ),
    # ------------------------------------------------------- EXISTS / IN as values
    u(
        "exists_under_or",
        """
        SELECT id FROM sales s
        WHERE s.qty > 45 OR EXISTS (SELECT 1 FROM people p WHERE p.person_id = s.cust_id
                                     AND p.age > 80)""",
    ),
    u(
        "not_exists_under_or",
        """
        SELECT id FROM sales s
        WHERE s.store = 1 OR NOT EXISTS (SELECT 1 FROM people p WHERE p.person_id = s.cust_id)""",
    ),
    u(
        "exists_two_under_or",
        """
        SELECT person_id FROM people p
        WHERE EXISTS (SELECT 1 FROM sales s WHERE s.cust_id = p.person_id AND s.store = 2)
           OR EXISTS (SELECT 1 FROM sales s WHERE s.cust_id = p.person_id AND s.qty = 50)""",
    ),
    u(
        "exists_in_select",
        """
        SELECT person_id, EXISTS (SELECT 1 FROM sales s WHERE s.cust_id = p.person_id)
        FROM people p""",
    ),
    u(
        "uncorrelated_exists_value",
        """
        SELECT id, EXISTS (SELECT 1 FROM people WHERE age > 200) FROM tiny""",
    ),
    u(
        "in_subquery_under_or",
        """
        SELECT id FROM sales WHERE qty = 1 OR cust_id IN (SELECT person_id FROM people WHERE age < 20)""",
    ),
    u(
        "in_subquery_value_with_nulls",
        """
        SELECT id, i IN (SELECT i FROM tiny WHERE id > 5), i NOT IN (SELECT i FROM tiny WHERE id > 5)
        FROM tiny""",
    ),
    u(
        "in_subquery_value_no_nulls",
        """
        SELECT id, i IN (SELECT qty FROM sales WHERE qty IS NOT NULL AND qty < 3) FROM tiny""",
    ),
    u("in_subquery_value_empty", "SELECT id, i IN (SELECT qty FROM sales_empty) FROM tiny"),
    # ------------------------------------------------- boolean and counting aggregates
    u(
        "bool_and_or_count_if",
        """
        SELECT store, bool_and(is_returned), bool_or(is_returned), count_if(is_returned),
               count_if(qty > 40)
        FROM sales GROUP BY store""",
    ),
    u("count_if_all_null_group", "SELECT k, count_if(flag), bool_or(flag) FROM tiny GROUP BY k"),
    # ------------------------------------------------------------------ quantiles
    u(
        "median_types",
        "SELECT store, median(qty), median(price), median(weight) FROM sales GROUP BY store",
    ),
    u(
        "quantiles_cont_disc",
        """
        SELECT status, quantile_cont(qty, 0.25), quantile_disc(qty, 0.9), quantile(price, 0.1),
               quantile_cont(price, 0.37), quantile_disc(order_date, 0.5), count(*), sum(qty)
        FROM sales GROUP BY status""",
    ),
    u("median_global_and_empty", "SELECT median(qty), quantile_cont(weight, 0.75) FROM sales"),
    u("median_empty_input", "SELECT median(qty) FROM sales_empty"),
    u(
        "median_expression_keys",
        """
        SELECT store % 3, median(qty * 2), avg(qty) FROM sales GROUP BY store % 3""",
    ),
    u("median_tiny_nulls", "SELECT k, median(i), quantile_disc(x, 0.5) FROM tiny GROUP BY k"),
    u(
        "string_agg_ordered",
        """
        SELECT store, string_agg(status, ',' ORDER BY id), listagg(region, '|' ORDER BY id DESC),
               median(qty)
        FROM sales WHERE id < 400 GROUP BY store""",
    ),
    u(
        "string_agg_global_nulls",
        "SELECT string_agg(s, '-' ORDER BY id), string_agg(k ORDER BY id) FROM tiny",
    ),
    u("string_agg_numbers", "SELECT k, group_concat(i, ';' ORDER BY id) FROM tiny GROUP BY k"),
    # ------------------------------------------------------ INTERSECT / EXCEPT ALL
    u(
        "intersect_all",
        """
        SELECT store, status FROM sales WHERE qty < 30
        INTERSECT ALL SELECT store, status FROM sales WHERE qty > 20""",
    ),
    u(
        "except_all",
        """
        SELECT store, status FROM sales WHERE qty < 30
        EXCEPT ALL SELECT store, status FROM sales WHERE qty > 20""",
    ),
    u("except_all_nulls", "SELECT k, i FROM tiny EXCEPT ALL SELECT k, i FROM tiny WHERE id > 6"),
    # --------------------------------------------------------------- DISTINCT ON
    o(
        "distinct_on_first_by_order",
        """
        SELECT DISTINCT ON (store) store, id, qty FROM sales
        ORDER BY store NULLS FIRST, qty DESC NULLS LAST, id""",
    ),
    o(
        "distinct_on_expression_hidden_order",
        """
        SELECT DISTINCT ON (region) region, id FROM sales ORDER BY region, price DESC, id""",
    ),
    # ------------------------------------------ correlation repeated in OR branches
    u(
        "correlated_scalar_or_factored",
        """
        SELECT id FROM sales s
        WHERE (SELECT count(*) FROM people p
               WHERE (p.person_id = s.cust_id AND p.age > 50)
                  OR (p.person_id = s.cust_id AND p.city = 'Oslo')) > 0""",
    ),
]

CASES = _window_cases() + OTHER
_ids = [c.id for c in CASES]
assert len(_ids) == len(set(_ids)), "duplicate case ids"

PARAMS = [pytest.param(c, 3, id=f"{c.id}-p3") for c in CASES] + [
    pytest.param(c, (1, 4)[i % 2], id=f"{c.id}-p{(1, 4)[i % 2]}")
    for i, c in enumerate(CASES)
    if i % 3 == 0
]


@pytest.mark.parametrize(("case", "partitions"), PARAMS)
def test_windows_and_grouping(case: Case, partitions: int, shoal_connections, diff_data) -> None:
    check_case(shoal_connections(partitions), case, diff_data.tables, partitions)


# ------------------------------------------------ windows over joins: broadcast / shuffle

JOIN_CASES = [
    u(
        "join_rank_per_city",
        """
        SELECT s.id, p.city, rank() OVER (PARTITION BY p.city ORDER BY s.price DESC) AS r
        FROM sales s JOIN people p ON s.cust_id = p.person_id""",
    ),
    u(
        "join_running_sum_per_customer",
        """
        SELECT s.id, sum(s.qty) OVER (PARTITION BY s.cust_id ORDER BY s.id) AS running
        FROM sales s JOIN people p ON s.cust_id = p.person_id WHERE p.active""",
    ),
    u(
        "join_global_window",
        """
        SELECT s.id, ntile(10) OVER (ORDER BY p.score, s.id) AS decile
        FROM sales s JOIN people p ON s.cust_id = p.person_id""",
    ),
    u(
        "join_window_on_join_key",
        """
        SELECT s.id, count(*) OVER (PARTITION BY s.cust_id) AS n,
               lead(s.id) OVER (PARTITION BY s.cust_id ORDER BY s.id) AS nxt
        FROM sales s JOIN people p ON s.cust_id = p.person_id""",
    ),
]


@pytest.fixture(scope="module")
def join_settings_connections(diff_data) -> Iterator[Callable[[int, int], Any]]:
    import shoal

    from .conftest import register_all

    made: dict[tuple[int, int], Any] = {}

    def get(partitions: int, threshold: int) -> Any:
        key = (partitions, threshold)
        if key not in made:
            con = shoal.connect(partitions=partitions, broadcast_threshold_bytes=threshold)
            register_all(con, diff_data)
            made[key] = con
        return made[key]

    yield get
    for con in made.values():
        con.close()


@pytest.mark.parametrize("threshold", [1, 64 << 20], ids=["repartitioned", "broadcast"])
@pytest.mark.parametrize("partitions", [1, 3, 4], ids=lambda p: f"p{p}")
@pytest.mark.parametrize("case", JOIN_CASES, ids=[c.id for c in JOIN_CASES])
def test_windows_over_joins(
    case: Case, partitions: int, threshold: int, join_settings_connections, diff_data
) -> None:
    con = join_settings_connections(partitions, threshold)
    if partitions > 1:
        text = con.explain(case.sql)
        assert ("strategy=partitioned" in text) == (threshold == 1), text
    check_case(con, case, diff_data.tables, partitions)
