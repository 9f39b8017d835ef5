"""Which runtime the suites run on: ``$SHOAL_RUNTIME`` (``local``, the default, or ``ray``).

The TPC-H and differential suites build their connections with ``runtime_kwargs()``,
so ``SHOAL_RUNTIME=ray pytest tests/test_tpch.py tests/differential`` runs the same
tests with every task a Ray task (one local Ray per pytest process, started by the
``ray_session`` fixture in ``tests/conftest.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Ray's object store per test Ray node: small, the data at SF 0.1 is too.
TEST_OBJECT_STORE_BYTES = 256 << 20


def runtime_under_test() -> str:
    return os.environ.get("SHOAL_RUNTIME", "local").strip().lower() or "local"


def runtime_kwargs() -> dict[str, Any]:
    """Keyword arguments for ``shoal.connect`` selecting the runtime under test.

    ``SHOAL_SKEW_STRESS=1`` also makes every eligible join partition a little above the
    median split into sub-tasks, with coalescing off (which would otherwise group these
    small partitions): a materialized run then exercises the skew split on every
    eligible join of the suite."""
    kwargs: dict[str, Any] = {"runtime": "ray"} if runtime_under_test() == "ray" else {}
    if os.environ.get("SHOAL_SKEW_STRESS", "") not in ("", "0"):
        kwargs.update(skew_min_bytes=0, skew_factor=1.01, adaptive_coalesce=False)
    return kwargs


def ray_test_environment(temp_dir: Path) -> dict[str, str]:
    """Environment for a test Ray: no token auth, every file under ``temp_dir``."""
    (temp_dir / "ray").mkdir(parents=True, exist_ok=True)
    return {
        "RAY_AUTH_MODE": "disabled",
        "RAY_TMPDIR": str(temp_dir),
        # No usage-stats prompt or upload from a test cluster.
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def start_test_ray(temp_dir: Path, num_cpus: int = 2) -> Any:
    """Start this process's local Ray for tests (on 127.0.0.1) and return the session."""
    from shoal.runtime.ray_session import ensure_session

    os.environ.update(ray_test_environment(temp_dir))
    return ensure_session(
        None,
        num_cpus=num_cpus,
        object_store_memory=TEST_OBJECT_STORE_BYTES,
        temp_dir=str(temp_dir / "ray"),
    )
