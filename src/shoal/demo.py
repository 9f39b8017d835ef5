"""The main job: TPC-H data generated on first use, one real query run embedded.

python -m shoal.demo [--data DIR] [--sf 0.1] [--query 1] [--partitions N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import shoal
from shoal.datagen import ensure_tpch, tpch_tables

_QUERY_DIRS = (
    Path(__file__).resolve().parents[2].parent / "shared" / "tpch" / "queries",
    Path(__file__).resolve().parents[2] / "shared" / "tpch" / "queries",
)

# Used when the shared TPC-H query files are not beside the checkout.
_Q1 = """SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty,
    sum(l_extendedprice) AS sum_base_price,
    sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
    sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
    avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price,
    avg(l_discount) AS avg_disc, count(*) AS count_order
FROM lineitem WHERE l_shipdate <= DATE '1998-09-02'
GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus"""


def query_text(q: int) -> str:
    for d in _QUERY_DIRS:
        f = d / f"q{q:02d}.sql"
        if f.exists():
            return f.read_text()
    if q == 1:
        return _Q1
    raise SystemExit(
        f"TPC-H query file q{q:02d}.sql not found in {', '.join(map(str, _QUERY_DIRS))}"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default="data", help="folder for generated data (cached)")
    ap.add_argument("--sf", type=float, default=0.1, help="TPC-H scale factor")
    ap.add_argument("--query", type=int, default=1, help="TPC-H query number")
    ap.add_argument("--partitions", type=int, default=None, help="tasks per stage (default: cores)")
    args = ap.parse_args(argv)

    root = ensure_tpch(args.sf, Path(args.data))
    con = shoal.connect(partitions=args.partitions)
    for name, path in tpch_tables(root).items():
        con.register_parquet(name, path)
    sql = query_text(args.query)
    print(f"-- TPC-H Q{args.query} at SF {args.sf}, partitions={con.settings.partitions}\n{sql}\n")
    print("-- EXPLAIN")
    print(con.explain(sql))
    start = time.perf_counter()
    result = con.sql(sql)
    elapsed = time.perf_counter() - start
    print(f"\n-- result ({result.num_rows} rows, {elapsed:.3f} s)")
    print(result.to_pandas().to_string(index=False))
    print("\n-- EXPLAIN ANALYZE")
    print(result.explain_analyze())


if __name__ == "__main__":
    main()
