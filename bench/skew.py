"""Skew benchmark: a fact table with uniform, Zipf(1.1) and 90%-hot keys, mitigation on/off.

Run: .venv/bin/python bench/skew.py [--rows 20000000] [--dim-rows N] [--partitions 4]
     [--exchange materialized|pipelined] [--runs 1] [--runtime local|ray] [--workers 2]
     [--data DIR] [--out bench/results]

Data (generated here, cached under ``--data``, default ``$SHOAL_DATA_DIR/skew`` else
``<repo>/data/skew``): one fact table ``(k, v)`` of ``--rows`` rows in four layouts —
``uniform`` keys over the dimension's key range, ``zipf`` (Zipf(1.1) ranks mapped to
random keys), ``hot`` (one key holds 90% of the rows, the rest uniform) and ``hotfile``
(the ``hot`` rows with every hot row in one input file) — and a dimension ``(d_key,
d_grp, d_pad)`` of ``--dim-rows`` rows (default: 6 M, or 30% of ``--rows`` when that
is smaller), one row per key. Eight Parquet files per table.

Queries: ``agg`` — ``GROUP BY k`` over the fact table (as many groups as distinct keys:
about 5.8 M for the uniform layout at the defaults); ``join`` — the fact table joined
to the dimension on the key (the dimension is above the broadcast threshold, so both
sides repartition), grouped by ``d_grp``; ``join`` again over ``hotfile``.

Each case runs with mitigation on (the defaults) and off: every boolean adaptive
setting ``Settings`` has among ``hot_key_aggregate``, ``skew_join``,
``adaptive_broadcast`` and ``adaptive_coalesce`` set False (settings this build does
not have are skipped, so the script runs on any). The first run of each is checked
against DuckDB on the same files; then ``--runs`` timed runs, going round the cases
(every case's first timed run, then every case's second, …). Reported per case, from
the last run's EXPLAIN ANALYZE JSON: wall time, each stage's max / median task rows in,
the critical path (the longest stage path weighted by each stage's slowest task, CPU
seconds) and the decisions the run took — every list under a key naming
``decision`` in the JSON, and the hot-key aggregate's figures.

``--runtime ray --workers 2`` starts a local Ray (127.0.0.1, 2 CPUs: two worker
processes) and runs the join over ``uniform``, ``hot`` and ``hotfile`` at
``--partitions`` (default 8 there), reporting the hot / uniform wall-time ratio.

Writes ``<out>/skew_r<rows>[_ray].json`` and ``.md`` (the table, also printed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ("uniform", "zipf", "hot", "hotfile")
FILES = 8
#: Boolean settings that turn a skew mitigation or an adaptive decision off.
MITIGATIONS = ("hot_key_aggregate", "skew_join", "adaptive_broadcast", "adaptive_coalesce")
HOT_SHARE = 0.9
ZIPF_S = 1.1

AGG_SQL = "SELECT k, count(*) AS n, sum(v) AS s FROM {fact} GROUP BY k"
JOIN_SQL = (
    "SELECT d.d_grp, count(*) AS n, sum(f.v) AS s, sum(d.d_pad) AS p"
    " FROM {fact} f JOIN dim d ON f.k = d.d_key GROUP BY d.d_grp"
)


# ------------------------------------------------------------------------- data


def ensure_data(root: Path, rows: int, dim_rows: int) -> Path:
    """Generate the tables under ``root/r<rows>_d<dim_rows>`` unless already complete."""
    folder = root / f"r{rows}_d{dim_rows}"
    if (folder / "_complete").exists():
        return folder
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=root))
    rng = np.random.default_rng(11)
    row_group = max(10_000, rows // (FILES * 4))
    keys = np.arange(dim_rows, dtype=np.int64)
    _write(
        tmp / "dim",
        pa.table({"d_key": keys, "d_grp": keys % 100, "d_pad": rng.integers(0, 1000, dim_rows)}),
        row_group,
        shuffle=rng,
    )
    v = rng.integers(0, 1000, rows)
    uniform = rng.integers(0, dim_rows, rows)
    _write(tmp / "uniform", pa.table({"k": uniform, "v": v}), row_group)
    weights = np.arange(1, dim_rows + 1, dtype=np.float64) ** -ZIPF_S
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    ranks = np.minimum(np.searchsorted(cdf, rng.random(rows)), dim_rows - 1)
    _write(tmp / "zipf", pa.table({"k": rng.permutation(dim_rows)[ranks], "v": v}), row_group)
    hot_key = int(rng.integers(0, dim_rows))
    is_hot = rng.random(rows) < HOT_SHARE
    hot = np.where(is_hot, hot_key, uniform)
    _write(tmp / "hot", pa.table({"k": hot, "v": v}), row_group)
    # Every hot row in the first file, the others share the rest.
    order = np.argsort(~is_hot, kind="stable")
    hot_rows = int(is_hot.sum())
    table = pa.table({"k": hot[order], "v": v[order]})
    out = tmp / "hotfile"
    out.mkdir()
    pq.write_table(table.slice(0, hot_rows), out / "part-0.parquet", row_group_size=row_group)
    rest = table.slice(hot_rows)
    step = -(-rest.num_rows // (FILES - 1))
    for i in range(FILES - 1):
        pq.write_table(
            rest.slice(i * step, step), out / f"part-{i + 1}.parquet", row_group_size=row_group
        )
    (tmp / "_complete").write_text(json.dumps({"rows": rows, "dim_rows": dim_rows}))
    if (folder / "_complete").exists():  # another run finished first
        return folder
    tmp.rename(folder)
    return folder


def _write(
    folder: Path, table: pa.Table, row_group: int, shuffle: np.random.Generator | None = None
) -> None:
    folder.mkdir(parents=True)
    if shuffle is not None:
        table = table.take(shuffle.permutation(table.num_rows))
    step = -(-table.num_rows // FILES)
    for i in range(FILES):
        part = table.slice(i * step, step)
        pq.write_table(part, folder / f"part-{i}.parquet", row_group_size=row_group)


# ---------------------------------------------------------------------- running


def known_mitigations() -> list[str]:
    from shoal.physical.context import Settings

    fields = Settings.__dataclass_fields__
    return [name for name in MITIGATIONS if name in fields and fields[name].type in (bool, "bool")]


def connect(
    data: Path, partitions: int, runtime: str, exchange: str, mitigation: bool, threshold: int
) -> Any:
    import shoal

    settings: dict[str, Any] = {"broadcast_threshold_bytes": threshold}
    if runtime == "local":
        settings["retry_policy"] = "task" if exchange == "materialized" else "none"
    if not mitigation:
        settings.update({name: False for name in known_mitigations()})
    con = shoal.connect(partitions, runtime=runtime, **settings)
    for name in (*LAYOUTS, "dim"):
        con.register_parquet("dim" if name == "dim" else f"fact_{name}", data / name)
    return con


def duckdb_result(data: Path, sql: str, threads: int) -> pa.Table:
    import duckdb

    con = duckdb.connect(":memory:", config={"threads": threads})
    try:
        for name in (*LAYOUTS, "dim"):
            table = "dim" if name == "dim" else f"fact_{name}"
            con.execute(
                f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{data / name}/*.parquet')"
            )
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def same_result(actual: pa.Table, expected: pa.Table) -> str | None:
    """None when the two hold the same rows (any order; numbers compared as float64)."""
    if actual.num_rows != expected.num_rows or actual.num_columns != expected.num_columns:
        return f"shape {actual.num_rows}x{actual.num_columns} vs {expected.num_rows}x{expected.num_columns}"
    key = actual.column_names[0]
    a = actual.sort_by(key)
    e = expected.rename_columns(actual.column_names).sort_by(key)
    for name in a.column_names:
        x = np.asarray(a.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False))
        y = np.asarray(e.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False))
        if not np.allclose(x, y, rtol=1e-12, atol=0, equal_nan=True):
            bad = int(np.flatnonzero(~np.isclose(x, y, rtol=1e-12, atol=0, equal_nan=True))[0])
            return f"column {name} row {bad}: {x[bad]} vs {y[bad]}"
    return None


def decisions(doc: dict[str, Any]) -> list[str]:
    """Every decision the EXPLAIN ANALYZE JSON lists, and the hot-key aggregate figures."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if "decision" in key.lower() and isinstance(value, list):
                    out.extend(_describe(item) for item in value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(doc)
    for stage in doc.get("stages", []):
        for op in stage.get("operators", []):
            if op.get("hot_keys") or op.get("passthrough_rows"):
                out.append(
                    f"stage {stage['stage']} hot-key aggregate: {op['hot_keys']} hot keys"
                    f" pre-aggregated, {op['hot_rows_absorbed']} rows absorbed,"
                    f" {op['passthrough_rows']} rows passed through"
                )
    return out


def _describe(item: Any) -> str:
    if isinstance(item, dict):
        for field in ("text", "description", "message", "summary"):
            if isinstance(item.get(field), str):
                return str(item[field])
        return json.dumps(item, sort_keys=True, default=str)
    return str(item)


def stage_figures(doc: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
    """Per stage its tasks' max / median rows in; and the largest max / median of the
    stages that read an exchange (where key skew lands: a scan stage's split queue hands
    out row groups unevenly by design in pipelined mode)."""
    stages = []
    worst = 1.0
    for stage in doc.get("stages", []):
        summary = stage.get("task_summary") or {}
        top, mid = summary.get("max_rows_in", 0), summary.get("median_rows_in", 0)
        stages.append(
            {
                "stage": stage["stage"],
                "tasks": len(stage.get("task_figures", [])),
                "max_rows_in": top,
                "median_rows_in": mid,
                "max_cpu_seconds": summary.get("max_cpu_seconds", 0.0),
            }
        )
        if stage.get("inputs") and len(stage.get("task_figures", [])) > 1 and top > 0:
            worst = max(worst, top / mid if mid else float("inf"))
    return stages, worst


def check_case(con: Any, sql: str, expected: pa.Table) -> str | None:
    """The first (untimed) run, compared with DuckDB's result: None when equal."""
    return same_result(con.sql(sql).to_arrow(), expected)


def case_figures(result: Any, times: list[float], problem: str | None) -> dict[str, Any]:
    doc = json.loads(result.explain_analyze_json())
    stages, worst = stage_figures(doc)
    return {
        "ok": problem is None,
        "problem": problem,
        "wall_seconds": statistics.median(times) if times else None,
        "runs": times,
        "critical_path_seconds": doc.get("critical_path", {}).get("seconds"),
        "critical_path_stages": doc.get("critical_path", {}).get("stages"),
        "stages": stages,
        "max_over_median_rows": worst,
        "decisions": decisions(doc),
    }


def cases(runtime: str) -> list[tuple[str, str, str]]:
    """(case name, query kind, fact layout)."""
    if runtime == "ray":
        return [("join/" + layout, "join", layout) for layout in ("uniform", "hot", "hotfile")]
    out = [("agg/" + layout, "agg", layout) for layout in ("uniform", "zipf", "hot")]
    out += [("join/" + layout, "join", layout) for layout in ("uniform", "zipf", "hot", "hotfile")]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=20_000_000, help="fact rows (20 M)")
    p.add_argument("--dim-rows", type=int, default=None, help="dimension rows (6 M)")
    p.add_argument("--partitions", type=int, default=None, help="tasks per stage (4; ray: 8)")
    p.add_argument("--exchange", choices=("materialized", "pipelined"), default="materialized")
    p.add_argument("--runs", type=int, default=1, help="timed runs after the checked one (1)")
    p.add_argument("--runtime", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int, default=2, help="Ray worker processes (2)")
    p.add_argument("--cases", default=None, help="comma-separated case names (all)")
    p.add_argument("--data", type=Path, default=None, help="cache folder")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = p.parse_args()
    sys.path.insert(0, str(REPO_ROOT / "src"))
    dim_rows = args.dim_rows or min(6_000_000, max(1000, int(args.rows * 0.3)))
    partitions = args.partitions or (8 if args.runtime == "ray" else 4)
    root = args.data or Path(os.environ.get("SHOAL_DATA_DIR", REPO_ROOT / "data")) / "skew"
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = ensure_data(root, args.rows, dim_rows)
    generate_seconds = time.perf_counter() - started
    threads = args.workers if args.runtime == "ray" else (os.cpu_count() or 1)
    # The dimension (24 bytes a row) stays above the broadcast threshold at any size, so
    # the join repartitions both sides as planned.
    threshold = min(32 << 20, max(1024, dim_rows * 24 // 4))
    if args.runtime == "ray":
        from shoal.runtime.ray_session import ensure_session

        ray_tmp = Path(tempfile.mkdtemp(prefix="shoal-bench-skew-"))
        (ray_tmp / "ray").mkdir()
        os.environ.setdefault("RAY_TMPDIR", str(ray_tmp))
        ensure_session(None, num_cpus=args.workers, temp_dir=str(ray_tmp / "ray"))
    chosen = cases(args.runtime)
    if args.cases:
        wanted = set(args.cases.split(","))
        chosen = [c for c in chosen if c[0] in wanted]
    rows: list[dict[str, Any]] = []
    cons = {
        on: connect(data, partitions, args.runtime, args.exchange, on, threshold)
        for on in (True, False)
    }
    try:
        # Every case checked first; then the timed runs go round the cases (each case's
        # k-th run beside the others' k-th), so a change in the machine's load falls on
        # all of them rather than on whichever ran last.
        checked: list[tuple[str, bool, str, str | None]] = []
        for name, kind, layout in chosen:
            sql = (AGG_SQL if kind == "agg" else JOIN_SQL).format(fact=f"fact_{layout}")
            expected = duckdb_result(data, sql, threads)
            for on in (True, False):
                checked.append((name, on, sql, check_case(cons[on], sql, expected)))
        times: list[list[float]] = [[] for _ in checked]
        last: list[Any] = [None] * len(checked)
        for _ in range(args.runs):
            for i, (_, on, sql, _) in enumerate(checked):
                started = time.perf_counter()
                last[i] = cons[on].sql(sql)
                times[i].append(time.perf_counter() - started)
        for i, (name, on, sql, problem) in enumerate(checked):
            row = {"case": name, "mitigation": "on" if on else "off"}
            row.update(case_figures(last[i] or cons[on].sql(sql), times[i], problem))
            rows.append(row)
            print(_line(row), file=sys.stderr, flush=True)
    finally:
        if args.runtime == "ray":
            from shoal.runtime.ray_session import shutdown_session

            shutdown_session()
    report = {
        "rows": args.rows,
        "dim_rows": dim_rows,
        "partitions": partitions,
        "runtime": args.runtime,
        "workers": args.workers if args.runtime == "ray" else None,
        "exchange": "materialized" if args.runtime == "ray" else args.exchange,
        "mitigation_settings_off": known_mitigations(),
        "broadcast_threshold_bytes": threshold,
        "generate_seconds": round(generate_seconds, 3),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "cases": rows,
        "ratios": _ratios(rows),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"skew_r{args.rows}" + ("_ray" if args.runtime == "ray" else "")
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str))
    text = _markdown(report)
    (args.out / f"{stem}.md").write_text(text)
    print(text)
    return 0 if all(r["ok"] for r in rows) else 1


def _ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each hot case's wall time and critical path over its uniform case's (same query,
    same mitigation)."""
    by = {(r["case"], r["mitigation"]): r for r in rows}
    out: dict[str, float] = {}
    for (case, mitigation), r in by.items():
        kind, layout = case.split("/")
        base = by.get((f"{kind}/uniform", mitigation))
        if layout == "uniform" or base is None:
            continue
        for field in ("wall_seconds", "critical_path_seconds"):
            if r.get(field) and base.get(field):
                out[f"{case} {mitigation} {field} / uniform"] = round(r[field] / base[field], 3)
    return out


def _line(row: dict[str, Any]) -> str:
    wall = row["wall_seconds"]
    return (
        f"{row['case']:<14} mitigation={row['mitigation']:<3} ok={row['ok']}"
        f" wall={wall if wall is None else round(wall, 3)}s"
        f" critical_path={row['critical_path_seconds']}s"
        f" max/median rows={row['max_over_median_rows']:.2f}"
        + (f" problem={row['problem']}" if row["problem"] else "")
    )


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# bench/skew.py — {report['rows']:,} fact rows, {report['dim_rows']:,} dimension rows",
        "",
        f"runtime={report['runtime']} exchange={report['exchange']}"
        f" partitions={report['partitions']}"
        + (f" workers={report['workers']}" if report["workers"] else "")
        + f"; mitigation off sets {', '.join(report['mitigation_settings_off']) or '(none)'} False",
        "",
        "| case | mitigation | ok | wall s | critical path s | worst max/median task rows (exchange-fed stages)"
        " | per stage max/median rows in | decisions |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["cases"]:
        per_stage = "; ".join(
            f"s{s['stage']}: {s['max_rows_in']:,.0f}/{s['median_rows_in']:,.0f}"
            for s in r["stages"]
            if s["tasks"] > 1
        )
        wall = "—" if r["wall_seconds"] is None else f"{r['wall_seconds']:.2f}"
        lines.append(
            f"| {r['case']} | {r['mitigation']} | {'yes' if r['ok'] else 'NO: ' + str(r['problem'])}"
            f" | {wall} | {r['critical_path_seconds']:.2f} | {r['max_over_median_rows']:.2f}"
            f" | {per_stage} | {'<br>'.join(r['decisions']) or '—'} |"
        )
    if report["ratios"]:
        lines += ["", "| ratio to the uniform case | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in report["ratios"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
