"""Windows under the memory budget: window partitions computed one at a time, a
partition past the budget spilled and computed in pieces, and the typed error for the
calls that need a whole partition at once.

Tiny budgets (1 MiB, batches of 512 rows) over 24,000 rows; every result is checked
against DuckDB, and after every query the spill folder is empty and the pool at zero.
Every test runs with pipelined exchanges and with materialized ones
(``retry_policy="task"``: stage by stage through the spool; each task has a pool of its
own, so there is no one pool to check), whose tasks spill alike.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from support.compare import assert_same_result

import shoal
from shoal import RetryPolicy
from shoal.errors import ExecutionError, ResourceExhaustedError


def _table() -> pa.Table:
    rng = np.random.default_rng(11)
    n = 24_000
    v = rng.integers(0, 500, n)
    f = rng.normal(size=n)
    return pa.table(
        {
            "id": np.arange(n),
            # ~150 rows per small group; group 0 is a third of all rows.
            "g": np.where(rng.random(n) < 0.33, 0, rng.integers(1, 300, n)),
            "t": rng.integers(0, 2_000, n),  # ties: peer groups of ~30 rows
            "v": pa.array(v, mask=v % 23 == 0),
            "f": pa.array(f, mask=np.arange(n) % 31 == 0),
            "p": pa.array([Decimal(int(x) * 137).scaleb(-2) for x in v], pa.decimal128(12, 2)),
            "s": pa.array([f"s{i % 37}" for i in range(n)], mask=np.arange(n) % 41 == 0),
        }
    )


TABLE = _table()


@pytest.fixture(scope="module")
def duck() -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    db.register("w", TABLE)
    return db


@pytest.fixture(params=[RetryPolicy.NONE, RetryPolicy.TASK], ids=["pipelined", "materialized"])
def policy(request: pytest.FixtureRequest) -> RetryPolicy:
    """The exchange mode: pipelined (no retry) or materialized (task retry)."""
    mode: RetryPolicy = request.param
    return mode


def _connect(
    tmp_path: Path, partitions: int, policy: RetryPolicy, **settings: Any
) -> shoal.Connection:
    settings.setdefault("memory_limit", "1MiB")
    settings.setdefault("batch_rows", 512)
    con = shoal.connect(partitions, spill_dir=tmp_path, retry_policy=policy, **settings)
    con.register_arrow("w", TABLE)
    return con


def _windows(figures: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        op
        for st in figures["stages"]
        for op in st["operators"]
        if op["operator"].startswith("Window")
    ]


def _check(
    tmp_path: Path,
    duck: duckdb.DuckDBPyConnection,
    sql: str,
    partitions: int,
    policy: RetryPolicy,
    **settings: Any,
) -> list[dict[str, Any]]:
    """Run ``sql`` under the tiny budget, compare with DuckDB; the Window operators'
    figures."""
    stream = _connect(tmp_path, partitions, policy, **settings).stream(sql)
    result = stream.result()
    assert_same_result(result.to_arrow(), duck.sql(sql).to_arrow_table(), False, context=sql)
    assert list(tmp_path.iterdir()) == []
    _assert_pool_empty(stream, policy)
    return _windows(json.loads(result.explain_analyze_json()))


def _assert_pool_empty(stream: Any, policy: RetryPolicy) -> None:
    """The query's pool holds nothing once it ended (a materialized query has none)."""
    if policy is RetryPolicy.NONE:
        assert stream.memory.reserved == 0
    else:
        assert stream.memory is None


def _exhausted(stream: Any, policy: RetryPolicy) -> ResourceExhaustedError:
    """The typed error reading ``stream`` fails with. A materialized query reports a
    failed task as an ``ExecutionError`` (where, after how many attempts) caused by it."""
    with pytest.raises(ExecutionError) as info:
        stream.read_all()
    err = info.value
    if policy is RetryPolicy.TASK and not isinstance(err, ResourceExhaustedError):
        assert "not retried" in str(err)
        err = err.__cause__  # type: ignore[assignment]
    assert isinstance(err, ResourceExhaustedError), repr(info.value)
    return err


#: Calls that can be computed over a spilled partition piece by piece.
PIECEWISE = [
    "row_number() OVER (PARTITION BY g ORDER BY t, id)",
    "rank() OVER (PARTITION BY g ORDER BY t)",
    "dense_rank() OVER (PARTITION BY g ORDER BY t DESC)",
    "percent_rank() OVER (PARTITION BY g ORDER BY t)",
    "cume_dist() OVER (PARTITION BY g ORDER BY t)",
    "ntile(7) OVER (PARTITION BY g ORDER BY id)",
    "lag(v, 3, -1) OVER (PARTITION BY g ORDER BY id)",
    "lead(s, 2) OVER (PARTITION BY g ORDER BY id)",
    "sum(v) OVER (PARTITION BY g ORDER BY t)",
    "sum(p) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 2 FOLLOWING)",
    "sum(f) OVER (PARTITION BY g ORDER BY id)",
    "avg(v) OVER (PARTITION BY g ORDER BY t)",
    "avg(p) OVER (PARTITION BY g ORDER BY id ROWS UNBOUNDED PRECEDING)",
    "count(v) OVER (PARTITION BY g ORDER BY t)",
    "count(*) OVER (PARTITION BY g ORDER BY t, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)",
    "min(s) OVER (PARTITION BY g ORDER BY id)",
    "max(v) OVER (PARTITION BY g ORDER BY t)",
    "first_value(v) OVER (PARTITION BY g ORDER BY id)",
    "last_value(s) OVER (PARTITION BY g ORDER BY t, id)",
    "sum(v) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN 5 PRECEDING AND 3 FOLLOWING)",
    "max(s) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN 2 FOLLOWING AND 9 FOLLOWING)",
    "mode(v % 7) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN 20 PRECEDING AND CURRENT ROW)",
    "string_agg(s, '|') OVER (PARTITION BY g ORDER BY id ROWS BETWEEN 3 PRECEDING AND 1 PRECEDING)",
    "count(v) OVER (PARTITION BY g ORDER BY t RANGE BETWEEN CURRENT ROW AND CURRENT ROW)",
    "row_number() OVER (ORDER BY t, id)",
    "sum(v) OVER (ORDER BY t)",
    "sum(v) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN 3 PRECEDING AND 3 FOLLOWING EXCLUDE CURRENT ROW)",
    "first_value(v IGNORE NULLS) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN 5 PRECEDING AND 2 FOLLOWING)",
    "count(v) OVER (PARTITION BY g ORDER BY t GROUPS BETWEEN CURRENT ROW AND CURRENT ROW)",
    "min_by(s, id, 3) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN 4 PRECEDING AND CURRENT ROW)",
    "max(p) OVER (PARTITION BY g ORDER BY t RANGE BETWEEN CURRENT ROW AND CURRENT ROW EXCLUDE TIES)",
]


#: Five calls per query (a Window operator per distinct window, each spilling).
GROUPS = [PIECEWISE[i : i + 5] for i in range(0, len(PIECEWISE), 5)]


@pytest.mark.parametrize("calls", GROUPS, ids=[f"calls{i}" for i in range(len(GROUPS))])
def test_a_partition_past_the_budget_spills_and_is_computed_in_pieces(
    tmp_path: Path, duck: duckdb.DuckDBPyConnection, calls: list[str], policy: RetryPolicy
) -> None:
    columns = ", ".join(f"{c} AS x{i}" for i, c in enumerate(calls))
    sql = f"SELECT id, g, t, v, {columns} FROM w"
    windows = _check(tmp_path, duck, sql, 3, policy)
    assert windows and all(op["spill_files"] >= 1 for op in windows)
    assert all(op["spilled_bytes"] > 0 for op in windows)


def test_several_calls_in_one_window_share_the_pieces(
    tmp_path: Path, duck: duckdb.DuckDBPyConnection, policy: RetryPolicy
) -> None:
    over = "OVER (PARTITION BY g ORDER BY t)"
    sql = (
        f"SELECT id, rank() {over} AS r, sum(v) {over} AS s, min(f) {over} AS m,"
        f" lag(id, 40) OVER (PARTITION BY g ORDER BY t, id) AS l FROM w"
    )
    for partitions in (1, 4):
        windows = _check(tmp_path, duck, sql, partitions, policy)
        assert sum(op["spill_files"] for op in windows) >= 1


def test_many_small_partitions_past_the_budget_need_no_spill(
    tmp_path: Path, duck: duckdb.DuckDBPyConnection, policy: RetryPolicy
) -> None:
    # The whole-partition frame cannot be split, but no one partition is past the
    # budget: the task's input is, and it completes without spilling.
    sql = "SELECT id, sum(v) OVER (PARTITION BY g) AS x, median(f) OVER (PARTITION BY g) AS m FROM w WHERE g > 0"
    windows = _check(tmp_path, duck, sql, 1, policy, memory_limit="512KiB")
    assert all(op["spill_files"] == 0 for op in windows)
    assert max(op["peak_state_rows"] for op in windows) < 4_000  # of ~16,000


@pytest.mark.parametrize(
    "call",
    [
        "sum(v) OVER (PARTITION BY g)",
        "count(*) OVER (PARTITION BY g ORDER BY t ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)",
        "sum(v) OVER (PARTITION BY g ORDER BY t RANGE BETWEEN 5 PRECEDING AND CURRENT ROW)",
        "median(v) OVER (PARTITION BY g)",
        "rank() OVER (PARTITION BY g)",
        "sum(v) OVER (PARTITION BY g ORDER BY t GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW)",
        "lag(v IGNORE NULLS) OVER (PARTITION BY g ORDER BY id)",
        "count(*) OVER (PARTITION BY g ORDER BY id ROWS UNBOUNDED PRECEDING EXCLUDE CURRENT ROW)",
    ],
)
def test_a_partition_needed_at_once_past_the_budget_fails_typed(
    tmp_path: Path, call: str, policy: RetryPolicy
) -> None:
    con = _connect(tmp_path, 2, policy, memory_limit="256KiB")
    stream = con.stream(f"SELECT id, {call} AS x FROM w")
    err = _exhausted(stream, policy)
    assert err.operator.startswith("Window")
    assert err.budget == 256 << 10 and err.needed > 0
    assert err.stage is not None and err.partition is not None
    assert list(tmp_path.iterdir()) == []
    _assert_pool_empty(stream, policy)


def test_a_peer_group_past_the_budget_fails_typed(tmp_path: Path, policy: RetryPolicy) -> None:
    # Pieces are cut where peer groups start; one peer group of 24,000 rows cannot be.
    con = _connect(tmp_path, 1, policy, memory_limit="256KiB")
    stream = con.stream("SELECT id, rank() OVER (ORDER BY t // 100000) AS r FROM w")
    assert _exhausted(stream, policy).operator.startswith("Window")
    assert list(tmp_path.iterdir()) == []


def test_explain_analyze_shows_the_window_spill(tmp_path: Path, policy: RetryPolicy) -> None:
    con = _connect(tmp_path, 1, policy)
    text = con.sql("EXPLAIN ANALYZE SELECT id, sum(v) OVER (ORDER BY id) AS x FROM w").fetchall()
    (line,) = [row[0] for row in text if "Window" in row[0] and "spill_files=" in row[0]]
    assert "spilled=" in line and "spill_passes=1" in line
    assert list(tmp_path.iterdir()) == []
