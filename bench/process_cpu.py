"""Process CPU of a run of TPC-H queries in one process: wall, user and system CPU, page
faults and peak RSS, for A/B runs of two source trees or of the allocator settings.

Run: .venv/bin/python bench/process_cpu.py [--src DIR] [--queries 3,5,9] [--runs 1]
     [--sf 1] [--data DIR] [--variant NAME[,NAME]] [--set NAME=INT[,NAME=INT]]

Prints one JSON line. ``--src`` puts another checkout's ``src`` first on the path (e.g.
main's, run with main's venv), so two trees can be alternated run by run on a shared
machine. The query texts come from this repository's ``tests/support``. After a warm-up
query (Q6) the ``--runs`` passes over ``--queries`` are measured with
``resource.getrusage`` (user, system, minor faults) and ``VmHWM``.

``--variant`` patches this branch's allocator settings before the first query, to
measure each one's cost (``--set`` overrides integer ``Settings``, e.g. a default this
branch changed): ``nommap`` (glibc's mmap threshold left dynamic),
``oldtrim`` (trim threshold back at glibc's 128 KiB), ``trim32`` (32 MiB), ``relall``
(every task frees its thread's Arrow pages), ``relnone`` (no task does).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def apply_variants(names: set[str]) -> None:
    from shoal.memory import pool

    if "nommap" in names:
        pool._MMAP_FIXED = True
    if "oldtrim" in names:
        pool._TRIM_THRESHOLD = 128 << 10
    if "trim32" in names:
        pool._TRIM_THRESHOLD = 32 << 20
    if "relall" in names:
        pool.THREAD_RELEASE_MIN = 0
    if "relnone" in names:
        pool.THREAD_RELEASE_MIN = 1 << 60


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--src", type=Path, default=REPO_ROOT / "src")
    p.add_argument("--queries", default="3,5,9,10,13,17,18,21")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--sf", default="1")
    p.add_argument("--data", type=Path, default=Path("/work/data-cache"))
    p.add_argument("--variant", default="")
    p.add_argument(
        "--set",
        default="",
        help="integer settings for the connection, e.g. scan_share_bytes=268435456,...",
    )
    args = p.parse_args()
    sys.path.insert(0, str(args.src))
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    import pyarrow as pa
    from support.tpch import query_text

    import shoal
    from shoal.physical.context import Settings

    variants = set(filter(None, args.variant.split(",")))
    if variants:
        apply_variants(variants)
    pa.set_cpu_count(2)
    settings = {}
    if "max_running_tasks" in Settings.__dataclass_fields__:
        settings["max_running_tasks"] = 2
    for item in filter(None, args.set.split(",")):
        name, value = item.split("=")
        settings[name] = int(value)
    con = shoal.connect(partitions=2, **settings)
    folder = args.data / f"sf{args.sf}"
    for table in sorted(d for d in folder.iterdir() if d.is_dir()):
        con.register_parquet(table.name, str(table / "**" / "*.parquet"))
    queries = [int(q) for q in args.queries.split(",")]
    con.sql(query_text(6)).to_arrow()  # warm-up: imports, file metadata
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for _ in range(args.runs):
        for q in queries:
            con.sql(query_text(q)).to_arrow()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    hwm_kb = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                hwm_kb = int(line.split()[1])
    print(
        json.dumps(
            {
                "src": str(args.src),
                "variant": args.variant,
                "set": args.set,
                "wall_s": round(wall, 2),
                "user_s": round(after.ru_utime - before.ru_utime, 2),
                "sys_s": round(after.ru_stime - before.ru_stime, 2),
                "minor_faults": after.ru_minflt - before.ru_minflt,
                "peak_rss_mb": hwm_kb // 1024,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
