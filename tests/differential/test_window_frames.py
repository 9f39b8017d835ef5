"""Differential tests: GROUPS frames, frame EXCLUDE clauses, IGNORE NULLS (first_value /
last_value / nth_value / lag / lead / first / last), any_value, arg_min / arg_max /
min / max with a count (as windows and under GROUP BY), FILTER on array_agg, FILTER
beside DISTINCT, named windows built on named windows — shoal against DuckDB.

The data has NULLs in the PARTITION BY and ORDER BY keys (``store``, ``region``,
``status``, ``qty``, ``order_date``), peer groups of tied keys, and filters that leave
tasks (and whole tables) empty. Cases are the cross product of functions, frames and
PARTITION BY keys; each runs at 3 partitions, every other one also at 1 and at 4.
Only results the order of tied rows cannot change are compared: functions that read
the rows of a frame in order (first_value, lists, lag, ...) run over a total order
(``id``) or read the ORDER BY key itself (``first_value(qty) OVER (ORDER BY qty …)``:
every row of a peer group holds the same ``qty``); ROWS frames over tied keys select
the key, not ``id`` (the multiset of (key, result) pairs does not depend on the ties).
"""

from __future__ import annotations

import pytest
from support.cases import Case, check_case, o, u

PARTITION_KEYS = ["", "PARTITION BY store", "PARTITION BY region, status"]

#: Aggregates whose result the order of a frame's rows cannot change.
ORDER_FREE = [
    ("sum_int", "sum(qty)"),
    ("count_star", "count(*)"),
    ("count_float", "count(weight)"),
    ("avg_decimal", "avg(price)"),
    ("min_string", "min(region)"),
    ("max_date", "max(order_date)"),
    ("stddev", "stddev_samp(qty)"),
    ("bool_or", "bool_or(is_returned)"),
    ("count_if", "count_if(qty > 25)"),
    ("sum_filter", "sum(qty) FILTER (WHERE is_returned)"),
    ("median", "median(qty)"),
    ("count_distinct", "count(DISTINCT status)"),
    ("min_n", "min(qty, 3)"),
    ("max_n_decimal", "max(price, 2)"),
    ("quantile_disc", "quantile_disc(weight, 0.3)"),
    ("min_by_n_unique_key", "min_by(status, id, 3)"),
]

GROUPS_FRAMES = [
    ("g_1p_1f", "ORDER BY qty GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING"),
    (
        "g_desc_nulls_first",
        "ORDER BY qty DESC NULLS FIRST GROUPS BETWEEN 2 PRECEDING AND CURRENT ROW",
    ),
    ("g_date_cur_3f", "ORDER BY order_date GROUPS BETWEEN CURRENT ROW AND 3 FOLLOWING"),
    ("g_preceding_only", "ORDER BY qty GROUPS BETWEEN 3 PRECEDING AND 1 PRECEDING"),
    ("g_following_to_end", "ORDER BY qty GROUPS BETWEEN 2 FOLLOWING AND UNBOUNDED FOLLOWING"),
    ("g_two_keys_running", "ORDER BY status, store GROUPS UNBOUNDED PRECEDING"),
    ("g_no_order", "GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING"),
    ("g_zero_offsets", "ORDER BY qty GROUPS BETWEEN 0 PRECEDING AND 0 FOLLOWING"),
    ("g_past_the_end", "ORDER BY store GROUPS BETWEEN 20 FOLLOWING AND 30 FOLLOWING"),
]

#: The aggregates a frame with EXCLUDE supports (prefix sums, sparse tables).
EXCLUDING = [
    ("sum_int", "sum(qty)"),
    ("sum_float", "sum(weight)"),
    ("count_star", "count(*)"),
    ("count", "count(discount)"),
    ("avg_decimal", "avg(price)"),
    ("min_string", "min(product)"),
    ("max_date", "max(order_date)"),
    ("var_pop", "var_pop(qty)"),
    ("bool_and", "bool_and(is_returned)"),
    ("count_if", "count_if(qty > 25)"),
    ("sum_filter", "sum(price) FILTER (WHERE status = 'F')"),
    # Frames listed row by row (DISTINCT, quantiles, mode, lists, strings).
    ("median", "median(qty)"),
    ("quantile_disc", "quantile_disc(price, 0.3)"),
    ("count_distinct", "count(DISTINCT status)"),
    ("avg_distinct", "avg(DISTINCT price)"),
    ("list_len", "len(array_agg(region) OVER ({over}))"),
    ("list_sorted_distinct", "list_sort(array_agg(DISTINCT status) OVER ({over}))"),
]

#: Lists, strings and mode over EXCLUDE frames in a total order (their rows in order).
EXCLUDING_ORDERED = [
    ("array_agg", "array_agg(qty)"),
    ("string_agg", "string_agg(status, '|')"),
    ("array_agg_within_filter", "array_agg(qty ORDER BY price DESC, id) FILTER (WHERE qty > 10)"),
    ("mode", "mode(least(qty, 5))"),
]

ORDERED_EXCLUDE_FRAMES = [
    ("rows_current", "ORDER BY id ROWS BETWEEN 2 PRECEDING AND 2 FOLLOWING EXCLUDE CURRENT ROW"),
    ("rows_outside_frame", "ORDER BY id ROWS BETWEEN 3 FOLLOWING AND 5 FOLLOWING EXCLUDE GROUP"),
    ("range_current", "ORDER BY id RANGE BETWEEN 4 PRECEDING AND 2 FOLLOWING EXCLUDE CURRENT ROW"),
    ("groups_ties", "ORDER BY id GROUPS BETWEEN 2 PRECEDING AND 1 FOLLOWING EXCLUDE TIES"),
    ("rows_running_group", "ORDER BY id ROWS UNBOUNDED PRECEDING EXCLUDE GROUP"),
]

EXCLUDE_FRAMES = [
    ("range_group", "ORDER BY qty RANGE BETWEEN 3 PRECEDING AND 3 FOLLOWING EXCLUDE GROUP"),
    ("groups_ties", "ORDER BY qty GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE TIES"),
    ("rows_current", "ORDER BY id ROWS BETWEEN 2 PRECEDING AND 2 FOLLOWING EXCLUDE CURRENT ROW"),
    (
        "rows_whole_ties",
        "ORDER BY qty ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE TIES",
    ),
    (
        "range_running_current",
        "ORDER BY qty RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE CURRENT ROW",
    ),
    (
        "groups_no_others",
        "ORDER BY qty GROUPS BETWEEN 2 PRECEDING AND 2 FOLLOWING EXCLUDE NO OTHERS",
    ),
    ("groups_only_self", "ORDER BY qty GROUPS BETWEEN CURRENT ROW AND CURRENT ROW EXCLUDE TIES"),
    ("rows_outside_frame", "ORDER BY id ROWS BETWEEN 3 FOLLOWING AND 5 FOLLOWING EXCLUDE GROUP"),
    (
        "range_date_group",
        "ORDER BY order_date RANGE BETWEEN INTERVAL 20 DAY PRECEDING AND CURRENT ROW EXCLUDE GROUP",
    ),
]

#: Value functions over frames where the row they pick is determined: a total order, or
#: the ORDER BY key itself as the value.
VALUE_CALLS = [
    ("first_value_ignore", "first_value(discount IGNORE NULLS)", "id"),
    ("last_value_ignore", "last_value(weight IGNORE NULLS)", "id"),
    ("nth_value_ignore", "nth_value(product, 2 IGNORE NULLS)", "id"),
    ("first_ignore", "first(discount IGNORE NULLS)", "id"),
    ("last_ignore", "last(qty IGNORE NULLS)", "id"),
    ("any_value", "any_value(region)", "id"),
    ("first_value_plain", "first_value(weight)", "id"),
    ("nth_value_plain", "nth_value(qty, 3)", "id"),
    ("first_value_key", "first_value(qty)", "qty"),
    ("last_value_key_ignore", "last_value(qty IGNORE NULLS)", "qty"),
    ("nth_value_key_ignore", "nth_value(qty, 3 IGNORE NULLS)", "qty"),
    ("any_value_key", "any_value(qty)", "qty"),
]

#: ``{k}``: the ORDER BY key of the call.
VALUE_FRAMES = [
    ("running", "ORDER BY {k}"),
    ("rows_sliding", "ORDER BY {k} ROWS BETWEEN 2 PRECEDING AND 3 FOLLOWING"),
    ("groups_sliding", "ORDER BY {k} GROUPS BETWEEN 1 PRECEDING AND 2 FOLLOWING"),
    ("groups_following", "ORDER BY {k} GROUPS BETWEEN 1 FOLLOWING AND 4 FOLLOWING"),
    (
        "rows_exclude_current",
        "ORDER BY {k} ROWS BETWEEN 2 PRECEDING AND 2 FOLLOWING EXCLUDE CURRENT ROW",
    ),
    (
        "groups_exclude_group",
        "ORDER BY {k} GROUPS BETWEEN 2 PRECEDING AND 1 FOLLOWING EXCLUDE GROUP",
    ),
    ("range_exclude_ties", "ORDER BY {k} RANGE BETWEEN 3 PRECEDING AND 3 FOLLOWING EXCLUDE TIES"),
    (
        "whole_exclude_current",
        "ORDER BY {k} ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW",
    ),
]

#: lag / lead IGNORE NULLS (the offset-th non-NULL row before / after, in a total order).
LAG_LEAD = [
    ("lag_ignore", "lag(qty IGNORE NULLS)"),
    ("lag_3_ignore_default", "lag(discount, 3, -1 IGNORE NULLS)"),
    ("lead_ignore", "lead(region IGNORE NULLS)"),
    ("lead_2_ignore_default", "lead(qty, 2, 0 IGNORE NULLS)"),
    ("lead_0_ignore", "lead(weight, 0 IGNORE NULLS)"),
    # A negative offset looks the other way (DuckDB's lag(x, -n) is lead(x, n)).
    ("lag_negative", "lag(qty, -1)"),
    ("lead_negative_default", "lead(price, -2, 0)"),
    ("lag_negative_ignore", "lag(discount, -2 IGNORE NULLS)"),
    # first_value / last_value with their own ORDER BY (a total one).
    ("first_value_ordered", "first_value(qty ORDER BY price DESC, id)"),
]

#: arg_min / arg_max / min / max with a count over frames (tie-free keys for the by-forms).
COUNTED = [
    ("min_by_3", "min_by(status, id, 3)"),
    ("max_by_2_decimal", "max_by(price, id, 2)"),
    ("arg_min_4_nullable_key", "arg_min(region, discount * 10000000 + id, 4)"),
    ("arg_max_2_desc_key", "arg_max(qty, -id, 2)"),
    ("min_2_ties", "min(qty, 2)"),
    ("max_3_strings", "max(product, 3)"),
]

COUNTED_FRAMES = [
    ("whole", ""),
    ("running", "ORDER BY id"),
    ("rows_sliding", "ORDER BY id ROWS BETWEEN 3 PRECEDING AND 2 FOLLOWING"),
    ("rows_following", "ORDER BY id ROWS BETWEEN 1 FOLLOWING AND 2 FOLLOWING"),
    ("groups_ties", "ORDER BY qty GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW"),
    ("range_offsets", "ORDER BY qty RANGE BETWEEN 2 PRECEDING AND 2 FOLLOWING"),
]


def _over(p: str, frame: str) -> str:
    return " ".join(f"{p} {frame}".split())


def _windowed(call: str, p: str, frame: str) -> str:
    """``call OVER (p frame)``; a call holding ``{over}`` places the OVER itself."""
    over = _over(p, frame)
    return call.format(over=over) if "{over}" in call else f"{call} OVER ({over})"


def _generated() -> list[Case]:
    cases: list[Case] = []
    for k, (fid, call) in enumerate(ORDER_FREE):
        for j, (frame_id, frame) in enumerate(GROUPS_FRAMES):
            if (j + k) % 2:
                continue
            p = PARTITION_KEYS[(j + k) % len(PARTITION_KEYS)]
            if not p and frame.startswith("GROUPS"):
                # sqlglot reads a GROUPS first in the parentheses as a window's name.
                p = "PARTITION BY status"
            sql = f"SELECT id, {call} OVER ({_over(p, frame)}) AS w FROM sales"
            cases.append(u(f"{fid}_{frame_id}", sql))
    for k, (fid, call) in enumerate(EXCLUDING):
        for j, (frame_id, frame) in enumerate(EXCLUDE_FRAMES):
            if (j + k) % 2:
                continue
            p = PARTITION_KEYS[(j + k) % len(PARTITION_KEYS)]
            # A ROWS frame over tied keys: the key, not id (the ties pick the rows).
            head = "qty" if "ROWS" in frame and "ORDER BY qty" in frame else "id"
            sql = f"SELECT {head}, {_windowed(call, p, frame)} AS w FROM sales WHERE id <= 2500"
            cases.append(u(f"exclude_{fid}_{frame_id}", sql))
    for k, (fid, call) in enumerate(EXCLUDING_ORDERED):
        for j, (frame_id, frame) in enumerate(ORDERED_EXCLUDE_FRAMES):
            p = PARTITION_KEYS[(j + k) % len(PARTITION_KEYS)]
            sql = f"SELECT id, {_windowed(call, p, frame)} AS w FROM sales WHERE id <= 1500"
            cases.append(u(f"exclude_{fid}_{frame_id}", sql))
    for k, (fid, call, key) in enumerate(VALUE_CALLS):
        for j, (frame_id, frame) in enumerate(VALUE_FRAMES):
            if (j + k) % 2:
                continue
            p = PARTITION_KEYS[(j + k) % len(PARTITION_KEYS)]
            over = _over(p, frame.format(k=key))
            head = "qty" if key == "qty" else "id"
            sql = f"SELECT {head}, {call} OVER ({over}) AS w FROM sales"
            cases.append(u(f"{fid}_{frame_id}", sql))
    for fid, call in LAG_LEAD:
        for i, p in enumerate(PARTITION_KEYS):
            sql = f"SELECT id, {call} OVER ({_over(p, 'ORDER BY id')}) AS w FROM sales"
            cases.append(u(f"{fid}_p{i}", sql))
    for k, (fid, call) in enumerate(COUNTED):
        for j, (frame_id, frame) in enumerate(COUNTED_FRAMES):
            p = PARTITION_KEYS[(j + k) % len(PARTITION_KEYS)]
            sql = f"SELECT id, {call} OVER ({_over(p, frame)}) AS w FROM sales WHERE id <= 1500"
            cases.append(u(f"{fid}_{frame_id}", sql))
    return cases


OTHER: list[Case] = [
    # ------------------------------------------------ counted aggregates under GROUP BY
    u(
        "group_by_counted",
        """
        SELECT store, min_by(status, id, 2), max_by(qty, id, 3), arg_min(price, id, 5),
               arg_max(region, id), min(qty, 2), max(order_date, 4), count(*)
        FROM sales GROUP BY store""",
    ),
    u(
        "group_by_counted_null_keys",
        """
        SELECT region, status, max_by(product, id, 2), min(weight, 3) FROM sales
        GROUP BY region, status""",
    ),
    u("global_counted", "SELECT min_by(status, id, 3), max(qty, 5) FROM sales"),
    u("global_counted_empty", "SELECT min_by(status, id, 3), max(qty, 5) FROM sales_empty"),
    u(
        "tiny_counted_all_null_group",
        "SELECT k, min_by(x, id, 2), max_by(s, id, 10), min(i, 2) FROM tiny GROUP BY k",
    ),
    u(
        "counted_one_store_empty_tasks",
        "SELECT status, min_by(id, id, 2), max(qty, 2) FROM sales WHERE store = 3 GROUP BY status",
    ),
    # ---------------------------------------------------- tiny: NULLs, empty frames
    u(
        "tiny_ignore_nulls",
        """
        SELECT id, first_value(x IGNORE NULLS) OVER w, last_value(i IGNORE NULLS) OVER w,
               nth_value(s, 2 IGNORE NULLS) OVER w, any_value(i) OVER w,
               lag(x, 2 IGNORE NULLS) OVER (PARTITION BY k ORDER BY id),
               lead(s IGNORE NULLS) OVER (ORDER BY id)
        FROM tiny WINDOW w AS (PARTITION BY k ORDER BY id ROWS BETWEEN 1 PRECEDING AND 2 FOLLOWING)""",
    ),
    u(
        "tiny_groups_and_exclude",
        """
        SELECT id, sum(x) OVER (PARTITION BY k ORDER BY i GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW),
               count(*) OVER (ORDER BY k GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE GROUP),
               min(s) OVER (ORDER BY k NULLS FIRST RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                            EXCLUDE TIES),
               first_value(i) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING
                                    EXCLUDE CURRENT ROW)
        FROM tiny""",
    ),
    u(
        "tiny_counted_empty_frames",
        """
        SELECT id, min_by(i, id, 2) OVER w, max(x, 2) OVER w, arg_max(s, id, 3) OVER w
        FROM tiny WINDOW w AS (ORDER BY id ROWS BETWEEN 4 FOLLOWING AND 6 FOLLOWING)""",
    ),
    u(
        "empty_input_new_frames",
        """
        SELECT id, sum(qty) OVER (ORDER BY qty GROUPS 1 PRECEDING),
               lag(qty IGNORE NULLS) OVER (ORDER BY id),
               count(*) OVER (ORDER BY id ROWS 2 PRECEDING EXCLUDE CURRENT ROW),
               min_by(id, id, 2) OVER ()
        FROM sales_empty""",
    ),
    u(
        "one_store_empty_tasks",
        """
        SELECT id, sum(qty) OVER (PARTITION BY region ORDER BY qty GROUPS BETWEEN 1 PRECEDING
                                  AND 1 FOLLOWING EXCLUDE TIES),
               first_value(qty IGNORE NULLS) OVER (PARTITION BY region ORDER BY id)
        FROM sales WHERE store = 3 AND id < 800""",
    ),
    # ---------------------------------------------------------- FILTER on lists
    u(
        "array_agg_filter",
        """
        SELECT id, array_agg(qty) FILTER (WHERE qty > 40) OVER (PARTITION BY store ORDER BY id
                   ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS w
        FROM sales WHERE id <= 1200""",
    ),
    u(
        "array_agg_filter_keeps_nulls_of_the_argument",
        """
        SELECT id, array_agg(discount ORDER BY id DESC) FILTER (WHERE qty > 25)
                   OVER (PARTITION BY region ORDER BY id ROWS BETWEEN 3 PRECEDING AND 1 FOLLOWING)
        FROM sales WHERE id <= 1200""",
    ),
    u(
        "array_agg_distinct_filter",
        """
        SELECT id, list_sort(array_agg(DISTINCT status) FILTER (WHERE qty > 25)
                   OVER (PARTITION BY store ORDER BY id ROWS BETWEEN 3 PRECEDING AND 1 FOLLOWING))
        FROM sales""",
    ),
    u(
        "string_agg_filter_ordered",
        """
        SELECT id, string_agg(status, ',' ORDER BY id DESC) FILTER (WHERE qty > 25)
                   OVER (PARTITION BY store ORDER BY id ROWS BETWEEN 3 PRECEDING AND 1 FOLLOWING)
        FROM sales""",
    ),
    u(
        "any_value_filter",
        """
        SELECT id, any_value(qty) FILTER (WHERE qty > 45) OVER (PARTITION BY store ORDER BY id)
        FROM sales""",
    ),
    # ------------------------------------------------------ named windows on named ones
    u(
        "named_window_chain",
        """
        SELECT id, sum(qty) OVER w2, rank() OVER w2, count(*) OVER w3,
               first_value(id) OVER (w2 ROWS BETWEEN 1 FOLLOWING AND 2 FOLLOWING)
        FROM sales WINDOW w1 AS (PARTITION BY store), w2 AS (w1 ORDER BY id),
                          w3 AS (w2 ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)""",
    ),
    u(
        "named_window_groups_frame",
        """
        SELECT id, sum(qty) OVER w, avg(qty) OVER (w2 GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING)
        FROM sales WINDOW w AS (PARTITION BY region ORDER BY qty GROUPS 2 PRECEDING),
                          w1 AS (PARTITION BY region), w2 AS (w1 ORDER BY qty)""",
    ),
    # ------------------------------------------- fractional RANGE offsets, ORDER BY inside
    u(
        "range_fraction_over_integer_key",
        """
        SELECT id, avg(qty) OVER (PARTITION BY store ORDER BY qty
                                  RANGE BETWEEN 1.5 PRECEDING AND 0.5 FOLLOWING),
               count(*) OVER (PARTITION BY region ORDER BY qty DESC
                              RANGE BETWEEN 2.5 PRECEDING AND CURRENT ROW EXCLUDE GROUP)
        FROM sales""",
    ),
    u(
        "last_value_ordered_sliding",
        """
        SELECT id, last_value(qty ORDER BY price, id) OVER (PARTITION BY store ORDER BY id
                   ROWS BETWEEN 2 PRECEDING AND 2 FOLLOWING)
        FROM sales""",
    ),
    # --------------------------------------------------------- QUALIFY / ORDER BY
    u(
        "qualify_groups_frame",
        """
        SELECT id, store FROM sales
        QUALIFY sum(qty) OVER (PARTITION BY store ORDER BY qty GROUPS BETWEEN 1 PRECEDING
                               AND CURRENT ROW) > 500""",
    ),
    u(
        "qualify_lag_ignore_nulls",
        """
        SELECT id, store FROM sales
        QUALIFY lag(qty IGNORE NULLS) OVER (PARTITION BY store ORDER BY id) > 45""",
    ),
    o(
        "order_by_excluding_window",
        """
        SELECT id, qty FROM sales WHERE store = 2
        ORDER BY sum(qty) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING
                                EXCLUDE CURRENT ROW) NULLS FIRST, id LIMIT 40""",
    ),
    u(
        "groups_over_aggregate",
        """
        SELECT store, status, sum(qty) AS s,
               sum(sum(qty)) OVER (PARTITION BY store ORDER BY status GROUPS BETWEEN 1 PRECEDING
                                   AND 1 FOLLOWING EXCLUDE CURRENT ROW) AS around
        FROM sales GROUP BY store, status""",
    ),
]

CASES = _generated() + OTHER
_ids = [c.id for c in CASES]
assert len(_ids) == len(set(_ids)), "duplicate case ids"

PARAMS = [pytest.param(c, 3, id=f"{c.id}-p3") for c in CASES] + [
    pytest.param(c, p, id=f"{c.id}-p{p}") for i, c in enumerate(CASES) if i % 2 == 0 for p in (1, 4)
]


@pytest.mark.parametrize(("case", "partitions"), PARAMS)
def test_window_frames(case: Case, partitions: int, shoal_connections, diff_data) -> None:
    check_case(shoal_connections(partitions), case, diff_data.tables, partitions)
