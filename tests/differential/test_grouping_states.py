"""Differential tests: GROUPING SETS / ROLLUP / CUBE whose Expand merges partial states
in the task (``Expand[states]``: each set merged from the narrowest wider set already
merged) — shoal against DuckDB.

Sets nested (ROLLUP), crossed (CUBE), disjoint and repeated; NULL keys beside the
NULLs a set puts in its missing keys; every decomposable aggregate (count, count(*),
sum of integers / decimals / floats, avg, min, max of numbers, strings and dates,
approx_count_distinct of a few values, exact in both engines). Each case runs at partitions 1, 3 and 4, with the default batch
size and with 64-row batches (the partial aggregate then hands on many unmerged
chunks); each plan must show ``Expand[states]``.
"""

from __future__ import annotations

import re

import pytest
from support.cases import Case, check_case, u

CASES = [
    u(
        "rollup_four_levels",
        """
        SELECT region, status, store, is_returned, sum(qty), count(*), avg(price)
        FROM sales GROUP BY ROLLUP (region, status, store, is_returned)""",
    ),
    u(
        "rollup_min_max_strings_dates_floats",
        """
        SELECT store, status, min(product), max(product), min(order_date), max(ship_date),
               min(weight), max(weight), sum(weight)
        FROM sales GROUP BY ROLLUP (store, status)""",
    ),
    u(
        "cube_three_counts",
        """
        SELECT region, status, is_returned, count(qty), count(*), sum(discount)
        FROM sales GROUP BY CUBE (region, status, is_returned)""",
    ),
    u(
        "disjoint_and_repeated_sets",
        """
        SELECT store, region, status, count(*), sum(qty), grouping(store, region, status)
        FROM sales
        GROUP BY GROUPING SETS ((store, region), (status), (region), (store, region), ())""",
    ),
    u(
        "plain_keys_beside_rollup",
        """
        SELECT status, region, store, max(price), min(tax_rate)
        FROM sales GROUP BY status, ROLLUP (region, store)""",
    ),
    u(
        "rollup_expression_keys_and_approx_distinct",
        """
        SELECT store % 4 AS s4, qty % 5 AS q5, approx_count_distinct(product), avg(qty)
        FROM sales GROUP BY ROLLUP (store % 4, qty % 5)""",
    ),
    u(
        "rollup_filtered_to_few_rows",
        """
        SELECT region, status, sum(qty), count(*) FROM sales WHERE id < 40
        GROUP BY ROLLUP (region, status)""",
    ),
    u(
        "rollup_empty_input",
        """
        SELECT store, status, sum(qty), count(*) FROM sales_empty
        GROUP BY ROLLUP (store, status)""",
    ),
    u(
        "rollup_tiny_null_keys",
        """
        SELECT k, i, sum(x), count(*), min(s), grouping(k), grouping(i)
        FROM tiny GROUP BY ROLLUP (k, i)""",
    ),
]

PARTITIONS = [1, 3, 4]
BATCHES = [None, 64]


@pytest.mark.parametrize("batch_rows", BATCHES, ids=["batch_default", "batch_64"])
@pytest.mark.parametrize("partitions", PARTITIONS, ids=lambda p: f"p{p}")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_grouping_states(
    case: Case, partitions: int, batch_rows: int | None, batch_connections, diff_data
) -> None:
    con = batch_connections(partitions, batch_rows)
    text = con.explain(case.sql)
    if re.search(r"partitions=[2-9]", text):  # parallel: the aggregate is split
        assert "Expand[states]" in text, text
    check_case(con, case, diff_data.tables, partitions)
