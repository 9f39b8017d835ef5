"""Memory-bounded execution: budgets, reservations, spill, the typed error, cleanup.

Tiny budgets (a few MiB) over a few hundred thousand rows make every spilling
operator spill in well under a second; results are checked against DuckDB. After
every query — success, error, cancellation, timeout — the spill folder is gone and
the query's pool holds nothing.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from support.compare import assert_same_result

import shoal
from shoal.errors import (
    ExecutionError,
    QueryCancelledError,
    QueryTimeoutError,
    ResourceExhaustedError,
    UserError,
)
from shoal.exchange.merge import merge_sorted
from shoal.exchange_spec import SortSpec
from shoal.memory import pool as pool_module
from shoal.memory.pool import STATE_SHARE, HolderKind, MemoryPool, PressureRelease
from shoal.memory.size import parse_bytes
from shoal.memory.spill import SpillSpace
from shoal.physical.operators import hash_join
from shoal.physical.operators.join_index import JoinIndex


def _tables() -> dict[str, pa.Table]:
    rng = np.random.default_rng(7)
    n, m = 60_000, 20_000
    a_keys = rng.integers(0, 15_000, n)
    b_keys = rng.integers(0, 18_000, m)
    return {
        "a": pa.table(
            {
                "k": pa.array(a_keys, mask=a_keys % 97 == 0),
                "v": rng.integers(0, 100, n),
                "s": pa.array([f"s{i % 3000}" for i in range(n)]),
            }
        ),
        "b": pa.table(
            {
                "k2": pa.array(b_keys, mask=b_keys % 89 == 0),
                "w": rng.integers(0, 100, m),
                "s2": pa.array([f"s{i % 4000}" for i in range(m)]),
            }
        ),
        # One key holds 500 of 1,100 rows: no hash seed splits it.
        "h": pa.table(
            {
                "hk": np.concatenate([np.full(500, 7), rng.integers(0, 200, 600)]),
                "x": rng.integers(0, 10, 1100),
            }
        ),
    }


TABLES = _tables()


@pytest.fixture(scope="module")
def duck() -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    for name, table in TABLES.items():
        db.register(name, table)
    return db


def _connect(tmp_path: Path, partitions: int = 2, **settings: Any) -> shoal.Connection:
    settings.setdefault("memory_limit", "1MiB")
    settings.setdefault("batch_rows", 4096)
    con = shoal.connect(partitions, spill_dir=tmp_path, **settings)
    for name, table in TABLES.items():
        con.register_arrow(name, table)
    return con


def _run(con: shoal.Connection, sql: str) -> tuple[pa.Table, dict[str, Any], MemoryPool]:
    """The result, the EXPLAIN ANALYZE figures (JSON) and the query's pool."""
    stream = con.stream(sql)
    result = stream.result()
    return result.to_arrow(), json.loads(result.explain_analyze_json()), stream.memory


def _operators(data: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [
        op for st in data["stages"] for op in st["operators"] if op["operator"].startswith(prefix)
    ]


def _assert_clean(tmp_path: Path, pool: MemoryPool | None = None) -> None:
    assert list(tmp_path.iterdir()) == []
    if pool is not None:
        assert pool.reserved == 0


def _expected(duck: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    return duck.sql(sql).to_arrow_table()


def assert_frames_match(got: pa.Table, expected: pa.Table) -> None:
    assert_same_result(got, expected, ordered=False)


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512MiB", 512 << 20),
        ("1GiB", 1 << 30),
        ("1.5GB", 1_500_000_000),
        (" 64 kib ", 64 << 10),
        (2_000_000, 2_000_000),
        ("4096", 4096),
    ],
)
def test_parse_bytes(text: object, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("bad", ["lots", "12 parsecs", "-1MiB", 0, -5, "0", True, 1.5, None])
def test_bad_memory_limit_is_a_user_error(bad: object) -> None:
    with pytest.raises(UserError, match="memory_limit"):
        parse_bytes(bad)


def test_memory_limit_on_connect_and_per_query(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="memory_limit must be a byte count"):
        shoal.connect(memory_limit="lots")
    con = _connect(tmp_path, memory_limit="1GiB")
    assert con.settings.memory_limit == 1 << 30
    stream = con.stream("SELECT count(*) FROM a", memory_limit="3MiB")
    assert stream.read_all().column(0).to_pylist() == [60_000]
    assert stream.memory.limit == 3 << 20
    assert con.sql("SELECT 1", memory_limit=12345).metrics.memory_limit_bytes == 12345
    with pytest.raises(UserError, match="memory_limit must be positive"):
        con.sql("SELECT 1", memory_limit="0MiB")
    assert shoal.connect().settings.memory_limit > 0  # default: a share of physical memory


# ----------------------------------------------------------------- the pool


def test_pool_reservations() -> None:
    pool = MemoryPool(1000)
    state_limit = int(1000 * STATE_SHARE)
    a = pool.reservation("A", stage=1, task=0)
    b = pool.reservation("B")
    held = state_limit - 100
    assert a.try_grow(held)
    assert not b.try_grow(1000 - held + 1)  # would pass the limit: refused, nothing taken
    assert pool.reserved == held
    # Operator state may take STATE_SHARE of the limit; the rest is headroom for
    # batches in flight, which an explicit share (an exchange buffer's) may use.
    assert not b.try_grow(101)
    assert b.try_grow(100)
    with pytest.raises(ResourceExhaustedError) as info:
        a.grow(1)
    err = info.value
    assert (err.operator, err.needed, err.held, err.budget) == ("A", 1, held, 1000)
    assert err.state_limit == state_limit
    assert "[stage 1, task 0, attempt 0] A needs 1B more memory" in str(err)
    assert isinstance(err, ExecutionError)
    # Buffered batches count against the limit (and their own share), not the state's.
    c = pool.reservation("Exchange", kind=HolderKind.BUFFER)
    assert not c.try_grow(1000 - pool.reserved + 1)
    assert c.try_grow(1000 - pool.reserved)
    assert pool.reserved == 1000 and pool.state_reserved == state_limit
    a.shrink(100)
    assert pool.reserved == 900 and pool.peak == 1000
    b.force_grow(5000)  # progress over budget, counted
    assert pool.reserved == 5900
    pool.free_all()
    assert pool.reserved == 0 and pool.state_reserved == 0
    assert a.size == 0 and b.size == 0 and c.size == 0


def test_buffers_leave_operator_state_its_share() -> None:
    # Exchange buffers waiting for their consumer must not take the consumer's room.
    pool = MemoryPool(1000)
    buffers = pool.reservation("Exchange", kind=HolderKind.BUFFER)
    assert buffers.try_grow(int(1000 * STATE_SHARE), share=STATE_SHARE)
    assert not buffers.try_grow(1, share=STATE_SHARE)  # buffers give way first
    state = pool.reservation("Aggregate")
    assert state.headroom() == 1000 - int(1000 * STATE_SHARE)
    assert state.try_grow(state.headroom())
    assert not state.try_grow(1)  # the whole limit is taken now


def test_spill_files_round_trip_compressed(tmp_path: Path) -> None:
    space = SpillSpace(str(tmp_path))
    batch = pa.record_batch({"x": pa.array(np.zeros(100_000, np.int64))})
    f = space.new_file(batch.schema)
    f.write(batch)
    f.write(batch.slice(0, 10))
    f.close()
    assert [b.num_rows for b in f.read()] == [100_000, 10]
    assert space.bytes < batch.nbytes // 10  # lz4 on zeros
    assert len(list(tmp_path.iterdir())) == 1
    space.remove()
    _assert_clean(tmp_path)
    with pytest.raises(QueryCancelledError):
        space.new_file(batch.schema)  # a query that ended spills nothing more


def test_spill_partitions_write_pieces_together(tmp_path: Path) -> None:
    # Small batches split 16 ways: the pieces of a partition go to disk together, up to
    # the buffer, not as one IPC message of a few rows each.
    from shoal.metrics.operator import OperatorMetrics
    from shoal.physical.operators.spill_partitions import SpillPartitions

    space = SpillSpace(str(tmp_path))
    schema = pa.schema([("k", pa.int64())])
    parts = SpillPartitions(space, schema, ("k",), 0, OperatorMetrics(), buffer=16 << 10)
    for i in range(100):
        parts.add(pa.record_batch({"k": pa.array(np.arange(i * 64, (i + 1) * 64))}))
    got: list[int] = []
    messages = 0
    for f in parts.partitions():
        batches = list(f.read())
        messages += len(batches)
        got.extend(v for b in batches for v in b.column(0).to_pylist())
    assert sorted(got) == list(range(6400))
    # 51 KiB in all, flushed at 1 KiB a partition: a few messages each, not 100.
    assert messages <= 16 * 5
    space.remove()
    _assert_clean(tmp_path)


# ------------------------------------------------------------ aggregate spill


AGGREGATES = [
    "SELECT k, count(*) AS c, sum(v) AS sv, avg(v) AS av, min(s) AS ms, max(v) AS mv FROM a GROUP BY k",
    "SELECT s, k % 7 AS m, count(*) AS c, count(k) AS ck FROM a GROUP BY s, m",
    "SELECT v, count(DISTINCT s) AS d FROM a GROUP BY v",
]


@pytest.mark.parametrize("partitions", [1, 3])
@pytest.mark.parametrize("sql", AGGREGATES)
def test_aggregate_spills_and_matches_duckdb(
    tmp_path: Path, duck: duckdb.DuckDBPyConnection, partitions: int, sql: str
) -> None:
    con = _connect(tmp_path, partitions)
    got, data, pool = _run(con, sql)
    assert_frames_match(got, _expected(duck, sql))
    spilled = [op for op in _operators(data, "Aggregate[") if op["spill_files"]]
    assert spilled and all(op["spilled_bytes"] > 0 for op in spilled)
    assert data["memory"]["spill_files"] > 0
    _assert_clean(tmp_path, pool)


def test_aggregate_partitions_again_when_a_partition_is_too_big(
    tmp_path: Path, duck: duckdb.DuckDBPyConnection
) -> None:
    con = _connect(tmp_path, 1, memory_limit="128KiB")
    sql = AGGREGATES[0]
    got, data, pool = _run(con, sql)
    assert_frames_match(got, _expected(duck, sql))
    assert max(op["spill_passes"] for op in _operators(data, "Aggregate[")) >= 2
    _assert_clean(tmp_path, pool)


def test_partial_aggregate_holds_its_first_chunk_only_within_the_budget(tmp_path: Path) -> None:
    # The hot-key sampling of a partial aggregate reads a first chunk (4 x batch_rows)
    # before deciding; past the budget it must stop there, not hold the chunk anyway
    # (which starved the operators below it, still running, of their share).
    rng = np.random.default_rng(5)
    n = 200_000
    con = _connect(tmp_path, 2, memory_limit="256KiB")
    con.register_arrow("g", pa.table({"k": rng.integers(0, 150_000, n), "v": np.ones(n)}))
    got, data, pool = _run(con, "SELECT k, count(*) AS c FROM g GROUP BY k")
    assert sum(got.column("c").to_pylist()) == n
    (partial,) = _operators(data, "Aggregate[partial]")
    assert 0 < partial["peak_reserved_bytes"] <= 2 * (256 << 10)  # two tasks, each within
    _assert_clean(tmp_path, pool)


def test_no_pressure_no_spill(tmp_path: Path, duck: duckdb.DuckDBPyConnection) -> None:
    con = _connect(tmp_path, memory_limit="1GiB")
    for sql in [AGGREGATES[0], JOINS[3], "SELECT k, v FROM a ORDER BY k, v, s LIMIT 10"]:
        got, data, pool = _run(con, sql)
        assert_frames_match(got, _expected(duck, sql))
        assert data["memory"]["spill_files"] == 0
        assert 0 < data["memory"]["peak_reserved_bytes"] <= 1 << 30
        _assert_clean(tmp_path, pool)


# ----------------------------------------------------------------- join spill


# Joins are checked through a checksum of their rows (counts and sums, NULLs
# counted apart): the comparison stays cheap, any lost, doubled or wrongly paired
# row still shows.
def _checksum(join: str, columns: str = "a.k, v, w") -> str:
    sums = ", ".join(
        f"count({c}) AS n{i}, sum({c}) AS s{i}" for i, c in enumerate(columns.split(", "))
    )
    return f"SELECT count(*) AS rows, {sums} FROM {join}"


JOINS = [
    _checksum("a JOIN b ON a.k = b.k2"),
    _checksum("a LEFT JOIN b ON a.k = b.k2"),
    _checksum("a RIGHT JOIN b ON a.k = b.k2", "a.k, b.k2, v, w"),
    _checksum("a FULL JOIN b ON a.k = b.k2", "a.k, b.k2, v, w"),
    _checksum("a FULL JOIN b ON a.k = b.k2 AND v < w", "a.k, b.k2, v, w"),
    "SELECT count(*) AS c FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.k2 = a.k)",
    "SELECT count(*) AS c, sum(v) AS sv FROM a"
    " WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.k2 = a.k AND b.w > a.v)",
    "SELECT count(*) AS c, sum(v) AS sv FROM a WHERE k NOT IN (SELECT k2 FROM b WHERE k2 > 5)",
    "SELECT count(*) AS c, sum(v) AS sv FROM a WHERE k NOT IN (SELECT k2 FROM b)",
    "SELECT k, s FROM a INTERSECT SELECT k2, s2 FROM b",
    "SELECT count(*) AS c FROM b WHERE EXISTS (SELECT 1 FROM a WHERE a.k = b.k2)",
]


@pytest.mark.parametrize("sql", JOINS)
def test_join_spills_and_matches_duckdb(
    tmp_path: Path, duck: duckdb.DuckDBPyConnection, sql: str
) -> None:
    con = _connect(tmp_path, 2, memory_limit="192KiB", broadcast_threshold_bytes=1)
    got, data, pool = _run(con, sql)
    assert_frames_match(got, _expected(duck, sql))
    assert any(op["spill_files"] for op in _operators(data, "HashJoin["))
    _assert_clean(tmp_path, pool)


@pytest.mark.parametrize("sql", [JOINS[0], JOINS[2], JOINS[8]])
def test_broadcast_join_spills_and_matches_duckdb(
    tmp_path: Path, duck: duckdb.DuckDBPyConnection, sql: str
) -> None:
    con = _connect(tmp_path, 3, memory_limit="192KiB", broadcast_threshold_bytes=1 << 40)
    got, data, pool = _run(con, sql)
    assert_frames_match(got, _expected(duck, sql))
    _assert_clean(tmp_path, pool)


HOT_KEY_JOINS = [
    "SELECT count(*) AS c, sum(h2.x) AS sx FROM h h1 JOIN h h2 ON h1.hk = h2.hk",
    "SELECT h1.hk, count(*) AS c, sum(h2.x) AS sx FROM h h1"
    " LEFT JOIN h h2 ON h1.hk = h2.hk AND h1.x < h2.x GROUP BY h1.hk",
    "SELECT count(*) AS c FROM h h1 WHERE EXISTS"
    " (SELECT 1 FROM h h2 WHERE h1.hk = h2.hk AND h2.x > h1.x)",
    "SELECT count(*) AS c FROM h h1 WHERE NOT EXISTS"
    " (SELECT 1 FROM h h2 WHERE h1.hk = h2.hk AND h2.x > h1.x + 7)",
]


@pytest.mark.parametrize("sql", HOT_KEY_JOINS)
def test_hot_key_falls_back_to_block_nested_loop(
    tmp_path: Path, duck: duckdb.DuckDBPyConnection, sql: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    loop = hash_join.HashJoinExec._block_nested_loop
    held = hash_join.HashJoinExec._held_left_files

    def counted_loop(self: Any, *args: Any) -> Any:
        calls.append(1)
        return loop(self, *args)

    monkeypatch.setattr(hash_join.HashJoinExec, "_block_nested_loop", counted_loop)
    con = _connect(tmp_path, 2, memory_limit="12KiB", batch_rows=256, broadcast_threshold_bytes=1)
    got, data, pool = _run(con, sql)
    assert_frames_match(got, _expected(duck, sql))
    join = _operators(data, "HashJoin[")
    assert any(op["spill_files"] for op in join)
    # The hot key's partition was split once more, which did not help: the loop ran
    # (build_left joins hold the left side and loop over it in blocks instead).
    assert calls or held is not None and any("build=left" in op["operator"] for op in join)
    _assert_clean(tmp_path, pool)


def test_grace_partitions_of_sparse_keys_join_in_one_pass(tmp_path: Path) -> None:
    # Keys 400 apart: a dense slot array spans the whole key range (32 MB) however few
    # rows a grace partition holds. Partitions must take an index sized by their rows
    # instead: before, each level split again, down to 200 K files of one key each.
    n = 20_000
    con = _connect(tmp_path, 2, memory_limit="256KiB", broadcast_threshold_bytes=1)
    con.register_arrow("sp", pa.table({"k": np.arange(n) * 400, "v": np.arange(n)}))
    got, data, pool = _run(
        con, "SELECT count(*) AS c, sum(s2.v) AS s FROM sp s1 JOIN sp s2 ON s1.k = s2.k"
    )
    assert got.to_pylist() == [{"c": n, "s": n * (n - 1) // 2}]
    (join,) = _operators(data, "HashJoin[")
    assert join["spill_files"] > 0 and join["spill_passes"] == 1
    _assert_clean(tmp_path, pool)


def test_join_output_comes_in_bounded_batches(tmp_path: Path) -> None:
    # Every probe row matches ~500 build rows: 250k pairs from one probe batch.
    con = _connect(tmp_path, 1, memory_limit="1GiB", batch_rows=2048)
    stream = con.stream("SELECT h1.x, h2.x FROM h h1 JOIN h h2 ON h1.hk = h2.hk WHERE h1.hk = 7")
    sizes = [b.num_rows for b in stream]
    hot = int(np.count_nonzero(TABLES["h"].column("hk").to_numpy() == 7))
    assert sum(sizes) == hot * hot > 250_000
    assert max(sizes) <= 2048


def test_probe_pieces_split_a_hot_run() -> None:
    build = pa.array(np.concatenate([np.full(1000, 5), np.arange(100)]))
    index = JoinIndex([build])
    probe = pa.array([5, 1, 5, 99, 1000])
    whole = index.probe([probe])
    pieces = list(index.probe_pieces([probe], 300))
    assert all(len(p) <= 300 for p, _ in pieces)
    joined = sorted(zip(*(np.concatenate(x) for x in zip(*pieces, strict=False)), strict=True))
    assert joined == sorted(zip(*whole, strict=True))
    assert len(joined) == 2 * 1001 + 2


# ----------------------------------------------------------------- sort spill


@pytest.mark.parametrize("partitions", [1, 3])
def test_sort_spills_runs_and_merges(
    tmp_path: Path, duck: duckdb.DuckDBPyConnection, partitions: int
) -> None:
    sql = "SELECT k, s, v FROM a ORDER BY k NULLS FIRST, s DESC, v"
    con = _connect(tmp_path, partitions, memory_limit="512KiB")
    got, data, pool = _run(con, sql)
    expected = _expected(duck, sql)
    assert got.to_pydict() == expected.rename_columns(got.column_names).to_pydict()
    (sort,) = [op for op in _operators(data, "Sort ")]
    assert sort["spill_files"] > 2 and sort["spill_passes"] >= 2  # runs merged in rounds
    _assert_clean(tmp_path, pool)


# ----------------------------------------------- nothing to spill: typed error


def test_resource_exhausted_names_operator_and_budget(tmp_path: Path) -> None:
    con = _connect(tmp_path, 2, memory_limit="128KiB")
    stream = con.stream("SELECT k, s, v FROM a ORDER BY s, v LIMIT 50000")
    with pytest.raises(ResourceExhaustedError) as info:
        stream.read_all()
    err = info.value
    assert err.operator.startswith("TopK[")
    assert err.budget == 128 << 10 and err.needed > 0
    assert err.stage is not None and err.partition is not None
    assert "memory_limit=128.0KiB" in str(err) and "cannot spill" in str(err)
    _assert_clean(tmp_path, stream.memory)
    # The connection still works, and with room the same query runs.
    assert con.sql("SELECT count(*) FROM a").fetchall() == [(60_000,)]
    assert con.sql("SELECT k FROM a ORDER BY s, v LIMIT 50000", memory_limit="1GiB").num_rows


@pytest.mark.parametrize(
    ("sql", "operator"),
    [
        # A window's frame over its whole partition needs the partition at once.
        ("SELECT k, v, sum(v) OVER (PARTITION BY k % 3) AS w FROM a", "Window"),
        # A nested-loop join holds its whole build side.
        ("SELECT count(*) FROM a JOIN b ON a.v < b.w AND a.s <> b.s2", "NestedLoopJoin"),
    ],
)
def test_operators_that_cannot_spill_fail_typed(tmp_path: Path, sql: str, operator: str) -> None:
    con = _connect(tmp_path, 2, memory_limit="96KiB")
    assert operator in con.explain(sql)
    stream = con.stream(sql)
    with pytest.raises(ResourceExhaustedError) as info:
        stream.read_all()
    err = info.value
    assert err.operator.startswith(operator)
    assert err.budget == 96 << 10 and err.needed > 0
    assert err.stage is not None and err.partition is not None
    _assert_clean(tmp_path, stream.memory)
    assert con.sql("SELECT count(*) FROM b").fetchall() == [(20_000,)]


def test_window_reserves_its_partition(tmp_path: Path, duck: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT k, v, sum(v) OVER (PARTITION BY k % 3 ORDER BY v, s) AS w FROM a"
    got, figures, pool = _run(_connect(tmp_path, 2, memory_limit="64MiB"), sql)
    assert_frames_match(got, _expected(duck, sql))
    window = _operators(figures, "Window")
    assert window and all(op["peak_reserved_bytes"] > 0 for op in window)
    _assert_clean(tmp_path, pool)


def test_ordered_merge_reserves_what_it_holds() -> None:
    pool = MemoryPool(1 << 30)
    reservation = pool.reservation("merge")
    # Three sorted runs of interleaved values, in batches of 50 rows.
    runs = [
        pa.table({"x": pa.array(range(start, 1000, 3), pa.int64())}).to_batches(50)
        for start in (0, 1, 2)
    ]
    schema = runs[0][0].schema
    out = list(merge_sorted([iter(r) for r in runs], (SortSpec("x"),), schema, reservation))
    values = pa.Table.from_batches(out).column("x").to_pylist()
    assert values == list(range(1000))
    assert pool.peak > 0  # it held rows between rounds, reserved
    assert pool.reserved == 0  # and gave them back at the end


# ---------------------------------------------------- cleanup, however it ends


def _wait_for_spill(stream: Any) -> None:
    deadline = time.monotonic() + 20
    while stream.spill_path is None:
        assert time.monotonic() < deadline, "the query never spilled"
        time.sleep(0.005)


# A grace join (its build side does not fit) of ~70M pairs: spills at once, runs long.
SLOW_SPILL = "SELECT count(*) AS c FROM a x JOIN a y ON x.k % 50 = y.k % 50"


def test_cleanup_after_cancel(tmp_path: Path) -> None:
    con = _connect(tmp_path, 2, memory_limit="512KiB")
    stream = con.stream(SLOW_SPILL)
    _wait_for_spill(stream)
    assert any(tmp_path.iterdir())
    threading.Timer(0.05, stream.cancel).start()
    started = time.monotonic()
    with pytest.raises(QueryCancelledError):
        stream.read_all()
    assert time.monotonic() - started < 2
    _assert_clean(tmp_path, stream.memory)
    assert con.sql("SELECT count(*) FROM a").fetchall() == [(60_000,)]


def test_cleanup_after_timeout(tmp_path: Path) -> None:
    con = _connect(tmp_path, 2, memory_limit="512KiB")
    stream = con.stream(SLOW_SPILL, timeout=0.5)
    _wait_for_spill(stream)
    with pytest.raises(QueryTimeoutError):
        stream.read_all()
    _assert_clean(tmp_path, stream.memory)
    assert con.sql("SELECT count(*) FROM a").fetchall() == [(60_000,)]


def test_cleanup_after_error(tmp_path: Path) -> None:
    con = _connect(tmp_path, 2, memory_limit="512KiB")
    # The aggregate spills; the division by zero above it fails the query.
    stream = con.stream("SELECT k, count(*) // (min(v) - min(v)) AS boom FROM a GROUP BY k")
    with pytest.raises(ExecutionError, match="zero"):
        stream.read_all()
    assert stream.metrics.spill_files > 0
    _assert_clean(tmp_path, stream.memory)


def test_cleanup_after_closing_a_stream_early(tmp_path: Path) -> None:
    con = _connect(tmp_path, 2, memory_limit="512KiB")
    with con.stream("SELECT k, s, v FROM a ORDER BY k, s, v") as stream:
        next(iter(stream))
    _assert_clean(tmp_path, stream.memory)


# -------------------------------------------------------------- EXPLAIN ANALYZE


def test_explain_analyze_shows_memory(tmp_path: Path) -> None:
    con = _connect(tmp_path, 2)
    text = con.sql("EXPLAIN ANALYZE " + AGGREGATES[0]).to_arrow().column(0).to_pylist()
    assert text[-1].startswith("Memory: peak_reserved=")
    assert "of memory_limit=1.0MiB" in text[-1] and "process_peak_rss=" in text[-1]
    agg = [line for line in text if "Aggregate[" in line][0]
    for field in ("peak_reserved=", "spilled=", "spill_files=", "spill_passes="):
        assert field in agg
    data = json.loads(con.sql(AGGREGATES[0]).explain_analyze_json())
    memory = data["memory"]
    assert memory["memory_limit_bytes"] == 1 << 20
    assert memory["peak_reserved_bytes"] > 0 and memory["process_peak_rss_bytes"] > 0
    final = _operators(data, "Aggregate[")[0]
    assert final["spill_files"] > 0 and final["spill_passes"] >= 1
    assert final["peak_reserved_bytes"] > 0
    _assert_clean(tmp_path)


def test_scan_batches_shrink_for_wide_rows_under_a_small_budget(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from shoal.physical.context import Settings, TaskContext
    from shoal.physical.operators.scan import batch_rows_within_budget

    rows = 50_000
    wide = pa.table({"k": np.arange(rows), "pad": pa.array(["x" * 200] * rows)})
    pq.write_table(wide, tmp_path / "w.parquet", compression="none", use_dictionary=False)
    meta = pq.ParquetFile(tmp_path / "w.parquet").metadata
    groups = list(range(meta.num_row_groups))

    def batch_rows(limit: str, columns: tuple[str, ...]) -> int:
        settings = Settings(batch_rows=1 << 17, memory_limit=parse_bytes(limit))
        return batch_rows_within_budget(TaskContext(0, 0, 1, 0, settings), meta, groups, columns)

    # 64 MiB budget: a batch may take 1 MiB, ~5 K rows of ~210 bytes.
    narrow = batch_rows("64MiB", ("k", "pad"))
    assert 1024 <= narrow < 8_000
    assert narrow * 200 <= (64 << 20) // 64
    # Only the narrow column read: 8-byte rows, well under the cap of a 256 MiB budget.
    assert batch_rows("256MiB", ("k",)) == 1 << 17
    assert batch_rows("256MiB", ("k", "pad")) < 1 << 17
    # A large budget leaves batch_rows alone.
    assert batch_rows("16GiB", ("k", "pad")) == 1 << 17


def test_pressure_release_frees_thread_pages_only_under_pressure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    class CountingPool:
        def release_unused(self) -> None:
            calls.append(1)

    monkeypatch.setattr(pool_module.pa, "default_memory_pool", lambda: CountingPool())
    pool = MemoryPool(800)
    release = PressureRelease(pool)  # every 800 / 8 = 100 bytes of output
    batch = pa.record_batch({"x": pa.array(np.zeros(100, np.int64))})  # 800 bytes
    release.output(batch)
    assert calls == []  # the pool never came near its limit
    pool.reservation("A").force_grow(400)  # peaked at half the limit: pressure
    release.output(batch)
    assert calls == [1]
