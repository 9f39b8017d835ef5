"""ORDER BY inside windowed mode / arg_min / arg_max decides their ties as in DuckDB.

Few distinct values and keys (many ties), NULLs in values, keys and orders, over
whole, running and sliding frames, at 1, 3 and 4 partitions.
"""

from __future__ import annotations

import random

import duckdb
import pyarrow as pa
import pytest

import shoal


def _table() -> pa.Table:
    rng = random.Random(7)
    n = 300
    return pa.table(
        {
            "id": list(range(n)),
            "p": [rng.randrange(4) for _ in range(n)],
            "k": [rng.choice([1, 2, None]) for _ in range(n)],
            "x": [rng.choice([*range(20), None]) for _ in range(n)],
            "s": [rng.choice(["a", "b", "c", None]) for _ in range(n)],
        }
    )


QUERIES = [
    "SELECT id, mode(s ORDER BY x DESC, id) OVER (PARTITION BY p) FROM t",
    "SELECT id, mode(s ORDER BY x NULLS FIRST, id DESC) OVER (PARTITION BY p ORDER BY id) FROM t",
    "SELECT id, mode(s ORDER BY x, id) OVER (PARTITION BY p ORDER BY id"
    " ROWS BETWEEN 5 PRECEDING AND 5 FOLLOWING) FROM t",
    "SELECT id, arg_min(s, k ORDER BY x, id) OVER (PARTITION BY p) FROM t",
    "SELECT id, arg_max(s, k ORDER BY x DESC, id) OVER (PARTITION BY p ORDER BY id) FROM t",
    "SELECT id, arg_max(s, k ORDER BY id DESC) OVER (PARTITION BY p ORDER BY id"
    " ROWS BETWEEN 3 PRECEDING AND 2 FOLLOWING) FROM t",
]


@pytest.mark.parametrize("partitions", [1, 3, 4])
@pytest.mark.parametrize("sql", QUERIES)
def test_within_decides_ties_as_duckdb(sql: str, partitions: int) -> None:
    table = _table()
    con = shoal.connect(partitions=partitions)
    con.register_arrow("t", table)
    duck = duckdb.connect()
    duck.register("t", table)
    assert sorted(con.sql(sql).fetchall()) == sorted(duck.sql(sql).fetchall())
