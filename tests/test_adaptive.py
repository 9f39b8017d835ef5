"""Adaptive re-planning between materialized stages (scheduler/adaptive.py).

Every answer is checked against DuckDB on the same generated data; the decisions are
checked in EXPLAIN ANALYZE (text and JSON) and in the task counts the stages ran.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from support.tpch import assert_matches_answer, query_text, tpch_connection

import shoal
from shoal.exchange.objects import read_objects, to_ipc
from shoal.exchange.rebatch import rebatch
from shoal.exchange_spec import ExchangeKind, ExchangeSpec, InputSlice
from shoal.metrics.adaptive import DecisionKind
from shoal.scheduler.adaptive import _coalesce, _row_pieces

# Every adaptive decision off: the plan runs as planned.
ALL_OFF = {"adaptive_broadcast": False, "adaptive_coalesce": False, "skew_join": False}


def _fact_dim(hot: bool = False) -> tuple[pa.Table, pa.Table]:
    """A fact table (``k`` into ``dim``) and a dimension whose names a LIKE filter cuts
    to a few rows (the estimator keeps about half of them)."""
    rng = np.random.default_rng(7)
    n = 250_000
    keys = rng.integers(0, 20_000, n)
    if hot:
        # 80% of the rows on one key, all at the start: the first producer's split
        # holds them (a hot key from a single producer).
        keys[: int(n * 0.8)] = 77
    fact = pa.table({"k": pa.array(keys, pa.int64()), "v": pa.array(rng.random(n))})
    dim = pa.table(
        {
            "k": pa.array(np.arange(0, 20_000, dtype=np.int64)),
            "name": pa.array([f"n{i}" for i in range(20_000)]),
        }
    )
    return fact, dim


def _connect(partitions: int, fact: pa.Table, dim: pa.Table, **settings: Any) -> shoal.Connection:
    con = shoal.connect(partitions, retry_policy="task", **settings)
    con.register_arrow("fact", fact)
    con.register_arrow("dim", dim)
    return con


def _duck(sql: str, fact: pa.Table, dim: pa.Table) -> list[tuple[Any, ...]]:
    db = duckdb.connect()
    db.register("fact", fact)
    db.register("dim", dim)
    return sorted(db.sql(sql).fetchall(), key=repr)


def _rows(result: Any) -> list[tuple[Any, ...]]:
    return sorted(result.fetchall(), key=repr)


def _close(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, float) and isinstance(v, float):
                if not math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif u != v:
                return False
    return True


def _kinds(result: Any) -> list[DecisionKind]:
    return [d.kind for d in result.metrics.decisions]


# ---------------------------------------------------------------------- pure parts


def test_coalesce_groups_are_contiguous_and_bounded() -> None:
    assert _coalesce([10, 10, 10, 10], 25) == [[0, 1], [2, 3]]
    assert _coalesce([100, 1, 1, 100], 50) == [[0], [1, 2], [3]]
    assert _coalesce([0, 0, 0], 1) == [[0, 1, 2]]
    # Equal shares, not full groups beside a small one: 2 tasks of 2, not 2 + 1 + 1.
    assert _coalesce([22, 22, 23, 22], 45) == [[0, 1], [2, 3]]
    assert [len(g) for g in _coalesce([1] * 64, 10)] == [9, 9, 9, 10, 9, 9, 9]
    # Eight equal partitions a little under the target: seven tasks would give one two
    # partitions (twice the others), so they stay apart.
    assert _coalesce([55] * 8, 64) == [[d] for d in range(8)]
    assert _coalesce([55] * 8, 110) == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_row_pieces_cut_inside_one_producer() -> None:
    # All rows from producer 1: pieces are row ranges of that producer's slice.
    pieces = _row_pieces([0, 90, 10], 4)
    assert [sum(e - f for _, f, e in p) for p in pieces] == [25, 25, 25, 25]
    assert pieces[0] == ((1, 0, 25),)
    assert pieces[-1] == ((1, 75, 90), (2, 0, 10))
    assert InputSlice.of(3) == InputSlice((3,))


def test_rebatch_joins_small_batches_in_order() -> None:
    small = [pa.record_batch({"x": list(range(i * 10, i * 10 + 10))}) for i in range(7)]
    big = pa.record_batch({"x": list(range(1000, 1100))})
    out = list(rebatch([*small[:3], big, *small[3:]], min_rows=25))
    assert [b.num_rows for b in out] == [30, 100, 30, 10]
    joined = pa.Table.from_batches(out).column("x").to_pylist()
    assert joined == pa.Table.from_batches([*small[:3], big, *small[3:]]).column("x").to_pylist()


def test_object_reads_keep_only_the_row_range() -> None:
    table = pa.table({"x": list(range(100))})
    buffer = to_ipc(table.to_batches(max_chunksize=30), table.schema)
    spec = ExchangeSpec(ExchangeKind.HASH, 2, ("x",))
    got = pa.Table.from_batches(list(read_objects(spec, table.schema, [buffer], [(25, 65)])))
    assert got.column("x").to_pylist() == list(range(25, 65))


# ---------------------------------------------------------------------- broadcast switch

JOIN_SQL = (
    "SELECT d.name, count(*) AS c, sum(f.v) AS s FROM fact f JOIN dim d ON f.k = d.k"
    " WHERE d.name LIKE '%777%' GROUP BY d.name"
)


@pytest.mark.parametrize("partitions", [2, 5])
def test_overestimated_build_side_switches_to_broadcast(partitions: int) -> None:
    fact, dim = _fact_dim()
    # The estimate (~half of dim) is above the threshold, what the filter keeps below.
    con = _connect(partitions, fact, dim, broadcast_threshold_bytes=64 << 10)
    planned = con.explain(JOIN_SQL)
    assert "strategy=partitioned" in planned
    result = con.sql(JOIN_SQL)
    assert _close(_rows(result), _duck(JOIN_SQL, fact, dim))
    text = result.explain_analyze()
    assert "repartition → broadcast, build side" in text, text
    assert "measured vs" in text and "estimated" in text
    assert "strategy=broadcast (switched at run time" in text
    assert "fused into stage" in text and "As planned:" in text
    data = json.loads(result.explain_analyze_json())
    (switch,) = [d for d in data["adaptive_decisions"] if d["kind"] == "broadcast"]
    assert switch["figures"]["measured_bytes"] < 64 << 10 < switch["figures"]["estimated_bytes"]
    assert data["planned"] is not None
    assert any(s["fused_into"] is not None for s in data["stages"])


def test_broadcast_switch_off_keeps_the_repartition_join() -> None:
    fact, dim = _fact_dim()
    con = _connect(4, fact, dim, broadcast_threshold_bytes=64 << 10, adaptive_broadcast=False)
    result = con.sql(JOIN_SQL)
    assert _close(_rows(result), _duck(JOIN_SQL, fact, dim))
    assert DecisionKind.BROADCAST not in _kinds(result)
    text = result.explain_analyze()
    assert "strategy=partitioned" in text and "fused into" not in text


def test_no_switch_when_the_build_side_is_really_big() -> None:
    fact, dim = _fact_dim()
    sql = "SELECT count(*), sum(f.v) FROM fact f JOIN dim d ON f.k = d.k"
    con = _connect(4, fact, dim, broadcast_threshold_bytes=1 << 10)
    result = con.sql(sql)
    assert _close(_rows(result), _duck(sql, fact, dim))
    assert DecisionKind.BROADCAST not in _kinds(result)


# ---------------------------------------------------------------------- coalesce


@pytest.mark.parametrize("partitions", [8, 16])
def test_small_partitions_are_coalesced(partitions: int) -> None:
    fact, dim = _fact_dim()
    sql = "SELECT k % 10 AS g, count(*), sum(v) FROM fact GROUP BY k % 10"
    con = _connect(partitions, fact, dim, max_running_tasks=2)
    result = con.sql(sql)
    assert _close(_rows(result), _duck(sql, fact, dim))
    assert DecisionKind.COALESCE in _kinds(result)
    tasks = {s: m.tasks for s, m in result.metrics.stages.items()}
    # The final aggregate reads ~1 MB: one task, not one per partition.
    assert min(tasks.values()) == 1 and max(tasks.values()) < partitions
    assert "partitions coalesced into" in result.explain_analyze()
    off = _connect(partitions, fact, dim, adaptive_coalesce=False).sql(sql)
    assert _close(_rows(off), _duck(sql, fact, dim))
    assert DecisionKind.COALESCE not in _kinds(off)


def test_tpch_at_64_partitions_runs_no_more_tasks_than_its_data_needs(
    tpch_sf01_dir: Path,
) -> None:
    for q in (3, 5, 10, 18):
        con = tpch_connection(tpch_sf01_dir, partitions=64, retry_policy="task")
        result = con.sql(query_text(q))
        assert_matches_answer(result.to_arrow(), "0.1", q)
        m = result.metrics
        for sid, sm in m.stages.items():
            read = sum(ex.bytes for ex in m.exchanges.values() if ex.consumer_stage == sid)
            # Stages that scan keep their split share; the others get a task per
            # ~1 MiB at least (and no fewer than the CPU slots while data lasts).
            scans = any(
                "Scan" in op
                for st in json.loads(result.explain_analyze_json())["stages"]
                if st["stage"] == sid
                for op in (o["operator"] for o in st["operators"])
            )
            if not scans and sm.tasks:
                assert sm.tasks <= max(2, math.ceil(read / (1 << 20)) + 1), (q, sid, sm.tasks)


# ---------------------------------------------------------------------- skew split

SKEW_QUERIES = {
    "inner": "SELECT d.name, count(*), sum(f.v) FROM fact f JOIN dim d ON f.k = d.k GROUP BY d.name",
    "left": (
        "SELECT count(*), count(d.name), sum(f.v), min(d.name)"
        " FROM fact f LEFT JOIN dim d ON f.k = d.k + 5000"
    ),
    "semi": "SELECT count(*), sum(v) FROM fact WHERE k IN (SELECT k FROM dim WHERE k % 3 = 1)",
    "anti": (
        "SELECT count(*), sum(v) FROM fact f"
        " WHERE NOT EXISTS (SELECT 1 FROM dim d WHERE d.k = f.k AND d.k % 3 = 1)"
    ),
}


@pytest.mark.parametrize("kind", sorted(SKEW_QUERIES))
@pytest.mark.parametrize("partitions", [3, 8])
def test_skewed_join_partition_is_split(kind: str, partitions: int) -> None:
    fact, dim = _fact_dim(hot=True)
    sql = SKEW_QUERIES[kind]
    # Pinned repartitioned (threshold 0) and no coalescing, so only the split acts.
    settings = {
        "broadcast_threshold_bytes": 0,
        "adaptive_coalesce": False,
        "skew_min_bytes": 0,
        # Room for more sub-tasks than producers (each gets ~1 MiB of probe rows).
        "max_running_tasks": 8,
    }
    con = _connect(partitions, fact, dim, **settings)
    assert "strategy=partitioned" in con.explain(sql)
    result = con.sql(sql)
    assert _close(_rows(result), _duck(sql, fact, dim)), kind
    splits = [d for d in result.metrics.decisions if d.kind is DecisionKind.SKEW_SPLIT]
    assert splits, result.explain_analyze()
    # The hot rows come from one producer mostly: it was cut by row ranges, into
    # more sub-tasks than there are producers.
    assert max(d.figures["sub_tasks"] for d in splits) > 2
    assert "split into" in result.explain_analyze()
    off = _connect(partitions, fact, dim, **settings, skew_join=False).sql(sql)
    assert _close(_rows(off), _duck(sql, fact, dim))
    assert not off.metrics.decisions


def test_every_setting_off_runs_the_plan_as_planned() -> None:
    fact, dim = _fact_dim(hot=True)
    sql = SKEW_QUERIES["inner"]
    con = _connect(8, fact, dim, broadcast_threshold_bytes=64 << 10, skew_min_bytes=0, **ALL_OFF)
    result = con.sql(sql)
    assert _close(_rows(result), _duck(sql, fact, dim))
    assert not result.metrics.decisions and result.metrics.ran_graph is None
    assert "Adaptive decisions" not in result.explain_analyze()
    for stage in con.prepare(sql).graph.stages:
        assert result.metrics.stages[stage.id].tasks == stage.num_partitions


# ---------------------------------------------------------------------- on Ray


@pytest.mark.ray
def test_adaptive_decisions_on_ray(ray_session: Any) -> None:
    fact, dim = _fact_dim(hot=True)
    con = shoal.connect(4, runtime="ray", broadcast_threshold_bytes=64 << 10, skew_min_bytes=0)
    con.register_arrow("fact", fact)
    con.register_arrow("dim", dim)
    switched = con.sql(JOIN_SQL)
    assert _close(_rows(switched), _duck(JOIN_SQL, fact, dim))
    assert DecisionKind.BROADCAST in _kinds(switched)
    assert "repartition → broadcast" in switched.explain_analyze()
    pinned = shoal.connect(
        4, runtime="ray", broadcast_threshold_bytes=0, skew_min_bytes=0, adaptive_coalesce=False
    )
    pinned.register_arrow("fact", fact)
    pinned.register_arrow("dim", dim)
    for kind in ("inner", "anti"):
        result = pinned.sql(SKEW_QUERIES[kind])
        assert _close(_rows(result), _duck(SKEW_QUERIES[kind], fact, dim)), kind
        assert DecisionKind.SKEW_SPLIT in _kinds(result), result.explain_analyze()
    small = shoal.connect(8, runtime="ray")
    small.register_arrow("fact", fact)
    small.register_arrow("dim", dim)
    sql = "SELECT k % 10 AS g, count(*), sum(v) FROM fact GROUP BY k % 10"
    result = small.sql(sql)
    assert _close(_rows(result), _duck(sql, fact, dim))
    assert DecisionKind.COALESCE in _kinds(result)


def test_adaptive_settings_are_checked() -> None:
    with pytest.raises(shoal.UserError, match="skew_factor must be a number above 1"):
        shoal.connect(2, skew_factor=0.5)
    with pytest.raises(shoal.UserError, match="adaptive_coalesce must be True or False"):
        shoal.connect(2, adaptive_coalesce="yes")
    with pytest.raises(shoal.UserError, match="coalesce_target_bytes"):
        shoal.connect(2, coalesce_target_bytes="lots")
    con = shoal.connect(2, coalesce_target_bytes="16MiB", skew_min_bytes=0)
    assert con.settings.coalesce_target_bytes == 16 << 20 and con.settings.skew_min_bytes == 0
    with pytest.raises(shoal.UserError, match="scan_task_min_bytes"):
        shoal.connect(2, scan_task_min_bytes="some")
    assert shoal.connect(2, scan_task_min_bytes="1MiB").settings.scan_task_min_bytes == 1 << 20


@pytest.mark.parametrize("retry_policy", ["task", "none"])
def test_small_scan_runs_no_more_tasks_than_its_bytes_need(
    tmp_path: Path, retry_policy: str
) -> None:
    """Eight small row groups at partitions 64: two tasks per CPU slot, not one per row
    group (unless the minimum is off); the answer is the same either way."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    table = pa.table({"k": pa.array(rng.integers(0, 1000, 80_000), pa.int64())})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=10_000)
    sql = "SELECT k % 10 AS g, count(*) AS n FROM t GROUP BY k % 10"
    db = duckdb.connect()
    db.register("t", table)
    expected = sorted(db.sql(sql).fetchall())
    counts = {}
    for minimum in (16 << 20, 0):
        con = shoal.connect(
            64, retry_policy=retry_policy, max_running_tasks=2, scan_task_min_bytes=minimum
        )
        con.register_parquet("t", str(tmp_path / "t.parquet"))
        result = con.sql(sql)
        assert sorted(result.fetchall()) == expected
        counts[minimum] = result.metrics.stages[0].tasks  # the scan stage
    assert counts == {16 << 20: 4, 0: 8}


def test_tpch_joins_split_at_every_partition_above_the_median(tpch_sf01_dir: Path) -> None:
    """Every join repartitioned and split wherever a partition passes the median: the
    reference answers still come out."""
    con = tpch_connection(
        tpch_sf01_dir,
        partitions=4,
        retry_policy="task",
        broadcast_threshold_bytes=0,
        adaptive_coalesce=False,
        skew_min_bytes=0,
        skew_factor=1.01,
    )
    splits = 0
    for q in (3, 10, 18, 21):
        result = con.sql(query_text(q))
        assert_matches_answer(result.to_arrow(), "0.1", q)
        splits += _kinds(result).count(DecisionKind.SKEW_SPLIT)
    assert splits > 0
