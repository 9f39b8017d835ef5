"""Memory-bounded execution at scale: big GROUP BY, join and ORDER BY under a budget.

Run: .venv/bin/python bench/memory.py [--cases groupby,join,orderby,window,selfjoin]
     [--budget 512MiB] [--scale 1.0] [--partitions 2] [--data DIR] [--out bench/results]
     .venv/bin/python bench/memory.py --tpch 10 [--budget 2GiB] [--queries 1,6]

Cases (rows at ``--scale 1``):

* ``groupby`` — 50 M rows, 20 M distinct keys: ``SELECT k, count(*), sum(v) GROUP BY k``;
* ``join`` — a 9 M-row build side of ~1.1 GiB (a 100–140 byte string per row, ≥ 2× the
  budget) joined with 12 M probe rows;
* ``orderby`` — 12 M rows of ~1.5 GiB (≥ 3× the budget) ``ORDER BY k``;
* ``window`` — the same 12 M rows under row_number, a sliding sum and lag over four
  window partitions of ~375 MiB each (each past the budget's share a window may hold:
  spilled and computed in pieces);
* ``selfjoin`` — TPC-H SF 0.1 ``lineitem ⋈ lineitem ON l_suppkey`` with ``count(*)``
  (about 360 M pairs) under 1 GiB, then a second query on the same connection.

``--tpch SF`` instead runs the 22 TPC-H queries at that scale factor under the budget
(``--budget``, default here 2GiB), each query in a fresh shoal process (so its peak RSS
is its own) and checked against ``answers/sf<SF>`` when present, else against DuckDB's
result (computed in another fresh process per query). Writes
``<out>/memory_tpch_sf<SF>.json`` after every query and prints a markdown table.

Each case runs in its own subprocess, which streams the result and folds it into a
checksum (holding a 20 M-row answer would measure the caller, not the engine) and
reports its own peak RSS (``VmHWM``). DuckDB computes the same checksum over the
same Parquet files in another subprocess; ``orderby`` also checks every row's
position. The bound checked is peak RSS < budget + 300 MiB. Data are generated once
into ``<data>/memory-bench`` (``--data``, else ``$SHOAL_DATA_DIR``, else ``data/``).
Writes ``<out>/memory.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parents[1]
RSS_SLACK = 300 << 20
_ROW_GROUP = 1 << 20


# ------------------------------------------------------------------------- data


def _strings(keys: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """A string per key of 100 + key % 41 random letters: its length checks the row."""
    lengths = 100 + (keys % 41)
    offsets = np.zeros(len(keys) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = rng.integers(97, 123, int(offsets[-1]), dtype=np.uint8)
    return pa.LargeStringArray.from_buffers(
        len(keys), pa.py_buffer(offsets), pa.py_buffer(data)
    ).cast(pa.string())


def _write(path: Path, make: Any, rows: int, chunk: int = 4 << 20) -> Path:
    """Parquet files under ``path`` (made once: a ``_done`` marker says complete)."""
    if (path / "_done").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    for i, start in enumerate(range(0, rows, chunk)):
        table = make(start, min(rows, start + chunk))
        pq.write_table(table, path / f"part-{i:04d}.parquet", row_group_size=_ROW_GROUP)
    (path / "_done").write_text("")
    return path


def make_data(root: Path, scale: float) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    groups = int(20_000_000 * scale)
    rows = int(50_000_000 * scale)

    def grouped(lo: int, hi: int) -> pa.Table:
        i = np.arange(lo, hi, dtype=np.int64)
        # Every key in [0, groups) appears (a multiplier coprime with groups permutes).
        return pa.table({"k": (i * 7_919) % groups, "v": i % 1000})

    build_rows, probe_rows, sort_rows = (int(r * scale) for r in (9e6, 12e6, 12e6))

    def build(lo: int, hi: int) -> pa.Table:
        rng = np.random.default_rng(lo + 1)
        k = np.arange(lo, hi, dtype=np.int64)
        return pa.table({"bk": k, "pad": _strings(k, rng)})

    def probe(lo: int, hi: int) -> pa.Table:
        rng = np.random.default_rng(lo + 2)
        k = rng.integers(0, int(build_rows * 1.25), hi - lo)  # a fifth find no partner
        return pa.table({"pk": k, "v": rng.integers(0, 100, hi - lo)})

    def ordered(lo: int, hi: int) -> pa.Table:
        rng = np.random.default_rng(lo + 3)
        # A permutation of [0, sort_rows): sorted, row i has k = i.
        k = (np.arange(lo, hi, dtype=np.int64) * 1_000_003) % sort_rows
        return pa.table({"k": k, "pad": _strings(k, rng)})

    tag = f"x{scale:g}"
    return {
        "grouped": _write(root / f"grouped-{tag}", grouped, rows),
        "build": _write(root / f"build-{tag}", build, build_rows, 1 << 20),
        "probe": _write(root / f"probe-{tag}", probe, probe_rows),
        "ordered": _write(root / f"ordered-{tag}", ordered, sort_rows, 1 << 20),
    }


# ------------------------------------------------------------------------ cases

GROUPBY = "SELECT k, count(*) AS c, sum(v) AS s FROM grouped GROUP BY k"
JOIN = "SELECT pk, v, length(pad) AS len FROM probe JOIN build ON pk = bk"
ORDERBY = "SELECT k, pad FROM ordered ORDER BY k"
WINDOW = """SELECT k, row_number() OVER w AS rn,
    sum(k % 1000) OVER (w ROWS BETWEEN 9 PRECEDING AND CURRENT ROW) AS s,
    lag(k) OVER w AS l, length(pad) AS len
    FROM ordered WINDOW w AS (PARTITION BY k % 4 ORDER BY k)"""
SELFJOIN = "SELECT count(*) AS pairs FROM lineitem a JOIN lineitem b ON a.l_suppkey = b.l_suppkey"


def _int64(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.cast(column, pa.int64()))


class Checksum:
    """Order-free sums over a streamed result (Python ints: no overflow)."""

    def __init__(self) -> None:
        self.sums: dict[str, int] = {}

    def add(self, name: str, values: np.ndarray) -> None:
        self.sums[name] = self.sums.get(name, 0) + int(values.sum(dtype=np.int64))


def _fold_groupby(batch: pa.RecordBatch, out: Checksum) -> None:
    k, c, s = (_int64(batch.column(i)) for i in range(3))
    out.add("rows", np.ones(len(k), np.int64))
    out.add("sum_k", k)
    out.add("sum_c", c)
    out.add("sum_s", s)
    out.add("sum_cc", c * c)
    out.add("sum_ks", (k % 1_000_003) * s)


def _fold_join(batch: pa.RecordBatch, out: Checksum) -> None:
    pk, v, length = (_int64(batch.column(i)) for i in range(3))
    out.add("rows", np.ones(len(pk), np.int64))
    out.add("sum_k", pk)
    out.add("sum_v", v)
    out.add("sum_kv", (pk % 1_000_003) * v)
    out.add("bad_len", (length != 100 + pk % 41).astype(np.int64))


DUCK_CHECKSUMS = {
    "groupby": f"""SELECT count(*) AS rows, sum(k) AS sum_k, sum(c) AS sum_c, sum(s) AS sum_s,
        sum(c * c) AS sum_cc, sum((k % 1000003) * s) AS sum_ks FROM ({GROUPBY})""",
    "join": f"""SELECT count(*) AS rows, sum(pk) AS sum_k, sum(v) AS sum_v,
        sum((pk % 1000003) * v) AS sum_kv,
        sum(CASE WHEN len <> 100 + pk % 41 THEN 1 ELSE 0 END) AS bad_len FROM ({JOIN})""",
    "window": f"""SELECT count(*) AS rows, sum(k) AS sum_k, sum(rn) AS sum_rn, sum(s) AS sum_s,
        sum(coalesce(l, -1)) AS sum_l,
        sum(CASE WHEN len <> 100 + k % 41 THEN 1 ELSE 0 END) AS bad_len FROM ({WINDOW})""",
    "selfjoin": SELFJOIN,
}


def _fold_window(batch: pa.RecordBatch, out: Checksum) -> None:
    k, rn, s = (_int64(batch.column(i)) for i in range(3))
    lag = _int64(batch.column(3).fill_null(-1))
    length = _int64(batch.column(4))
    out.add("rows", np.ones(len(k), np.int64))
    out.add("sum_k", k)
    out.add("sum_rn", rn)
    out.add("sum_s", s)
    out.add("sum_l", lag)
    out.add("bad_len", (length != 100 + k % 41).astype(np.int64))


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def _tpch_lineitem(data_root: Path) -> Path:
    sys.path.insert(0, str(REPO_ROOT / "src"))
    from shoal.datagen import ensure_tpch

    return ensure_tpch(0.1, data_root) / "lineitem"


def child(case: str, engine: str, paths: dict[str, str], budget: str, partitions: int) -> None:
    """Run one case in this (fresh) process; print one JSON line."""
    started = time.perf_counter()
    reply: dict[str, Any] = {"case": case, "engine": engine}
    if engine == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute(f"SET threads = {partitions}")
        for name, path in paths.items():
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}/**/*.parquet')")
        if case == "orderby":
            reply["checksum"] = {}
        else:
            cursor = con.execute(DUCK_CHECKSUMS[case])
            row = cursor.fetchone()
            assert row is not None
            names = [d[0] for d in cursor.description]
            reply["checksum"] = {n: int(v or 0) for n, v in zip(names, row, strict=True)}
    else:
        sys.path.insert(0, str(REPO_ROOT / "src"))
        import shoal

        con = shoal.connect(partitions, memory_limit=budget)
        for name, path in paths.items():
            con.register_parquet(name, path)
        out = Checksum()
        sql = {
            "groupby": GROUPBY,
            "join": JOIN,
            "orderby": ORDERBY,
            "window": WINDOW,
            "selfjoin": SELFJOIN,
        }[case]
        stream = con.stream(sql)
        expect = 0
        for batch in stream:
            if case == "groupby":
                _fold_groupby(batch, out)
            elif case == "join":
                _fold_join(batch, out)
            elif case == "window":
                _fold_window(batch, out)
            elif case == "orderby":
                k = _int64(batch.column(0))
                length = _int64(pc.utf8_length(batch.column(1)))
                out.add("misplaced", (k != np.arange(expect, expect + len(k))).astype(np.int64))
                out.add("bad_len", (length != 100 + k % 41).astype(np.int64))
                expect += len(k)
            else:
                out.add("pairs", _int64(batch.column(0)))
        if case == "orderby":
            out.sums["rows"] = expect
        reply["checksum"] = out.sums
        m = stream.metrics
        reply.update(
            peak_reserved=m.peak_reserved_bytes,
            spilled_bytes=m.spilled_bytes,
            spill_files=m.spill_files,
        )
        if case == "selfjoin":
            # The next query on the same connection answers.
            n = con.sql("SELECT count(*) FROM lineitem").fetchall()[0][0]
            reply["next_query_rows"] = n
    reply["seconds"] = round(time.perf_counter() - started, 2)
    reply["peak_rss"] = _peak_rss()
    print(json.dumps(reply), flush=True)


def tpch_child(spec: dict[str, Any]) -> None:
    """One TPC-H query on one engine in this (fresh) process: the result to an IPC file,
    one JSON line of figures."""
    sys.path.insert(0, str(REPO_ROOT / "src"))
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from support.tpch import query_text

    from shoal.datagen import tpch_tables

    tables = tpch_tables(Path(spec["data"]))
    sql = query_text(spec["q"])
    reply: dict[str, Any] = {"q": spec["q"], "engine": spec["engine"]}
    pa.set_cpu_count(spec["partitions"])
    started = time.perf_counter()
    if spec["engine"] == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute(f"SET threads = {spec['partitions']}")
        for name, path in tables.items():
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}/**/*.parquet')")
        table = con.sql(sql).to_arrow_table()
    else:
        import shoal

        con = shoal.connect(
            spec["partitions"],
            memory_limit=spec["budget"],
            max_running_tasks=spec["partitions"],
        )
        for name, path in tables.items():
            con.register_parquet(name, str(path))
        result = con.sql(sql)
        table = result.to_arrow()
        m = result.metrics
        reply.update(
            peak_reserved=m.peak_reserved_bytes,
            spilled_bytes=m.spilled_bytes,
            spill_files=m.spill_files,
        )
    reply["seconds"] = round(time.perf_counter() - started, 2)
    reply["peak_rss"] = _peak_rss()
    with pa.OSFile(spec["result"], "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    print(json.dumps(reply), flush=True)


def _run_tpch(args: argparse.Namespace, root: Path) -> None:
    """Every TPC-H query at ``args.tpch`` under the budget, checked, with its peak RSS."""
    import tempfile

    sys.path.insert(0, str(REPO_ROOT / "bench"))
    sys.path.insert(0, str(REPO_ROOT / "src"))
    from tpch import check_result  # bench/tpch.py: the answer / DuckDB comparison

    from shoal.datagen import ensure_tpch

    sf = args.tpch
    data = ensure_tpch(sf, root)
    budget = args.budget if args.budget_given else "2GiB"
    queries = [int(q) for q in args.queries.split(",")] if args.queries else list(range(1, 23))
    out = args.out / f"memory_tpch_sf{sf:g}.json"
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for q in queries:
            runs: dict[str, Any] = {}
            tables: dict[str, Any] = {}
            from support.tpch import answer_path

            engines = ["shoal"] if answer_path(sf, q).is_file() else ["shoal", "duckdb"]
            for engine in engines:
                result = str(Path(tmp) / f"q{q}-{engine}.arrow")
                spec = {
                    "engine": engine,
                    "q": q,
                    "data": str(data),
                    "budget": budget,
                    "partitions": args.partitions,
                    "result": result,
                }
                runs[engine] = _run_child([json.dumps(spec)], "--tpch-child")
                if "error" not in runs[engine]:
                    with pa.OSFile(result, "rb") as source:
                        tables[engine] = pa.ipc.open_file(source).read_all()
            if "shoal" in tables:
                status, error, _ = check_result(tables["shoal"], sf, q, tables.get("duckdb"))
            else:
                status, error = "FAIL", runs["shoal"].get("error", "")[-300:]
            row = {"q": q, "budget": budget, "status": status, "error": error, **runs}
            rows.append(row)
            out.write_text(json.dumps(rows, indent=2))
            s, d = runs["shoal"], runs.get("duckdb", {})
            print(
                f"Q{q:02d} {status} shoal {s.get('seconds', 'FAIL')} s"
                f" {_mib(s.get('peak_rss', 0))} (reserved {_mib(s.get('peak_reserved', 0))},"
                f" spilled {_mib(s.get('spilled_bytes', 0))})"
                f" duckdb {d.get('seconds', '-')} s {_mib(d.get('peak_rss', 0))}",
                file=sys.stderr,
                flush=True,
            )
    print(f"TPC-H SF {sf:g}, memory_limit={budget}, partitions {args.partitions}")
    print()
    print(
        "| query | correct | shoal s | shoal peak RSS | peak reserved | spilled | DuckDB s"
        " | DuckDB peak RSS |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        s, d = r["shoal"], r.get("duckdb", {})
        print(
            f"| Q{r['q']:02d} | {r['status']} | {s.get('seconds', 'FAIL')}"
            f" | {_mib(s.get('peak_rss', 0))} | {_mib(s.get('peak_reserved', 0))}"
            f" | {_mib(s.get('spilled_bytes', 0))} | {d.get('seconds', '-')}"
            f" | {_mib(d['peak_rss']) if 'peak_rss' in d else '-'} |"
        )


def _run_child(args: list[str], flag: str = "--child") -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, flag, *args], capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout)[-2000:], "returncode": proc.returncode}
    return dict(json.loads(lines[-1]))


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", default="groupby,join,orderby,window,selfjoin")
    p.add_argument("--budget", default="512MiB", help="memory_limit (selfjoin: 1GiB)")
    p.add_argument("--scale", type=float, default=1.0, help="row counts times this")
    p.add_argument("--partitions", type=int, default=os.cpu_count() or 2)
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    p.add_argument("--tpch", type=float, default=None, help="TPC-H at this SF instead")
    p.add_argument("--queries", default=None, help="with --tpch: e.g. 1,6 (default all 22)")
    p.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    p.add_argument("--tpch-child", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.budget_given = any(a.startswith("--budget") for a in sys.argv[1:])
    if args.child:
        case, engine, paths, budget, partitions = args.child
        child(case, engine, json.loads(paths), budget, int(partitions))
        return
    if args.tpch_child:
        tpch_child(json.loads(args.tpch_child))
        return
    sys.path.insert(0, str(REPO_ROOT / "src"))
    from shoal.memory.size import parse_bytes

    root = args.data or Path(os.environ.get("SHOAL_DATA_DIR") or REPO_ROOT / "data")
    if args.tpch is not None:
        _run_tpch(args, root)
        return
    started = time.perf_counter()
    cases = args.cases.split(",")
    data = make_data(root / "memory-bench", args.scale) if set(cases) - {"selfjoin"} else {}
    print(f"data ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    tables = {
        "groupby": {"grouped": data.get("grouped")},
        "join": {"build": data.get("build"), "probe": data.get("probe")},
        "orderby": {"ordered": data.get("ordered")},
        "window": {"ordered": data.get("ordered")},
    }
    rows = []
    for case in cases:
        budget = "1GiB" if case == "selfjoin" else args.budget
        if case == "selfjoin":
            paths = {"lineitem": str(_tpch_lineitem(root))}
        else:
            paths = {name: str(path) for name, path in tables[case].items()}
        common = [json.dumps(paths), budget, str(args.partitions)]
        shoal_run = _run_child([case, "shoal", *common])
        duck_run = _run_child([case, "duckdb", *common])
        limit = parse_bytes(budget)
        checksum = shoal_run.get("checksum", {})
        if case == "orderby":
            correct = (
                checksum.get("misplaced") == 0
                and checksum.get("bad_len") == 0
                and checksum.get("rows") == int(12e6 * args.scale)
            )
        else:
            correct = "error" not in shoal_run and checksum == duck_run.get("checksum")
        if case in ("join", "window"):
            correct = correct and checksum.get("bad_len") == 0
        rss = shoal_run.get("peak_rss", 0)
        row = {
            "case": case,
            "budget": budget,
            "shoal": shoal_run,
            "duckdb": duck_run,
            "correct": bool(correct),
            "rss_within_bound": bool(rss and rss < limit + RSS_SLACK),
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(json.dumps(rows, indent=2))
    print(
        "| case | budget | correct | shoal s | shoal peak RSS | bound | spilled | peak reserved"
        " | DuckDB s | DuckDB peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s, d = r["shoal"], r["duckdb"]
        print(
            f"| {r['case']} | {r['budget']} | {'yes' if r['correct'] else 'NO'}"
            f" | {s.get('seconds', 'FAIL')} | {_mib(s.get('peak_rss', 0))}"
            f" | {'within' if r['rss_within_bound'] else 'OVER'}"
            f" | {_mib(s.get('spilled_bytes', 0))} | {_mib(s.get('peak_reserved', 0))}"
            f" | {d.get('seconds', 'FAIL')} | {_mib(d.get('peak_rss', 0))} |"
        )


if __name__ == "__main__":
    main()
