"""A final aggregate that stops grouping each chunk of states (keys from one partial
each) still merges every key once: with repeats arriving after that decision, and
when it spills."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shoal


def _table() -> pa.Table:
    rng = np.random.default_rng(2)
    # 30,000 distinct keys first (each folded chunk of states stays as large: the
    # final stops folding), then 10,000 rows repeating earlier keys.
    unique = rng.permutation(30_000)
    repeats = rng.integers(0, 30_000, 10_000)
    keys = np.concatenate([unique, repeats])
    return pa.table({"k": keys, "x": rng.integers(-1000, 1000, len(keys))})


def _expected(table: pa.Table) -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = {}
    for k, x in zip(table.column("k").to_pylist(), table.column("x").to_pylist(), strict=True):
        s, c = out.get(k, (0, 0))
        out[k] = (s + x, c + 1)
    return out


@pytest.mark.parametrize("memory_limit", [None, "2MiB"])
def test_final_merges_every_key_once(tmp_path: Path, memory_limit: str | None) -> None:
    table = _table()
    settings = {"memory_limit": memory_limit} if memory_limit else {}
    # Small batches: the final sees many chunks of states; no hot-key pass-through
    # (the partials then fold too), so each partial emits its states chunk by chunk.
    con = shoal.connect(2, batch_rows=1024, spill_dir=tmp_path, hot_key_aggregate=False, **settings)
    # Several row groups: two partial tasks and a final aggregate over an exchange.
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=5000)
    con.register_parquet("t", str(tmp_path / "t.parquet"))
    got = con.sql("SELECT k, sum(x) AS s, count(*) AS c FROM t GROUP BY k").to_arrow()
    assert got.num_rows == len(set(table.column("k").to_pylist()))
    rows = {
        k: (s, c)
        for k, s, c in zip(
            got.column("k").to_pylist(),
            got.column("s").to_pylist(),
            got.column("c").to_pylist(),
            strict=True,
        )
    }
    assert rows == _expected(table)
