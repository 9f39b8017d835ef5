"""LEFT JOIN with a small preserved side: built on that side, the large side streamed.

The planner turns ``small LEFT JOIN large`` into a right-kind hash join (build = the
small preserved side, unmatched build rows emitted at the end) when the preserved
side is estimated far smaller. A tiny broadcast threshold makes these small test
tables qualify; results are checked against DuckDB at several partition counts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from support.cases import Case, check_case, u
from support.parquet_tables import connect, write_tables

import shoal


def _tables() -> dict[str, pa.Table]:
    rng = np.random.default_rng(11)
    n_small, n_large = 60, 2000
    small_keys = [None if i % 13 == 0 else int(i) for i in range(n_small)]
    large_keys = [None if rng.random() < 0.05 else int(k) for k in rng.integers(0, 90, n_large)]
    return {
        "s": pa.table(
            {
                "k": pa.array(small_keys, pa.int64()),
                "k2": pa.array([i % 3 for i in range(n_small)], pa.int64()),
                "name": [f"s{i}" for i in range(n_small)],
            }
        ),
        "big": pa.table(
            {
                "k": pa.array(large_keys, pa.int64()),
                "k2": pa.array(rng.integers(0, 3, n_large), pa.int64()),
                "v": pa.array(rng.integers(0, 1000, n_large), pa.int64()),
            }
        ),
    }


CASES: list[Case] = [
    u("plain", "SELECT s.k, s.name, big.v FROM s LEFT JOIN big ON s.k = big.k"),
    u("count", "SELECT s.k, count(big.v) FROM s LEFT JOIN big ON s.k = big.k GROUP BY s.k"),
    u("residual", "SELECT s.name, big.v FROM s LEFT JOIN big ON s.k = big.k AND big.v > 500"),
    u("two_keys", "SELECT s.name, big.v FROM s LEFT JOIN big ON s.k = big.k AND s.k2 = big.k2"),
    u("unmatched", "SELECT s.name FROM s LEFT JOIN big ON s.k = big.k WHERE big.k IS NULL"),
    u(
        "q13_shape",
        """
        SELECT c, count(*) FROM (
            SELECT s.k, count(big.v) AS c FROM s LEFT JOIN big ON s.k = big.k AND big.v < 700
            GROUP BY s.k) t
        GROUP BY c""",
    ),
]


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tables(tmp_path_factory.mktemp("preserved"), _tables(), {"s": 20, "big": 200})


def _connection(parquet_dir: Path, partitions: int) -> shoal.Connection:
    return connect(parquet_dir, list(_tables()), partitions)


@pytest.mark.parametrize("partitions", [1, 3])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_duckdb(parquet_dir: Path, case: Case, partitions: int) -> None:
    check_case(_connection(parquet_dir, partitions), case, _tables(), partitions)


def test_plan_builds_on_the_preserved_side(parquet_dir: Path) -> None:
    text = _connection(parquet_dir, 3).explain(
        "SELECT s.k, big.v FROM s LEFT JOIN big ON s.k = big.k"
    )
    assert "HashJoin[right]" in text and "strategy=partitioned" in text
    assert "build on the preserved side" in text
