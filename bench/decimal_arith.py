"""Decimal ``+ - *`` on unscaled int64 against Arrow's decimal128 kernels, side by side.

Runs Q1's three decimal expressions (summed, so the result stays one row) over SF 1
``lineitem`` with the int64 path on and off, alternating, in one process, and prints
the CPU seconds (all threads) of each run and the medians.

    SHOAL_DATA_DIR=/work/data-cache .venv/bin/python bench/decimal_arith.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import shoal
import shoal.expr.evaluate as evaluate_module

QUERY = """
SELECT sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)),
       sum(l_extendedprice * (1 - l_discount)),
       sum(l_quantity * l_discount)
FROM lineitem
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sf", default="1")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=2)
    args = parser.parse_args()
    root = Path(os.environ.get("SHOAL_DATA_DIR", "data")) / f"sf{args.sf}" / "lineitem"
    con = shoal.connect(partitions=args.partitions)
    con.register_parquet("lineitem", str(root))
    fast = evaluate_module.decimal_arithmetic
    times: dict[str, list[float]] = {"int64": [], "decimal128": []}
    answers = set()
    con.sql(QUERY).to_arrow()  # warm-up: footers, imports
    for _ in range(args.runs):
        for mode in times:
            evaluate_module.decimal_arithmetic = fast if mode == "int64" else (lambda *a: None)  # type: ignore[assignment]
            started = time.process_time()
            answers.add(tuple(con.sql(QUERY).to_arrow().to_pylist()[0].values()))
            times[mode].append(time.process_time() - started)
            print(f"{mode:>10}: {times[mode][-1]:.3f} s CPU")
    evaluate_module.decimal_arithmetic = fast
    assert len(answers) == 1, "the two paths disagree"
    a, b = (statistics.median(times[m]) for m in ("int64", "decimal128"))
    print(f"median CPU: int64 {a:.3f} s, decimal128 {b:.3f} s, ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
