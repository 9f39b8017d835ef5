"""The 22 TPC-H queries at partitions 4 and 64 in one process, side by side.

Run: .venv/bin/python bench/partitions.py [--sf 0.1] [--runs 2] [--retry-policy task|none]
     [--data DIR]

Each query runs at both partition counts in turn (alternating, ``--runs`` times, best
kept), two task slots each. Prints one JSON line: total wall and process CPU seconds
per partition count (sums of the per-query bests), tasks run, and the 64 / 4 ratios.
To compare two versions of the code, run it under each (``PYTHONPATH=<checkout>/src``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

import shoal  # noqa: E402
from shoal.datagen import ensure_tpch, tpch_tables  # noqa: E402

COUNTS = (4, 64)


def main() -> None:
    from support.tpch import query_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--retry-policy", choices=("task", "none"), default="task")
    parser.add_argument("--data", default=os.environ.get("SHOAL_DATA_DIR", "data"))
    args = parser.parse_args()
    folder = ensure_tpch(args.sf, Path(args.data))
    cons = {}
    for n in COUNTS:
        con = shoal.connect(n, retry_policy=args.retry_policy, max_running_tasks=2)
        for table, path in tpch_tables(folder).items():
            con.register_parquet(table, str(path))
        cons[n] = con
    wall = dict.fromkeys(COUNTS, 0.0)
    cpu = dict.fromkeys(COUNTS, 0.0)
    tasks = dict.fromkeys(COUNTS, 0)
    for q in range(1, 23):
        best_wall: dict[int, float] = {}
        best_cpu: dict[int, float] = {}
        for run in range(args.runs):
            for n, con in cons.items():
                cpu_start, start = time.process_time(), time.perf_counter()
                result = con.sql(query_text(q))
                result.to_arrow()
                best_wall[n] = min(best_wall.get(n, float("inf")), time.perf_counter() - start)
                best_cpu[n] = min(best_cpu.get(n, float("inf")), time.process_time() - cpu_start)
                if run == 0:
                    tasks[n] += sum(sm.tasks for sm in result.metrics.stages.values())
        for n in COUNTS:
            wall[n] += best_wall[n]
            cpu[n] += best_cpu[n]
    print(
        json.dumps(
            {
                "retry_policy": args.retry_policy,
                "wall_seconds": {n: round(wall[n], 3) for n in COUNTS},
                "cpu_seconds": {n: round(cpu[n], 3) for n in COUNTS},
                "tasks": tasks,
                "wall 64 / 4": round(wall[64] / wall[4], 3),
                "cpu 64 / 4": round(cpu[64] / cpu[4], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
