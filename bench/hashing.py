"""Times the exchange row hash (shoal.hashing) and the partition split; prints rows/s.

Run: .venv/bin/python bench/hashing.py [rows]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

try:
    from shoal.hashing import hash_columns, partition_ids, split_by_partition
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from shoal.hashing import hash_columns, partition_ids, split_by_partition


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs of ``fn``, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def report(label: str, rows: int, seconds: float) -> None:
    print(f"{label:<42} {seconds * 1000:9.1f} ms  {rows / seconds / 1e6:8.1f} M rows/s")


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 6_000_000
    rng = np.random.default_rng(42)
    ints = pa.array(rng.integers(0, 1 << 40, rows, dtype=np.int64))
    words = np.zeros((rows, 2), dtype=np.int64)  # unscaled decimal128 values, low word first
    words[:, 0] = rng.integers(0, 10**15, rows, dtype=np.int64)
    decimals = pa.Array.from_buffers(pa.decimal128(15, 2), rows, [None, pa.py_buffer(words)])
    strings = pc.binary_join_element_wise("key", pc.cast(ints, pa.string()), "")
    avg_len = (len(strings.buffers()[2]) if strings.buffers()[2] else 0) / max(rows, 1)

    print(f"{rows:,} rows")
    report("hash_columns int64", rows, best_of(lambda: hash_columns([ints])))
    report("hash_columns decimal128(15,2)", rows, best_of(lambda: hash_columns([decimals])))
    report(
        f"hash_columns string (avg {avg_len:.1f} bytes)",
        rows,
        best_of(lambda: hash_columns([strings])),
    )
    report("hash_columns int64+string", rows, best_of(lambda: hash_columns([ints, strings])))
    report("partition_ids int64 -> 8", rows, best_of(lambda: partition_ids([ints], 8)))

    batch = pa.record_batch({"k": ints, "d": decimals, "s": strings})
    ids = partition_ids([ints], 8)
    report(
        "split_by_partition 3 cols -> 8", rows, best_of(lambda: split_by_partition(batch, ids, 8))
    )
    report(
        "split_by_partition 3 cols -> 8, slices",
        rows,
        best_of(lambda: split_by_partition(batch, ids, 8, owned=False)),
    )


if __name__ == "__main__":
    main()
