"""Adaptive re-planning between materialized stages, measured side by side in one run.

Run: .venv/bin/python bench/adaptive.py [--cases broadcast,coalesce,skew] [--runs 3]
     [--rows 4000000] [--data DIR] [--out bench/results]

Cases (every query ``retry_policy="task"``, the same connection settings apart from
the one switched; runs alternate between the two sides, best of ``--runs``):

* ``broadcast`` — a ``--rows`` fact table joined with a 1 M-row dimension through a
  LIKE filter the estimator cannot see through (it guesses ~3% of the rows, ~1 MiB; the filter keeps 19 rows);
  ``broadcast_threshold_bytes`` 256 KiB, so the join is planned repartitioned.
  ``adaptive_broadcast`` on vs off, and DuckDB on the same tables and threads.
* ``coalesce`` — the 22 TPC-H SF 0.1 queries at partitions 64 with adaptivity on, at
  partitions 64 with ``adaptive_coalesce`` off, and at partitions 4 (total wall time
  and process CPU time, each the sum of the per-query best; tasks run; the ratios
  partitions 64 / partitions 4).
* ``skew`` — the fact table with 90% of its rows on one key (all from the first
  producer's splits) joined repartitioned with a 1 M-row dimension; ``skew_join`` on
  vs off.

All answers are compared with DuckDB's. Writes ``<out>/adaptive.json`` and prints a
markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))
sys.path.insert(0, str(REPO_ROOT / "tests"))

import shoal  # noqa: E402

THREADS = 2


def _tables(rows: int, hot: bool) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(11)
    dim_rows = 1_000_000
    keys = rng.integers(0, dim_rows, rows)
    if hot:
        keys[: int(rows * 0.9)] = 4242
    fact = pa.table({"k": pa.array(keys, pa.int64()), "v": pa.array(rng.random(rows))})
    dim = pa.table(
        {
            "k": pa.array(np.arange(dim_rows, dtype=np.int64)),
            "name": pa.array([f"name-{i:07d}" for i in range(dim_rows)]),
        }
    )
    return fact, dim


def _connect(tables: dict[str, pa.Table], partitions: int, **settings: Any) -> shoal.Connection:
    con = shoal.connect(partitions, retry_policy="task", max_running_tasks=THREADS, **settings)
    for name, table in tables.items():
        con.register_arrow(name, table)
    return con


def _timed(con: shoal.Connection, sql: str) -> tuple[float, Any]:
    start = time.perf_counter()
    result = con.sql(sql)
    table = result.to_arrow()
    return time.perf_counter() - start, (table, result.metrics)


def _same(a: pa.Table, b: pa.Table) -> bool:
    rows_a = sorted(a.to_pylist(), key=repr)
    rows_b = sorted(b.to_pylist(), key=repr)
    if len(rows_a) != len(rows_b):
        return False
    for x, y in zip(rows_a, rows_b, strict=True):
        for u, v in zip(x.values(), y.values(), strict=True):
            if isinstance(u, float) and isinstance(v, float):
                if not math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-6):
                    return False
            elif u != v:
                return False
    return True


def _duck(tables: dict[str, pa.Table], sql: str) -> tuple[float, pa.Table]:
    db = duckdb.connect()
    db.execute(f"SET threads = {THREADS}")
    for name, table in tables.items():
        db.register(name, table)
    start = time.perf_counter()
    out = db.sql(sql).to_arrow_table()
    return time.perf_counter() - start, out


def _side_by_side(
    tables: dict[str, pa.Table],
    sql: str,
    sides: dict[str, dict[str, Any]],
    runs: int,
    partitions: int,
) -> dict[str, Any]:
    best: dict[str, float] = {}
    last: dict[str, Any] = {}
    cons = {name: _connect(tables, partitions, **s) for name, s in sides.items()}
    for _ in range(runs):
        for name, con in cons.items():
            seconds, out = _timed(con, sql)
            best[name] = min(best.get(name, math.inf), seconds)
            last[name] = out
    duck_seconds, reference = min((_duck(tables, sql) for _ in range(runs)), key=lambda r: r[0])
    report: dict[str, Any] = {"duckdb_seconds": round(duck_seconds, 3)}
    for name, (table, metrics) in last.items():
        report[name] = {
            "seconds": round(best[name], 3),
            "correct": _same(table, reference),
            "tasks": sum(sm.tasks for sm in metrics.stages.values()),
            "decisions": [d.text for d in metrics.decisions],
        }
    return report


def case_broadcast(rows: int, runs: int) -> dict[str, Any]:
    fact, dim = _tables(rows, hot=False)
    sql = (
        "SELECT d.name, count(*) AS c, sum(f.v) AS s FROM fact f JOIN dim d ON f.k = d.k"
        " WHERE d.name LIKE '%77777%' GROUP BY d.name"
    )
    threshold = {"broadcast_threshold_bytes": 256 << 10}
    return _side_by_side(
        {"fact": fact, "dim": dim},
        sql,
        {"switch_on": threshold, "switch_off": {**threshold, "adaptive_broadcast": False}},
        runs,
        4,
    )


def case_skew(rows: int, runs: int) -> dict[str, Any]:
    fact, dim = _tables(rows, hot=True)
    sql = (
        "SELECT count(*) AS c, sum(f.v) AS s, count(DISTINCT d.name) AS names"
        " FROM fact f JOIN dim d ON f.k = d.k"
    )
    pinned = {"broadcast_threshold_bytes": 0, "adaptive_coalesce": False}
    return _side_by_side(
        {"fact": fact, "dim": dim},
        sql,
        {"skew_on": pinned, "skew_off": {**pinned, "skew_join": False}},
        runs,
        4,
    )


def case_coalesce(data_dir: Path, runs: int) -> dict[str, Any]:
    from support.tpch import assert_matches_answer, query_text

    from shoal.datagen import tpch_tables

    sides = {
        "p64_adaptive": {"partitions": 64},
        "p64_no_coalesce": {"partitions": 64, "adaptive_coalesce": False},
        "p4_adaptive": {"partitions": 4},
    }
    cons = {}
    for name, s in sides.items():
        con = shoal.connect(retry_policy="task", max_running_tasks=THREADS, **s)
        for table, path in tpch_tables(data_dir).items():
            con.register_parquet(table, str(path))
        cons[name] = con
    totals = {name: 0.0 for name in sides}
    cpu = {name: 0.0 for name in sides}
    tasks = {name: 0 for name in sides}
    most = {name: 0 for name in sides}
    correct = {name: True for name in sides}
    for q in range(1, 23):
        best: dict[str, float] = {}
        best_cpu: dict[str, float] = {}
        for _ in range(runs):
            for name, con in cons.items():
                started = time.process_time()
                seconds, (table, metrics) = _timed(con, query_text(q))
                best[name] = min(best.get(name, math.inf), seconds)
                best_cpu[name] = min(best_cpu.get(name, math.inf), time.process_time() - started)
                if _ == 0:
                    tasks[name] += sum(sm.tasks for sm in metrics.stages.values())
                    most[name] = max(most[name], *(sm.tasks for sm in metrics.stages.values()))
                    try:
                        assert_matches_answer(table, "0.1", q)
                    except AssertionError:
                        correct[name] = False
        for name in sides:
            totals[name] += best[name]
            cpu[name] += best_cpu[name]
    report: dict[str, Any] = {
        name: {
            "seconds": round(totals[name], 3),
            "cpu_seconds": round(cpu[name], 3),
            "tasks": tasks[name],
            "most_tasks_in_a_stage": most[name],
            "correct": correct[name],
        }
        for name in sides
    }
    report["p64 / p4 wall"] = round(totals["p64_adaptive"] / totals["p4_adaptive"], 3)
    report["p64 / p4 cpu"] = round(cpu["p64_adaptive"] / cpu["p4_adaptive"], 3)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="broadcast,coalesce,skew")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--data", default=os.environ.get("SHOAL_DATA_DIR", "data"))
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "results"))
    args = parser.parse_args()
    report: dict[str, Any] = {}
    for case in args.cases.split(","):
        if case == "broadcast":
            report[case] = case_broadcast(args.rows, args.runs)
        elif case == "skew":
            report[case] = case_skew(args.rows, args.runs)
        elif case == "coalesce":
            from shoal.datagen import ensure_tpch

            report[case] = case_coalesce(ensure_tpch(0.1, Path(args.data)), args.runs)
        else:
            raise SystemExit(f"unknown case {case!r}")
        print(json.dumps({case: report[case]}, indent=1), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "adaptive.json").write_text(json.dumps(report, indent=1))
    print(
        "\n| case | side | seconds | process CPU s | tasks | correct |\n|---|---|---|---|---|---|"
    )
    for case, sides in report.items():
        for side, figures in sides.items():
            if isinstance(figures, dict):
                print(
                    f"| {case} | {side} | {figures['seconds']} | {figures.get('cpu_seconds', '')}"
                    f" | {figures['tasks']} | {figures['correct']} |"
                )
            else:
                print(f"| {case} | {side} | {figures} | | | |")


if __name__ == "__main__":
    main()
