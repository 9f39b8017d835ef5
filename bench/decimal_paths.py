"""Decimal work per chunk: Arrow's decimal128 kernels against shoal's int64 paths.

Run: .venv/bin/python bench/decimal_paths.py [--data DIR] [--rows 524288] [--repeat 20]

Over the first ``--rows`` rows of TPC-H SF 1 ``lineitem`` (from ``--data``, else
``$SHOAL_DATA_DIR``), milliseconds per call (best of ``--repeat``) for what Q1 and Q6
do per chunk: the SUM overflow bound of ``l_extendedprice * l_discount`` as DECIMAL(38,4)
(Arrow's ``min_max`` against ``_may_overflow``) and ``l_quantity < 24`` (Arrow's
comparison against ``_decimal_compare``). Prints one markdown table.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shoal.expr import evaluate as ev  # noqa: E402
from shoal.physical.operators.sum_overflow import _may_overflow  # noqa: E402


def best_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=Path(os.environ.get("SHOAL_DATA_DIR", "data")))
    p.add_argument("--rows", type=int, default=1 << 19)
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()
    path = sorted(glob.glob(str(args.data / "sf1" / "lineitem" / "*.parquet")))[0]
    columns = ["l_quantity", "l_extendedprice", "l_discount"]
    table = pq.read_table(path, columns=columns).slice(0, args.rows).combine_chunks()
    qty, price, disc = (table.column(c).chunk(0) for c in columns)
    wide = pa.chunked_array([pc.multiply(price, disc).cast(pa.decimal128(38, 4))])
    limit = pa.scalar(Decimal(24), qty.type)
    rows = [
        (
            "SUM overflow bound, DECIMAL(38,4)",
            lambda: pc.min_max(wide),
            lambda: _may_overflow(wide),
        ),
        (
            "l_quantity < 24",
            lambda: pc.less(qty, limit),
            lambda: ev._decimal_compare("less", qty, limit),
        ),
    ]
    print(f"{len(qty):,} rows, ms per call (best of {args.repeat})\n")
    print("| operation | Arrow decimal128 | shoal int64 path |")
    print("|---|---:|---:|")
    for name, arrow, shoal in rows:
        print(f"| {name} | {best_ms(arrow, args.repeat):.2f} | {best_ms(shoal, args.repeat):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
