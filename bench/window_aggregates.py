"""Aggregates over window frames, shoal and DuckDB side by side in one run.

Run: .venv/bin/python bench/window_aggregates.py [--rows 200000] [--runs 3]
     [--partitions 2] [--out bench/results] [--calls mode,median,...]
     [--frames running,sliding,whole,to_end,groups,exclude]

One table of ``--rows`` rows (``g``: 50 partition keys, ``v``: 1,000 integer values,
``s``: 40 strings, ``id`` unique). Each query is one window aggregate over one frame
kind: running (UNBOUNDED PRECEDING → CURRENT ROW), sliding (ROWS 10 PRECEDING → 10
FOLLOWING), whole partition, to the end (CURRENT ROW → UNBOUNDED FOLLOWING), GROUPS (one
peer group either side, ~20 rows a group) and the sliding frame with EXCLUDE CURRENT ROW,
for the aggregates whose frame kernels differ (DISTINCT, mode, median, arg_min — with a
count too —, stddev, plain sum). A call shoal does not take over a frame (arg_min with
EXCLUDE) is listed as unsupported. Each engine runs ``--runs`` times per query, best taken;
the answer is reduced to one checksum row (``sum(hash(w))``-like: count and sum of the
window column) and compared. Writes ``<out>/window_aggregates.json`` and prints a
markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))

import shoal  # noqa: E402

THREADS = 2

FRAMES = {
    "running": "PARTITION BY g ORDER BY id",
    "sliding": "PARTITION BY g ORDER BY id ROWS BETWEEN 10 PRECEDING AND 10 FOLLOWING",
    "whole": "PARTITION BY g",
    "to_end": "PARTITION BY g ORDER BY id ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING",
    "groups": "PARTITION BY g ORDER BY v GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING",
    "exclude": (
        "PARTITION BY g ORDER BY id ROWS BETWEEN 10 PRECEDING AND 10 FOLLOWING EXCLUDE CURRENT ROW"
    ),
}

CALLS = {
    "count_distinct": ("count(DISTINCT v)", "w"),
    "sum_distinct": ("sum(DISTINCT v)", "w"),
    # one dominant value: ties would leave a whole partition's answer to row order
    "mode": ("mode(least(v // 10, 40))", "w"),
    "median": ("median(v)", "w"),
    # by unique (v, id): ties would leave a whole partition's answer to row order
    "arg_min": ("arg_min(id, v * 1000003 + id)", "w"),
    "stddev": ("stddev_samp(v)", "round(w, 6)"),
    "string_agg_len": ("string_agg(s, ',')", "length(w)"),
    "sum": ("sum(v)", "w"),
    # the list's first (smallest-key) id; keys unique as for arg_min
    "min_by_3": ("min_by(id, v * 1000003 + id, 3)", "w[1]"),
}


def _table(rows: int) -> pa.Table:
    rng = np.random.default_rng(7)
    return pa.table(
        {
            "id": pa.array(rng.permutation(rows), pa.int64()),
            "g": pa.array(rng.integers(0, 50, rows), pa.int64()),
            "v": pa.array(rng.integers(0, 1_000, rows), pa.int64()),
            "s": pa.array([f"s{i}" for i in rng.integers(0, 40, rows)]),
        }
    )


def _query(call: str, frame: str, reduce: str) -> str:
    inner = f"SELECT {call} OVER ({frame}) AS w FROM t"
    return f"SELECT count({reduce.replace('w', 'x.w')}), sum({reduce.replace('w', 'x.w')}) FROM ({inner}) x"


def _best(run: Any, runs: int) -> tuple[float, Any]:
    best, answer = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        answer = run()
        best = min(best, time.perf_counter() - start)
    return best, answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument("--calls", default=",".join(CALLS), help="comma-separated subset")
    parser.add_argument("--frames", default=",".join(FRAMES), help="comma-separated subset")
    args = parser.parse_args()
    results = []
    engines: dict[int, tuple[Any, Any]] = {}
    wanted = set(args.calls.split(","))
    for name, (call, reduce) in CALLS.items():
        if name not in wanted:
            continue
        for frame_name, frame in FRAMES.items():
            if frame_name not in args.frames.split(","):
                continue
            size = args.rows
            if size not in engines:
                table = _table(size)
                duck = duckdb.connect()
                duck.execute(f"SET threads = {THREADS}")
                duck.register("t", table)
                con = shoal.connect(partitions=args.partitions)
                con.register_arrow("t", table)
                engines[size] = (con, duck)
            con, duck = engines[size]
            sql = _query(call, frame, reduce)
            try:
                ours, our_answer = _best(lambda q=sql, c=con: c.sql(q).fetchall(), args.runs)
            except shoal.UnsupportedError as err:
                print({"aggregate": name, "frame": frame_name, "unsupported": str(err)})
                continue
            theirs, their_answer = _best(lambda q=sql, d=duck: d.sql(q).fetchall(), args.runs)
            same = len(our_answer) == len(their_answer) and all(
                math.isclose(float(a), float(b), rel_tol=1e-9)
                for ours_row, theirs_row in zip(our_answer, their_answer, strict=True)
                for a, b in zip(ours_row, theirs_row, strict=True)
            )
            results.append(
                {
                    "aggregate": name,
                    "frame": frame_name,
                    "rows": size,
                    "shoal_s": round(ours, 4),
                    "duckdb_s": round(theirs, 4),
                    "ratio": round(ours / theirs, 2) if theirs else None,
                    "same_answer": same,
                }
            )
            print(results[-1], flush=True)
    for con, _ in engines.values():
        con.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "window_aggregates.json").write_text(json.dumps(results, indent=2))
    print("\n| aggregate | frame | rows | shoal s | DuckDB s | ratio | same |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['aggregate']} | {r['frame']} | {r['rows']} | {r['shoal_s']} | "
            f"{r['duckdb_s']} | {r['ratio']} | {r['same_answer']} |"
        )


if __name__ == "__main__":
    main()
