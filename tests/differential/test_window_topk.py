"""Differential tests: ranking filters over windows (``WindowTopK``) — shoal against DuckDB.

A filter ``r <= k`` / ``r < k`` / ``r = 1`` (or QUALIFY) over a window computing only
row_number / rank / dense_rank keeps each partition's top rows below the window, per
task before the exchange and again after it. Cases cover ties (rank and dense_rank
keep them), NULLs in the PARTITION BY and ORDER BY keys, k = 1, k larger than every
partition, no PARTITION BY, several ranking calls in one window and a window over a
ROLLUP. row_number over tied keys picks unspecified rows, so those cases select only
the partition key, the order key and the number (deterministic as a multiset).

Each case runs at partitions 1, 3 and 4, with the default batch size and with 64-row
batches (so a task's top-k is compacted many times, and a partial top-k whose
partitions are small passes its rows on); each plan must show the top-k.
"""

from __future__ import annotations

import re

import pytest
from support.cases import Case, check_case, u

CASES = [
    u(
        "rank_ties_null_partition_and_order_keys",
        """
        SELECT id, store, qty, rank() OVER (PARTITION BY store ORDER BY qty) AS r FROM sales
        QUALIFY r <= 3""",
    ),
    u(
        "rank_desc_nulls_first",
        """
        SELECT * FROM (SELECT id, region, qty,
                              rank() OVER (PARTITION BY region ORDER BY qty DESC NULLS FIRST) AS r
                       FROM sales) t
        WHERE r <= 2""",
    ),
    u(
        "rank_k1",
        """
        SELECT id, status, price FROM sales
        QUALIFY rank() OVER (PARTITION BY status ORDER BY price DESC) = 1""",
    ),
    u(
        "rank_less_than",
        """
        SELECT id, store, weight FROM sales
        QUALIFY rank() OVER (PARTITION BY store ORDER BY weight NULLS FIRST) < 4""",
    ),
    u(
        "rank_literal_on_the_left",
        """
        SELECT * FROM (SELECT id, store, order_date,
                              rank() OVER (PARTITION BY store ORDER BY order_date) AS r
                       FROM sales) t
        WHERE 3 >= r""",
    ),
    u(
        "dense_rank_ties",
        """
        SELECT id, region, qty, dense_rank() OVER (PARTITION BY region ORDER BY qty) AS d
        FROM sales QUALIFY d <= 3""",
    ),
    u(
        "dense_rank_two_partition_keys_nulls_last",
        """
        SELECT id, region, status, qty,
               dense_rank() OVER (PARTITION BY region, status ORDER BY qty DESC NULLS LAST) AS d
        FROM sales QUALIFY d < 3""",
    ),
    u(
        "row_number_total_order",
        """
        SELECT id, region, status FROM sales
        QUALIFY row_number() OVER (PARTITION BY region, status ORDER BY qty DESC, id) = 1""",
    ),
    u(
        "row_number_tied_keys",
        """
        SELECT store, qty, rn FROM (
            SELECT store, qty, row_number() OVER (PARTITION BY store ORDER BY qty) AS rn
            FROM sales) t
        WHERE rn <= 5""",
    ),
    u(
        "row_number_k_larger_than_partitions",
        """
        SELECT id, store, row_number() OVER (PARTITION BY store ORDER BY id) AS rn
        FROM sales QUALIFY rn <= 100000""",
    ),
    u(
        "rank_k_larger_than_partitions",
        """
        SELECT id, status, qty, rank() OVER (PARTITION BY status ORDER BY qty) AS r
        FROM sales QUALIFY r <= 100000""",
    ),
    u(
        "rank_no_partition_by",
        """
        SELECT id, price, rank() OVER (ORDER BY price DESC NULLS LAST) AS r
        FROM sales QUALIFY r <= 10""",
    ),
    u(
        "dense_rank_no_partition_by",
        """
        SELECT id, qty FROM sales QUALIFY dense_rank() OVER (ORDER BY qty NULLS FIRST) <= 2""",
    ),
    u(
        "several_ranking_calls",
        """
        SELECT id, store, qty,
               row_number() OVER (PARTITION BY store ORDER BY qty, id) AS rn,
               rank() OVER (PARTITION BY store ORDER BY qty, id) AS r,
               dense_rank() OVER (PARTITION BY store ORDER BY qty, id) AS d
        FROM sales QUALIFY d <= 4""",
    ),
    u(
        "rank_filter_with_other_conjuncts",
        """
        SELECT id, store, qty, rank() OVER (PARTITION BY store ORDER BY qty DESC) AS r
        FROM sales QUALIFY r <= 5 AND qty % 2 = 0 AND r > 1""",
    ),
    u(
        "rank_string_order_key_tiny",
        """
        SELECT id, k, s, rank() OVER (PARTITION BY k ORDER BY s NULLS FIRST) AS r FROM tiny
        QUALIFY r <= 1""",
    ),
    u(
        "rank_float_order_key_tiny",
        """
        SELECT id, k, x, dense_rank() OVER (PARTITION BY k ORDER BY x DESC) AS dr FROM tiny
        QUALIFY dr <= 1""",
    ),
    u(
        "rank_over_rollup_q67_style",
        """
        SELECT * FROM (
            SELECT region, status, store, sum(qty) AS s,
                   rank() OVER (PARTITION BY region ORDER BY sum(qty) DESC) AS r
            FROM sales GROUP BY ROLLUP (region, status, store)) t
        WHERE r <= 4""",
    ),
    u(
        "rank_empty_input",
        """
        SELECT id, rank() OVER (PARTITION BY store ORDER BY qty) AS r FROM sales_empty
        QUALIFY r <= 2""",
    ),
]

PARTITIONS = [1, 3, 4]
BATCHES = [None, 64]


@pytest.mark.parametrize("batch_rows", BATCHES, ids=["batch_default", "batch_64"])
@pytest.mark.parametrize("partitions", PARTITIONS, ids=lambda p: f"p{p}")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_ranking_filter(
    case: Case, partitions: int, batch_rows: int | None, batch_connections, diff_data
) -> None:
    con = batch_connections(partitions, batch_rows)
    text = con.explain(case.sql)
    assert "WindowTopK[" in text, text
    if re.search(r"partitions=[2-9]", text):  # a parallel input: candidates move
        assert "WindowTopK[partial]" in text and "WindowTopK[final]" in text, text
    check_case(con, case, diff_data.tables, partitions)


def test_other_window_calls_keep_every_row(batch_connections, diff_data) -> None:
    """A count over the partition beside the rank needs every row: no top-k."""
    case = u(
        "rank_beside_count",
        """
        SELECT id, store, rank() OVER (PARTITION BY store ORDER BY qty) AS r,
               count(*) OVER (PARTITION BY store ORDER BY qty) AS c
        FROM sales QUALIFY r <= 2""",
    )
    con = batch_connections(3, None)
    assert "WindowTopK" not in con.explain(case.sql)
    check_case(con, case, diff_data.tables, 3)
