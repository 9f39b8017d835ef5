"""Probe-side costs of a join, per 107k-row batch: the join filter's mask (a scan drops
probe rows by a join's build keys) and the dense join index lookup.

Run: .venv/bin/python bench/join_probes.py [--src DIR] [--repeat 50]

``--src`` puts another checkout's ``src`` first on the path (e.g. main's), so two trees
can be compared in one sitting. Prints one line per case: the build's key span and row
count, the probe column's type, and the mean milliseconds per batch.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

BATCH_ROWS = 107_000  # about one lineitem row group
# (key span, build rows): a filtered orders table by o_orderkey, part by p_partkey,
# supplier by s_suppkey, and a build whose keys fill their range (range test only).
CASES = [(6_000_000, 300_000), (200_000, 10_000), (10_000, 2_000), (150_000, 150_000)]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--src", type=Path, default=REPO_ROOT / "src")
    p.add_argument("--repeat", type=int, default=50)
    args = p.parse_args()
    sys.path.insert(0, str(args.src))
    import numpy as np
    import pyarrow as pa

    from shoal.physical.operators.join_filter import JoinKeyFilter
    from shoal.physical.operators.join_index import JoinIndex

    rng = np.random.default_rng(0)

    def mean_ms(fn: Callable[[], object]) -> float:
        started = time.perf_counter()
        for _ in range(args.repeat):
            fn()
        return (time.perf_counter() - started) / args.repeat * 1e3

    for span, rows in CASES:
        keys = pa.array(rng.choice(span, rows, replace=False) + 1)
        found = JoinKeyFilter.of(keys)
        assert found is not None
        index = JoinIndex([keys])
        for probe_type in (pa.int64(), pa.int32()):
            probe = pa.array(rng.integers(1, span + 1, BATCH_ROWS)).cast(probe_type)
            mask = mean_ms(functools.partial(found.mask, probe))
            lookup = mean_ms(functools.partial(index.probe, [probe]))
            print(
                f"span {span:>9,} build {rows:>7,} probe {str(probe_type):5}  "
                f"mask {mask:5.2f} ms  {index.strategy} lookup {lookup:5.2f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
