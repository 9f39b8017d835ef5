"""TPC-DS benchmark: shoal (embedded) against DuckDB over the same Parquet files.

Run: .venv/bin/python bench/tpcds.py --sf 1 [--queries 1,6] [--runs 1] [--threads N]
     [--partitions P] [--data DIR] [--out bench/results]

Data come from :func:`shoal.datagen.ensure_tpcds` (cached in ``--data``, else
``$SHOAL_DATA_DIR``, else ``<repo>/data``); the 99 query texts and the reference answers
from ``../shared/tpcds`` beside the repository (``$SHOAL_TPCDS_DIR`` overrides), through
``tests/support/tpcds.py``. Engines are set up as ``bench/tpch.py`` sets them up (same
thread settings, DuckDB views over ``read_parquet``).

Both engines run in this one process, query by query: one warm-up run each (shoal's is
checked against the answer; a wrong or failing query is reported and left out of the
ratios), then ``--runs`` timed runs alternating engines (and which goes first, query by
query); the median is reported. Writes ``<out>/tpcds_sf<SF>.json`` and ``.md`` (the
markdown table, also printed): per query both times and the ratio, then totals and the
geometric mean of the ratios over the queries both engines ran correctly.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from support.tpcds import ALL_QUERIES, assert_matches_answer, query_text  # noqa: E402
from tpch import _make_runner  # noqa: E402


def _timed(run: Any, sql: str) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run(sql)
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sf", type=float, default=1.0)
    p.add_argument("--queries", default="", help="comma-separated numbers (default: all 99)")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--threads", type=int, default=cores)
    p.add_argument("--partitions", type=int, default=None)
    p.add_argument("--data", default=None)
    p.add_argument("--out", default=str(REPO_ROOT / "bench" / "results"))
    args = p.parse_args(argv)
    if args.runs < 1 or args.threads < 1:
        p.error("--runs and --threads must be positive")
    queries = [int(q) for q in args.queries.split(",") if q] or list(ALL_QUERIES)

    from shoal.datagen import ensure_tpcds, tpcds_tables

    root = Path(args.data or os.environ.get("SHOAL_DATA_DIR") or REPO_ROOT / "data")
    tables = tpcds_tables(ensure_tpcds(args.sf, root))
    partitions = args.partitions or args.threads
    runners = {
        engine: _make_runner(engine, tables, args.threads, partitions)
        for engine in ("shoal", "duckdb")
    }
    label = f"{args.sf:g}"
    rows: list[dict[str, Any]] = []
    for n, q in enumerate(queries):
        sql = query_text(q)
        row: dict[str, Any] = {"query": q}
        for engine, (run, _) in runners.items():
            try:
                _, result = _timed(run, sql)
                if engine == "shoal":
                    assert_matches_answer(result, label, q)
            except Exception as err:  # a failure or a wrong answer: reported, not timed
                row[f"{engine}_error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
        if not any(k.endswith("_error") for k in row):
            times: dict[str, list[float]] = {"shoal": [], "duckdb": []}
            order = ["shoal", "duckdb"] if n % 2 == 0 else ["duckdb", "shoal"]
            for r in range(args.runs):
                for engine in order if r % 2 == 0 else order[::-1]:
                    times[engine].append(_timed(runners[engine][0], sql)[0])
            for engine, values in times.items():
                row[engine] = statistics.median(values)
            row["ratio"] = row["shoal"] / row["duckdb"]
        rows.append(row)
        shown = (
            f"{row['shoal']:.3f}s vs {row['duckdb']:.3f}s ({row['ratio']:.2f}x)"
            if "ratio" in row
            else row.get("shoal_error") or row.get("duckdb_error")
        )
        print(f"q{q:02d} {shown}", file=sys.stderr, flush=True)

    timed = [r for r in rows if "ratio" in r]
    total_shoal = sum(r["shoal"] for r in timed)
    total_duckdb = sum(r["duckdb"] for r in timed)
    geomean = math.exp(statistics.fmean(math.log(r["ratio"]) for r in timed)) if timed else 0.0
    lines = [
        f"# TPC-DS SF {label}: shoal {runners['shoal'][1]} vs DuckDB {runners['duckdb'][1]}",
        "",
        f"threads {args.threads}, shoal partitions {partitions}, median of {args.runs} run(s); "
        f"{len(timed)}/{len(rows)} queries correct and timed",
        "",
        "| query | shoal s | duckdb s | ratio |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        if "ratio" in r:
            lines.append(
                f"| q{r['query']:02d} | {r['shoal']:.3f} | {r['duckdb']:.3f} | {r['ratio']:.2f} |"
            )
        else:
            why = r.get("shoal_error") or r.get("duckdb_error")
            lines.append(f"| q{r['query']:02d} | — | — | {why} |")
    lines += [
        "",
        f"**total** shoal {total_shoal:.2f} s, DuckDB {total_duckdb:.2f} s, "
        f"ratio {total_shoal / total_duckdb if total_duckdb else 0:.2f}x; "
        f"geomean of ratios {geomean:.2f}x",
    ]
    text = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"tpcds_sf{label}.md").write_text(text)
    summary = {
        "sf": args.sf,
        "threads": args.threads,
        "partitions": partitions,
        "runs": args.runs,
        "rows": rows,
        "total_shoal": total_shoal,
        "total_duckdb": total_duckdb,
        "geomean_ratio": geomean,
    }
    (out / f"tpcds_sf{label}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
