"""Differential tests: single-table queries, shoal against DuckDB (the oracle).

Each query runs through shoal (at 3 partitions; a subset also at 1) and through
an in-memory DuckDB holding the same Arrow tables; the results must match (see
``tests/support/compare.py`` for how values are normalized). A query is
compared in order only when its ORDER BY is a total order over its output;
otherwise rows are compared as a multiset.

Tables are described in ``data.py``. The ids say what each query covers; ids
starting with ``fn_`` use scalar functions beyond the core set (UPPER, LOWER,
LENGTH, TRIM) and ``extra_`` marks constructs outside the core list.

No joins and no subqueries other than VALUES in FROM: those live elsewhere.
"""

from __future__ import annotations

import pytest
from support.cases import Case, check_case, o, u
from support.compare import assert_same_rows, duckdb_rows

from .conftest import JOIN_MODES

# fmt: off
CASES: list[Case] = [
    # ------------------------------------------------------------ projections
    u("proj_star_tiny", "SELECT * FROM tiny"),
    u("proj_star_people", "SELECT * FROM people", both=True),
    u("proj_reordered_columns", "SELECT status, id, region, status FROM sales"),
    u("proj_constants", "SELECT id, 1, 'x', NULL, TRUE FROM tiny"),
    # ------------------------------------------------------------- arithmetic
    u("arith_int", "SELECT id, qty + 1, qty - 3, qty * cust_id, id - qty, store * 2 FROM sales"),
    u("arith_int_division_is_float", "SELECT id, qty / 4, id / qty, cust_id / store FROM sales"),
    u("arith_decimal", """
        SELECT id, price + 1, price - discount, price * qty, price * discount,
               price * (1 - discount)
        FROM sales"""),
    u("arith_decimal_mixed_scale", """
        SELECT id, price + tax_rate, discount * tax_rate,
               price * (1 - discount) * (1 + tax_rate)
        FROM sales"""),
    u("arith_decimal_division", "SELECT id, price / qty, price / 4, discount / 3 FROM sales"),
    u("arith_float", """
        SELECT id, weight * 2.5, weight / qty, weight + qty, weight - price, weight * discount
        FROM sales"""),
    u("arith_unary_minus_and_precedence", """
        SELECT id, -qty, -(price - 10), 2 + qty * 3, (2 + qty) * 3, qty - 1 - 1
        FROM sales"""),
    u("arith_literals", "SELECT id, 1 + 2 * 3, 7 / 2, 1.5 * 2, 10 - 2.25 FROM tiny"),
    u("arith_null_propagation", "SELECT id, i + x, i * d, x - d, i + NULL FROM tiny"),
    # ------------------------------------------------------------ comparisons
    u("cmp_int_gt", "SELECT id, qty FROM sales WHERE qty > 25"),
    u("cmp_eq_ne_projection", "SELECT id, qty = 10, qty <> 10, qty != 10, qty <= 10 FROM sales"),
    u("cmp_decimal_eq_literal", "SELECT id, discount FROM sales WHERE discount = 0.05"),
    u("cmp_decimal_range", """
        SELECT id FROM sales WHERE discount >= 0.05 AND discount < 0.08 AND tax_rate > 0.0400"""),
    u("cmp_float", "SELECT id, weight FROM sales WHERE weight <= 12.5"),
    u("cmp_string_binary_order", """
        SELECT person_id, name FROM people WHERE name >= 'a' AND name < 'c'"""),
    u("cmp_date_literal", "SELECT id FROM sales WHERE order_date < DATE '1993-01-01'"),
    u("cmp_bool_column", "SELECT id FROM sales WHERE is_returned"),
    u("cmp_bool_eq_false", "SELECT id FROM sales WHERE is_returned = FALSE"),
    u("cmp_decimal_vs_int_expr", "SELECT id FROM sales WHERE price > qty * 100"),
    u("cmp_negative_decimal", "SELECT person_id, balance FROM people WHERE balance < -500.5"),
    # ------------------------------------------------------ three-valued logic
    u("tvl_projection", """
        SELECT id, flag, i > 0, flag AND i > 0, flag OR i > 0, NOT flag, NOT (flag AND i > 0)
        FROM tiny"""),
    u("tvl_null_literals", """
        SELECT id, flag AND NULL, flag OR NULL, NULL AND FALSE, NULL OR TRUE FROM tiny"""),
    u("tvl_where_and_or_not", """
        SELECT id FROM sales WHERE (qty > 40 OR is_returned) AND NOT (discount > 0.05)"""),
    u("tvl_where_not_drops_null", "SELECT id FROM tiny WHERE NOT (i > 2)"),
    u("tvl_count_or_is_null", "SELECT COUNT(*) FROM sales WHERE is_returned OR qty IS NULL"),
    # ------------------------------------------------------------------- CASE
    u("case_searched_else", """
        SELECT id, CASE WHEN qty < 10 THEN 'low' WHEN qty < 30 THEN 'mid' ELSE 'high' END
        FROM sales"""),
    u("case_searched_no_else", """
        SELECT id, CASE WHEN discount > 0.05 THEN price * discount END FROM sales"""),
    u("case_simple_else", """
        SELECT id, CASE status WHEN 'F' THEN 1 WHEN 'O' THEN 2 ELSE 0 END FROM sales"""),
    u("case_simple_no_else", "SELECT id, CASE k WHEN 'a' THEN 'A' WHEN 'b' THEN 'B' END FROM tiny"),
    u("case_mixed_numeric_branches", "SELECT id, CASE WHEN i > 0 THEN x ELSE d END FROM tiny"),
    u("case_inside_aggregates", """
        SELECT status, SUM(CASE WHEN is_returned THEN qty ELSE 0 END),
               COUNT(CASE WHEN region = 'north' THEN 1 END)
        FROM sales GROUP BY status""", both=True),
    # ------------------------------------------------------------------- CAST
    u("cast_int_double", """
        SELECT id, CAST(qty AS DOUBLE) / 3, CAST(weight AS BIGINT), CAST(weight AS INTEGER)
        FROM sales"""),
    u("cast_to_decimal", """
        SELECT id, CAST(qty AS DECIMAL(10,2)), CAST(weight AS DECIMAL(12,3)),
               CAST(price AS DECIMAL(18,4)), CAST(price AS DOUBLE)
        FROM sales"""),
    u("cast_decimal_to_int_rounds", """
        SELECT id, price, CAST(price AS INTEGER), CAST(discount * 100 AS BIGINT) FROM sales"""),
    u("cast_to_varchar", """
        SELECT id, CAST(id AS VARCHAR), CAST(price AS VARCHAR), CAST(tax_rate AS VARCHAR),
               CAST(order_date AS VARCHAR)
        FROM sales"""),
    u("cast_from_varchar", """
        SELECT person_id, zip, CAST(zip AS INTEGER), CAST(zip AS DOUBLE),
               CAST(zip AS DECIMAL(10,2))
        FROM people"""),
    u("cast_varchar_to_date", """
        SELECT id, CAST('1995-03-15' AS DATE), CAST(CAST(dt AS VARCHAR) AS DATE) FROM tiny"""),
    u("cast_literals_in_arith", """
        SELECT id, CAST('42' AS INTEGER) + qty, CAST('2.5' AS DOUBLE) * qty FROM sales"""),
    u("cast_in_where", """
        SELECT id FROM sales WHERE CAST(order_date AS VARCHAR) LIKE '1996-02-%'"""),
    # --------------------------------------------------------------------- IN
    u("in_int_list", "SELECT id FROM sales WHERE qty IN (1, 2, 3, 49)"),
    u("in_string_list_with_empty", "SELECT id FROM sales WHERE region IN ('north', 'EAST', '')"),
    u("in_list_with_null", "SELECT id FROM sales WHERE qty IN (1, 2, NULL)"),
    u("not_in_list", "SELECT id FROM sales WHERE status NOT IN ('F', 'O')"),
    u("not_in_list_with_null_is_empty", "SELECT COUNT(*) FROM sales WHERE qty NOT IN (1, 2, NULL)"),
    u("in_projection_three_valued", """
        SELECT id, i IN (1, 3), i IN (1, NULL), i NOT IN (1, NULL), k IN ('a', 'd') FROM tiny"""),
    u("in_decimal_and_date_lists", """
        SELECT id FROM sales
        WHERE discount IN (0.01, 0.10)
          AND order_date NOT IN (DATE '1995-01-01', DATE '1996-06-30')"""),
    # ---------------------------------------------------------------- BETWEEN
    u("between_int", "SELECT id FROM sales WHERE qty BETWEEN 10 AND 20"),
    u("not_between_decimal", "SELECT id FROM sales WHERE discount NOT BETWEEN 0.02 AND 0.08"),
    u("between_dates", """
        SELECT id FROM sales WHERE order_date BETWEEN DATE '1994-01-01' AND DATE '1994-12-31'"""),
    u("between_strings", "SELECT person_id FROM people WHERE name BETWEEN 'B' AND 'a'"),
    u("between_projection_nulls", """
        SELECT id, i BETWEEN 0 AND 3, x NOT BETWEEN -1 AND 2 FROM tiny"""),
    # ------------------------------------------------------------------- LIKE
    u("like_prefix", "SELECT id, product FROM sales WHERE product LIKE 'promo%'"),
    u("like_contains", "SELECT id FROM sales WHERE product LIKE '%plated%'"),
    u("like_underscore", "SELECT id, product FROM sales WHERE product LIKE '_romo%'"),
    u("like_underscore_matches_any_char", "SELECT id FROM sales WHERE product LIKE 'economy_box'"),
    u("not_like_suffix", "SELECT id FROM sales WHERE product NOT LIKE '%tin'"),
    u("like_projection_empty_and_space", """
        SELECT id, region, region LIKE '', region LIKE '% %', product LIKE '% ' FROM sales"""),
    u("like_case_sensitive_or", """
        SELECT person_id FROM people WHERE name LIKE 'A%' OR name LIKE '%e'"""),
    u("like_no_wildcard", "SELECT person_id FROM people WHERE city LIKE 'Paris'"),
    # ---------------------------------------------------------------- IS NULL
    u("is_null_where_or", "SELECT id FROM sales WHERE price IS NULL OR order_date IS NULL"),
    u("is_null_projection", """
        SELECT id, i IS NULL, x IS NOT NULL, s IS NULL, dt IS NULL, flag IS NOT NULL FROM tiny"""),
    u("is_null_count", "SELECT COUNT(*) FROM sales WHERE region IS NULL AND status IS NOT NULL"),
    # ------------------------------------------------------------------ dates
    u("date_plus_interval_year_where", """
        SELECT COUNT(*), SUM(qty) FROM sales
        WHERE order_date >= DATE '1995-01-01'
          AND order_date < DATE '1995-01-01' + INTERVAL '1' YEAR""", both=True),
    u("date_minus_interval_day_where", """
        SELECT id FROM sales
        WHERE ship_date <= DATE '1998-12-01' - INTERVAL '90' DAY
          AND ship_date > DATE '1998-06-01'"""),
    u("date_plus_interval_month_end_where", """
        SELECT id, order_date FROM sales
        WHERE order_date >= DATE '1996-01-31'
          AND order_date < DATE '1996-01-31' + INTERVAL '3' MONTH"""),
    u("date_column_plus_interval_where", """
        SELECT id FROM sales WHERE ship_date > order_date + INTERVAL '90' DAY"""),
    u("date_column_minus_interval_where", """
        SELECT id FROM sales WHERE order_date - INTERVAL '1' MONTH < DATE '1992-02-15'"""),
    u("date_column_interval_projection", """
        SELECT id, CAST(order_date + INTERVAL '10' DAY AS DATE),
               CAST(order_date - INTERVAL '1' MONTH AS DATE),
               CAST(order_date + INTERVAL '1' YEAR AS DATE)
        FROM sales"""),
    u("date_interval_projection_uncast", """
        SELECT id, dt + INTERVAL '1' MONTH, dt - INTERVAL '1' DAY, dt + INTERVAL '2' YEAR
        FROM tiny"""),
    u("date_interval_literal_clamping", """
        SELECT id, CAST(DATE '1996-02-29' + INTERVAL '1' YEAR AS DATE),
               CAST(DATE '1995-01-31' + INTERVAL '1' MONTH AS DATE),
               CAST(DATE '1995-03-31' - INTERVAL '1' MONTH AS DATE)
        FROM tiny"""),
    u("extract_year_month_day", """
        SELECT id, EXTRACT(YEAR FROM order_date), EXTRACT(MONTH FROM order_date),
               EXTRACT(DAY FROM order_date)
        FROM sales"""),
    u("extract_in_where_leap_day", """
        SELECT id, order_date FROM sales
        WHERE EXTRACT(MONTH FROM order_date) = 2 AND EXTRACT(DAY FROM order_date) = 29"""),
    u("date_eq_literal", "SELECT id FROM sales WHERE order_date = DATE '1995-06-17'"),
    # ---------------------------------------------------------------- strings
    u("substring_comma_form", """
        SELECT id, SUBSTRING(product, 1, 5), SUBSTRING(product, 3, 2) FROM sales"""),
    u("substring_from_for", """
        SELECT person_id, SUBSTRING(name FROM 2 FOR 3), SUBSTRING(zip FROM 1 FOR 2) FROM people"""),
    u("substring_past_end", "SELECT id, SUBSTRING(s, 4, 100), SUBSTRING(s, 20, 2) FROM tiny"),
    u("concat_with_nulls", "SELECT id, region || '-' || status, product || '' FROM sales"),
    u("concat_with_cast", "SELECT id, k || CAST(i AS VARCHAR), s || ':' || k FROM tiny"),
    u("coalesce_sales", """
        SELECT id, COALESCE(qty, 0), COALESCE(region, 'unknown'),
               COALESCE(discount, tax_rate, 0)
        FROM sales"""),
    u("coalesce_mixed_types", """
        SELECT id, COALESCE(i, x), COALESCE(s, k, 'none'), COALESCE(dt, DATE '2000-01-01'),
               COALESCE(flag, FALSE)
        FROM tiny"""),
    u("fn_upper_lower", "SELECT person_id, UPPER(name), LOWER(city) FROM people"),
    u("fn_length_trim", """
        SELECT person_id, LENGTH(name), TRIM(name), LENGTH(TRIM(name)) FROM people"""),
    u("fn_lower_in_where", "SELECT person_id, city FROM people WHERE LOWER(city) = 'paris'"),
    # ------------------------------------------------------------- aggregates
    u("agg_global_int", """
        SELECT COUNT(*), COUNT(qty), SUM(qty), AVG(qty), MIN(qty), MAX(qty) FROM sales""",
      both=True),
    u("agg_global_decimal", """
        SELECT SUM(price), AVG(price), MIN(price), MAX(price), SUM(discount), MAX(tax_rate),
               SUM(price * (1 - discount))
        FROM sales""", both=True),
    u("agg_global_float", "SELECT SUM(weight), AVG(weight), MIN(weight), MAX(weight) FROM sales"),
    u("agg_min_max_strings_dates", """
        SELECT MIN(region), MAX(region), MIN(product), MAX(product), MIN(order_date),
               MAX(ship_date)
        FROM sales"""),
    u("agg_count_star_vs_column", """
        SELECT COUNT(*), COUNT(region), COUNT(price), COUNT(is_returned), COUNT(order_date)
        FROM sales"""),
    u("agg_sum_int32_int64", "SELECT SUM(cust_id), SUM(store), SUM(id) FROM sales"),
    u("agg_group_by_string_with_null", """
        SELECT region, COUNT(*), SUM(qty), AVG(price) FROM sales GROUP BY region""", both=True),
    u("agg_group_by_two_keys", """
        SELECT region, status, COUNT(*), SUM(price * (1 - discount)), MIN(order_date),
               MAX(order_date)
        FROM sales GROUP BY region, status""", both=True),
    u("agg_group_by_int_with_null", """
        SELECT cust_id, COUNT(*), COUNT(price), SUM(price), MAX(weight)
        FROM sales GROUP BY cust_id"""),
    u("agg_group_by_extract_year", """
        SELECT EXTRACT(YEAR FROM order_date), COUNT(*), SUM(qty)
        FROM sales GROUP BY EXTRACT(YEAR FROM order_date)""", both=True),
    u("agg_group_by_case", """
        SELECT CASE WHEN qty < 25 THEN 'small' ELSE 'large' END, COUNT(*), AVG(weight)
        FROM sales GROUP BY CASE WHEN qty < 25 THEN 'small' ELSE 'large' END"""),
    u("agg_group_by_arith", "SELECT store + 100, COUNT(*) FROM sales GROUP BY store + 100"),
    u("agg_group_by_bool", """
        SELECT is_returned, COUNT(*), SUM(qty) FROM sales GROUP BY is_returned"""),
    u("agg_group_by_date", """
        SELECT order_date, COUNT(*), SUM(qty) FROM sales
        WHERE order_date < DATE '1992-03-01' GROUP BY order_date"""),
    u("agg_group_by_decimal", "SELECT discount, COUNT(*), SUM(qty) FROM sales GROUP BY discount"),
    u("agg_group_key_not_selected", "SELECT COUNT(*), SUM(qty) FROM sales GROUP BY status"),
    u("agg_expressions_over_aggregates", """
        SELECT status, SUM(qty) * 2, SUM(price) / COUNT(*), MAX(qty) - MIN(qty),
               SUM(qty) / COUNT(qty)
        FROM sales GROUP BY status"""),
    u("agg_people_by_city", """
        SELECT city, COUNT(*), AVG(age), MIN(balance), MAX(balance), SUM(balance), AVG(score)
        FROM people GROUP BY city"""),
    u("agg_having", """
        SELECT cust_id, COUNT(*), SUM(qty) FROM sales GROUP BY cust_id HAVING COUNT(*) > 14""",
      both=True),
    u("agg_having_on_unselected_aggregates", """
        SELECT region FROM sales GROUP BY region HAVING SUM(qty) > 1000 AND MAX(price) > 9000"""),
    u("agg_having_with_where", """
        SELECT status, AVG(weight) FROM sales WHERE order_date >= DATE '1996-01-01'
        GROUP BY status HAVING AVG(weight) > 50"""),
    u("agg_empty_table_global", """
        SELECT COUNT(*), COUNT(qty), SUM(qty), SUM(price), AVG(price), MIN(order_date),
               MAX(region)
        FROM sales_empty""", both=True),
    u("agg_empty_table_grouped", """
        SELECT region, COUNT(*), SUM(qty) FROM sales_empty GROUP BY region""", both=True),
    u("agg_where_false_count", "SELECT COUNT(*) FROM sales WHERE FALSE", both=True),
    u("agg_filtered_to_nothing", "SELECT COUNT(*), SUM(price), MAX(weight) FROM sales WHERE 1 = 0"),
    u("agg_all_null_groups", """
        SELECT k, COUNT(*), COUNT(i), SUM(i), AVG(x), SUM(d), MIN(s), MAX(dt)
        FROM tiny GROUP BY k""", both=True),
    u("agg_all_null_input", """
        SELECT COUNT(*), COUNT(i), SUM(i), SUM(x), AVG(d), MAX(dt), MIN(s)
        FROM tiny WHERE k = 'c'"""),
    u("agg_csv_table", """
        SELECT kind, COUNT(*), SUM(amount), AVG(value), MIN(day), MAX(day)
        FROM events GROUP BY kind""", both=True),
    u("agg_glob_registration", "SELECT COUNT(*), SUM(qty), MIN(id), MAX(id) FROM sales_glob",
      both=True),
    u("extra_count_distinct", "SELECT status, COUNT(DISTINCT region) FROM sales GROUP BY status"),
    # --------------------------------------------------------------- ORDER BY
    o("order_by_unique_key", "SELECT id, qty FROM sales ORDER BY id"),
    o("order_asc_nulls_last_default", "SELECT id, qty FROM sales ORDER BY qty, id"),
    o("order_desc_nulls_last_default", "SELECT id, price FROM sales ORDER BY price DESC, id"),
    o("order_nulls_first", "SELECT id, region FROM sales ORDER BY region NULLS FIRST, id DESC"),
    o("order_desc_nulls_first", """
        SELECT id, weight FROM sales ORDER BY weight DESC NULLS FIRST, id""", both=True),
    o("order_asc_nulls_last_explicit", """
        SELECT id, order_date FROM sales ORDER BY order_date ASC NULLS LAST, id"""),
    o("order_multi_key_mixed_directions", """
        SELECT region, status, id FROM sales ORDER BY region DESC, status, id DESC""", both=True),
    o("order_strings_binary", "SELECT person_id, name FROM people ORDER BY name, person_id"),
    o("order_bool_desc", "SELECT id, flag FROM tiny ORDER BY flag DESC, id"),
    o("order_decimals", """
        SELECT id, discount, tax_rate FROM sales ORDER BY discount, tax_rate DESC, id LIMIT 50"""),
    o("order_dates_desc", """
        SELECT id, order_date FROM sales WHERE qty = 7 ORDER BY order_date DESC, id"""),
    o("order_topk", "SELECT id, price FROM sales ORDER BY price DESC, id LIMIT 10", both=True),
    o("order_topk_ties_broken", """
        SELECT id, qty, discount FROM sales ORDER BY qty DESC, discount DESC, id LIMIT 25""",
      both=True),
    o("order_topk_nulls_first", "SELECT id, qty FROM sales ORDER BY qty NULLS FIRST, id LIMIT 20"),
    o("order_limit_offset", "SELECT id, region FROM sales ORDER BY id LIMIT 10 OFFSET 20",
      both=True),
    o("order_offset_past_end", "SELECT id FROM sales ORDER BY id LIMIT 10 OFFSET 10000"),
    o("order_limit_zero", "SELECT id FROM sales ORDER BY id LIMIT 0"),
    o("order_by_alias", "SELECT id, qty * 2 AS dq FROM sales ORDER BY dq DESC, id LIMIT 30"),
    o("order_by_ordinal", """
        SELECT region, COUNT(*) AS n FROM sales GROUP BY region ORDER BY 2 DESC, 1"""),
    o("order_by_unselected_expression", """
        SELECT id FROM sales ORDER BY weight * qty DESC, id LIMIT 15"""),
    o("order_by_aggregate_alias", """
        SELECT status, SUM(qty) AS total FROM sales GROUP BY status ORDER BY total DESC, status"""),
    o("order_empty_table", "SELECT * FROM sales_empty ORDER BY id"),
    o("order_csv_table", """
        SELECT event_id, value FROM events ORDER BY value DESC, event_id LIMIT 12"""),
    u("limit_covering_all_rows", "SELECT id, k FROM tiny LIMIT 100"),
    # -------------------------------------------------------------- UNION ALL
    u("union_all_same_table", """
        SELECT id, qty FROM sales WHERE qty < 3
        UNION ALL
        SELECT id, qty FROM sales WHERE qty > 48""", both=True),
    u("union_all_keeps_duplicates", "SELECT k, i FROM tiny UNION ALL SELECT k, i FROM tiny"),
    u("union_all_two_tables", """
        SELECT id, price FROM sales WHERE id <= 5
        UNION ALL
        SELECT person_id, balance FROM people WHERE person_id <= 5"""),
    u("union_all_widening_int", "SELECT i FROM tiny UNION ALL SELECT id FROM sales WHERE id < 4"),
    u("union_all_with_empty", """
        SELECT id, region FROM sales_empty UNION ALL SELECT id, k FROM tiny"""),
    u("union_all_of_aggregates", """
        SELECT 'sales', COUNT(*) FROM sales
        UNION ALL SELECT 'people', COUNT(*) FROM people
        UNION ALL SELECT 'empty', COUNT(*) FROM sales_empty"""),
    o("union_all_order_limit", """
        SELECT id, qty FROM sales WHERE status = 'F'
        UNION ALL
        SELECT id, qty FROM sales WHERE status = 'O'
        ORDER BY id LIMIT 20"""),
    # ----------------------------------------------------------------- VALUES
    u("values_basic", "SELECT * FROM (VALUES (1, 'a'), (2, NULL)) AS v(x, y)", both=True),
    u("values_expressions_where", """
        SELECT x * 2, y || '!' FROM (VALUES (1, 'a'), (2, 'b'), (3, NULL)) AS v(x, y)
        WHERE x > 1"""),
    u("values_aggregate", """
        SELECT COUNT(*), COUNT(x), SUM(x), AVG(x) FROM (VALUES (1), (2), (NULL), (4)) AS v(x)"""),
    u("values_group_by", """
        SELECT g, SUM(n), COUNT(*) FROM (VALUES ('a', 1), ('b', 2), ('a', 3), (NULL, 4)) AS t(g, n)
        GROUP BY g"""),
    u("values_decimal_date", """
        SELECT d, dt FROM (VALUES (1.5, DATE '1995-01-01'), (2.25, NULL)) AS v(d, dt)"""),
    o("values_order_by", """
        SELECT * FROM (VALUES (3, 'c'), (1, 'a'), (2, 'b')) AS v(n, s) ORDER BY n DESC"""),
    # --------------------------------------------------------------- DISTINCT
    u("distinct_single_column", "SELECT DISTINCT region FROM sales", both=True),
    u("distinct_two_columns", "SELECT DISTINCT region, status FROM sales", both=True),
    u("distinct_with_nulls", "SELECT DISTINCT k, flag FROM tiny"),
    u("distinct_decimal", "SELECT DISTINCT discount FROM sales"),
    u("distinct_empty_table", "SELECT DISTINCT region FROM sales_empty"),
    o("distinct_expression_ordered", """
        SELECT DISTINCT EXTRACT(YEAR FROM order_date) AS y FROM sales ORDER BY y"""),
    o("distinct_order_limit", "SELECT DISTINCT cust_id FROM sales ORDER BY cust_id DESC LIMIT 10"),
    # ------------------------------------------------------------ empty / misc
    u("empty_table_select_star", "SELECT * FROM sales_empty", both=True),
    u("empty_table_filter_project", "SELECT id, price * 2 FROM sales_empty WHERE qty > 1"),
    u("where_false_no_rows", "SELECT id FROM sales WHERE FALSE"),
    u("where_true", "SELECT COUNT(*) FROM people WHERE TRUE"),
    u("filter_people_mixed_predicates", """
        SELECT person_id, name, age, balance FROM people
        WHERE active AND age >= 30 AND balance < 0"""),
    u("filter_arith_predicates", """
        SELECT id FROM sales WHERE price * (1 - discount) > 5000 AND qty * 2 < 40"""),
    u("filter_csv_table", """
        SELECT event_id, kind, amount FROM events
        WHERE amount IS NOT NULL AND value > 100 AND day >= DATE '2020-06-01'"""),
]
# fmt: on

_ids = [case.id for case in CASES]
assert len(_ids) == len(set(_ids)), "duplicate case ids"

# At 3 partitions every case runs with joins broadcast and with joins repartitioned.
PARAMS = [
    pytest.param(case, 3, threshold, id=f"{case.id}-p3-{mode}")
    for mode, threshold in JOIN_MODES.items()
    for case in CASES
] + [pytest.param(case, 1, None, id=f"{case.id}-p1") for case in CASES if case.both]


@pytest.mark.parametrize(("case", "partitions", "threshold"), PARAMS)
def test_single_table(
    case: Case, partitions: int, threshold: int | None, shoal_connections, diff_data
) -> None:
    check_case(shoal_connections(partitions, threshold), case, diff_data.tables, partitions)


FETCHALL_CASES = [
    case
    for case in CASES
    if case.id in {"agg_group_by_two_keys", "order_topk_ties_broken", "coalesce_mixed_types"}
]


@pytest.mark.parametrize("case", FETCHALL_CASES, ids=[case.id for case in FETCHALL_CASES])
def test_fetchall_matches_oracle(case: Case, shoal_connections, diff_data) -> None:
    actual = shoal_connections(3).sql(case.sql).fetchall()
    assert isinstance(actual, list), f"fetchall() returned {type(actual).__name__}"
    assert all(isinstance(row, tuple) for row in actual), "fetchall() rows must be tuples"
    expected = duckdb_rows(case.sql, diff_data.tables)
    assert_same_rows(
        actual,
        expected,
        ordered=case.ordered,
        rel_tol=case.rel_tol,
        header=f"[fetchall, partitions=3] {case.sql}",
    )
