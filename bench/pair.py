"""Paired A/B of two shoal checkouts on TPC-H: one long-lived worker process per side,
alternating run by run, so both see the same minutes of a noisy machine.

Run: .venv/bin/python bench/pair.py --a /path/to/old/src --b src [--sf 1] [--queries 4,21]
     [--runs 7] [--env-b MIMALLOC_PURGE_DELAY=-1] [--data DIR]

Each side runs in its own process with ``--a`` / ``--b`` first on its ``sys.path`` (the
``src`` folder of a checkout, e.g. a ``git worktree``), and ``--env-a`` / ``--env-b``
(``NAME=VALUE`` pairs) in its environment. For every query both sides run it once to warm
up, then ``--runs`` times, A before B on even runs and B before A on odd ones. Printed per
query: the medians, their ratio B/A and the median of the per-run ratios (paired); at the
end the totals and the geometric mean of the paired ratios. Run the same tree on both sides
first to see the machine's noise (on a shared 2-core machine: ~2.5% on the total).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # tests/support: query texts

from support.tpch import ALL_QUERIES  # noqa: E402

# The worker: imports shoal from the side's checkout, registers the tables, then times one
# query per line read from stdin and answers with the seconds.
_WORKER = """
import sys, time
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
import shoal
import pyarrow as pa
from support.tpch import query_text
from shoal.datagen import tpch_tables
from pathlib import Path
pa.set_cpu_count(int(sys.argv[5]))
con = shoal.connect(partitions=int(sys.argv[4]), max_running_tasks=int(sys.argv[5]))
for name, path in tpch_tables(Path(sys.argv[3])).items():
    con.register_parquet(name, str(path))
for line in sys.stdin:
    text = query_text(int(line))
    start = time.perf_counter()
    con.sql(text).to_arrow()
    print(time.perf_counter() - start, flush=True)
"""


class Side:
    def __init__(self, src: str, env: list[str], data: Path, partitions: int, threads: int):
        environment = dict(os.environ)
        environment.update(kv.split("=", 1) for kv in env)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                str(Path(src).resolve()),
                str(REPO_ROOT / "tests"),
                str(data),
                str(partitions),
                str(threads),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )

    def run(self, query: int) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{query}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise SystemExit(f"a worker failed on Q{query:02d} (its error is above)")
        return float(answer)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="src folder of the A checkout")
    parser.add_argument("--b", required=True, help="src folder of the B checkout")
    parser.add_argument("--env-a", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--env-b", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--queries", default=",".join(map(str, ALL_QUERIES)))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO_ROOT / "src"))
    from shoal.datagen import ensure_tpch

    root = args.data or Path(os.environ.get("SHOAL_DATA_DIR", REPO_ROOT / "data"))
    data = ensure_tpch(args.sf, root)
    a = Side(args.a, args.env_a, data, args.partitions, args.threads)
    b = Side(args.b, args.env_b, data, args.partitions, args.threads)
    total_a = total_b = 0.0
    paired: list[float] = []
    try:
        for query in (int(q) for q in args.queries.split(",")):
            a.run(query)  # warm-up
            b.run(query)
            times_a: list[float] = []
            times_b: list[float] = []
            for i in range(args.runs):
                order = ((a, times_a), (b, times_b))
                for side, times in order if i % 2 == 0 else reversed(order):
                    times.append(side.run(query))
            med_a, med_b = statistics.median(times_a), statistics.median(times_b)
            ratio = statistics.median(tb / ta for ta, tb in zip(times_a, times_b, strict=True))
            total_a, total_b = total_a + med_a, total_b + med_b
            paired.append(ratio)
            print(
                f"Q{query:02d}  A {med_a * 1e3:8.1f} ms  B {med_b * 1e3:8.1f} ms"
                f"  B/A {med_b / med_a:5.3f}  paired {ratio:5.3f}",
                flush=True,
            )
    finally:
        a.close()
        b.close()
    geomean = math.exp(sum(map(math.log, paired)) / len(paired))
    print(
        f"total  A {total_a:.3f} s  B {total_b:.3f} s  B/A {total_b / total_a:.3f}"
        f"  geomean paired {geomean:.3f}"
    )


if __name__ == "__main__":
    main()
