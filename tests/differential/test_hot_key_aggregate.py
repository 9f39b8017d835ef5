"""Hot-key aggregate mitigation (operators/aggregate.py) against DuckDB on skewed data.

Small batches (``batch_rows``) make the partial aggregate's chunk small, so a few
ten thousand rows take every path: fold as always, pass cold rows through with the
hot keys pre-aggregated, hot keys found only later in the input.
"""

from __future__ import annotations

import decimal
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.compare import assert_same_result, duckdb_result
from support.runtime import runtime_kwargs

import shoal

from .conftest import retry_policy_under_test

ROWS = 20_000
BATCH_ROWS = 512  # chunk of the partial aggregate: 4 batches
ROW_GROUP = 2_500  # splits: every task of a scan stage gets some


def _keys(kind: str, rng: np.random.Generator) -> np.ndarray:
    wide = np.arange(ROWS, dtype=np.int64) * 7 + 1  # all distinct
    rng.shuffle(wide)
    if kind == "uniform":
        return wide
    if kind == "hot90":
        return np.where(rng.random(ROWS) < 0.9, 0, wide)
    if kind == "few_hot":
        # Three keys with 5% each, the rest distinct: the partial cannot shrink the input.
        pick = rng.random(ROWS)
        return np.select([pick < 0.05, pick < 0.10, pick < 0.15], [3, 5, 8], wide)
    if kind == "hot_late":
        # The hot key only in the second half of the input (sorted files).
        keys = wide.copy()
        late = np.arange(ROWS) >= ROWS // 2
        keys[late & (rng.random(ROWS) < 0.5)] = 42
        return keys
    if kind == "zipf":
        w = np.arange(1, ROWS + 1, dtype=np.float64) ** -1.1
        c = np.cumsum(w)
        return np.searchsorted(c / c[-1], rng.random(ROWS)).astype(np.int64)
    raise AssertionError(kind)


def skewed_table(kind: str, null_hot: bool = False) -> pa.Table:
    rng = np.random.default_rng(7)
    k = _keys(kind, rng)
    hot = k == np.bincount(np.unique(k, return_inverse=True)[1]).argmax()
    key = pa.array(k, mask=hot if null_hot else None)
    v = rng.normal(size=ROWS)
    v[rng.random(ROWS) < 0.001] = np.nan
    vmask = rng.random(ROWS) < 0.05
    cents = rng.integers(-(10**6), 10**6, ROWS)
    return pa.table(
        {
            "k": key,
            "g": pa.array(np.where(rng.random(ROWS) < 0.5, "a", "b")),
            "s": pa.array([f"s{x % 997}" for x in k]),
            "v": pa.array(v, mask=vmask),
            "i": pa.array(rng.integers(-(2**40), 2**40, ROWS), mask=rng.random(ROWS) < 0.02),
            "d": pa.array(
                [decimal.Decimal(int(c)).scaleb(-2) for c in cents], pa.decimal128(12, 2)
            ),
        }
    )


QUERIES = [
    "SELECT k, count(*) AS n, count(v) AS nv, sum(v) AS sv, avg(v) AS av,"
    " min(v) AS lo, max(v) AS hi FROM t GROUP BY k",
    "SELECT k, sum(i) AS si, avg(i) AS ai, sum(d) AS sd, avg(d) AS ad, min(d) AS md,"
    " max(s) AS ms FROM t GROUP BY k",
    "SELECT k, g, count(*) AS n, sum(d) AS sd FROM t GROUP BY k, g",
    "SELECT s, k, count(*) AS n FROM t GROUP BY s, k",
    "SELECT k, count(DISTINCT g) AS dg, sum(DISTINCT i % 5) AS sdi FROM t GROUP BY k",
    "SELECT k, g, count(*) AS n, sum(v) AS sv FROM t GROUP BY GROUPING SETS ((k, g), (k), ())",
    "SELECT count(*) AS groups, sum(n) AS rows FROM (SELECT k, count(*) AS n FROM t GROUP BY k)",
]


def _connect(tmp_path: Path, table: pa.Table, partitions: int, **settings: Any) -> shoal.Connection:
    path = tmp_path / "t.parquet"
    if not path.exists():
        pq.write_table(table, path, row_group_size=ROW_GROUP)
    con = shoal.connect(
        partitions,
        batch_rows=BATCH_ROWS,
        retry_policy=retry_policy_under_test(),
        **runtime_kwargs(),
        **settings,
    )
    con.register_parquet("t", path)
    return con


def _check(con: shoal.Connection, table: pa.Table, queries: list[str]) -> None:
    for sql in queries:
        expected = duckdb_result(sql, {"t": table})
        assert_same_result(con.sql(sql).to_arrow(), expected, ordered=False, context=sql)


@pytest.mark.parametrize("kind", ["few_hot", "hot90", "zipf"])
@pytest.mark.parametrize("partitions", [1, 3, 4])
def test_skewed_aggregates_match_duckdb(tmp_path: Path, kind: str, partitions: int) -> None:
    table = skewed_table(kind)
    _check(_connect(tmp_path, table, partitions), table, QUERIES[:2])


def test_distinct_grouping_sets_multi_key(tmp_path: Path) -> None:
    table = skewed_table("few_hot")
    _check(_connect(tmp_path, table, 3), table, QUERIES[2:])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["uniform", "hot90", "few_hot", "hot_late", "zipf"])
@pytest.mark.parametrize("partitions", [1, 3, 4])
def test_every_query_every_skew(tmp_path: Path, kind: str, partitions: int) -> None:
    table = skewed_table(kind)
    _check(_connect(tmp_path, table, partitions), table, QUERIES)


def test_null_hot_key(tmp_path: Path) -> None:
    table = skewed_table("few_hot", null_hot=True)
    _check(_connect(tmp_path, table, 3), table, QUERIES[:3])


def _partial_figures(result: Any) -> dict[str, int]:
    data = json.loads(result.explain_analyze_json())
    ops = [
        op
        for stage in data["stages"]
        for op in stage["operators"]
        if op["operator"].startswith("Aggregate[partial]")
    ]
    return {
        key: sum(op[key] for op in ops)
        for key in ("passthrough_rows", "hot_keys", "hot_rows_absorbed")
    }


def _final_task_rows(result: Any) -> list[int]:
    data = json.loads(result.explain_analyze_json())
    for stage in data["stages"]:
        if any(op["operator"].startswith("Aggregate[final]") for op in stage["operators"]):
            return [f["rows_in"] for f in stage["task_figures"]]
    raise AssertionError("no final aggregate")


SQL = "SELECT k, count(*) AS n, sum(v) AS sv FROM t GROUP BY k"


def test_few_hot_keys_are_pre_aggregated_and_shown(tmp_path: Path) -> None:
    table = skewed_table("few_hot")
    con_on = _connect(tmp_path, table, 4)
    con_off = _connect(tmp_path, table, 4, hot_key_aggregate=False)
    r_on, r_off = con_on.sql(SQL), con_off.sql(SQL)
    on_figures, off_figures = _partial_figures(r_on), _partial_figures(r_off)
    # Three keys hold 15% of the rows; the rest are distinct.
    assert on_figures["hot_keys"] == 3
    assert on_figures["passthrough_rows"] > ROWS // 2
    assert on_figures["hot_rows_absorbed"] > 0.1 * ROWS
    assert off_figures == {"passthrough_rows": 0, "hot_keys": 0, "hot_rows_absorbed": 0}
    assert "hot_keys=3" in r_on.explain_analyze()
    rows = _final_task_rows(r_on)
    assert max(rows) <= 2 * float(np.median(rows))
    expected = duckdb_result(SQL, {"t": table})
    for r in (r_on, r_off):
        assert_same_result(r.to_arrow(), expected, ordered=False, context=SQL)


def test_hot_key_found_late_is_pre_aggregated(tmp_path: Path) -> None:
    table = skewed_table("hot_late")
    con = _connect(tmp_path, table, 2)
    figures = _partial_figures(con.sql(SQL))
    assert figures["hot_keys"] >= 1
    assert figures["hot_rows_absorbed"] > 0.2 * ROWS


def test_one_hot_key_over_distinct_rest(tmp_path: Path) -> None:
    # 90% of the rows on one key, the rest distinct: the rest passes through, the hot
    # key is folded in its producer.
    table = skewed_table("hot90")
    result = _connect(tmp_path, table, 3).sql(SQL)
    figures = _partial_figures(result)
    assert figures["hot_keys"] >= 1
    assert figures["hot_rows_absorbed"] > 0.8 * ROWS
    rows = _final_task_rows(result)
    assert max(rows) <= 2 * float(np.median(rows))
    assert_same_result(result.to_arrow(), duckdb_result(SQL, {"t": table}), ordered=False)


def test_grouping_pays_without_pass_through(tmp_path: Path) -> None:
    # A thousand keys, none hot: the partial shrinks its input and folds it all.
    table = skewed_table("uniform")
    table = table.set_column(0, "k", pa.array(np.arange(ROWS) % 1000))
    result = _connect(tmp_path, table, 2).sql(SQL)
    assert _partial_figures(result) == {
        "passthrough_rows": 0,
        "hot_keys": 0,
        "hot_rows_absorbed": 0,
    }
    assert_same_result(result.to_arrow(), duckdb_result(SQL, {"t": table}), ordered=False)
