"""TPC-H on the Ray runtime against the embedded runtime, side by side in one run.

Run: .venv/bin/python bench/ray_runtime.py --sf 1 [--queries 1,6] [--runs 3] [--cpus 2]
     [--partitions P] [--data DIR] [--out bench/results]

One process starts a local Ray (127.0.0.1, ``--cpus`` CPUs: that many Ray worker
processes run tasks at once) and holds three connections over the same Parquet
files: ``runtime="local"`` (threads, ``--cpus`` CPU slots), the same without the
per-process features Ray turns off (``local_off``: no runtime filters, no scan
sharing) and ``runtime="ray"``.
Both use ``--partitions`` tasks per stage (default: ``--cpus``). For every query each
runtime gets one warm-up run, checked against the reference answer, then ``--runs``
timed runs, alternating runtime run by run. The report gives each runtime's median
per query, the totals and their ratio, and for Ray where the time goes, from the
task records of its last run: tasks launched, the summed time from submission to a
task's body starting (placement, worker, fetching inputs from the object store),
the summed time tasks spent writing their output buffers (Arrow IPC), the bytes
that went through the object store, and the time the driver spent outside any task
(the wall time not covered by the stages' slowest tasks).

Writes ``<out>/ray_sf<SF>.json`` and ``<out>/ray_sf<SF>.md`` (also printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # tests/support: query texts and answers

from support.tpch import ALL_QUERIES, assert_matches_answer, query_text  # noqa: E402


def _connection(runtime: str, data: Path, partitions: int, cpus: int, **settings: Any) -> Any:
    import shoal
    from shoal.datagen import tpch_tables

    con = shoal.connect(partitions=partitions, runtime=runtime, max_running_tasks=cpus, **settings)
    for name, path in tpch_tables(data).items():
        con.register_parquet(name, str(path))
    return con


def _ray_breakdown(metrics: Any) -> dict[str, float]:
    runs = [r for sm in metrics.stages.values() for r in sm.task_runs]
    slowest = sum(
        max((r.seconds for r in sm.task_runs), default=0.0) for sm in metrics.stages.values()
    )
    return {
        "tasks": len(runs),
        "task_seconds": sum(r.seconds for r in runs),
        "launch_seconds": sum(r.launch_seconds for r in runs),
        "serialize_seconds": sum(r.serialize_seconds for r in runs),
        "exchange_bytes": float(sum(ex.bytes for ex in metrics.exchanges.values())),
        # Stages run one after another (those with no common input side by side); what
        # the slowest task of each does not cover is launch, transfer and the driver.
        "outside_tasks_seconds": max(0.0, metrics.elapsed - slowest),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", default="1")
    parser.add_argument("--queries", default=",".join(str(q) for q in ALL_QUERIES))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument("--data", default=os.environ.get("SHOAL_DATA_DIR", str(REPO_ROOT / "data")))
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "results"))
    args = parser.parse_args(argv)
    queries = [int(q) for q in args.queries.split(",") if q.strip()]
    partitions = args.partitions or args.cpus

    from shoal.datagen import ensure_tpch
    from shoal.runtime.ray_session import ensure_session, shutdown_session

    data = ensure_tpch(float(args.sf), Path(args.data))
    ray_tmp = Path(tempfile.mkdtemp(prefix="shoal-bench-ray-"))
    (ray_tmp / "ray").mkdir()
    os.environ.setdefault("RAY_TMPDIR", str(ray_tmp))
    started = time.perf_counter()
    ensure_session(None, num_cpus=args.cpus, temp_dir=str(ray_tmp / "ray"))
    startup = time.perf_counter() - started
    cons = {
        "local": _connection("local", data, partitions, args.cpus),
        # The embedded runtime without what Ray turns off (runtime filters, scan sharing):
        # local_off / local is what those per-process features are worth.
        "local_off": _connection(
            "local", data, partitions, args.cpus, runtime_filters=False, scan_share_bytes=0
        ),
        "ray": _connection("ray", data, partitions, args.cpus),
    }
    rows: list[dict[str, Any]] = []
    try:
        for q in queries:
            sql = query_text(q)
            row: dict[str, Any] = {"query": q}
            for name, con in cons.items():
                try:
                    assert_matches_answer(con.sql(sql).to_arrow(), args.sf, q)
                    row[f"{name}_ok"] = True
                except Exception as err:  # noqa: BLE001 - reported, query left out
                    row[f"{name}_ok"] = False
                    row[f"{name}_error"] = f"{type(err).__name__}: {str(err)[:300]}"
            times: dict[str, list[float]] = {name: [] for name in cons}
            last_metrics = None
            all_ok = all(row[f"{name}_ok"] for name in cons)
            for run in range(args.runs if all_ok else 0):
                order = list(cons) if (run + q) % 2 == 0 else list(reversed(cons))
                for name in order:
                    t0 = time.perf_counter()
                    result = cons[name].sql(sql)
                    times[name].append(time.perf_counter() - t0)
                    if name == "ray":
                        last_metrics = result.metrics
            for name in cons:
                row[f"{name}_s"] = statistics.median(times[name]) if times[name] else None
                row[f"{name}_runs"] = times[name]
            if last_metrics is not None:
                row["ray_breakdown"] = _ray_breakdown(last_metrics)
            rows.append(row)
            print(
                f"q{q:02d} "
                + " ".join(f"{name}={row[f'{name}_s'] or float('nan'):.3f}s" for name in cons)
                + f" ok={[row[f'{name}_ok'] for name in cons]}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        shutdown_session()
    report = _report(rows, args, partitions, startup)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"ray_sf{args.sf}.json").write_text(
        json.dumps({"rows": rows, **report["summary"]}, indent=2)
    )
    (out / f"ray_sf{args.sf}.md").write_text(report["markdown"])
    print(report["markdown"])
    return 0 if all(r["local_ok"] and r["ray_ok"] and r["local_off_ok"] for r in rows) else 1


def _report(
    rows: list[dict[str, Any]], args: Any, partitions: int, startup: float
) -> dict[str, Any]:
    usable = [r for r in rows if r.get("local_s") and r.get("ray_s") and r.get("local_off_s")]
    local_total = sum(r["local_s"] for r in usable)
    off_total = sum(r["local_off_s"] for r in usable)
    ray_total = sum(r["ray_s"] for r in usable)
    keys = (
        "tasks",
        "task_seconds",
        "launch_seconds",
        "serialize_seconds",
        "exchange_bytes",
        "outside_tasks_seconds",
    )
    sums = {k: sum(r.get("ray_breakdown", {}).get(k, 0.0) for r in usable) for k in keys}
    lines = [
        f"# TPC-H SF {args.sf}: runtime=ray vs runtime=local",
        "",
        f"{args.cpus} CPUs (Ray worker processes / local CPU slots), {partitions} partitions,"
        f" median of {args.runs} runs; Ray started in {startup:.1f}s (not counted).",
        "",
        "| query | local s | local_off s | ray s | ray/local | tasks | launch s | serialize s |"
        " object store MiB | outside tasks s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r not in usable:
            lines.append(
                f"| q{r['query']:02d} | {r.get('local_error', 'ok')} | {r.get('local_off_error', 'ok')}"
                f" | {r.get('ray_error', 'ok')} | | | | | | |"
            )
            continue
        b = r.get("ray_breakdown", {})
        lines.append(
            f"| q{r['query']:02d} | {r['local_s']:.3f} | {r['local_off_s']:.3f} | {r['ray_s']:.3f}"
            f" | {r['ray_s'] / r['local_s']:.2f} |"
            f" {b.get('tasks', 0):.0f} | {b.get('launch_seconds', 0):.3f} | {b.get('serialize_seconds', 0):.3f} |"
            f" {b.get('exchange_bytes', 0) / 2**20:.1f} | {b.get('outside_tasks_seconds', 0):.3f} |"
        )
    ratio = ray_total / local_total if local_total else float("nan")
    lines += [
        f"| **total** | **{local_total:.3f}** | **{off_total:.3f}** | **{ray_total:.3f}**"
        f" | **{ratio:.2f}** |"
        f" {sums['tasks']:.0f} | {sums['launch_seconds']:.3f} | {sums['serialize_seconds']:.3f} |"
        f" {sums['exchange_bytes'] / 2**20:.1f} | {sums['outside_tasks_seconds']:.3f} |",
        "",
        f"Correct: local {sum(r['local_ok'] for r in rows)}/{len(rows)},"
        f" local_off {sum(r['local_off_ok'] for r in rows)}/{len(rows)},"
        f" ray {sum(r['ray_ok'] for r in rows)}/{len(rows)}."
        " Per-process features (runtime filters, scan sharing) on the local runtime:"
        f" local_off/local = {off_total / local_total if local_total else float('nan'):.2f}."
        f" Load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}.",
        "launch s: summed over tasks, submission to task body start (placement, worker, input fetch);"
        " tasks overlap, so it can exceed the wall time. serialize s: summed output IPC writes."
        " outside tasks s: wall time not covered by each stage's slowest task.",
    ]
    summary = {
        "local_total_s": local_total,
        "local_off_total_s": off_total,
        "load_average": os.getloadavg(),
        "ray_total_s": ray_total,
        "ratio": ratio,
        "ray_breakdown_total": sums,
        "ray_startup_s": startup,
        "cpus": args.cpus,
        "partitions": partitions,
    }
    return {"markdown": "\n".join(lines) + "\n", "summary": summary}


if __name__ == "__main__":
    sys.exit(main())
