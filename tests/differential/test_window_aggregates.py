"""Differential tests: every aggregate as a window (the variance family, corr / covar,
bool_and / bool_or, count_if, FILTER, DISTINCT, median / quantiles, mode, array_agg,
string_agg, arg_min / arg_max, approx_count_distinct) over PARTITION BY, ORDER BY and
ROWS / RANGE frames; ORDER BY inside array_agg / string_agg / first / last; DISTINCT
inside array_agg / string_agg; list functions over the lists
unnest / array_agg make; unnest in FROM — shoal against DuckDB.

Cases are the cross product of functions, frames and PARTITION BY keys (NULL keys, ties,
empty frames included), each at 3 partitions and a rotating third also at 1 and 4.
Functions whose answer depends on the order of rows inside a frame (lists, strings,
mode's and arg_min's ties) run only over frames ordered by a total key (``id``); the
others also over RANGE frames with tied keys. Windows over joins run with the build
side broadcast and repartitioned.
"""

from __future__ import annotations

import pytest
from support.cases import Case, check_case, o, u

PARTITION_KEYS = ["", "PARTITION BY store", "PARTITION BY region, status"]

#: Results that do not depend on the order of rows inside a frame.
ORDER_FREE = [
    ("median_int", "median(qty)"),
    ("median_decimal", "median(price)"),
    ("quantile_cont_float", "quantile_cont(weight, 0.25)"),
    ("quantile_disc_int", "quantile_disc(qty, 0.9)"),
    ("count_distinct", "count(DISTINCT store)"),
    ("sum_distinct", "sum(DISTINCT qty)"),
    ("avg_distinct", "avg(DISTINCT qty)"),
    ("count_distinct_string", "count(DISTINCT product)"),
    ("var_pop_int", "var_pop(qty)"),
    ("stddev_samp_decimal", "stddev_samp(price)"),
    ("variance_int", "variance(qty)"),
    ("stddev_pop_int", "stddev_pop(qty)"),
    ("corr_int_decimal", "corr(qty, price)"),
    ("covar_pop", "covar_pop(qty, discount)"),
    ("covar_samp", "covar_samp(price, qty)"),
    ("bool_and", "bool_and(is_returned)"),
    ("bool_or", "bool_or(qty > 45)"),
    ("count_if", "count_if(is_returned)"),
    ("sum_filter", "sum(qty) FILTER (WHERE is_returned)"),
    ("count_star_filter", "count(*) FILTER (WHERE qty > 25)"),
    ("array_agg_distinct_sorted", "list_sort(array_agg(DISTINCT status) OVER ({over}))"),
    ("approx_count_distinct", "approx_count_distinct(product)"),
    ("arg_min_unique_key", "arg_min(product, id)"),
    ("max_by_unique_key", "max_by(status, id)"),
]

#: Results that read the frame's rows in order (or break ties by it).
ORDERED = [
    ("mode_ties", "mode(least(qty, 4))"),
    ("mode_strings", "mode(status)"),
    ("array_agg", "array_agg(qty)"),
    ("list_alias", "list(region)"),
    ("string_agg_sep", "string_agg(product, '|')"),
    ("string_agg_default_sep", "string_agg(status)"),
    ("arg_min_ties", "arg_min(id, least(qty, 10))"),
    ("arg_max_ties", "arg_max(region, least(qty, 10))"),
    ("min_by_decimal", "min_by(price, discount)"),
    # DuckDB leaves the order of a DISTINCT list open: only its length is compared.
    ("string_agg_distinct_length", "length(string_agg(DISTINCT region, ',') OVER ({over}))"),
]

#: ORDER BY inside the aggregate (in a total order: ``id`` breaks the ties), over every
#: frame, ties in the window's own order included.
WITHIN = [
    ("string_agg_by_qty_desc", "string_agg(product, ',' ORDER BY qty DESC, id)"),
    ("string_agg_by_nulls_first", "string_agg(status, '|' ORDER BY discount NULLS FIRST, id)"),
    ("array_agg_by_price", "array_agg(qty ORDER BY price, id DESC)"),
    ("array_agg_by_nulls_last_desc", "array_agg(region ORDER BY qty DESC NULLS LAST, id)"),
    ("list_by_string", "list(id ORDER BY product, id)"),
    ("first_by_qty", "first(status ORDER BY qty, id)"),
    ("last_by_price_desc", "last(product ORDER BY price DESC NULLS FIRST, id)"),
    ("first_by_nullable", "first(qty ORDER BY discount, id DESC)"),
    (
        "array_agg_distinct_by_itself",
        "array_agg(DISTINCT least(qty, 5) ORDER BY least(qty, 5) DESC)",
    ),
    (
        "string_agg_distinct_by_itself",
        "string_agg(DISTINCT region, '/' ORDER BY region NULLS FIRST)",
    ),
    # mode / arg_min / arg_max: the ORDER BY decides ties (the first in it), as DuckDB.
    ("mode_by_qty_desc", "mode(least(qty, 4) ORDER BY qty DESC, id)"),
    ("mode_strings_by_nullable", "mode(status ORDER BY discount NULLS FIRST, id DESC)"),
    ("arg_min_ties_by_price", "arg_min(id, least(qty, 10) ORDER BY price DESC, id)"),
    ("max_by_ties_nulls_first", "max_by(region, least(qty, 10) ORDER BY discount NULLS FIRST, id)"),
    # The order cannot change a sum: DuckDB ignores it, and so does shoal.
    ("sum_ordered", "sum(qty ORDER BY id)"),
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
    ("rows_whole_ordered", "ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"),
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

#: Frames in a total order (``id``): their rows' order inside a frame is determined.
TOTAL_FRAMES = [f for f in FRAMES if "ORDER BY id" in f[1]] + [
    ("running_desc", "ORDER BY id DESC"),
    ("range_id_offsets", "ORDER BY id RANGE BETWEEN 3 PRECEDING AND 1 FOLLOWING"),
]


def _windowed(call: str, p: str, frame: str) -> str:
    """``call OVER (p frame)``; a call holding ``{over}`` places the OVER itself."""
    over = " ".join(f"{p} {frame}".split())
    return call.format(over=over) if "{over}" in call else f"{call} OVER ({over})"


def _generated() -> list[Case]:
    cases: list[Case] = []
    for k, (fid, call) in enumerate(ORDER_FREE):
        for j, (frame_id, frame) in enumerate(FRAMES):
            if (j + k) % 2:
                continue
            p = PARTITION_KEYS[(j + k) % len(PARTITION_KEYS)]
            sql = f"SELECT id, {_windowed(call, p, frame)} AS w FROM sales"
            cases.append(u(f"{fid}_{frame_id}", sql))
    for k, (fid, call) in enumerate(WITHIN):
        for j, (frame_id, frame) in enumerate(FRAMES):
            if (j + k) % 2:
                continue
            p = PARTITION_KEYS[(j + k) % len(PARTITION_KEYS)]
            sql = f"SELECT id, {_windowed(call, p, frame)} AS w FROM sales WHERE id <= 600"
            cases.append(u(f"within_{fid}_{frame_id}", sql))
    for k, (fid, call) in enumerate(ORDERED):
        for j, (frame_id, frame) in enumerate(TOTAL_FRAMES):
            p = PARTITION_KEYS[(j + k) % len(PARTITION_KEYS)]
            # 600 rows: a running list over n rows holds n²/2 values.
            sql = f"SELECT id, {_windowed(call, p, frame)} AS w FROM sales WHERE id <= 600"
            cases.append(u(f"{fid}_{frame_id}", sql))
    return cases


OTHER: list[Case] = [
    # ------------------------------------------------ small tables: NULLs everywhere
    u(
        "tiny_all_nulls_partition",
        """
        SELECT id, median(i) OVER w, mode(i) OVER w, array_agg(i) OVER w,
               string_agg(s, '-') OVER w, count(DISTINCT i) OVER w, arg_max(s, i) OVER w,
               stddev(x) OVER w, bool_or(flag) OVER w, count_if(flag) OVER w
        FROM tiny WINDOW w AS (PARTITION BY k ORDER BY id)""",
    ),
    u(
        "tiny_sliding_nulls",
        """
        SELECT id, quantile_disc(x, 0.5) OVER w, array_agg(DISTINCT i) OVER w,
               sum(DISTINCT i) OVER w, covar_samp(i, x) OVER w, min_by(id, x) OVER w
        FROM tiny WINDOW w AS (ORDER BY id ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING)""",
    ),
    u(
        "tiny_empty_frames",
        """
        SELECT id, array_agg(i) OVER w, string_agg(s) OVER w, median(i) OVER w,
               count(DISTINCT i) OVER w, mode(i) OVER w, arg_min(i, id) OVER w,
               var_samp(i) OVER w, count_if(flag) OVER w
        FROM tiny WINDOW w AS (ORDER BY id ROWS BETWEEN 4 FOLLOWING AND 6 FOLLOWING)""",
    ),
    u(
        "empty_input",
        """
        SELECT id, median(qty) OVER (PARTITION BY store), mode(qty) OVER (ORDER BY id),
               array_agg(DISTINCT qty) OVER (), stddev(qty) OVER (ORDER BY id)
        FROM sales_empty""",
    ),
    u(
        "one_store_few_rows_empty_tasks",
        """
        SELECT id, mode(least(qty, 3)) OVER (ORDER BY id), median(price) OVER (),
               string_agg(product, ',') OVER (PARTITION BY region ORDER BY id
                   ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
        FROM sales WHERE store = 3 AND id < 400""",
    ),
    u(
        "several_new_aggregates_one_window",
        """
        SELECT id, median(qty) OVER w, stddev_pop(qty) OVER w, corr(qty, weight) OVER w,
               array_agg(status) OVER w, mode(status) OVER w
        FROM sales WINDOW w AS (PARTITION BY store ORDER BY id
                                ROWS BETWEEN 3 PRECEDING AND 3 FOLLOWING)""",
    ),
    u(
        "window_aggregate_over_group_by",
        """
        SELECT store, sum(qty) AS s, median(sum(qty)) OVER () AS m,
               stddev_samp(sum(qty)) OVER (ORDER BY store) AS sd,
               arg_max(store, sum(qty)) OVER () AS top
        FROM sales GROUP BY store""",
    ),
    u(
        "qualify_on_median",
        """
        SELECT id, store, qty FROM sales
        QUALIFY qty > median(qty) OVER (PARTITION BY store) AND store < 4""",
    ),
    u(
        "len_of_running_array_agg",
        """
        SELECT id, len(array_agg(qty) OVER (PARTITION BY store ORDER BY id)) AS n,
               count(*) OVER (PARTITION BY store ORDER BY id) AS c
        FROM sales""",
    ),
    u(
        "distinct_window_beside_plain",
        """
        SELECT id, count(DISTINCT qty) OVER w, count(qty) OVER w, sum(DISTINCT qty) OVER w,
               sum(qty) OVER w, avg(DISTINCT price) OVER w
        FROM sales WINDOW w AS (PARTITION BY region ORDER BY order_date)""",
    ),
    u(
        "count_distinct_to_the_end",
        """
        SELECT id, count(DISTINCT product) OVER (PARTITION BY store ORDER BY id
                   ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS w
        FROM sales""",
    ),
    # ------------------------------------------------ ORDER BY inside the aggregate
    u(
        "tiny_within_nulls_and_empty_frames",
        """
        SELECT id, string_agg(s, ',' ORDER BY i DESC NULLS FIRST, id) OVER w,
               array_agg(i ORDER BY x NULLS FIRST, id) OVER w, first(s ORDER BY x, id) OVER w,
               last(i ORDER BY s, id) OVER w, first(x) OVER w, last(s) OVER w
        FROM tiny WINDOW w AS (ORDER BY id ROWS BETWEEN 2 FOLLOWING AND 3 FOLLOWING)""",
    ),
    u(
        "tiny_within_whole_partitions",
        """
        SELECT id, array_agg(x ORDER BY i, id) OVER (PARTITION BY k),
               string_agg(s, '' ORDER BY id DESC) OVER (PARTITION BY k),
               last(x ORDER BY i NULLS FIRST, id) OVER (PARTITION BY k)
        FROM tiny""",
    ),
    u(
        "within_beside_plain_lists",
        """
        SELECT id, array_agg(qty) OVER w, array_agg(qty ORDER BY qty, id) OVER w,
               string_agg(product ORDER BY id DESC) OVER w
        FROM sales WINDOW w AS (PARTITION BY store ORDER BY id
                                ROWS BETWEEN 3 PRECEDING AND 2 FOLLOWING)""",
    ),
    u(
        "tie_orders_group_by",
        """
        SELECT store, mode(least(qty, 4) ORDER BY qty DESC, id),
               mode(status ORDER BY discount NULLS FIRST, id),
               arg_min(id, least(qty, 10) ORDER BY price DESC, id),
               max_by(region, least(qty, 10) ORDER BY discount, id DESC)
        FROM sales GROUP BY store""",
    ),
    # ------------------------------------------- DISTINCT inside array_agg / string_agg
    u(
        "array_agg_distinct_ordered_group",
        "SELECT store, array_agg(DISTINCT status ORDER BY status) FROM sales GROUP BY store",
    ),
    u(
        "array_agg_distinct_desc_nulls",
        """
        SELECT region, array_agg(DISTINCT least(qty, 6) ORDER BY least(qty, 6) DESC NULLS LAST)
        FROM sales GROUP BY region""",
    ),
    u(
        "array_agg_distinct_with_null_sorted",
        "SELECT store, list_sort(array_agg(DISTINCT region)) FROM sales GROUP BY store",
    ),
    u(
        "string_agg_distinct_ordered",
        """
        SELECT store, string_agg(DISTINCT product, ', ' ORDER BY product) FROM sales
        GROUP BY store""",
    ),
    u(
        "string_agg_distinct_beside_plain",
        """
        SELECT status, string_agg(DISTINCT region, '/' ORDER BY region DESC),
               count(DISTINCT region), count(*) FROM sales GROUP BY status""",
    ),
    u(
        "distinct_lists_tiny_global",
        """
        SELECT array_agg(DISTINCT k ORDER BY k NULLS FIRST), string_agg(DISTINCT k, ':' ORDER BY k),
               list_sort(array_agg(DISTINCT i)) FROM tiny""",
    ),
    u(
        "distinct_lists_empty",
        "SELECT array_agg(DISTINCT qty ORDER BY qty), string_agg(DISTINCT status) FROM sales_empty",
    ),
    # -------------------------------------------------------------- list functions
    u(
        "list_functions_over_array_agg",
        """
        SELECT store, len(l) AS n, array_length(l) AS n2, l[1] AS first, l[-1] AS last,
               l[3] AS third, list_contains(l, 7) AS has7, list_sort(l) AS sorted
        FROM (SELECT store, array_agg(qty ORDER BY id) AS l FROM sales
              WHERE id < 200 GROUP BY store) t""",
    ),
    u(
        "list_index_by_column",
        """
        SELECT store, l[store % 4], list_element(l, -2), l[0], l[100]
        FROM (SELECT store, array_agg(qty ORDER BY id) AS l FROM sales
              WHERE id < 300 GROUP BY store) t""",
    ),
    u(
        "list_contains_nulls",
        """
        SELECT k, list_contains(l, NULL), list_contains(l, 3), list_has(l, i),
               list_sort(l, 'DESC'), list_sort(l, 'ASC', 'NULLS FIRST'), list_reverse_sort(l)
        FROM (SELECT k, array_agg(i ORDER BY id) AS l, max(i) AS i FROM tiny GROUP BY k) t""",
    ),
    u(
        "list_strings",
        """
        SELECT region, len(array_agg(DISTINCT product)),
               list_contains(array_agg(product), 'widget'),
               list_sort(array_agg(DISTINCT status))[1]
        FROM sales GROUP BY region""",
    ),
    u(
        "list_literal_functions",
        """
        SELECT len([1, 2, 3]), [10, 20, 30][2], [10, 20, 30][-1], list_contains([1, 2], 2),
               list_contains([1.5, 2.0], 2), list_sort([3, NULL, 1]), length('abc'),
               array_length([]::INTEGER[])""",
    ),
    u(
        "list_filter_by_contains",
        """
        SELECT store FROM (SELECT store, array_agg(status) AS l FROM sales GROUP BY store) t
        WHERE list_contains(l, 'returned')""",
    ),
    # ------------------------------------------------------------- unnest in FROM
    u("unnest_from_literal", "SELECT * FROM unnest([1, 2, 3])"),
    u("unnest_from_alias", "SELECT x * 2 AS y FROM unnest([4, NULL, 6]) AS u(x)"),
    u(
        "unnest_lateral",
        """
        SELECT t.store, u.x FROM (SELECT store, array_agg(qty) AS l FROM sales
                                  WHERE id < 100 GROUP BY store) t, unnest(t.l) AS u(x)""",
    ),
    u(
        "unnest_lateral_cross_join_aggregated",
        """
        SELECT store, count(*), sum(x), min(x) FROM (SELECT store, array_agg(qty) AS l
                                                     FROM sales GROUP BY store) t
        CROSS JOIN unnest(l) AS u(x) WHERE x > 10 GROUP BY store""",
    ),
    u(
        "unnest_lateral_default_name",
        """
        SELECT k, unnest FROM (SELECT k, array_agg(i) AS l FROM tiny GROUP BY k) t,
        unnest(t.l)""",
    ),
    u(
        "unnest_lateral_empty_and_null_lists",
        """
        SELECT id, e FROM (SELECT id, CASE WHEN id % 3 = 0 THEN []::INTEGER[]
                                           WHEN id % 3 = 1 THEN NULL
                                           ELSE [id, id * 2] END AS l FROM tiny) t,
        unnest(l) AS u(e)""",
    ),
    u(
        "unnest_lateral_then_window",
        """
        SELECT store, x, rank() OVER (PARTITION BY store ORDER BY x) AS r
        FROM (SELECT store, array_agg(DISTINCT least(qty, 8)) AS l FROM sales GROUP BY store) t,
        unnest(l) AS u(x)""",
    ),
    o(
        "unnest_lateral_ordered",
        """
        SELECT k, x FROM (SELECT k, array_agg(i) AS l FROM tiny WHERE k IS NOT NULL GROUP BY k) t,
        unnest(t.l) u(x) WHERE x IS NOT NULL ORDER BY k, x""",
    ),
]

CASES = _generated() + OTHER
_ids = [c.id for c in CASES]
assert len(_ids) == len(set(_ids)), "duplicate case ids"

PARAMS = [pytest.param(c, 3, id=f"{c.id}-p3") for c in CASES] + [
    pytest.param(c, (1, 4)[i % 2], id=f"{c.id}-p{(1, 4)[i % 2]}")
    for i, c in enumerate(CASES)
    if i % 3 == 0
]


@pytest.mark.parametrize(("case", "partitions"), PARAMS)
def test_window_aggregates(case: Case, partitions: int, shoal_connections, diff_data) -> None:
    check_case(shoal_connections(partitions), case, diff_data.tables, partitions)


JOIN_CASES = [
    u(
        "join_median_per_city",
        """
        SELECT s.id, p.city, median(s.qty) OVER (PARTITION BY p.city) AS m,
               mode(least(s.qty, 5)) OVER (PARTITION BY p.city ORDER BY s.id) AS md
        FROM sales s JOIN people p ON s.cust_id = p.person_id""",
    ),
    u(
        "join_sliding_lists",
        """
        SELECT s.id, array_agg(p.age) OVER (PARTITION BY s.store ORDER BY s.id
                   ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS ages,
               count(DISTINCT p.city) OVER (PARTITION BY s.store ORDER BY s.id
                   ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS cities
        FROM sales s JOIN people p ON s.cust_id = p.person_id WHERE p.active""",
    ),
    u(
        "join_variance_running",
        """
        SELECT s.id, stddev_samp(p.age) OVER (ORDER BY s.id) AS sd,
               arg_max(p.name, p.balance) OVER (PARTITION BY s.region ORDER BY s.id) AS rich
        FROM sales s JOIN people p ON s.cust_id = p.person_id""",
    ),
    u(
        "join_unnest_lateral",
        """
        SELECT p.city, x FROM (SELECT cust_id, array_agg(DISTINCT store) AS l FROM sales
                               GROUP BY cust_id) s
        JOIN people p ON s.cust_id = p.person_id, unnest(s.l) AS u(x)""",
    ),
]


@pytest.mark.parametrize("threshold", [1, 64 << 20], ids=["repartitioned", "broadcast"])
@pytest.mark.parametrize("partitions", [1, 3, 4], ids=lambda p: f"p{p}")
@pytest.mark.parametrize("case", JOIN_CASES, ids=[c.id for c in JOIN_CASES])
def test_window_aggregates_over_joins(
    case: Case, partitions: int, threshold: int, shoal_connections, diff_data
) -> None:
    con = shoal_connections(partitions, threshold)
    if partitions > 1:
        text = con.explain(case.sql)
        assert ("strategy=partitioned" in text) == (threshold == 1), text
    check_case(con, case, diff_data.tables, partitions)
