"""Join filters: a hash join's build keys prune and filter the scan below its probe
side (same task), and a partitioned inner join whose probe side is small filters its
build side by the probe keys (probe side read first).

A fact table clustered by its key (one key range per row group) joined with a small,
filtered dimension, checked against DuckDB and by the row groups the scan reads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shoal

ROWS_PER_GROUP = 1000
GROUPS = 8


def _tables() -> dict[str, pa.Table]:
    rng = np.random.default_rng(12)
    n = ROWS_PER_GROUP * GROUPS
    day = np.sort(rng.integers(0, 800, n))  # clustered: row group g holds days ~[100g, 100g+99]
    fact = pa.table(
        {
            "f_day": pa.array(day, pa.int64()),
            "f_item": pa.array(rng.integers(1, 200, n), pa.int64()),
            "f_qty": pa.array(rng.integers(1, 50, n), pa.int64()),
        }
    )
    days = pa.table(
        {
            "d_day": pa.array(np.arange(800), pa.int64()),
            "d_month": pa.array(np.arange(800) // 30, pa.int64()),
        }
    )
    items = pa.table(
        {
            "i_item": pa.array(np.arange(1, 200), pa.int64()),
            "i_color": pa.array([["red", "blue", "green"][i % 3] for i in range(199)]),
        }
    )
    return {"fact": fact, "days": days, "items": items}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("join_filters")
    for name, table in _tables().items():
        pq.write_table(table, root / f"{name}.parquet", row_group_size=ROWS_PER_GROUP)
    return root


def _connect(data_dir: Path, partitions: int = 2, **settings: Any) -> shoal.Connection:
    con = shoal.connect(partitions=partitions, **settings)
    for name in _tables():
        con.register_parquet(name, str(data_dir / f"{name}.parquet"))
    return con


def _duckdb(sql: str) -> list[tuple[Any, ...]]:
    db = duckdb.connect()
    for name, table in _tables().items():
        db.register(name, table)
    return sorted(db.sql(sql).fetchall())


def _fact_scan(result: shoal.Result) -> dict[str, Any]:
    """The EXPLAIN ANALYZE figures of the scan of ``fact``."""
    data = json.loads(result.explain_analyze_json())
    found = [
        op
        for stage in data["stages"]
        for op in stage["operators"]
        if op["operator"].startswith("Scan fact ")
    ]
    assert len(found) == 1, found
    return found[0]


MONTH = """
    SELECT f_item, SUM(f_qty) AS qty FROM fact JOIN days ON f_day = d_day
    WHERE d_month = 10 GROUP BY f_item"""


@pytest.mark.parametrize("partitions", [1, 3])
def test_selective_dimension_skips_row_groups(data_dir: Path, partitions: int) -> None:
    con = _connect(data_dir, partitions)
    result = con.sql(MONTH)
    assert sorted(tuple(r.values()) for r in result.to_arrow().to_pylist()) == _duckdb(MONTH)
    scan = _fact_scan(result)
    # Days 300..329 lie in one or two of the eight row groups.
    assert scan["row_groups_read"] <= 2
    assert scan["row_groups_skipped"] >= GROUPS - 2
    plan = "\n".join(con.sql("EXPLAIN " + MONTH).to_arrow().column(0).to_pylist())
    assert "join_filters=[jf0:f_day]" in plan


def test_bitmap_drops_rows_inside_the_range(data_dir: Path) -> None:
    # Every third item: the range covers all row groups, the bitmap drops the others.
    sql = """
        SELECT COUNT(*), SUM(f_qty) FROM fact JOIN items ON f_item = i_item
        WHERE i_color = 'green'"""
    result = _connect(data_dir).sql(sql)
    assert [tuple(r.values()) for r in result.to_arrow().to_pylist()] == _duckdb(sql)
    scan = _fact_scan(result)
    assert scan["rows"] < GROUPS * ROWS_PER_GROUP / 2


def test_through_left_join_and_several_filters(data_dir: Path) -> None:
    sql = """
        SELECT f_day, f_item, i_color, d_month FROM fact
        LEFT JOIN items ON f_item = i_item AND i_color = 'red'
        JOIN days ON f_day = d_day
        WHERE d_month IN (3, 4)"""
    result = _connect(data_dir, 3).sql(sql)
    assert sorted(tuple(r.values()) for r in result.to_arrow().to_pylist()) == _duckdb(sql)
    assert _fact_scan(result)["row_groups_read"] <= 3


def test_empty_build_side_reads_no_row_group(data_dir: Path) -> None:
    sql = "SELECT f_item, f_qty FROM fact JOIN days ON f_day = d_day WHERE d_month = 99"
    result = _connect(data_dir).sql(sql)
    assert result.to_arrow().num_rows == 0
    assert _fact_scan(result)["row_groups_read"] == 0


def test_switched_off(data_dir: Path) -> None:
    con = _connect(data_dir, join_filters=False)
    plan = "\n".join(con.sql("EXPLAIN " + MONTH).to_arrow().column(0).to_pylist())
    assert "join_filters" not in plan
    assert sorted(tuple(r.values()) for r in con.sql(MONTH).to_arrow().to_pylist()) == _duckdb(
        MONTH
    )


@pytest.mark.parametrize("small", [True, False], ids=["probe_small", "probe_overflows"])
def test_probe_first_filters_the_build_side(
    data_dir: Path, small: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partitioned inner join that reads its probe side first: a small probe side
    publishes its keys to the build side's runtime filter, a large one withdraws (the
    filter passes everything). Same answer either way."""
    from shoal.physical.operators import hash_join
    from shoal.physical.rules import enforce_distribution

    # Here the estimates put the fact table on the probe side; pretend they expected
    # it to be the smaller side, so the join reads it first.
    monkeypatch.setattr(enforce_distribution, "_reads_probe_first", lambda plan: True)
    if small:
        monkeypatch.setattr(hash_join, "_PROBE_FIRST_BYTES", 1 << 30)
    else:
        monkeypatch.setattr(hash_join, "_PROBE_FIRST_BYTES", 0)
    # ``f_qty % 49 = 7`` keeps the rows of ``f_qty = 7`` (1..49) but not its estimate: the
    # min/max estimate of ``f_qty = 7`` (1/49 of fact) would make fact the build side.
    sql = """
        SELECT d_month, COUNT(*), SUM(f_qty) FROM fact JOIN days ON f_day = d_day
        WHERE f_qty % 49 = 7 GROUP BY d_month"""
    con = _connect(data_dir, 2, broadcast_threshold_bytes=1)
    result = con.sql(sql)
    assert sorted(tuple(r.values()) for r in result.to_arrow().to_pylist()) == _duckdb(sql)
    lines = [line for line in result.explain_analyze().splitlines() if "RuntimeFilter" in line]
    assert len(lines) == 1, lines
    # The build side (days, 800 rows) keeps only the days of the probe rows (qty 7).
    assert re.search(r"rows_in=800\b", lines[0]), lines[0]
    kept = int(lines[0].split("(rows=")[1].split()[0])
    if small:
        assert kept < 400
    else:
        assert kept == 800


# An aggregate per item below a join with the red items: the aggregate is split around
# a hash exchange, so the join's keys reach the fact scan only across stages.
PER_ITEM = """
    SELECT a.f_item, a.qty, i_item FROM (SELECT f_item, SUM(f_qty) AS qty FROM fact GROUP BY f_item) a
    {join} items ON a.f_item = i_item WHERE i_color {color}"""


def _plan(con: shoal.Connection, sql: str) -> str:
    return "\n".join(con.sql("EXPLAIN " + sql).to_arrow().column(0).to_pylist())


def _stage_of(plan: str, operator: str) -> str:
    """The ``Stage n`` header above the first line of ``plan`` naming ``operator``."""
    stage = ""
    for line in plan.splitlines():
        if line.startswith("Stage "):
            stage = line.split(" (")[0]
        elif operator in line:
            return stage
    raise AssertionError(f"{operator} not in {plan}")


def test_broadcast_join_filters_the_scan_of_a_stage_below(data_dir: Path) -> None:
    sql = PER_ITEM.format(join="JOIN", color="= 'red'")
    con = _connect(data_dir, 2)
    plan = _plan(con, sql)
    join = next(line for line in plan.splitlines() if "HashJoin" in line)
    scan = next(line for line in plan.splitlines() if "Scan fact" in line)
    assert "strategy=broadcast" in join, plan
    found = re.search(r"stage_filters=\[(xf\d+)\]", join)
    assert found is not None, plan
    assert f"join_filters=[{found.group(1)}:f_item]" in scan, plan
    # The join's stage and the scan's are two: the aggregate's exchange lies between.
    assert _stage_of(plan, "HashJoin") != _stage_of(plan, "Scan fact"), plan
    got = sorted(tuple(r.values()) for r in con.sql(sql).to_arrow().to_pylist())
    assert got == _duckdb(sql)
    assert len(got) == 67  # items 1, 4, …, 199: the red ones, and none of the others


@pytest.mark.parametrize(
    ("join", "settings"),
    [
        ("LEFT JOIN", {}),  # a left join keeps every aggregate row
        ("JOIN", {"broadcast_threshold_bytes": 1}),  # partitioned: one partition of keys
        ("JOIN", {"retry_policy": "task"}),  # materialized: the producer runs first
    ],
)
def test_no_filter_across_stages_where_it_could_not_hold(
    data_dir: Path, join: str, settings: dict[str, Any]
) -> None:
    sql = PER_ITEM.format(join=join, color="IN ('red', 'blue')").replace(
        "WHERE i_color", "AND i_color" if join == "LEFT JOIN" else "WHERE i_color"
    )
    con = _connect(data_dir, 2, **settings)
    plan = _plan(con, sql)
    assert "xf" not in plan, plan
    got = sorted(tuple(r.values()) for r in con.sql(sql).to_arrow().to_pylist())
    assert got == _duckdb(sql)


class _CountingSlots:
    def __init__(self) -> None:
        self.held = 1

    def acquire(self) -> None:
        self.held += 1

    def release(self) -> None:
        self.held -= 1


def test_stage_filter_is_waited_for_once_and_never_for_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from shoal.physical.operators.join_filter import JoinKeyFilter
    from shoal.runtime import filters

    found = JoinKeyFilter.of(pa.array([3, 5], pa.int64()))
    assert found is not None
    slots = _CountingSlots()
    board = filters.StageFilters({"xf1": 2, "xf2": 1, "xf3": 2}, slots)
    task = board.for_task(lambda: False)
    assert task  # expected filters count before any is published
    assert task.get("jf0") is None  # not a stage filter: no wait
    # Published by another thread while this task waits (without its slot).
    timer = threading.Timer(0.01, board.publish, ("xf1", found))
    timer.start()
    monkeypatch.setattr(filters, "STAGE_FILTER_WAIT_SECONDS", 60.0)
    assert task.get("xf1") is found
    timer.join()
    assert slots.held == 1
    # Every publishing task ended without publishing: the wait ends, nothing filters.
    board.task_ended("xf2")
    assert task.get("xf2") is None
    # Never published and never ended: the wait is bounded, and not repeated.
    monkeypatch.setattr(filters, "STAGE_FILTER_WAIT_SECONDS", 0.01)
    assert task.get("xf3") is None
    monkeypatch.setattr(filters, "STAGE_FILTER_WAIT_SECONDS", 60.0)
    assert task.get("xf3") is None  # asked before: no second wait
    board.publish("xf3", found)
    assert task.get("xf3") is found  # once it is there, it is used
    # The task's own join filters come first.
    task["jf0"] = found
    assert task["jf0"] is found and set(task) == {"jf0", "xf1", "xf3"}
