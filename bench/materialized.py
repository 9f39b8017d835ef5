"""Materialized vs pipelined exchanges on TPC-H, with DuckDB beside them, in one run.

Run: .venv/bin/python bench/materialized.py [--sf 1] [--runs 3] [--queries 1-22]
     [--threads N] [--partitions P] [--timeout 300] [--data DIR] [--out bench/results]

Uses ``bench/tpch.py``'s harness: three engines — ``shoal`` (retry_policy="none",
pipelined), ``shoal-materialized`` (retry_policy="task": every exchange written to
and read from the spool, a local temp folder) and DuckDB — each in its own worker
process, one warm-up run checked against the reference answers, then ``--runs``
timed runs alternating the engines. Reports, over the queries all three ran
correctly, the totals of the median times and two ratios:

* materialized / pipelined (the price of task-level retry; target <= 1.3x),
* pipelined / DuckDB (must stay within 2x).

Writes ``<out>/materialized_sf<SF>.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tpch  # noqa: E402  (bench/tpch.py: the harness)

PIPELINED, MATERIALIZED, DUCKDB = "shoal", "shoal-materialized", "duckdb"
ENGINES = [PIPELINED, MATERIALIZED, DUCKDB]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--sf", type=float, default=1.0)
    p.add_argument("--queries", type=tpch.parse_queries, default=list(tpch.ALL_QUERIES))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=cores)
    p.add_argument("--partitions", type=int, default=None)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--out", type=Path, default=tpch.REPO_ROOT / "bench" / "results")
    args = p.parse_args(argv)
    if args.partitions is None:
        args.partitions = args.threads
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    datagen = tpch._load_datagen()
    root = args.data or Path(os.environ.get("SHOAL_DATA_DIR") or tpch.REPO_ROOT / "data")
    data_dir = datagen.ensure_tpch(args.sf, root)
    tables = datagen.tpch_tables(data_dir)
    started = time.perf_counter()
    results, _ = tpch.run_benchmark(
        ENGINES,
        tables,
        args.sf,
        args.queries,
        args.runs,
        args.threads,
        args.partitions,
        args.timeout,
    )
    common = [q for q in args.queries if all(results[q][e].usable for e in ENGINES)]
    failed = {
        e: {
            q: f"{results[q][e].status}: {results[q][e].error}"
            for q in args.queries
            if not results[q][e].usable
        }
        for e in ENGINES
    }
    totals = {e: sum(results[q][e].median_s or 0.0 for q in common) for e in ENGINES}
    ratio_mat = totals[MATERIALIZED] / totals[PIPELINED] if totals[PIPELINED] else None
    ratio_duck = totals[PIPELINED] / totals[DUCKDB] if totals[DUCKDB] else None

    sf = f"{args.sf:g}"
    lines = [
        f"# TPC-H SF {sf}: materialized vs pipelined exchanges ({args.runs} timed runs,"
        f" median; threads={args.threads}, partitions={args.partitions})",
        "",
        "| query | pipelined s | materialized s | mat/pipe | duckdb s | pipe/duckdb |",
        "|---|---|---|---|---|---|",
    ]
    for q in args.queries:
        r = results[q]
        if q not in common:
            lines.append(f"| Q{q:02d} | - | - | - | - | - |")
            continue
        pipe, mat, duck = (r[e].median_s or 0.0 for e in ENGINES)
        lines.append(
            f"| Q{q:02d} | {pipe:.3f} | {mat:.3f} | {mat / pipe:.2f}x | {duck:.3f}"
            f" | {pipe / duck:.2f}x |"
        )
    lines.append(
        f"| **total ({len(common)})** | **{totals[PIPELINED]:.2f}** | **{totals[MATERIALIZED]:.2f}**"
        f" | **{tpch._fmt_ratio(ratio_mat)}** | **{totals[DUCKDB]:.2f}**"
        f" | **{tpch._fmt_ratio(ratio_duck)}** |"
    )
    for e, bad in failed.items():
        for q, why in bad.items():
            lines.append(f"\n{e} Q{q:02d}: {why}")
    text = "\n".join(lines) + "\n"

    report = {
        "benchmark": "tpch-materialized",
        "scale_factor": args.sf,
        "runs": args.runs,
        "threads": args.threads,
        "partitions": args.partitions,
        "queries": args.queries,
        "common_queries": common,
        "medians_s": {str(q): {e: results[q][e].median_s for e in ENGINES} for q in args.queries},
        "times_s": {str(q): {e: results[q][e].times_s for e in ENGINES} for q in args.queries},
        "failed": {e: {str(q): why for q, why in bad.items()} for e, bad in failed.items()},
        "totals_s": totals,
        "materialized_over_pipelined": ratio_mat,
        "pipelined_over_duckdb": ratio_duck,
        "wall_s": time.perf_counter() - started,
        "machine": tpch.machine_info(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"materialized_sf{sf}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(text, end="")
    tpch._log(f"wrote {path}")
    return 0 if len(common) == len(args.queries) else 1


if __name__ == "__main__":
    sys.exit(main())
