"""Scans of one Parquet source in one query decode each row group once.

Checked three ways: the decoded-split cache alone (every reader gets the row group,
one decode between them, the budget respected); TPC-H queries that read a table
twice give the reference answers with sharing on, off, and starved of budget; and
EXPLAIN ANALYZE shows which scans took shared row groups.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest
from support.tpch import assert_matches_answer, query_text, tpch_connection

import shoal
from shoal.memory.pool import MemoryPool
from shoal.physical.operators.scan import ScanExec
from shoal.physical.operators.scan_share import CACHE_SHARE, DecodedSplitCache, ScanShare

KEY = ("f.parquet", (0,))


def _share(readers: int, budget: int = 1 << 20) -> ScanShare:
    return ScanShare("t#0", ("a",), ((KEY, readers),), budget)


def _batch() -> list[pa.RecordBatch]:
    return [pa.record_batch({"a": list(range(100))})]


def test_every_reader_gets_the_row_group_from_one_decode() -> None:
    cache = DecodedSplitCache(_share(readers=3))
    decodes = []
    got: list[tuple[list[pa.RecordBatch], bool]] = []

    def decode() -> list[pa.RecordBatch]:
        decodes.append(1)
        return _batch()

    threads = [
        threading.Thread(target=lambda: got.append(cache.batches(KEY, decode))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(decodes) == 1
    assert sorted(reused for _, reused in got) == [False, True, True]
    assert all(batches[0].equals(_batch()[0]) for batches, _ in got)
    assert cache.held_bytes == 0  # handed to everyone: released


def test_over_budget_each_reader_decodes_for_itself() -> None:
    cache = DecodedSplitCache(_share(readers=2, budget=10))
    calls = []

    def decode() -> list[pa.RecordBatch]:
        calls.append(1)
        return _batch()

    assert cache.batches(KEY, decode)[1] is False
    assert cache.batches(KEY, decode)[1] is False
    assert len(calls) == 2 and cache.held_bytes == 0


def test_the_cache_keeps_only_spare_memory() -> None:
    # Within a quarter of the pool: what it holds must never be what operators need.
    pool = MemoryPool(4000)
    cache = DecodedSplitCache(_share(readers=2), pool.reservation("cache"))
    size = _batch()[0].nbytes
    assert size < CACHE_SHARE * pool.limit
    cache.batches(KEY, _batch)
    assert cache.held_bytes == size and pool.reserved == size
    cache.batches(KEY, _batch)
    assert cache.held_bytes == 0 and pool.reserved == 0
    operator = pool.reservation("join")
    operator.force_grow(int(CACHE_SHARE * pool.limit))
    again = DecodedSplitCache(_share(readers=2), pool.reservation("cache"))
    again.batches(KEY, _batch)
    assert again.held_bytes == 0  # the second reader decodes for itself
    assert pool.reserved == operator.size


def test_a_lone_reader_keeps_nothing() -> None:
    cache = DecodedSplitCache(_share(readers=1))
    cache.batches(KEY, _batch)
    assert cache.held_bytes == 0


# Q15 (a CTE read twice), Q17 and Q18 (subquery and outer query), Q21 (EXISTS, NOT EXISTS).
SHARING_QUERIES = [15, 17, 18, 21]


@pytest.mark.parametrize("budget", [256 << 20, 0, 50_000], ids=["on", "off", "starved"])
@pytest.mark.parametrize("q", SHARING_QUERIES, ids=lambda q: f"q{q:02d}")
def test_answers_with_sharing_on_off_and_starved(tpch_sf01_dir: Path, q: int, budget: int) -> None:
    con = tpch_connection(tpch_sf01_dir, partitions=3, scan_share_bytes=budget)
    assert_matches_answer(con.sql(query_text(q)).to_arrow(), "0.1", q)


def test_explain_analyze_shows_shared_row_groups(tpch_sf01_dir: Path) -> None:
    con = tpch_connection(tpch_sf01_dir, partitions=2)
    text = con.sql(query_text(18)).explain_analyze()
    lineitem = [line for line in text.splitlines() if "Scan lineitem" in line]
    assert len(lineitem) == 2
    assert any("shared=" in line for line in lineitem)
    assert any("decode=" in line for line in lineitem)


def _lineitem_scans(con: shoal.Connection, q: int) -> list[ScanExec]:
    graph = con.prepare(query_text(q)).graph
    return [
        node
        for stage in graph.stages
        for node in stage.fragment.walk()
        if isinstance(node, ScanExec) and node.table == "lineitem"
    ]


def test_a_filter_every_member_pushes_is_applied_once(tpch_sf01_dir: Path) -> None:
    # The CTE read twice, each reference bound on its own: same filter, named apart
    # (shared, it is one stage reading lineitem once).
    q15 = _lineitem_scans(tpch_connection(tpch_sf01_dir, partitions=2, share_ctes=False), 15)
    con = tpch_connection(tpch_sf01_dir, partitions=2)
    assert len(q15) == 2 and q15[0].share is not None and q15[0].share == q15[1].share
    assert q15[0].share.filter is not None
    assert "l_shipdate" in str(q15[0].share.filter)
    q21 = _lineitem_scans(con, 21)  # filtered and unfiltered members: nothing in common
    assert len(q21) == 3 and q21[0].share is not None and q21[0].share.filter is None
