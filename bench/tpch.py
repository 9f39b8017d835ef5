"""TPC-H benchmark: shoal (embedded) against DuckDB over the same Parquet files.

Run: .venv/bin/python bench/tpch.py --sf 1 [--queries 1,6] [--runs 3] [--threads N]
     [--partitions P] [--engines shoal,duckdb[,polars,datafusion]] [--timeout 300]
     [--memory-limit 1GiB] [--data DIR] [--out bench/results]

Data come from :func:`shoal.datagen.ensure_tpch` (cached in ``--data``, else
``$SHOAL_DATA_DIR``, else ``<repo>/data``); the query texts and reference answers from
``../shared/tpch`` beside the repository (``$SHOAL_TPCH_DIR`` overrides), located by
``tests/support/tpch.py``.

Each engine runs in its own worker process (multiprocessing, "spawn"), so its peak
memory is its own, and a query that hangs is cut off after ``--timeout`` seconds by
killing the worker (a fresh one is started for the next query). For every query the
parent asks each worker for one warm-up run and then ``--runs`` timed runs, alternating
engines run by run (and which engine goes first, query by query). The warm-up result of
each engine is checked: against ``answers/sf<SF>/qNN.csv`` when that file exists, else
against DuckDB's result. A query that fails, times out or gives a wrong result is
reported as such, gets no timed runs and is left out of the ratios.

Writes ``<out>/tpch_sf<SF>.json`` (every timing, ratios, peak RSS, failures, machine
info) and ``<out>/tpch_sf<SF>.md`` (the markdown table, also printed to stdout).

Peak RSS: on Linux the worker reads ``VmHWM`` from ``/proc/self/status``; elsewhere it
falls back to ``resource.getrusage(RUSAGE_SELF).ru_maxrss``. (On Linux ``ru_maxrss`` of
a spawned process includes its parent's peak at the time of the fork and exec, so it
would not separate the engines; both figures are in the JSON.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata
import importlib.util
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # tests/support: query texts and answers

from support.tpch import ALL_QUERIES, ORDER_BY, answer_path, query_text  # noqa: E402

#: Every engine the harness knows, and the module each one needs.
KNOWN_ENGINES: dict[str, str] = {
    "shoal": "shoal",
    # shoal with retry_policy="task": every exchange materialized in the spool
    "shoal-materialized": "shoal",
    "duckdb": "duckdb",
    "polars": "polars",
    "datafusion": "datafusion",
}
#: The engine the others are compared with (ratio = engine median / baseline median).
BASELINE = "duckdb"
#: Seconds a worker may take to start (imports and table registration).
STARTUP_TIMEOUT = 120.0
#: Relative tolerance when a result is compared with DuckDB's (engines may keep AVG of a
#: decimal as a decimal, DuckDB gives a double).
FALLBACK_REL_TOL = 1e-6

OK = "ok"
#: ``--memory-limit`` reaches the shoal worker (a spawned process) through this variable.
MEMORY_LIMIT_ENV = "SHOAL_BENCH_MEMORY_LIMIT"


# ------------------------------------------------------------------------- workers


def _peak_rss_kb() -> tuple[int | None, int]:
    """(VmHWM of this process in KiB where /proc has it, ru_maxrss in KiB)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":  # bytes there, KiB on Linux
        maxrss //= 1024
    hwm = None
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                    break
    except OSError:
        pass
    return hwm, maxrss


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _parquet_glob(path: Path) -> str:
    """All Parquet files of a table: its folder (searched recursively) or its file."""
    return str(path / "**" / "*.parquet") if path.is_dir() else str(path)


def _make_runner(
    engine: str, tables: dict[str, Path], threads: int, partitions: int
) -> tuple[Callable[[str], Any], str]:
    """Set ``engine`` up over ``tables``: a function running SQL to a pyarrow Table."""
    if engine in ("shoal", "shoal-materialized"):
        # shoal before pyarrow, as its docs ask: it sets Arrow's allocator options,
        # read only when pyarrow loads (shoal/memory/allocator.py).
        try:
            import shoal
            from shoal.physical.context import Settings
        except ImportError:  # a checkout without the package installed
            sys.path.insert(0, str(REPO_ROOT / "src"))
            import shoal
            from shoal.physical.context import Settings
        import pyarrow as pa

        pa.set_cpu_count(threads)
        settings: dict[str, Any] = {}
        if "max_running_tasks" in getattr(Settings, "__dataclass_fields__", {}):
            settings["max_running_tasks"] = threads
        if engine == "shoal-materialized":
            settings["retry_policy"] = "task"
        if os.environ.get(MEMORY_LIMIT_ENV):
            settings["memory_limit"] = os.environ[MEMORY_LIMIT_ENV]
        con = shoal.connect(partitions=partitions, **settings)
        for name, path in tables.items():
            con.register_parquet(name, str(path))
        version = getattr(shoal, "__version__", None) or importlib.metadata.version("shoal")
        return (lambda sql: con.sql(sql).to_arrow()), version

    if engine == "duckdb":
        import duckdb

        ddb = duckdb.connect(":memory:")
        ddb.execute(f"SET threads = {int(threads)}")
        for name, path in tables.items():
            glob = _parquet_glob(path).replace("'", "''")
            ddb.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{glob}')")
        return (lambda sql: ddb.sql(sql).to_arrow_table()), duckdb.__version__

    if engine == "polars":
        os.environ["POLARS_MAX_THREADS"] = str(threads)  # read when polars is imported
        import polars as pl

        frames = {name: pl.scan_parquet(_parquet_glob(path)) for name, path in tables.items()}
        ctx = pl.SQLContext(frames=frames)
        return (lambda sql: ctx.execute(sql, eager=True).to_arrow()), pl.__version__

    if engine == "datafusion":
        import datafusion

        config = datafusion.SessionConfig().with_target_partitions(partitions)
        dfctx = datafusion.SessionContext(config)
        for name, path in tables.items():
            dfctx.register_parquet(name, str(path))
        return (lambda sql: dfctx.sql(sql).to_arrow_table()), datafusion.__version__

    raise ValueError(f"unknown engine {engine!r}")


def worker_main(
    conn: Connection, engine: str, tables: dict[str, str], threads: int, partitions: int
) -> None:
    """Worker process: set ``engine`` up, then run the queries the parent sends.

    Requests: ``("run", sql, want_result)`` or ``("stop",)``. Replies are dicts; a run's
    reply holds ``seconds`` (execution including the conversion to Arrow), ``rows``, the
    result table when asked for, or ``error``; every reply holds the peak RSS so far.
    """
    started = time.perf_counter()
    try:
        run, version = _make_runner(
            engine, {k: Path(v) for k, v in tables.items()}, threads, partitions
        )
    except BaseException as exc:  # reported to the parent
        hwm, maxrss = _peak_rss_kb()
        conn.send(
            {
                "ready": False,
                "error": _first_line(exc),
                "traceback": traceback.format_exc(),
                "hwm_kb": hwm,
                "maxrss_kb": maxrss,
            }
        )
        return
    hwm, maxrss = _peak_rss_kb()
    conn.send(
        {
            "ready": True,
            "version": version,
            "setup_seconds": time.perf_counter() - started,
            "hwm_kb": hwm,
            "maxrss_kb": maxrss,
        }
    )
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] == "stop":
            return
        _, sql, want_result = request
        gc.collect()
        reply: dict[str, Any]
        start = time.perf_counter()
        try:
            table = run(sql)
            seconds = time.perf_counter() - start
            reply = {"ok": True, "seconds": seconds, "rows": table.num_rows}
            if want_result:
                reply["result"] = table
        except Exception as exc:  # reported to the parent
            reply = {
                "ok": False,
                "seconds": time.perf_counter() - start,
                "error": _first_line(exc),
                "traceback": traceback.format_exc(),
            }
        hwm, maxrss = _peak_rss_kb()
        reply.update(hwm_kb=hwm, maxrss_kb=maxrss)
        try:
            conn.send(reply)
        except Exception as exc:  # e.g. a result that does not pickle
            reply.pop("result", None)
            reply.update(ok=False, error=f"sending the result failed: {_first_line(exc)}")
            conn.send(reply)


class WorkerDied(RuntimeError):
    """The worker process ended or was killed (crash, timeout)."""


class WorkerStartError(RuntimeError):
    """The engine could not be set up (import error, table registration failed...)."""


class Worker:
    """The parent's handle on one engine's worker process; restarted after a kill."""

    def __init__(self, engine: str, tables: dict[str, Path], threads: int, partitions: int) -> None:
        self.engine = engine
        self.tables = {k: str(v) for k, v in tables.items()}
        self.threads = threads
        self.partitions = partitions
        self.proc: Any = None
        self.conn: Connection | None = None
        self.version: str | None = None
        self.setup_seconds: list[float] = []
        self.starts = 0
        self.peak_hwm_kb: int | None = None
        self.peak_maxrss_kb = 0
        self.baseline_hwm_kb: int | None = None
        self.baseline_maxrss_kb: int | None = None
        self.start_error: str | None = None  # set once a start failed: no more tries

    def _note_rss(self, reply: dict[str, Any]) -> None:
        hwm, maxrss = reply.get("hwm_kb"), reply.get("maxrss_kb")
        if hwm is not None:
            self.peak_hwm_kb = max(self.peak_hwm_kb or 0, hwm)
        if maxrss is not None:
            self.peak_maxrss_kb = max(self.peak_maxrss_kb, maxrss)

    @property
    def peak_rss_kb(self) -> int:
        return self.peak_hwm_kb if self.peak_hwm_kb is not None else self.peak_maxrss_kb

    def start(self) -> None:
        if self.start_error is not None:
            raise WorkerStartError(self.start_error)
        ctx = mp.get_context("spawn")
        parent_end, child_end = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=worker_main,
            args=(child_end, self.engine, self.tables, self.threads, self.partitions),
            name=f"tpch-{self.engine}",
            daemon=True,
        )
        proc.start()
        child_end.close()
        self.proc, self.conn = proc, parent_end
        self.starts += 1
        try:
            reply = self._receive(STARTUP_TIMEOUT, "starting")
        except (TimeoutError, WorkerDied) as exc:
            self.start_error = f"{self.engine} worker failed to start: {exc}"
            raise WorkerStartError(self.start_error) from None
        self._note_rss(reply)
        if not reply.get("ready"):
            self.stop()
            self.start_error = f"{self.engine} worker failed to start: {reply.get('error')}"
            raise WorkerStartError(self.start_error)
        self.version = reply["version"]
        self.setup_seconds.append(reply["setup_seconds"])
        if self.baseline_hwm_kb is None:
            self.baseline_hwm_kb = reply.get("hwm_kb")
            self.baseline_maxrss_kb = reply.get("maxrss_kb")

    def _receive(self, timeout: float, doing: str) -> dict[str, Any]:
        assert self.conn is not None and self.proc is not None
        try:
            ready = self.conn.poll(timeout)
            if ready:
                reply: dict[str, Any] = self.conn.recv()
                return reply
        except (EOFError, OSError):
            proc = self.proc
            self.kill()
            raise WorkerDied(
                f"{self.engine} worker died while {doing} (exit code {proc.exitcode})"
            ) from None
        self.kill()
        raise TimeoutError(f"timed out after {timeout:g} s while {doing}")

    def run(self, sql: str, want_result: bool, timeout: float) -> dict[str, Any]:
        """Run ``sql``; raises TimeoutError or WorkerDied (the worker is then gone)."""
        if self.proc is None or not self.proc.is_alive():
            self.start()
        assert self.conn is not None
        try:
            self.conn.send(("run", sql, want_result))
        except OSError:
            self.kill()
            raise WorkerDied(f"{self.engine} worker died before the query was sent") from None
        reply = self._receive(timeout, "running the query")
        self._note_rss(reply)
        return reply

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join(10)
        if self.conn is not None:
            self.conn.close()
        self.proc, self.conn = None, None

    def stop(self) -> None:
        if self.proc is not None and self.proc.is_alive() and self.conn is not None:
            try:
                self.conn.send(("stop",))
                self.proc.join(10)
            except (OSError, BrokenPipeError):
                pass
        self.kill()


# ---------------------------------------------------------------------- correctness


def check_result(
    table: Any, sf: float, q: int, reference: Any | None
) -> tuple[str, str | None, str | None]:
    """(status, error first line, full message) of a result of query ``q``.

    Checked against the answer file when it exists, else against ``reference`` (DuckDB's
    result); ``"unchecked"`` when there is neither.
    """
    from support.compare import assert_same_result, assert_same_rows, table_rows
    from support.tpch import assert_matches_answer

    try:
        if answer_path(sf, q).is_file():
            assert_matches_answer(table, sf, q)
        elif reference is not None:
            # Same rows whatever the order, then the ORDER BY keys in the same order.
            assert_same_result(table, reference, ordered=False, rel_tol=FALLBACK_REL_TOL)
            keys = [pos for pos, _desc in ORDER_BY[q]]
            if keys:
                assert_same_rows(
                    [[row[k] for k in keys] for row in table_rows(table)],
                    [[row[k] for k in keys] for row in table_rows(reference)],
                    ordered=True,
                    rel_tol=FALLBACK_REL_TOL,
                    header="ORDER BY key columns out of order",
                )
        else:
            return "unchecked", None, None
    except AssertionError as exc:
        return "WRONG", _first_line(exc).removeprefix("AssertionError: "), str(exc)
    except Exception as exc:  # a comparison that cannot even run
        return "WRONG", f"comparison failed: {_first_line(exc)}", traceback.format_exc()
    return OK, None, None


# ---------------------------------------------------------------------------- driver


@dataclass
class EngineResult:
    """One engine on one query."""

    status: str = "pending"  # ok, unchecked, FAIL, WRONG, TIMEOUT, CRASH, skipped
    error: str | None = None
    detail: str | None = None
    warmup_s: float | None = None
    times_s: list[float] = field(default_factory=list)
    rows: int | None = None
    peak_rss_mb_after: float | None = None

    @property
    def usable(self) -> bool:
        """A result that counts for timings and ratios."""
        return self.status in (OK, "unchecked") and bool(self.times_s)

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.times_s) if self.times_s else None

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "error": self.error,
            "detail": self.detail,
            "warmup_s": self.warmup_s,
            "times_s": self.times_s,
            "median_s": self.median_s,
            "min_s": min(self.times_s) if self.times_s else None,
            "rows": self.rows,
            "peak_rss_mb_after": self.peak_rss_mb_after,
        }


def _mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _execute(
    worker: Worker, res: EngineResult, sql: str, want_result: bool, timeout: float
) -> Any | None:
    """One run of a query on one engine; updates ``res`` on failure. Returns the reply."""
    try:
        reply = worker.run(sql, want_result, timeout)
    except TimeoutError as exc:
        res.status, res.error = "TIMEOUT", str(exc)
        return None
    except WorkerStartError as exc:
        res.status, res.error = "FAIL", str(exc)
        return None
    except WorkerDied as exc:
        res.status, res.error = "CRASH", str(exc)
        return None
    finally:
        res.peak_rss_mb_after = _mb(worker.peak_rss_kb)
    if not reply["ok"]:
        res.status, res.error, res.detail = "FAIL", reply["error"], reply.get("traceback")
        return None
    return reply


def run_benchmark(
    engines: list[str],
    tables: dict[str, Path],
    sf: float,
    queries: list[int],
    runs: int,
    threads: int,
    partitions: int,
    timeout: float,
) -> tuple[dict[int, dict[str, EngineResult]], dict[str, Worker]]:
    workers = {e: Worker(e, tables, threads, partitions) for e in engines}
    results: dict[int, dict[str, EngineResult]] = {}
    try:
        for e, w in workers.items():
            try:
                w.start()
            except WorkerStartError as exc:
                _log(str(exc))  # every query of this engine is then reported as FAIL
                continue
            _log(f"{e} {w.version}: worker ready in {w.setup_seconds[-1]:.2f} s")
        for qi, q in enumerate(queries):
            sql = query_text(q)
            per = {e: EngineResult() for e in engines}
            results[q] = per
            # Which engine goes first alternates query by query.
            order = engines if qi % 2 == 0 else engines[::-1]

            # Warm-up: one run each, results kept for the correctness check.
            tables_out: dict[str, Any] = {}
            for e in order:
                reply = _execute(workers[e], per[e], sql, True, timeout)
                if reply is not None:
                    per[e].warmup_s, per[e].rows = reply["seconds"], reply["rows"]
                    tables_out[e] = reply["result"]
            reference = tables_out.get(BASELINE)
            for e, table in tables_out.items():
                ref = None if e == BASELINE else reference
                status, error, detail = check_result(table, sf, q, ref)
                if e == BASELINE and status == "unchecked":
                    status = OK  # the reference itself when there is no answer file
                per[e].status, per[e].error, per[e].detail = status, error, detail
            del tables_out, reference

            # Timed runs, alternating engines run by run.
            for r in range(runs):
                for e in order if r % 2 == 0 else order[::-1]:
                    if per[e].status not in (OK, "unchecked"):
                        continue
                    reply = _execute(workers[e], per[e], sql, False, timeout)
                    if reply is not None:
                        per[e].times_s.append(reply["seconds"])

            for e in engines:
                res = per[e]
                if res.status not in (OK, "unchecked"):
                    res.times_s = []  # a run that failed midway counts for nothing
                shown = f"{res.median_s:.3f} s" if res.usable else "-"
                note = "" if res.status == OK else f" {res.status}: {res.error or ''}"
                _log(f"Q{q:02d} {e:<10} {shown}{note}")
    finally:
        for w in workers.values():
            w.stop()
    return results, workers


def geomean(values: Sequence[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summarize(
    engines: list[str], queries: list[int], results: dict[int, dict[str, EngineResult]]
) -> tuple[dict[int, dict[str, float]], dict[str, Any]]:
    """Per-query ratios (engine median / DuckDB median) and per-engine totals."""
    ratios: dict[int, dict[str, float]] = {}
    for q in queries:
        base = results[q].get(BASELINE)
        ratios[q] = {}
        for e in engines:
            res = results[q][e]
            if e == BASELINE or base is None or not (res.usable and base.usable):
                continue
            assert res.median_s is not None and base.median_s is not None
            if base.median_s > 0:
                ratios[q][e] = res.median_s / base.median_s

    summary: dict[str, Any] = {}
    for e in engines:
        ok_queries = [q for q in queries if results[q][e].usable]
        failed = {
            q: f"{results[q][e].status}: {results[q][e].error}"
            for q in queries
            if results[q][e].status not in (OK, "unchecked")
        }
        entry: dict[str, Any] = {
            "ok_queries": ok_queries,
            "failed_queries": failed,
            "total_median_s": (
                sum(results[q][e].median_s or 0.0 for q in ok_queries) if ok_queries else None
            ),
        }
        if e != BASELINE and BASELINE in engines:
            common = [q for q in queries if e in ratios[q]]
            mine = sum(results[q][e].median_s or 0.0 for q in common)
            base = sum(results[q][BASELINE].median_s or 0.0 for q in common)
            entry.update(
                ratio_queries=common,
                total_median_s_common=mine,
                duckdb_total_median_s_common=base,
                total_ratio=(mine / base) if base > 0 else None,
                geomean_ratio=geomean([ratios[q][e] for q in common]),
            )
        summary[e] = entry
    return ratios, summary


# --------------------------------------------------------------------------- output


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "versions": {
            dist: _version(dist)
            for dist in ("shoal", "pyarrow", "duckdb", "polars", "datafusion", "tpchgen-cli")
        },
    }
    if hasattr(os, "sched_getaffinity"):
        info["cores_available"] = len(os.sched_getaffinity(0))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    if not info.get("cpu"):
        info["cpu"] = platform.processor() or None
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        if head.returncode == 0:
            info["git_commit"] = head.stdout.strip()
            info["git_dirty"] = bool(dirty.stdout.strip())
    except OSError:
        pass
    return info


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cell(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _status_text(res: EngineResult) -> str:
    if res.status == OK:
        return OK
    return f"{res.status}: {res.error}" if res.error else res.status


def markdown(
    sf_label: str,
    engines: list[str],
    queries: list[int],
    results: dict[int, dict[str, EngineResult]],
    ratios: dict[int, dict[str, float]],
    summary: dict[str, Any],
    workers: dict[str, Worker],
    meta: dict[str, Any],
) -> str:
    others = [e for e in engines if e != BASELINE]
    compared = others if BASELINE in engines else []
    single = len(compared) == 1
    header = ["query"] + [f"{e} median s" for e in engines]
    header += ["ratio" if single else f"{e} ratio" for e in compared]
    header += ["status"]
    lines = [
        f"TPC-H SF {sf_label}: {meta['runs']} timed run(s) after a warm-up, median seconds; "
        f"threads {meta['threads']}, shoal partitions {meta['partitions']}; "
        f"ratio = engine / {BASELINE} (lower is better for the engine).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 2) + ["---"]) + "|",
    ]
    for q in queries:
        per = results[q]
        row = [f"Q{q:02d}"] + [_fmt_s(per[e].median_s if per[e].usable else None) for e in engines]
        row += [_fmt_ratio(ratios[q].get(e)) for e in compared]
        if len(engines) == 1:
            status = _status_text(per[engines[0]])
        else:
            parts = [
                (
                    _status_text(per[e])
                    if single and e in compared
                    else f"{e} {_status_text(per[e])}"
                )
                for e in others
            ]
            if per.get(BASELINE) is not None and per[BASELINE].status != OK:
                parts.append(f"{BASELINE} {_status_text(per[BASELINE])}")
            status = "; ".join(parts) if parts else OK
        row.append(_cell(status))
        lines.append("| " + " | ".join(row) + " |")

    # Totals over the queries every engine got right, so the columns add up the same work.
    common = [q for q in queries if all(results[q][e].usable for e in engines)]
    totals = {e: sum(results[q][e].median_s or 0.0 for q in common) for e in engines}
    total_row = [f"total ({len(common)} ok in all)"]
    total_row += [_fmt_s(totals[e] if common else None) for e in engines]
    total_row += [
        _fmt_ratio(totals[e] / totals[BASELINE] if common and totals[BASELINE] > 0 else None)
        for e in compared
    ]
    ok_counts = ", ".join(f"{e} {len(summary[e]['ok_queries'])}/{len(queries)} ok" for e in engines)
    total_row.append(ok_counts)
    lines.append("| " + " | ".join(total_row) + " |")
    if compared:
        geo_row = ["geomean ratio"] + [""] * len(engines)
        geo_row += [_fmt_ratio(summary[e].get("geomean_ratio")) for e in compared]
        geo_row.append(
            "; ".join(f"{e} over {len(summary[e]['ratio_queries'])} queries" for e in compared)
        )
        lines.append("| " + " | ".join(geo_row) + " |")
    rss_row = ["peak RSS MB"] + [f"{_mb(workers[e].peak_rss_kb):.0f}" for e in engines]
    rss_row += [""] * len(compared) + ["per engine worker process"]
    lines.append("| " + " | ".join(rss_row) + " |")
    lines.append("")
    lines.append(
        "Ratios and the geometric mean cover only the queries where both engines gave a "
        "correct result; a failed, timed-out or wrong query has no time. Totals are sums of "
        "medians over the queries every engine got right."
    )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main


def _load_datagen() -> Any:
    """``shoal.datagen``, even when the engine itself does not import (work in progress).

    The module only needs numpy and pyarrow; if ``import shoal`` fails, it is loaded
    straight from its file so that the benchmark still runs and reports shoal's failure.
    """
    try:
        import shoal.datagen

        return shoal.datagen
    except Exception as exc:
        spec = importlib.util.find_spec("shoal")
        folders = list(spec.submodule_search_locations or []) if spec else []
        folders.append(str(REPO_ROOT / "src" / "shoal"))
        for folder in folders:
            path = Path(folder) / "datagen.py"
            if path.is_file():
                _log(f"import shoal failed ({_first_line(exc)}); loading {path} directly")
                module_spec = importlib.util.spec_from_file_location("_shoal_datagen", path)
                assert module_spec is not None and module_spec.loader is not None
                module = importlib.util.module_from_spec(module_spec)
                module_spec.loader.exec_module(module)
                return module
        raise


def parse_queries(text: str) -> list[int]:
    if text.strip().lower() in ("", "all"):
        return list(ALL_QUERIES)
    queries: list[int] = []
    for part in text.split(","):
        part = part.strip().lower().removeprefix("q")
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            queries.extend(range(lo, hi + 1))
        elif part:
            queries.append(int(part))
    bad = [q for q in queries if q not in ALL_QUERIES]
    if bad:
        raise argparse.ArgumentTypeError(f"no TPC-H query {bad}; queries are 1..22")
    return list(dict.fromkeys(queries))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--sf", type=float, default=1.0, help="scale factor (default 1)")
    p.add_argument(
        "--queries", type=parse_queries, default=list(ALL_QUERIES), help="e.g. 1,6 or 1-5"
    )
    p.add_argument("--runs", type=int, default=3, help="timed runs after a warm-up (3)")
    p.add_argument("--threads", type=int, default=cores, help=f"engine threads ({cores})")
    p.add_argument("--partitions", type=int, default=None, help="shoal partitions (threads)")
    p.add_argument(
        "--engines",
        default="shoal,duckdb",
        help="comma-separated: shoal, shoal-materialized, duckdb, polars, datafusion"
        " (missing ones are skipped)",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per query run (300)")
    p.add_argument(
        "--memory-limit", default=None, help="shoal's memory_limit, e.g. 1GiB (default: its own)"
    )
    p.add_argument("--data", type=Path, default=None, help="TPC-H cache folder")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = p.parse_args(argv)
    if args.runs < 1 or args.threads < 1 or (args.partitions is not None and args.partitions < 1):
        p.error("--runs, --threads and --partitions must be positive")
    if args.partitions is None:
        args.partitions = args.threads
    if args.memory_limit:
        os.environ[MEMORY_LIMIT_ENV] = args.memory_limit
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    datagen = _load_datagen()
    ensure_tpch, tpch_tables = datagen.ensure_tpch, datagen.tpch_tables

    if args.sf <= 0:
        _log(f"--sf must be positive, got {args.sf:g}")
        return 2
    sf_label = f"{args.sf:g}"
    requested = [e.strip().lower() for e in args.engines.split(",") if e.strip()]
    engines: list[str] = []
    skipped: dict[str, str] = {}
    for e in dict.fromkeys(requested):
        if e not in KNOWN_ENGINES:
            skipped[e] = "unknown engine"
        elif importlib.util.find_spec(KNOWN_ENGINES[e]) is None:
            skipped[e] = "not installed"
        else:
            engines.append(e)
    for e, why in skipped.items():
        _log(f"skipping {e}: {why}")
    if not engines:
        _log("no engine to run")
        return 2

    root = args.data or Path(os.environ.get("SHOAL_DATA_DIR") or REPO_ROOT / "data")
    started = time.perf_counter()
    data_dir = ensure_tpch(args.sf, root)
    tables = tpch_tables(data_dir)
    _log(f"TPC-H SF {sf_label} in {data_dir} ({time.perf_counter() - started:.1f} s)")
    answers = [q for q in args.queries if answer_path(args.sf, q).is_file()]
    _log(
        f"checking {len(answers)}/{len(args.queries)} queries against reference answers"
        + ("" if len(answers) == len(args.queries) else f", the rest against {BASELINE}")
    )

    results, workers = run_benchmark(
        engines,
        tables,
        args.sf,
        args.queries,
        args.runs,
        args.threads,
        args.partitions,
        args.timeout,
    )
    ratios, summary = summarize(engines, args.queries, results)
    common = [q for q in args.queries if all(results[q][e].usable for e in engines)]

    meta = {
        "benchmark": "tpch",
        "scale_factor": args.sf,
        "sf_label": sf_label,
        "data_dir": str(data_dir),
        "queries": args.queries,
        "runs": args.runs,
        "warmup_runs": 1,
        "threads": args.threads,
        "partitions": args.partitions,
        "memory_limit": args.memory_limit,
        "timeout_s": args.timeout,
        "engines": engines,
        "skipped_engines": skipped,
        "baseline": BASELINE,
        "checked_against": {
            str(q): ("answers" if q in answers else BASELINE) for q in args.queries
        },
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
    }
    for w in workers.values():
        meta["machine"]["versions"][w.engine] = w.version or meta["machine"]["versions"].get(
            w.engine
        )
    report = {
        **meta,
        "results": {
            str(q): {
                **{e: results[q][e].as_json() for e in engines},
                "ratio": ratios[q],
            }
            for q in args.queries
        },
        "summary": summary,
        "totals_ok_in_all": {
            "queries": common,
            **{e: sum(results[q][e].median_s or 0.0 for q in common) for e in engines},
        },
        "rss": {
            e: {
                "peak_rss_mb": _mb(w.peak_rss_kb),
                "source": "VmHWM" if w.peak_hwm_kb is not None else "ru_maxrss",
                "peak_vmhwm_mb": _mb(w.peak_hwm_kb),
                "peak_ru_maxrss_mb": _mb(w.peak_maxrss_kb),
                "after_startup_mb": _mb(
                    w.baseline_hwm_kb if w.baseline_hwm_kb is not None else w.baseline_maxrss_kb
                ),
                "worker_starts": w.starts,
                "setup_seconds": w.setup_seconds,
            }
            for e, w in workers.items()
        },
    }
    table = markdown(sf_label, engines, args.queries, results, ratios, summary, workers, meta)

    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"tpch_sf{sf_label}.json"
    md_path = args.out / f"tpch_sf{sf_label}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(table)
    print(table, end="")
    _log(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
