"""Shared CTEs on and off: the TPC-DS queries whose plan shares a CTE, timed both ways.

Run: .venv/bin/python bench/cte_sharing.py --sf 1 [--runs 3] [--partitions 2] [--queries 4,47]

Two shoal connections over the same ``tpcgen-cli`` data (``share_ctes=True`` and
``False``), threads and partitions as ``bench/tpcds.py`` sets them. Keeps the queries whose
stage graph has a shared CTE stage, runs each once on both (a warm-up), then ``--runs``
times alternating which goes first; prints the medians and their ratio per query and the
totals. The answers are not checked here (``tests/test_tpcds.py`` and ``bench/tpcds.py`` do).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from support.tpcds import ALL_QUERIES, query_text  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sf", type=float, default=1.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--partitions", type=int, default=2)
    p.add_argument("--queries", default="", help="comma-separated numbers (default: all 99)")
    p.add_argument("--data", default=None)
    args = p.parse_args(argv)
    queries = [int(q) for q in args.queries.split(",") if q] or list(ALL_QUERIES)

    import pyarrow as pa

    import shoal
    from shoal.datagen import ensure_tpcds, tpcds_tables

    pa.set_cpu_count(args.partitions)
    root = Path(args.data or os.environ.get("SHOAL_DATA_DIR") or REPO_ROOT / "data")
    tables = tpcds_tables(ensure_tpcds(args.sf, root))
    cons = {}
    for share in (True, False):
        con = shoal.connect(
            partitions=args.partitions, max_running_tasks=args.partitions, share_ctes=share
        )
        for name, path in tables.items():
            con.register_parquet(name, str(path))
        cons[share] = con
    totals = {True: 0.0, False: 0.0}
    for q in queries:
        sql = query_text(q)
        shared = [s for s in cons[True].prepare(sql).graph.stages if s.shared_cte]
        if not shared:
            continue
        times: dict[bool, list[float]] = {True: [], False: []}
        for share in (True, False):
            cons[share].sql(sql).to_arrow()
        for r in range(args.runs):
            for share in (True, False) if r % 2 == 0 else (False, True):
                started = time.perf_counter()
                cons[share].sql(sql).to_arrow()
                times[share].append(time.perf_counter() - started)
        on, off = statistics.median(times[True]), statistics.median(times[False])
        totals[True] += on
        totals[False] += off
        ctes = ", ".join(f"{s.shared_cte} ({s.readers})" for s in shared)
        print(f"q{q:02d} {ctes}: shared {on:.3f} s, per reference {off:.3f} s, {on / off:.2f}")
    print(f"total: shared {totals[True]:.2f} s, per reference {totals[False]:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
