"""Differential tests: joins, subqueries, CTEs and set operations, shoal against DuckDB.

Each query runs through shoal at 3 partitions (a subset, ``both=True``, also at
1 and 4) and through an in-memory DuckDB holding the same Arrow tables; the
results must match (see ``tests/support/compare.py`` for how values are
normalized). A query is compared in order only when its ORDER BY is a total
order over its output; otherwise rows are compared as a multiset.

Tables: those of ``data.py`` (``sales``, ``people``, ``tiny``, ``events``,
``sales_empty``) plus the join tables of ``join_data.py`` (``jl``, ``jr``,
``stores``, ``orders``, ``lines``, ``supp``), registered here on connections
this module makes (the shared conftest is left alone).

The id prefix says what a query covers: ``inner_``, ``left_``/``right_``/
``full_`` (outer joins), ``empty_``, ``m2m_`` (duplicate keys on both sides),
``types_`` (keys of different types), ``cross_``/``nl_`` (no equi-key: nested
loop), ``exists_``/``not_exists_``/``in_``/``not_in_`` (semi and anti joins),
``scalar_`` (scalar subqueries), ``cte_``, ``derived_``, ``cd_``
(COUNT(DISTINCT)), ``set_``, ``order_`` and ``agg_``. Ids starting with
``extra_`` go beyond the core list: correlated IN / NOT IN, IN (subquery) as a
value in SELECT, a scalar subquery in a join condition, and DISTINCT aggregates
over two different arguments.

``test_unsupported_sql_names_construct`` checks that constructs outside the
supported set fail with an ``UnsupportedError`` that names them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest
from support.cases import Case, check_case, o, u
from support.runtime import runtime_kwargs

from .conftest import JOIN_MODES, retry_policy_under_test
from .data import Registration, register_tables
from .join_data import join_tables, materialize_join_tables

# fmt: off
INNER: list[Case] = [
    u("inner_explicit_int32_int64_keys", """
        SELECT s.id, s.cust_id, p.name, p.age
        FROM sales s JOIN people p ON s.cust_id = p.person_id""", both=True),
    u("inner_keyword_dimension", """
        SELECT s.id, st.name, st.area FROM sales s INNER JOIN stores st ON s.store = st.store_id"""),
    u("inner_comma_where_equality", """
        SELECT s.id, p.city FROM sales s, people p WHERE s.cust_id = p.person_id AND p.age > 60"""),
    u("inner_comma_three_tables", """
        SELECT s.id, p.name, st.name
        FROM sales s, people p, stores st
        WHERE s.cust_id = p.person_id AND s.store = st.store_id AND s.qty > 45"""),
    u("inner_comma_equality_reversed", """
        SELECT l.line_id, o.status FROM lines l, orders o WHERE o.order_id = l.order_id"""),
    u("inner_multi_key_int_string", """
        SELECT s.id, st.name FROM sales s
        JOIN stores st ON s.store = st.store_id AND s.region = st.region"""),
    u("inner_multi_key_comma", """
        SELECT a.id, b.id, a.g FROM jl a, jr b WHERE a.k = b.k AND a.g = b.g"""),
    u("inner_multi_key_three_keys_self", """
        SELECT COUNT(*), SUM(a.qty * b.qty), MIN(a.id), MAX(b.id)
        FROM sales a JOIN sales b
          ON a.cust_id = b.cust_id AND a.store = b.store AND a.status = b.status
        WHERE a.id < b.id"""),
    u("inner_on_expression_plus_one", """
        SELECT a.id, b.id, a.k, b.k FROM jl a JOIN jr b ON a.k = b.k + 1"""),
    u("inner_on_expressions_both_sides", """
        SELECT s.id, p.person_id FROM sales s
        JOIN people p ON s.cust_id * 2 = p.person_id + 10
        WHERE s.qty < 5"""),
    u("inner_on_string_expression", """
        SELECT a.id, b.id FROM jl a JOIN jr b ON a.g || '!' = b.g || '!'"""),
    u("inner_on_case_expression", """
        SELECT s.id, st.name FROM sales s
        JOIN stores st ON CASE WHEN s.qty > 25 THEN s.store ELSE s.store + 1 END = st.store_id
        WHERE s.status = 'P' AND s.qty < 10"""),
    u("inner_residual_lt", """
        SELECT a.id, b.id, a.v, b.w FROM jl a JOIN jr b ON a.k = b.k AND a.v <= b.w + 10""", both=True),
    u("inner_residual_cross_table_columns", """
        SELECT s.id, p.person_id, s.qty, p.age FROM sales s
        JOIN people p ON s.cust_id = p.person_id AND s.qty > p.age"""),
    u("inner_residual_or", """
        SELECT a.id, b.id FROM jl a JOIN jr b ON a.k = b.k AND (a.g = b.g OR b.w > 50)"""),
    u("inner_residual_one_side_constant", """
        SELECT a.id, b.id FROM jl a JOIN jr b ON a.k = b.k AND b.g = 'b'"""),
    u("inner_residual_in_where", """
        SELECT s.id, p.person_id, s.price, p.balance FROM sales s
        JOIN people p ON s.cust_id = p.person_id
        WHERE s.price < p.balance AND s.status = 'O'"""),
    u("inner_filters_on_both_sides", """
        SELECT s.id, s.qty, p.name FROM sales s JOIN people p ON s.cust_id = p.person_id
        WHERE p.city = 'Paris' AND s.status = 'F' AND s.order_date >= DATE '1995-01-01'"""),
    u("inner_three_way", """
        SELECT s.id, p.name, st.name, s.qty * st.area
        FROM sales s
        JOIN people p ON s.cust_id = p.person_id
        JOIN stores st ON s.store = st.store_id
        WHERE p.age < 30"""),
    u("inner_four_way_dimension_twice", """
        SELECT s.id, p.name, st.name, m.name
        FROM sales s
        JOIN people p ON s.cust_id = p.person_id
        JOIN stores st ON s.store = st.store_id
        JOIN people m ON st.manager_id = m.person_id
        WHERE s.qty >= 40""", both=True),
    u("inner_four_way_chain", """
        SELECT o.order_id, l.line_no, su.name, p.name
        FROM orders o
        JOIN lines l ON l.order_id = o.order_id
        JOIN supp su ON su.supp_id = l.supp_id
        JOIN people p ON p.person_id = o.cust_id"""),
    u("inner_three_way_comma_star", """
        SELECT l.line_id, o.order_date, su.nation
        FROM lines l, orders o, supp su
        WHERE l.order_id = o.order_id AND l.supp_id = su.supp_id AND su.nation = 'PERU'"""),
    u("inner_self_join_aliases", """
        SELECT a.person_id, b.person_id, a.name FROM people a
        JOIN people b ON a.name = b.name AND a.person_id < b.person_id""", both=True),
    u("inner_self_join_residual_ne", """
        SELECT a.id, b.id FROM sales a
        JOIN sales b ON a.cust_id = b.cust_id AND a.order_date = b.order_date AND a.id <> b.id"""),
    u("inner_self_join_null_and_empty_keys", """
        SELECT a.id, b.id, a.k FROM tiny a JOIN tiny b ON a.k = b.k"""),
    u("inner_self_join_three_aliases", """
        SELECT COUNT(*), SUM(a.person_id), SUM(c.person_id) FROM people a
        JOIN people b ON a.city = b.city
        JOIN people c ON b.name = c.name
        WHERE a.person_id <= 10"""),
    u("inner_select_star_small", "SELECT * FROM jl JOIN jr ON jl.k = jr.k"),
    u("inner_unqualified_columns", """
        SELECT id, name, age, qty FROM sales JOIN people ON cust_id = person_id WHERE qty = 1"""),
    u("inner_table_names_as_qualifiers", """
        SELECT sales.id, people.name FROM sales JOIN people ON sales.cust_id = people.person_id
        WHERE sales.qty = 2"""),
    u("inner_derived_both_sides", """
        SELECT x.cust_id, x.n, y.name FROM
          (SELECT cust_id, COUNT(*) AS n FROM sales GROUP BY cust_id) x
          JOIN (SELECT person_id, name FROM people WHERE age > 40) y ON x.cust_id = y.person_id"""),
    u("inner_date_key", """
        SELECT s.id, o.order_id FROM sales s JOIN orders o ON s.order_date = o.order_date"""),
    u("inner_bool_key", "SELECT a.id, b.id FROM tiny a JOIN tiny b ON a.flag = b.flag"),
    u("inner_decimal_key_self", """
        SELECT a.id, b.id, a.price FROM sales a JOIN sales b ON a.price = b.price AND a.id < b.id"""),
    u("inner_double_key_self", "SELECT a.id, b.id FROM tiny a JOIN tiny b ON a.x = b.x"),
    u("inner_join_then_filter_or_across_sides", """
        SELECT s.id, p.person_id FROM sales s JOIN people p ON s.cust_id = p.person_id
        WHERE s.qty = 50 OR p.age = 90"""),
    # Join filters (rules/join_filters.py): a selective join above others filters the
    # scan below them — through a left join's preserved side, an inner join's either
    # side, a group key, and from an empty build side.
    u("jf_through_left_join", """
        SELECT l.line_id, o.status, s.name FROM lines l
        LEFT JOIN orders o ON l.order_id = o.order_id
        JOIN supp s ON l.supp_id = s.supp_id WHERE s.supp_id < 4""", both=True),
    u("jf_through_inner_build_side", """
        SELECT l.line_id, o.order_id FROM orders o
        JOIN lines l ON l.order_id = o.order_id
        JOIN (SELECT * FROM orders WHERE order_id % 7 = 3) x ON x.order_id = o.order_id"""),
    u("jf_through_group_key", """
        SELECT g.supp_id, g.n, s.name
        FROM (SELECT supp_id, COUNT(*) AS n FROM lines GROUP BY supp_id) g
        JOIN supp s ON g.supp_id = s.supp_id WHERE s.nation IS NULL""", both=True),
    u("jf_empty_build_side", """
        SELECT l.line_id FROM lines l JOIN supp s ON l.supp_id = s.supp_id
        WHERE s.supp_id < 0"""),
    u("jf_semi_join", """
        SELECT COUNT(*) FROM lines l
        WHERE l.supp_id IN (SELECT supp_id FROM supp WHERE nation = 'FRANCE')"""),
]

OUTER: list[Case] = [
    u("left_null_keys_both_sides", """
        SELECT a.id, a.k, b.id, b.w FROM jl a LEFT JOIN jr b ON a.k = b.k""", both=True),
    u("left_outer_keyword_star", "SELECT * FROM jl a LEFT OUTER JOIN jr b ON a.k = b.k"),
    u("right_null_keys_both_sides", """
        SELECT a.id, a.k, b.id, b.k FROM jl a RIGHT JOIN jr b ON a.k = b.k"""),
    u("right_outer_keyword_star", "SELECT * FROM jl a RIGHT OUTER JOIN jr b ON a.k = b.k"),
    u("full_null_keys_both_sides", """
        SELECT a.id, a.k, b.id, b.k FROM jl a FULL OUTER JOIN jr b ON a.k = b.k""", both=True),
    u("full_join_keyword_star", "SELECT * FROM jl a FULL JOIN jr b ON a.k = b.k"),
    u("left_sales_people_dangling_and_null", """
        SELECT s.id, s.cust_id, p.person_id, p.name FROM sales s
        LEFT JOIN people p ON s.cust_id = p.person_id""", both=True),
    u("right_filtered_left_input", """
        SELECT p.person_id, s.id FROM (SELECT * FROM sales WHERE qty = 1) s
        RIGHT JOIN people p ON s.cust_id = p.person_id"""),
    u("full_sales_stores_null_keys_and_dups", """
        SELECT s.id, st.store_id, st.name FROM sales s FULL JOIN stores st ON s.store = st.store_id""",
      both=True),
    u("left_residual_on_right_column", """
        SELECT a.id, b.id, b.w FROM jl a LEFT JOIN jr b ON a.k = b.k AND b.w > 50"""),
    u("left_residual_on_preserved_column", """
        SELECT a.id, a.v, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k AND a.v > 50""", both=True),
    u("left_residual_cross_sides", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k AND a.v < b.w"""),
    u("right_residual_on_preserved_column", """
        SELECT a.id, b.id, b.w FROM jl a RIGHT JOIN jr b ON a.k = b.k AND b.w < 50"""),
    u("right_residual_on_left_column", """
        SELECT a.id, b.id FROM jl a RIGHT JOIN jr b ON a.k = b.k AND a.g = 'b'"""),
    u("full_residual_cross_sides", """
        SELECT a.id, b.id, a.v, b.w FROM jl a FULL JOIN jr b ON a.k = b.k AND a.v < b.w""",
      both=True),
    u("full_residual_on_one_side", """
        SELECT a.id, b.id FROM jl a FULL JOIN jr b ON a.k = b.k AND a.g = 'b'"""),
    u("left_residual_sales_people", """
        SELECT s.id, p.person_id FROM sales s
        LEFT JOIN people p ON s.cust_id = p.person_id AND p.city = 'Paris'"""),
    u("left_anti_is_null", """
        SELECT a.id, a.k FROM jl a LEFT JOIN jr b ON a.k = b.k WHERE b.id IS NULL"""),
    u("left_anti_is_null_sales_people", """
        SELECT s.id, s.cust_id FROM sales s LEFT JOIN people p ON s.cust_id = p.person_id
        WHERE p.person_id IS NULL"""),
    u("right_anti_is_null", """
        SELECT st.store_id, st.name FROM sales s RIGHT JOIN stores st ON s.store = st.store_id
        WHERE s.id IS NULL"""),
    u("full_where_either_side_null", """
        SELECT a.id, b.id FROM jl a FULL JOIN jr b ON a.k = b.k
        WHERE a.id IS NULL OR b.id IS NULL"""),
    u("left_where_nullable_side_predicate", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k WHERE b.w > 30"""),
    u("left_where_nullable_value_is_null", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k WHERE b.w IS NULL"""),
    u("left_where_coalesce_nullable", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k WHERE COALESCE(b.w, 0) < 50"""),
    u("left_where_preserved_side", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k WHERE a.v > 30"""),
    u("left_on_false_condition", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k AND 1 = 0"""),
    u("left_multi_key_star", "SELECT * FROM jl LEFT JOIN jr ON jl.k = jr.k AND jl.g = jr.g"),
    u("full_multi_key", """
        SELECT a.id, b.id, a.g, b.g FROM jl a FULL JOIN jr b ON a.k = b.k AND a.g = b.g"""),
    u("full_coalesce_keys", """
        SELECT COALESCE(a.k, b.k) AS k, a.v, b.w FROM jl a FULL JOIN jr b ON a.k = b.k"""),
    u("left_nullable_side_expressions", """
        SELECT a.id, b.w + 1, b.g || 'x', CASE WHEN b.id IS NULL THEN 'none' ELSE 'some' END
        FROM jl a LEFT JOIN jr b ON a.k = b.k"""),
    u("left_chain_two_left_joins", """
        SELECT a.id, b.id, st.name FROM jl a
        LEFT JOIN jr b ON a.k = b.k
        LEFT JOIN stores st ON b.k = st.store_id"""),
    u("left_then_inner", """
        SELECT s.id, p.name, st.name FROM sales s
        LEFT JOIN people p ON s.cust_id = p.person_id
        JOIN stores st ON s.store = st.store_id
        WHERE s.qty > 47"""),
    u("inner_then_left", """
        SELECT o.order_id, l.line_id, su.name FROM orders o
        JOIN lines l ON l.order_id = o.order_id
        LEFT JOIN supp su ON su.supp_id = l.supp_id AND su.nation = 'JAPAN'
        WHERE o.status = 'F'"""),
    u("right_join_three_way", """
        SELECT o.order_id, l.line_id, su.supp_id FROM orders o
        RIGHT JOIN lines l ON l.order_id = o.order_id
        LEFT JOIN supp su ON l.supp_id = su.supp_id"""),
    u("full_join_then_full_join", """
        SELECT a.id, b.id, t.id FROM jl a
        FULL JOIN jr b ON a.k = b.k
        FULL JOIN tiny t ON COALESCE(a.id, b.id) = t.id"""),
    u("right_self_null_keys", "SELECT a.id, b.id FROM tiny a RIGHT JOIN tiny b ON a.k = b.k"),
    o("left_q13_derived_column_list", """
        SELECT c_count, COUNT(*) AS custdist
        FROM (
          SELECT p.person_id, COUNT(o.order_id)
          FROM people p LEFT OUTER JOIN orders o
            ON p.person_id = o.cust_id AND o.priority NOT LIKE '%URGENT%'
          GROUP BY p.person_id
        ) AS c_orders (c_custkey, c_count)
        GROUP BY c_count
        ORDER BY custdist DESC, c_count DESC""", both=True),
    # Outer joins whose NULL-extended rows a filter above drops (simplified to inner
    # or one-sided joins) and look-alikes that must stay outer.
    u("simplify_left_then_inner_on_nullable_side", """
        SELECT a.id, b.id, t.id FROM jl a LEFT JOIN jr b ON a.k = b.k, tiny t
        WHERE b.id = t.id""", both=True),
    u("simplify_left_where_in_list", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k WHERE b.g IN ('a', 'b')"""),
    u("simplify_left_where_not_is_null", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k WHERE NOT (b.w IS NULL)"""),
    u("simplify_left_where_or_both_branches", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k WHERE b.w > 60 OR b.w < 20"""),
    u("simplify_left_where_or_one_branch_keeps", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k WHERE b.w > 60 OR a.v < 30"""),
    u("simplify_left_where_arithmetic", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k WHERE a.v + b.w > 70"""),
    u("simplify_left_through_derived_table", """
        SELECT x.aid, x.bw FROM (
          SELECT a.id AS aid, b.w AS bw, a.v AS av FROM jl a LEFT JOIN jr b ON a.k = b.k
        ) x WHERE x.bw >= 40"""),
    u("simplify_left_kept_under_aggregate", """
        SELECT g, c FROM (
          SELECT a.g, COUNT(b.id) AS c FROM jl a LEFT JOIN jr b ON a.k = b.k GROUP BY a.g
        ) x WHERE c >= 0"""),
    u("simplify_full_where_left_side", """
        SELECT a.id, b.id FROM jl a FULL JOIN jr b ON a.k = b.k WHERE a.v > 20""", both=True),
    u("simplify_full_where_right_side", """
        SELECT a.id, b.id FROM jl a FULL JOIN jr b ON a.k = b.k WHERE b.w < 70"""),
    u("simplify_full_where_both_sides", """
        SELECT a.id, b.id FROM jl a FULL JOIN jr b ON a.k = b.k WHERE a.v > 20 AND b.w < 70"""),
    u("simplify_right_where_left_side", """
        SELECT a.id, b.id FROM jl a RIGHT JOIN jr b ON a.k = b.k WHERE a.g <> 'c'"""),
    u("simplify_chain_second_left_rejected", """
        SELECT a.id, b.id, st.name FROM jl a
        LEFT JOIN jr b ON a.k = b.k
        LEFT JOIN stores st ON b.k = st.store_id
        WHERE st.area IS NOT NULL"""),
    u("simplify_left_where_coalesce_keeps", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k
        WHERE COALESCE(b.w, 100) > 50"""),
    u("simplify_left_where_case_keeps", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k
        WHERE CASE WHEN b.w IS NULL THEN 1 ELSE b.w END > 0"""),
    u("full_then_group_by_coalesce", """
        SELECT COALESCE(a.g, b.g), COUNT(a.id), COUNT(b.id), COUNT(*)
        FROM jl a FULL JOIN jr b ON a.k = b.k GROUP BY COALESCE(a.g, b.g)"""),
]

EMPTY_DUPS_TYPES: list[Case] = [
    u("empty_inner_right_empty", """
        SELECT s.id, e.id FROM sales s JOIN sales_empty e ON s.id = e.id"""),
    u("empty_inner_left_empty", """
        SELECT e.id, p.name FROM sales_empty e JOIN people p ON e.cust_id = p.person_id"""),
    u("empty_left_join_right_empty", """
        SELECT p.person_id, e.id, e.qty FROM people p LEFT JOIN sales_empty e
        ON e.cust_id = p.person_id"""),
    u("empty_left_join_left_empty", """
        SELECT e.id, p.person_id FROM sales_empty e LEFT JOIN people p ON e.cust_id = p.person_id"""),
    u("empty_right_join_left_empty", """
        SELECT e.id, a.id FROM sales_empty e RIGHT JOIN jl a ON e.store = a.k"""),
    u("empty_full_join_one_empty", """
        SELECT a.id, e.id FROM jl a FULL JOIN sales_empty e ON a.k = e.store""", both=True),
    u("empty_full_join_both_empty", """
        SELECT a.id, b.id FROM sales_empty a FULL JOIN sales_empty b ON a.id = b.id"""),
    u("empty_cross_join", "SELECT a.id, e.id FROM jl a CROSS JOIN sales_empty e"),
    u("empty_global_aggregate_over_join", """
        SELECT COUNT(*), SUM(e.qty), MAX(p.age) FROM people p
        JOIN sales_empty e ON e.cust_id = p.person_id""", both=True),
    u("empty_grouped_aggregate_over_left_join", """
        SELECT p.city, COUNT(*), COUNT(e.id), SUM(e.qty) FROM people p
        LEFT JOIN sales_empty e ON e.cust_id = p.person_id GROUP BY p.city"""),
    u("empty_join_filtered_to_nothing", """
        SELECT s.id, p.name FROM sales s JOIN people p ON s.cust_id = p.person_id
        WHERE s.qty > 1000"""),
    u("empty_derived_where_false", """
        SELECT a.id, d.k FROM jl a LEFT JOIN (SELECT k FROM jr WHERE FALSE) d ON a.k = d.k"""),
    u("m2m_small_tables", "SELECT a.id, b.id, a.k FROM jl a JOIN jr b ON a.k = b.k AND a.k = 6"),
    u("m2m_dimension_duplicate_key", """
        SELECT st.name, COUNT(*), SUM(s.qty) FROM sales s
        JOIN stores st ON s.store = st.store_id GROUP BY st.name""", both=True),
    u("m2m_self_join_by_customer", """
        SELECT a.cust_id, COUNT(*), SUM(b.qty) FROM sales a
        JOIN sales b ON a.cust_id = b.cust_id GROUP BY a.cust_id"""),
    u("m2m_string_key", """
        SELECT st.store_id, st.name, COUNT(*), SUM(s.qty) FROM sales s
        JOIN stores st ON s.region = st.region GROUP BY st.store_id, st.name"""),
    u("m2m_orders_by_customer", """
        SELECT s.id, o.order_id FROM sales s JOIN orders o ON s.cust_id = o.cust_id
        WHERE s.qty > 45"""),
    u("types_int32_left_int64_right", """
        SELECT l.line_id, o.order_id, o.status FROM lines l JOIN orders o
        ON l.order_id = o.order_id""", both=True),
    u("types_int64_left_int32_right", """
        SELECT o.order_id, l.line_id FROM orders o JOIN lines l ON o.order_id = l.order_id
        WHERE l.qty > 40"""),
    u("types_decimal_vs_int64", """
        SELECT s.id, st.name FROM sales s JOIN stores st ON st.code = s.store
        WHERE s.qty < 8"""),
    u("types_int32_vs_decimal_scale2", """
        SELECT a.id, b.id, a.k, b.kd FROM jl a JOIN jr b ON a.k = b.kd"""),
    u("types_decimal_different_scales", """
        SELECT t.id, b.id, t.d, b.kd FROM tiny t JOIN jr b ON t.d = b.kd"""),
    u("types_decimal_vs_decimal_two_tables", """
        SELECT a.id, b.id FROM jl a JOIN jr b ON a.dv = b.kd"""),
    u("types_int_vs_double", "SELECT t.id, a.id FROM tiny t JOIN jl a ON t.x = a.k"),
    u("types_decimal_vs_int_left_outer", """
        SELECT st.name, COUNT(s.id) FROM stores st LEFT JOIN sales s ON st.code = s.store
        GROUP BY st.name"""),
    u("types_int32_int64_full_outer", """
        SELECT COUNT(*), COUNT(l.line_id), COUNT(o.order_id) FROM lines l
        FULL JOIN orders o ON l.order_id = o.order_id"""),
    u("types_decimal_int_multi_key", """
        SELECT s.id, st.name FROM sales s JOIN stores st ON s.store = st.code AND s.region = st.region
        WHERE s.qty > 40"""),
]

CROSS_NESTED_LOOP: list[Case] = [
    u("cross_join_small", "SELECT a.id, b.id FROM jl a CROSS JOIN jr b"),
    u("cross_comma_no_where", "SELECT a.id, t.id, a.g, t.k FROM jl a, tiny t"),
    u("cross_join_where_non_equi", """
        SELECT a.id, b.id FROM jl a CROSS JOIN jr b WHERE a.v + b.w > 150"""),
    u("cross_three_tables_aggregate", """
        SELECT COUNT(*), SUM(a.v), SUM(b.w), SUM(t.i) FROM jl a, jr b, tiny t"""),
    u("cross_with_single_row_aggregate", """
        SELECT s.id, s.qty, m.mx FROM sales s CROSS JOIN (SELECT MAX(qty) AS mx FROM sales) m
        WHERE s.qty = m.mx"""),
    u("cross_on_true", "SELECT a.id, b.id FROM jl a JOIN jr b ON TRUE WHERE b.k = 6"),
    u("nl_less_than", "SELECT a.id, b.id FROM jl a JOIN jr b ON a.k < b.k", both=True),
    u("nl_between_band", """
        SELECT t.id, s.id FROM tiny t JOIN sales s ON s.id BETWEEN t.id * 10 AND t.id * 10 + 2"""),
    u("nl_not_equal_strings", "SELECT a.id, b.id FROM jl a JOIN jr b ON a.g <> b.g"),
    u("nl_left_outer_non_equi", """
        SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.v > b.w + 50""", both=True),
    u("nl_right_outer_non_equi", """
        SELECT a.id, b.id FROM jl a RIGHT JOIN jr b ON a.v > b.w + 50"""),
    u("nl_full_outer_non_equi", """
        SELECT a.id, b.id FROM jl a FULL JOIN jr b ON a.v > b.w + 80"""),
    u("nl_disjunction", "SELECT a.id, b.id FROM jl a JOIN jr b ON a.k = b.k OR a.g = b.g"),
    u("nl_date_comparison", """
        SELECT st.name, COUNT(*) FROM stores st JOIN orders o ON o.order_date < st.opened
        GROUP BY st.name"""),
    u("nl_self_join_float_lt_aggregate", """
        SELECT COUNT(*), SUM(p.person_id), SUM(q.person_id) FROM people p
        JOIN people q ON p.score < q.score"""),
    u("nl_large_side_with_small_side", """
        SELECT a.id, COUNT(*), SUM(s.qty) FROM jl a JOIN sales s ON s.qty > a.v / 3
        GROUP BY a.id"""),
]

SEMI_ANTI: list[Case] = [
    u("exists_correlated_equality", """
        SELECT p.person_id FROM people p
        WHERE EXISTS (SELECT * FROM sales s WHERE s.cust_id = p.person_id AND s.qty > 48)""",
      both=True),
    u("not_exists_correlated_equality", """
        SELECT p.person_id FROM people p
        WHERE NOT EXISTS (SELECT * FROM sales s WHERE s.cust_id = p.person_id AND s.qty > 45)"""),
    o("exists_q4_style", """
        SELECT o.priority, COUNT(*) AS order_count FROM orders o
        WHERE o.order_date >= DATE '1995-01-01'
          AND o.order_date < DATE '1995-01-01' + INTERVAL '12' MONTH
          AND EXISTS (SELECT * FROM lines l
                      WHERE l.order_id = o.order_id AND l.commit_date < l.receipt_date)
        GROUP BY o.priority ORDER BY o.priority""", both=True),
    o("exists_not_exists_q21_style", """
        SELECT su.name, COUNT(*) AS numwait
        FROM supp su, lines l1, orders o
        WHERE su.supp_id = l1.supp_id
          AND o.order_id = l1.order_id
          AND o.status = 'F'
          AND l1.receipt_date > l1.commit_date
          AND EXISTS (SELECT * FROM lines l2
                      WHERE l2.order_id = l1.order_id AND l2.supp_id <> l1.supp_id)
          AND NOT EXISTS (SELECT * FROM lines l3
                          WHERE l3.order_id = l1.order_id AND l3.supp_id <> l1.supp_id
                            AND l3.receipt_date > l3.commit_date)
        GROUP BY su.name
        ORDER BY numwait DESC, su.name""", both=True),
    u("exists_extra_non_equi_correlation", """
        SELECT l1.line_id FROM lines l1
        WHERE EXISTS (SELECT 1 FROM lines l2
                      WHERE l2.order_id = l1.order_id AND l2.supp_id <> l1.supp_id)"""),
    u("not_exists_extra_non_equi_null_outer", """
        SELECT l1.line_id, l1.supp_id FROM lines l1
        WHERE NOT EXISTS (SELECT 1 FROM lines l2
                          WHERE l2.order_id = l1.order_id AND l2.supp_id <> l1.supp_id)"""),
    u("exists_correlated_lt", """
        SELECT a.id FROM jl a WHERE EXISTS (SELECT 1 FROM jr b WHERE b.k = a.k AND b.w >= a.v - 10)"""),
    u("not_exists_correlated_lt", """
        SELECT a.id FROM jl a
        WHERE NOT EXISTS (SELECT 1 FROM jr b WHERE b.k = a.k AND b.w >= a.v - 10)"""),
    u("exists_null_keys", """
        SELECT a.id, a.k FROM jl a WHERE EXISTS (SELECT 1 FROM jr b WHERE b.k = a.k)"""),
    u("not_exists_null_keys_kept", """
        SELECT a.id, a.k FROM jl a WHERE NOT EXISTS (SELECT 1 FROM jr b WHERE b.k = a.k)""",
      both=True),
    u("exists_multi_key_correlation", """
        SELECT s.id FROM sales s
        WHERE EXISTS (SELECT 1 FROM stores st
                      WHERE st.store_id = s.store AND st.region = s.region)"""),
    u("exists_correlated_with_local_filter_and_outer_filter", """
        SELECT o.order_id, o.status FROM orders o
        WHERE o.status <> 'P'
          AND EXISTS (SELECT 1 FROM lines l WHERE l.order_id = o.order_id AND l.ship_mode = 'AIR')"""),
    u("exists_uncorrelated_empty", "SELECT id FROM tiny WHERE EXISTS (SELECT 1 FROM sales_empty)"),
    u("not_exists_uncorrelated_empty", """
        SELECT id FROM tiny WHERE NOT EXISTS (SELECT 1 FROM sales_empty)"""),
    u("exists_uncorrelated_non_empty", """
        SELECT id FROM tiny WHERE EXISTS (SELECT 1 FROM sales WHERE qty > 49)"""),
    u("exists_inside_join_query", """
        SELECT s.id, p.name FROM sales s JOIN people p ON s.cust_id = p.person_id
        WHERE s.qty > 40
          AND EXISTS (SELECT 1 FROM orders o WHERE o.cust_id = p.person_id AND o.status = 'P')"""),
    u("in_subquery_basic", """
        SELECT id FROM sales WHERE cust_id IN (SELECT person_id FROM people WHERE city = 'Oslo')""",
      both=True),
    u("in_subquery_int32_vs_int64", """
        SELECT line_id FROM lines WHERE order_id IN (SELECT order_id FROM orders WHERE status = 'P')"""),
    u("in_subquery_with_nulls_in_set", "SELECT id, k FROM jl WHERE k IN (SELECT k FROM jr)"),
    u("not_in_null_in_set_is_empty", """
        SELECT id, k FROM jl WHERE k NOT IN (SELECT k FROM jr)""", both=True),
    u("not_in_null_outer_value_dropped", """
        SELECT id, k FROM jl WHERE k NOT IN (SELECT k FROM jr WHERE k IS NOT NULL)"""),
    u("not_in_empty_subquery_keeps_all", """
        SELECT id, k FROM jl WHERE k NOT IN (SELECT store FROM sales_empty)"""),
    u("in_empty_subquery_is_empty", "SELECT id, k FROM jl WHERE k IN (SELECT store FROM sales_empty)"),
    u("not_in_nullable_outer_large", """
        SELECT id, qty FROM sales WHERE qty NOT IN (SELECT i FROM tiny WHERE i IS NOT NULL)"""),
    u("not_in_null_in_set_large", """
        SELECT COUNT(*) FROM sales WHERE cust_id NOT IN (SELECT cust_id FROM orders)"""),
    u("not_in_anti_join_large", """
        SELECT COUNT(*), SUM(qty) FROM sales
        WHERE cust_id NOT IN (SELECT person_id FROM people WHERE age > 50)"""),
    o("in_subquery_q18_style", """
        SELECT o.cust_id, o.order_id, o.total, SUM(l.qty)
        FROM orders o JOIN lines l ON o.order_id = l.order_id
        WHERE o.order_id IN (SELECT order_id FROM lines GROUP BY order_id HAVING SUM(qty) > 150)
        GROUP BY o.cust_id, o.order_id, o.total
        ORDER BY o.total DESC, o.order_id""", both=True),
    u("not_in_q16_style", """
        SELECT l.ship_mode, COUNT(DISTINCT l.supp_id) FROM lines l
        WHERE l.supp_id NOT IN (SELECT supp_id FROM supp WHERE nation = 'PERU')
        GROUP BY l.ship_mode"""),
    u("in_subquery_strings", """
        SELECT id FROM sales WHERE region IN (SELECT region FROM stores WHERE area > 1000)"""),
    u("in_subquery_int_vs_decimal", """
        SELECT id FROM sales WHERE store IN (SELECT code FROM stores WHERE opened < DATE '1993-01-01')"""),
    u("extra_in_correlated", """
        SELECT a.id FROM jl a WHERE a.k IN (SELECT b.k FROM jr b WHERE b.g = a.g)"""),
    u("extra_not_in_correlated_nulls", """
        SELECT a.id FROM jl a WHERE a.k NOT IN (SELECT b.k FROM jr b WHERE b.g = a.g)"""),
    u("in_nested_q20_style", """
        SELECT su.supp_id, su.name FROM supp su
        WHERE su.supp_id IN (
            SELECT l.supp_id FROM lines l
            WHERE l.order_id IN (SELECT order_id FROM orders WHERE priority = '1-URGENT')
              AND l.qty > (SELECT 0.5 * AVG(l2.qty) FROM lines l2 WHERE l2.supp_id = l.supp_id))
          AND su.nation IS NOT NULL""", both=True),
]

SCALAR: list[Case] = [
    u("scalar_where_uncorrelated_avg", """
        SELECT id, qty FROM sales WHERE qty > (SELECT AVG(qty) FROM sales)""", both=True),
    u("scalar_select_uncorrelated", """
        SELECT id, qty - (SELECT AVG(qty) FROM sales), (SELECT MAX(price) FROM sales)
        FROM sales WHERE id <= 50"""),
    u("scalar_select_and_where", """
        SELECT person_id, balance, (SELECT SUM(balance) FROM people) FROM people
        WHERE balance > (SELECT AVG(balance) FROM people)"""),
    u("scalar_no_rows_is_null", """
        SELECT id, (SELECT qty FROM sales WHERE id = -1) FROM tiny"""),
    u("scalar_no_rows_in_where", """
        SELECT id FROM tiny WHERE i > (SELECT qty FROM sales WHERE id = -1)"""),
    u("scalar_no_rows_coalesce", """
        SELECT id, COALESCE((SELECT qty FROM sales WHERE id = -1), 0) + i FROM tiny"""),
    u("scalar_empty_aggregates", """
        SELECT id, (SELECT MAX(qty) FROM sales_empty), (SELECT COUNT(*) FROM sales_empty)
        FROM tiny"""),
    u("scalar_single_row_non_aggregate", """
        SELECT id FROM sales WHERE cust_id = (SELECT cust_id FROM sales WHERE id = 17)"""),
    u("scalar_in_arithmetic_decimal", """
        SELECT id, price / (SELECT MAX(price) FROM sales) FROM sales WHERE qty = 3"""),
    u("scalar_uncorrelated_string", """
        SELECT id FROM sales WHERE region = (SELECT region FROM stores WHERE store_id = 2)"""),
    u("scalar_uncorrelated_date", """
        SELECT id, order_date FROM sales WHERE order_date = (SELECT MAX(order_date) FROM sales)"""),
    u("scalar_two_subqueries_between", """
        SELECT id FROM sales
        WHERE qty BETWEEN (SELECT MAX(i) FROM tiny) AND (SELECT MAX(qty) FROM sales) / 5"""),
    # An uncorrelated scalar subquery compared with one input of a join moves onto it.
    u("scalar_uncorrelated_on_one_join_input", """
        SELECT s.id, st.name FROM sales s, stores st
        WHERE s.store = st.store_id AND st.manager_id = (SELECT MIN(manager_id) FROM stores)""",
      both=True),
    u("scalar_uncorrelated_on_other_join_input", """
        SELECT s.id, st.name FROM sales s JOIN stores st ON s.store = st.store_id
        WHERE s.qty >= (SELECT MAX(qty) FROM sales) - 3"""),
    u("scalar_uncorrelated_reads_both_inputs_stays", """
        SELECT s.id FROM sales s JOIN stores st ON s.store = st.store_id
        WHERE s.qty + st.manager_id > (SELECT AVG(qty) FROM sales)"""),
    u("scalar_uncorrelated_no_rows_under_join", """
        SELECT s.id FROM sales s JOIN stores st ON s.store = st.store_id
        WHERE st.store_id = (SELECT store_id FROM stores WHERE store_id = -1)"""),
    u("scalar_uncorrelated_also_selected_under_join", """
        SELECT s.id, (SELECT MAX(qty) FROM sales) AS m FROM sales s, stores st
        WHERE s.store = st.store_id AND s.qty = (SELECT MAX(qty) FROM sales)"""),
    u("scalar_correlated_avg_t1_t2", """
        SELECT s1.id, s1.qty FROM sales s1
        WHERE s1.qty > (SELECT AVG(s2.qty) FROM sales s2 WHERE s2.cust_id = s1.cust_id)
          AND s1.store = 3""", both=True),
    u("scalar_correlated_q17_style", """
        SELECT SUM(l.price) / 7.0 FROM lines l
        WHERE l.qty < (SELECT 0.5 * AVG(l2.qty) FROM lines l2 WHERE l2.supp_id = l.supp_id)"""),
    u("scalar_correlated_q2_min_with_join", """
        SELECT l.line_id, l.supp_id, l.price FROM lines l JOIN orders o ON l.order_id = o.order_id
        WHERE l.price = (SELECT MIN(l2.price) FROM lines l2, supp su
                         WHERE l2.order_id = l.order_id AND l2.supp_id = su.supp_id
                           AND su.nation <> 'KENYA')""", both=True),
    u("scalar_correlated_two_keys_q20_style", """
        SELECT s1.id FROM sales s1
        WHERE s1.qty > (SELECT 1.5 * AVG(s2.qty) FROM sales s2
                        WHERE s2.cust_id = s1.cust_id AND s2.store = s1.store)"""),
    u("scalar_correlated_count_is_zero_not_null", """
        SELECT p.person_id, (SELECT COUNT(*) FROM orders o WHERE o.cust_id = p.person_id)
        FROM people p""", both=True),
    u("scalar_correlated_count_in_where", """
        SELECT p.person_id FROM people p
        WHERE (SELECT COUNT(*) FROM orders o WHERE o.cust_id = p.person_id) = 0"""),
    u("scalar_correlated_sum_null_when_no_match", """
        SELECT a.id, (SELECT SUM(b.w) FROM jr b WHERE b.k = a.k) FROM jl a"""),
    u("scalar_correlated_max_date", """
        SELECT o.order_id, o.cust_id FROM orders o
        WHERE o.order_date = (SELECT MAX(o2.order_date) FROM orders o2 WHERE o2.cust_id = o.cust_id)"""),
    u("scalar_correlated_with_join_outside", """
        SELECT s.id, p.name FROM sales s JOIN people p ON s.cust_id = p.person_id
        WHERE s.price > (SELECT AVG(s2.price) * 1.8 FROM sales s2 WHERE s2.cust_id = p.person_id)"""),
    o("scalar_having_q11_style", """
        SELECT l.supp_id, SUM(l.price * l.qty) AS value
        FROM lines l JOIN supp su ON l.supp_id = su.supp_id
        WHERE su.nation = 'FRANCE'
        GROUP BY l.supp_id
        HAVING SUM(l.price * l.qty) > (
            SELECT SUM(l2.price * l2.qty) * 0.1
            FROM lines l2 JOIN supp s2 ON l2.supp_id = s2.supp_id WHERE s2.nation = 'FRANCE')
        ORDER BY value DESC, l.supp_id""", both=True),
    u("scalar_having_uncorrelated_count", """
        SELECT cust_id, COUNT(*) FROM sales GROUP BY cust_id
        HAVING COUNT(*) > (SELECT COUNT(*) / 400.0 * 1.5 FROM sales)"""),
    o("scalar_q22_style", """
        SELECT p.city, COUNT(*) AS numcust, SUM(p.balance) AS totbal FROM people p
        WHERE p.balance > (SELECT AVG(balance) FROM people
                           WHERE balance > 0.00 AND SUBSTRING(zip, 1, 1) IN ('1', '2', '3'))
          AND NOT EXISTS (SELECT * FROM orders o WHERE o.cust_id = p.person_id)
        GROUP BY p.city ORDER BY p.city"""),
    u("extra_scalar_in_join_condition", """
        SELECT a.id, b.id FROM jl a JOIN jr b ON a.k = b.k AND b.w > (SELECT AVG(w) FROM jr)"""),
]

CTE_DERIVED: list[Case] = [
    u("cte_single", """
        WITH big AS (SELECT id, cust_id, qty FROM sales WHERE qty > 45)
        SELECT cust_id, COUNT(*), SUM(qty) FROM big GROUP BY cust_id"""),
    u("cte_multiple_chained", """
        WITH per_cust AS (SELECT cust_id, SUM(qty) AS q FROM sales GROUP BY cust_id),
             top AS (SELECT cust_id, q FROM per_cust WHERE q > 330)
        SELECT t.cust_id, t.q, p.name FROM top t JOIN people p ON t.cust_id = p.person_id"""),
    u("cte_referenced_twice_q15_style", """
        WITH revenue AS (
            SELECT supp_id, SUM(price * qty) AS total FROM lines GROUP BY supp_id)
        SELECT su.supp_id, su.name, r.total
        FROM supp su JOIN revenue r ON su.supp_id = r.supp_id
        WHERE r.total = (SELECT MAX(total) FROM revenue)""", both=True),
    u("cte_self_join", """
        WITH c AS (SELECT cust_id, COUNT(*) AS n FROM sales GROUP BY cust_id)
        SELECT a.cust_id, b.cust_id, a.n FROM c a JOIN c b ON a.n = b.n AND a.cust_id < b.cust_id
        WHERE a.n > 19"""),
    u("cte_column_list", """
        WITH c(cid, n) AS (SELECT cust_id, COUNT(*) FROM sales GROUP BY cust_id)
        SELECT cid, n FROM c WHERE n > 18"""),
    u("cte_joined_with_base_table", """
        WITH pc AS (SELECT city, AVG(age) AS avg_age FROM people GROUP BY city)
        SELECT p.person_id, p.age, pc.avg_age FROM people p JOIN pc ON p.city = pc.city
        WHERE p.age > pc.avg_age"""),
    u("cte_shadows_table_name", """
        WITH tiny AS (SELECT id, region AS k FROM sales WHERE id <= 3) SELECT * FROM tiny"""),
    u("cte_used_in_in_subquery", """
        WITH hot AS (SELECT person_id FROM people WHERE city = 'Lima')
        SELECT id FROM sales WHERE cust_id IN (SELECT person_id FROM hot)"""),
    u("cte_unused", "WITH unused AS (SELECT * FROM sales) SELECT id, k FROM tiny"),
    u("cte_later_references_earlier_twice", """
        WITH s AS (SELECT cust_id, store, qty FROM sales WHERE status = 'P'),
             pairs AS (SELECT x.cust_id, x.store AS s1, y.store AS s2
                       FROM s x JOIN s y ON x.cust_id = y.cust_id AND x.store < y.store)
        SELECT cust_id, COUNT(*) FROM pairs GROUP BY cust_id"""),
    u("cte_with_outer_join_and_aggregate", """
        WITH lc AS (SELECT order_id, COUNT(*) AS n FROM lines GROUP BY order_id)
        SELECT o.order_id, COALESCE(lc.n, 0) FROM orders o LEFT JOIN lc ON o.order_id = lc.order_id"""),
    u("derived_alias_column_list", """
        SELECT t.c, t.n FROM (SELECT city, COUNT(*) FROM people GROUP BY city) AS t(c, n)
        WHERE t.n > 30"""),
    u("derived_two_aggregates_joined", """
        SELECT x.cust_id, x.total, y.cnt FROM
          (SELECT cust_id, SUM(qty) AS total FROM sales GROUP BY cust_id) x
          JOIN (SELECT cust_id, COUNT(*) AS cnt FROM orders GROUP BY cust_id) y
          ON x.cust_id = y.cust_id"""),
    u("derived_nested", """
        SELECT b.k, b.s2 FROM (
          SELECT a.k, a.s * 2 AS s2 FROM (
            SELECT k, SUM(v) AS s FROM jl GROUP BY k) a
          WHERE a.s > 20) b"""),
    u("derived_filter_on_aggregate", """
        SELECT * FROM (SELECT status, SUM(qty) AS q FROM sales GROUP BY status) d
        WHERE q > 40000"""),
    u("derived_outer_join_column_list", """
        SELECT x.a_id, x.b_id FROM (
          SELECT a.id, b.id FROM jl a LEFT JOIN jr b ON a.k = b.k) AS x(a_id, b_id)
        WHERE x.b_id IS NULL OR x.b_id > 5"""),
    u("cd_group_by_over_join", """
        SELECT p.city, COUNT(DISTINCT s.store) FROM sales s JOIN people p ON s.cust_id = p.person_id
        GROUP BY p.city"""),
    u("cd_mixed_with_sum", """
        SELECT status, COUNT(DISTINCT cust_id), SUM(qty) FROM sales GROUP BY status""", both=True),
    u("cd_mixed_over_join", """
        SELECT st.region, COUNT(DISTINCT s.cust_id), SUM(s.qty), COUNT(*)
        FROM sales s JOIN stores st ON s.store = st.store_id GROUP BY st.region""", both=True),
    u("cd_mixed_global", """
        SELECT COUNT(DISTINCT cust_id), SUM(qty), AVG(price), COUNT(*) FROM sales"""),
    u("extra_cd_two_distinct_arguments", """
        SELECT region, COUNT(DISTINCT cust_id), COUNT(DISTINCT store) FROM sales GROUP BY region"""),
    u("extra_cd_with_nulls_small", "SELECT COUNT(DISTINCT k), COUNT(DISTINCT i), COUNT(*) FROM tiny"),
    u("cd_join_key_other_side", """
        SELECT o.status, COUNT(DISTINCT l.supp_id), AVG(l.qty)
        FROM orders o JOIN lines l ON o.order_id = l.order_id GROUP BY o.status"""),
    u("cd_in_having", """
        SELECT cust_id, COUNT(*) FROM sales GROUP BY cust_id HAVING COUNT(DISTINCT store) >= 11"""),
    u("cd_over_left_join", """
        SELECT a.g, COUNT(DISTINCT b.k), COUNT(b.id) FROM jl a LEFT JOIN jr b ON a.k = b.k
        GROUP BY a.g"""),
    # One DISTINCT argument beside sum / count / min / max: re-aggregated in two levels.
    u("cd_reaggregated_plain_grouped", """
        SELECT region, COUNT(DISTINCT cust_id), SUM(qty), COUNT(*), COUNT(price), MIN(qty),
               MAX(price), SUM(price) FROM sales GROUP BY region""", both=True),
    u("cd_reaggregated_plain_global", """
        SELECT COUNT(DISTINCT store), SUM(qty), COUNT(*), COUNT(price), MIN(price), MAX(qty)
        FROM sales""", both=True),
    u("cd_reaggregated_nulls", "SELECT COUNT(DISTINCT k), COUNT(i), COUNT(*), MAX(i), SUM(i) FROM tiny"),
    u("cd_reaggregated_empty_global", """
        SELECT COUNT(DISTINCT cust_id), COUNT(*), COUNT(qty), SUM(qty), MIN(qty) FROM sales_empty
        """),
    u("cd_reaggregated_empty_grouped", """
        SELECT region, COUNT(DISTINCT cust_id), COUNT(*), SUM(qty) FROM sales_empty GROUP BY region
        """),
    u("cd_reaggregated_over_join", """
        SELECT COUNT(DISTINCT l.order_id), SUM(l.qty), COUNT(*)
        FROM lines l JOIN orders o ON l.order_id = o.order_id WHERE o.status = 'O'"""),
]

SET_OPS: list[Case] = [
    u("set_union_distinct_nulls", "SELECT k FROM jl UNION SELECT k FROM jr", both=True),
    u("set_union_two_columns", "SELECT k, g FROM jl UNION SELECT k, g FROM jr"),
    u("set_union_all_keeps_duplicates", "SELECT k, g FROM jl UNION ALL SELECT k, g FROM jr"),
    u("set_union_all_of_joins", """
        SELECT a.id, b.id FROM jl a JOIN jr b ON a.k = b.k
        UNION ALL
        SELECT a.id, b.id FROM jl a JOIN jr b ON a.g = b.g"""),
    u("set_union_distinct_of_joins", """
        SELECT a.id, b.id FROM jl a JOIN jr b ON a.k = b.k
        UNION
        SELECT a.id, b.id FROM jl a JOIN jr b ON a.g = b.g"""),
    u("set_union_int_and_decimal", "SELECT k FROM jl UNION SELECT kd FROM jr"),
    u("set_intersect_nulls_match", "SELECT k FROM jl INTERSECT SELECT k FROM jr", both=True),
    u("set_intersect_two_columns", "SELECT k, g FROM jl INTERSECT SELECT k, g FROM jr"),
    u("set_intersect_duplicates_collapse", "SELECT k FROM tiny INTERSECT SELECT k FROM tiny"),
    u("set_intersect_large", """
        SELECT cust_id, status FROM sales INTERSECT SELECT cust_id, status FROM orders"""),
    u("set_except_null_removed", "SELECT k FROM jl EXCEPT SELECT k FROM jr"),
    u("set_except_reverse_strings", "SELECT g FROM jr EXCEPT SELECT g FROM jl"),
    u("set_except_keeps_null_and_dedups", """
        SELECT cust_id FROM sales EXCEPT SELECT person_id FROM people"""),
    u("set_union_with_empty", "SELECT region FROM sales_empty UNION SELECT k FROM tiny"),
    u("set_except_empty", "SELECT k FROM tiny EXCEPT SELECT region FROM sales_empty"),
    u("set_intersect_empty", "SELECT k FROM tiny INTERSECT SELECT region FROM sales_empty"),
    u("set_intersect_binds_tighter", """
        SELECT k FROM jl UNION SELECT k FROM jr INTERSECT SELECT i FROM tiny"""),
    u("set_except_then_union_left_to_right", """
        SELECT k FROM jl EXCEPT SELECT k FROM jr UNION SELECT i FROM tiny"""),
    o("set_union_order_limit", """
        SELECT k, g FROM jl UNION SELECT k, g FROM jr ORDER BY k NULLS FIRST, g LIMIT 8"""),
    u("set_union_all_in_derived_join", """
        SELECT u.k, COUNT(*) FROM (SELECT k FROM jl UNION ALL SELECT k FROM jr) u
        JOIN stores st ON u.k = st.store_id GROUP BY u.k"""),
    u("set_union_of_aggregates", """
        SELECT status, COUNT(*) FROM sales GROUP BY status
        UNION
        SELECT status, COUNT(*) FROM orders GROUP BY status"""),
    u("set_except_in_cte", """
        WITH a AS (SELECT person_id FROM people EXCEPT SELECT cust_id FROM orders)
        SELECT COUNT(*), SUM(person_id) FROM a"""),
    u("set_union_strings_case_sensitive", "SELECT region FROM sales UNION SELECT region FROM stores"),
]

ORDERING: list[Case] = [
    o("order_by_aliases_over_join", """
        SELECT s.id AS sid, p.name AS pname FROM sales s JOIN people p ON s.cust_id = p.person_id
        WHERE s.qty > 45 ORDER BY pname, sid""", both=True),
    o("order_by_ordinals_over_join", """
        SELECT a.id, b.id, a.v + b.w FROM jl a JOIN jr b ON a.k = b.k ORDER BY 3 DESC, 1, 2"""),
    o("order_by_expression_over_join", """
        SELECT a.id, b.id FROM jl a JOIN jr b ON a.k = b.k ORDER BY a.v * 2 - b.w, a.id, b.id"""),
    o("order_limit_over_join", """
        SELECT s.id, p.person_id, s.price FROM sales s JOIN people p ON s.cust_id = p.person_id
        ORDER BY s.price DESC, s.id LIMIT 10""", both=True),
    o("order_limit_offset_over_join", """
        SELECT s.id, p.name, s.qty FROM sales s JOIN people p ON s.cust_id = p.person_id
        ORDER BY s.qty, p.name DESC, s.id LIMIT 15 OFFSET 30"""),
    o("order_limit_many_to_many", """
        SELECT a.id, b.id FROM sales a JOIN sales b ON a.cust_id = b.cust_id
        WHERE a.qty = 50 ORDER BY a.id, b.id LIMIT 25"""),
    o("order_full_join_nulls_first", """
        SELECT a.id, b.id FROM jl a FULL JOIN jr b ON a.k = b.k ORDER BY a.id NULLS FIRST, b.id"""),
    o("order_aggregate_over_join", """
        SELECT p.city, COUNT(*) AS n FROM sales s JOIN people p ON s.cust_id = p.person_id
        GROUP BY p.city ORDER BY n DESC, p.city"""),
    o("order_by_unselected_column_over_join", """
        SELECT p.name FROM sales s JOIN people p ON s.cust_id = p.person_id
        WHERE s.qty = 50 ORDER BY s.id"""),
    o("order_desc_nulls_first_over_join", """
        SELECT s.id, st.name, st.opened FROM sales s JOIN stores st ON s.store = st.store_id
        WHERE s.qty = 1 ORDER BY st.opened DESC NULLS FIRST, s.id, st.name"""),
    o("order_topk_after_left_join_aggregate", """
        SELECT p.person_id, COUNT(s.id) AS n FROM people p
        LEFT JOIN sales s ON s.cust_id = p.person_id
        GROUP BY p.person_id ORDER BY n DESC, p.person_id LIMIT 10""", both=True),
    o("order_cte_join_limit", """
        WITH r AS (SELECT order_id, SUM(price * qty) AS rev FROM lines GROUP BY order_id)
        SELECT o.order_id, o.priority, r.rev FROM orders o JOIN r ON o.order_id = r.order_id
        ORDER BY r.rev DESC, o.order_id LIMIT 12"""),
    o("order_by_right_side_key_limit", """
        SELECT l.line_id, o.order_date FROM lines l JOIN orders o ON l.order_id = o.order_id
        ORDER BY o.order_date DESC, l.line_id DESC LIMIT 20"""),
    o("order_semi_join_limit", """
        SELECT p.person_id, p.name FROM people p
        WHERE EXISTS (SELECT 1 FROM orders o WHERE o.cust_id = p.person_id)
        ORDER BY p.name NULLS FIRST, p.person_id LIMIT 20"""),
]

AGGREGATES: list[Case] = [
    u("agg_group_by_left_join_key", """
        SELECT s.cust_id, COUNT(*), SUM(s.qty) FROM sales s JOIN people p ON s.cust_id = p.person_id
        GROUP BY s.cust_id""", both=True),
    u("agg_group_by_right_join_key", """
        SELECT p.person_id, COUNT(*), SUM(s.price), MAX(p.age) FROM sales s
        JOIN people p ON s.cust_id = p.person_id GROUP BY p.person_id"""),
    u("agg_group_by_attributes_both_sides", """
        SELECT p.city, s.status, COUNT(*), AVG(s.qty), SUM(p.balance) FROM sales s
        JOIN people p ON s.cust_id = p.person_id GROUP BY p.city, s.status"""),
    u("agg_having_over_join", """
        SELECT p.city, SUM(s.price), COUNT(*) FROM sales s JOIN people p ON s.cust_id = p.person_id
        GROUP BY p.city HAVING COUNT(*) > 500"""),
    u("agg_having_unselected_aggregates_over_join", """
        SELECT st.name FROM sales s JOIN stores st ON s.store = st.store_id
        GROUP BY st.name HAVING MAX(s.qty) = 50 AND SUM(s.qty) > 10000"""),
    u("agg_left_join_count_star_vs_column", """
        SELECT st.store_id, COUNT(*), COUNT(s.id), SUM(s.qty) FROM stores st
        LEFT JOIN sales s ON s.store = st.store_id GROUP BY st.store_id""", both=True),
    u("agg_global_over_three_way", """
        SELECT COUNT(*), SUM(l.qty * l.price), AVG(o.total), MIN(su.name), MAX(o.order_date)
        FROM orders o JOIN lines l ON l.order_id = o.order_id JOIN supp su ON su.supp_id = l.supp_id""",
      both=True),
    u("agg_group_by_expression_over_join", """
        SELECT EXTRACT(YEAR FROM o.order_date), COUNT(*), SUM(l.qty)
        FROM orders o JOIN lines l ON l.order_id = o.order_id
        GROUP BY EXTRACT(YEAR FROM o.order_date)"""),
    o("agg_q3_style", """
        SELECT l.order_id, SUM(l.price * (1 - 0.05)) AS revenue, o.order_date, o.priority
        FROM people p, orders o, lines l
        WHERE p.city IN ('Paris', 'Berlin', 'Oslo')
          AND p.person_id = o.cust_id
          AND l.order_id = o.order_id
          AND o.order_date < DATE '1997-03-15'
          AND l.commit_date > DATE '1994-03-15'
        GROUP BY l.order_id, o.order_date, o.priority
        ORDER BY revenue DESC, o.order_date, l.order_id
        LIMIT 10""", both=True),
    o("agg_q5_style", """
        SELECT su.nation, SUM(l.price * l.qty) AS revenue
        FROM people p, orders o, lines l, supp su
        WHERE p.person_id = o.cust_id
          AND l.order_id = o.order_id
          AND l.supp_id = su.supp_id
          AND o.order_date >= DATE '1994-01-01'
          AND o.order_date < DATE '1994-01-01' + INTERVAL '3' YEAR
        GROUP BY su.nation
        ORDER BY revenue DESC, su.nation"""),
    u("agg_group_by_both_sides_key_copies", """
        SELECT s.store, st.store_id, COUNT(*) FROM sales s JOIN stores st ON s.store = st.store_id
        GROUP BY s.store, st.store_id"""),
    u("agg_group_by_nullable_side", """
        SELECT b.g, COUNT(*), SUM(a.v), COUNT(b.w) FROM jl a LEFT JOIN jr b ON a.k = b.k
        GROUP BY b.g"""),
    u("agg_right_join_group_by_preserved_key", """
        SELECT st.store_id, st.name, COUNT(s.id), MIN(s.order_date) FROM sales s
        RIGHT JOIN stores st ON s.store = st.store_id GROUP BY st.store_id, st.name"""),
    u("agg_full_join_global", """
        SELECT COUNT(*), COUNT(a.id), COUNT(b.id), SUM(a.v), SUM(b.w)
        FROM jl a FULL JOIN jr b ON a.k = b.k"""),
    u("agg_distinct_over_join", """
        SELECT DISTINCT p.city FROM sales s JOIN people p ON s.cust_id = p.person_id
        WHERE s.qty = 50"""),
    u("agg_distinct_two_columns_over_join", """
        SELECT DISTINCT st.region, s.status FROM sales s JOIN stores st ON s.store = st.store_id"""),
    u("agg_avg_decimal_over_join", """
        SELECT p.city, AVG(s.price), AVG(p.balance), MIN(s.discount), MAX(p.balance)
        FROM sales s JOIN people p ON s.cust_id = p.person_id GROUP BY p.city"""),
    u("agg_case_inside_aggregate_over_join", """
        SELECT o.priority,
               SUM(CASE WHEN l.ship_mode IN ('AIR', 'MAIL') THEN 1 ELSE 0 END),
               SUM(CASE WHEN l.receipt_date > l.commit_date THEN l.qty END)
        FROM orders o JOIN lines l ON o.order_id = l.order_id GROUP BY o.priority"""),
    u("agg_having_over_outer_join_zero_counts", """
        SELECT p.person_id FROM people p LEFT JOIN orders o ON o.cust_id = p.person_id
        GROUP BY p.person_id HAVING COUNT(o.order_id) = 0"""),
]
# fmt: on

CASES: list[Case] = (
    INNER
    + OUTER
    + EMPTY_DUPS_TYPES
    + CROSS_NESTED_LOOP
    + SEMI_ANTI
    + SCALAR
    + CTE_DERIVED
    + SET_OPS
    + ORDERING
    + AGGREGATES
)

_ids = [case.id for case in CASES]
assert len(_ids) == len(set(_ids)), "duplicate case ids"

# At 3 partitions every case runs with joins broadcast and with joins repartitioned.
PARAMS = [
    pytest.param(case, 3, threshold, id=f"{case.id}-p3-{mode}")
    for mode, threshold in JOIN_MODES.items()
    for case in CASES
] + [
    pytest.param(case, p, None, id=f"{case.id}-p{p}") for p in (1, 4) for case in CASES if case.both
]


# ------------------------------------------------------------------ fixtures


@dataclass(frozen=True)
class JoinData:
    tables: dict[str, pa.Table]  # every table by name: what the DuckDB oracle sees
    registrations: list[Registration]


@pytest.fixture(scope="module")
def join_data(diff_data: Any, tmp_path_factory: pytest.TempPathFactory) -> JoinData:
    extra = join_tables()
    overlap = set(extra) & set(diff_data.tables)
    assert not overlap, f"join tables clash with the differential tables: {overlap}"
    registrations = materialize_join_tables(tmp_path_factory.mktemp("joins"), extra)
    return JoinData(
        tables={**diff_data.tables, **extra},
        registrations=[*diff_data.registrations, *registrations],
    )


@pytest.fixture(scope="module")
def join_connections(join_data: JoinData) -> Iterator[Callable[[int], Any]]:
    """``get(partitions)`` -> a shoal connection with every table registered."""
    import shoal  # imported here so a missing engine fails setup, not collection

    made: dict[tuple[int, int | None], Any] = {}

    def get(partitions: int, broadcast_threshold_bytes: int | None = None) -> Any:
        key = (partitions, broadcast_threshold_bytes)
        if key not in made:
            extra = (
                {}
                if broadcast_threshold_bytes is None
                else {"broadcast_threshold_bytes": broadcast_threshold_bytes}
            )
            con = shoal.connect(
                partitions=partitions,
                retry_policy=retry_policy_under_test(),
                **runtime_kwargs(),
                **extra,
            )
            register_tables(con, join_data.registrations, join_data.tables)
            made[key] = con
        return made[key]

    yield get
    for con in made.values():
        close = getattr(con, "close", None)
        if callable(close):
            close()


# --------------------------------------------------------------------- tests


@pytest.mark.parametrize(("case", "partitions", "threshold"), PARAMS)
def test_joins(
    case: Case, partitions: int, threshold: int | None, join_connections, join_data: JoinData
) -> None:
    check_case(join_connections(partitions, threshold), case, join_data.tables, partitions)


@dataclass(frozen=True)
class Unsupported:
    id: str
    sql: str
    keywords: tuple[str, ...]  # the message must contain one of these (case-insensitive)


UNSUPPORTED: list[Unsupported] = [
    Unsupported(
        "window_ignore_nulls",
        # IGNORE NULLS means something only for the value functions (first_value, lag…).
        "SELECT id, SUM(v IGNORE NULLS) OVER (ORDER BY id) FROM jl",
        ("ignore nulls",),
    ),
    Unsupported(
        "lateral_subquery",
        "SELECT a.id, x.c FROM jl a, LATERAL (SELECT a.v + 1 AS c) x",
        ("lateral",),
    ),
    Unsupported(
        "rollup_inside_grouping_sets",
        "SELECT k, g, SUM(v) FROM jl GROUP BY GROUPING SETS (ROLLUP (k, g), (g))",
        ("rollup",),
    ),
    Unsupported(
        "pivot_in_from",
        "SELECT * FROM jl PIVOT (SUM(v) FOR g IN ('a', 'b'))",
        ("pivot",),
    ),
    Unsupported(
        # IN as a value is a mark join; correlated, it is not built.
        "correlated_in_subquery_as_value",
        "SELECT id, k IN (SELECT k FROM jr WHERE jr.id = jl.id) FROM jl",
        ("in (subquery)",),
    ),
    Unsupported(
        "recursive_cte",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) "
        "SELECT n FROM r",
        ("recursive",),
    ),
]


@pytest.mark.parametrize("case", UNSUPPORTED, ids=[case.id for case in UNSUPPORTED])
def test_unsupported_sql_names_construct(case: Unsupported, join_connections) -> None:
    from shoal.errors import UnsupportedError

    with pytest.raises(UnsupportedError) as info:
        join_connections(3).sql(case.sql).to_arrow()
    message = str(info.value).lower()
    assert any(keyword in message for keyword in case.keywords), (
        f"UnsupportedError for {case.sql!r} should name the construct "
        f"(one of {case.keywords}); got: {info.value}"
    )
