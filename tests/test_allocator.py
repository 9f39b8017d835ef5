"""Allocator policy: the purge delay set on import, and arrays from Arrow's pool."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa

from shoal.arrays import pooled_concatenate, pooled_full
from shoal.memory.allocator import PURGE_DELAY_MS


def _delay_after(prelude: str, env_value: str | None) -> str:
    """MIMALLOC_PURGE_DELAY as a fresh interpreter sees it after ``prelude``."""
    env = {k: v for k, v in os.environ.items() if k != "MIMALLOC_PURGE_DELAY"}
    if env_value is not None:
        env["MIMALLOC_PURGE_DELAY"] = env_value
    code = f"{prelude}; import os; print(os.environ.get('MIMALLOC_PURGE_DELAY', 'unset'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_shoal_sets_the_purge_delay_before_pyarrow_loads() -> None:
    assert _delay_after("import shoal", None) == str(PURGE_DELAY_MS)


def test_an_environment_value_wins() -> None:
    assert _delay_after("import shoal", "25") == "25"


def test_too_late_once_pyarrow_is_loaded() -> None:
    assert _delay_after("import pyarrow, shoal", None) == "unset"


def test_pooled_arrays_equal_numpy_and_are_writable() -> None:
    before = pa.total_allocated_bytes()
    big = pooled_full(1_000_003, -1, np.int32)  # 4 MiB: from Arrow's pool
    assert pa.total_allocated_bytes() >= before + big.nbytes
    assert big.dtype == np.int32 and len(big) == 1_000_003 and (big == -1).all()
    big[7] = 3
    assert big[7] == 3
    small = pooled_full(10, False, np.bool_)
    assert np.array_equal(small, np.zeros(10, np.bool_))
    parts = [np.arange(400_000, dtype=np.uint64), np.arange(5, dtype=np.uint64)]
    assert np.array_equal(pooled_concatenate(parts), np.concatenate(parts))
    assert np.array_equal(pooled_concatenate(parts[1:]), parts[1])
