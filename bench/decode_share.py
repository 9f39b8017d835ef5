"""How much of each TPC-H query's CPU time shoal spends inside the Parquet reader.

Run: .venv/bin/python bench/decode_share.py --sf 1 [--queries 1,6] [--partitions 2]
     [--runs 3] [--data DIR]

For every query: one warm-up, then ``--runs`` runs; for the fastest run it reports the
wall time, the process CPU time (user + system) and the seconds the scans spent in
the reader (``decode_seconds`` of EXPLAIN ANALYZE, summed over tasks), and the share of
CPU that decoding took. Decoding is the floor no operator above the scan can remove:
pyarrow's reader decodes every requested column in full, whatever the filter keeps.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # tests/support: query texts
sys.path.insert(0, str(REPO_ROOT / "src"))

from support.tpch import ALL_QUERIES, query_text  # noqa: E402

TABLES = ("lineitem", "orders", "customer", "part", "partsupp", "supplier", "nation", "region")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _decode_seconds(analyze: dict[str, Any]) -> float:
    return sum(
        op.get("decode_seconds", 0.0) for stage in analyze["stages"] for op in stage["operators"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--queries", default=",".join(str(q) for q in ALL_QUERIES))
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data")
    args = parser.parse_args(argv)

    import pyarrow as pa

    import shoal
    from shoal.datagen import ensure_tpch

    pa.set_cpu_count(args.partitions)
    folder = ensure_tpch(args.sf, args.data)
    con = shoal.connect(partitions=args.partitions, max_running_tasks=args.partitions)
    for table in TABLES:
        con.register_parquet(table, str(Path(folder) / table))

    print("| query | wall s | CPU s | decode s | decode / CPU |")
    print("|---|---:|---:|---:|---:|")
    totals = [0.0, 0.0, 0.0]
    for q in (int(x) for x in args.queries.split(",")):
        sql = query_text(q)
        con.sql(sql)  # warm-up
        best: tuple[float, float, float] | None = None
        for _ in range(args.runs):
            cpu, started = _cpu_seconds(), time.perf_counter()
            result = con.sql(sql)
            result.to_arrow()
            wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
            decode = _decode_seconds(json.loads(result.explain_analyze_json()))
            if best is None or wall < best[0]:
                best = (wall, cpu, decode)
        assert best is not None
        wall, cpu, decode = best
        totals = [totals[0] + wall, totals[1] + cpu, totals[2] + decode]
        print(f"| Q{q:02d} | {wall:.3f} | {cpu:.3f} | {decode:.3f} | {decode / cpu:.0%} |")
    wall, cpu, decode = totals
    print(
        f"| **total** | **{wall:.3f}** | **{cpu:.3f}** | **{decode:.3f}** | **{decode / cpu:.0%}** |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
