"""Per-task figures in EXPLAIN ANALYZE: CPU time, rows in and out, the critical path.

Every runtime mode records, per committed task, its thread's CPU time and its rows;
each stage shows max / median of them and the query its critical path (the longest
stage path weighted by each stage's slowest task).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shoal

ROWS = 40_000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("figures")
    rng = np.random.default_rng(3)
    fact = pa.table({"k": rng.integers(0, 500, ROWS), "v": rng.integers(0, 100, ROWS)})
    dim = pa.table({"d": np.arange(500), "g": np.arange(500) % 7})
    pq.write_table(fact, root / "fact.parquet", row_group_size=5_000)
    pq.write_table(dim, root / "dim.parquet", row_group_size=100)
    return root


SQL = "SELECT g, count(*) AS n, sum(v) AS s FROM fact JOIN dim ON k = d GROUP BY g"


@pytest.mark.parametrize("policy", ["none", "task"])
def test_task_figures_and_critical_path(data: Path, policy: str) -> None:
    con = shoal.connect(3, retry_policy=policy, broadcast_threshold_bytes=0)
    con.register_parquet("fact", data / "fact.parquet")
    con.register_parquet("dim", data / "dim.parquet")
    result = con.sql(SQL)
    assert sorted(result.to_arrow().column("n").to_pylist()) == sorted(
        np.bincount(
            np.arange(500)[pq.read_table(data / "fact.parquet").column("k").to_numpy()] % 7
        ).tolist()
    )
    doc = json.loads(result.explain_analyze_json())
    by_id = {s["stage"]: s for s in doc["stages"]}
    for stage in doc["stages"]:
        figures = stage["task_figures"]
        assert [f["partition"] for f in figures] == list(range(stage["tasks"]))
        assert all(f["cpu_seconds"] >= 0 and f["rows_in"] >= 0 for f in figures)
        summary = stage["task_summary"]
        assert summary["max_rows_out"] == max(f["rows_out"] for f in figures)
        assert summary["max_cpu_seconds"] >= summary["median_cpu_seconds"]
        if stage["exchange"] is not None:
            # What a stage's tasks wrote is what its exchange carried.
            rows_out = sum(f["rows_out"] for f in figures)
            assert rows_out == stage["exchange"]["rows"] or stage["output"].startswith("Broadcast")
    # Scans read every row once, in some task of a leaf stage.
    leaves = [s for s in doc["stages"] if not s["inputs"]]
    assert sum(f["rows_in"] for s in leaves for f in s["task_figures"]) == ROWS + 500
    # The critical path runs from a leaf to the root through inputs, and weighs each
    # stage by its slowest task.
    path = doc["critical_path"]["stages"]
    assert not by_id[path[0]]["inputs"] and by_id[path[-1]]["consumer"] is None
    for below, above in zip(path, path[1:], strict=False):
        assert below in by_id[above]["inputs"]
    weight = sum(by_id[s]["task_summary"]["max_cpu_seconds"] for s in path)
    assert doc["critical_path"]["seconds"] == pytest.approx(weight, abs=1e-5)
    assert 0 < doc["critical_path"]["seconds"]

    # No other path is longer.
    def longest(stage: int) -> float:
        own = by_id[stage]["task_summary"]["max_cpu_seconds"]
        return own + max((longest(i) for i in by_id[stage]["inputs"]), default=0.0)

    root = next(s["stage"] for s in doc["stages"] if s["consumer"] is None)
    assert doc["critical_path"]["seconds"] == pytest.approx(longest(root), abs=1e-5)
    text = result.explain_analyze()
    assert "Critical path: " in text and "task cpu: max=" in text and "rows_in: max=" in text


def test_cpu_time_is_busy_time_not_wall(data: Path) -> None:
    # A task that sleeps before it starts (an injected slow fault) spends wall time,
    # not CPU time.
    con = shoal.connect(2)
    con.register_parquet("fact", data / "fact.parquet")
    result = con.sql(
        "SELECT k, count(*) FROM fact GROUP BY k",
        faults=["stage=0,partition=0,kind=slow,seconds=0.5"],
    )
    figures = result.metrics.stages[0].task_figures[0]
    assert figures.wall_seconds >= 0.5
    assert figures.cpu_seconds < 0.4
