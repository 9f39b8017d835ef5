"""Planning time of many-way joins: how long ``Connection.explain`` takes.

    .venv/bin/python bench/planning.py [--tables 10 30 60 100] [--shape chain|star]

Every table is the same 3-row in-memory table; a chain joins t_i to t_{i+1},
a star joins every t_i to t_0. Prints the seconds per join size (best of runs).
"""

from __future__ import annotations

import argparse
import time

import pyarrow as pa

import shoal


def join_query(n: int, shape: str) -> str:
    """A ``n``-way inner join written as JOIN … ON (chain) or comma joins (star)."""
    if shape == "chain":
        joins = " ".join(f"JOIN t AS t{i} ON t{i - 1}.k = t{i}.k" for i in range(1, n))
        return f"SELECT count(*), sum(t{n - 1}.v) FROM t AS t0 {joins}"
    tables = ", ".join(f"t AS t{i}" for i in range(n))
    where = " AND ".join(f"t0.k = t{i}.k" for i in range(1, n))
    return f"SELECT count(*), sum(t{n - 1}.v) FROM {tables} WHERE {where}"


def time_planning(con: shoal.Connection, sql: str, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        con.explain(sql)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tables", type=int, nargs="+", default=[10, 30, 60, 100])
    ap.add_argument("--shape", choices=["chain", "star"], nargs="+", default=["chain", "star"])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    con = shoal.connect(partitions=2)
    con.register_arrow("t", pa.table({"k": [1, 2, 3], "v": [10, 20, 30]}))
    print(f"{'shape':<6} {'tables':>6} {'plan s':>8}")
    for shape in args.shape:
        for n in args.tables:
            seconds = time_planning(con, join_query(n, shape), args.runs)
            print(f"{shape:<6} {n:>6} {seconds:>8.3f}")


if __name__ == "__main__":
    main()
