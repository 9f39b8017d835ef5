"""Tables that know their layout: hash-partitioned Parquet shards written and read back.

A table written with ``write_partitioned`` / ``COPY ... (PARTITION BY HASH (k) INTO n)``
records its layout; registered again, a join or aggregate on the key needs no exchange
and ``WHERE k = const`` reads one shard. Every result is checked against DuckDB on the
original Arrow tables, so a plan that skips an exchange it needed shows up as wrong rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import re
import shutil
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from support.compare import assert_same_result, duckdb_result

import shoal
from shoal.catalog.layout import LAYOUT_FILE, shard_file_name
from shoal.catalog.sources import LayoutIgnoredWarning
from shoal.errors import (
    CatalogError,
    SqlSyntaxError,
    TypeMismatchError,
    UnknownColumnError,
    UnknownTableError,
    UnsupportedError,
    UserError,
)
from shoal.hashing import HASH_FUNCTION, partition_ids
from shoal.physical.operators.scan import ScanExec
from shoal.physical.partitioning import HashPartitioned, UnknownPartitioning
from shoal.physical.planner import PhysicalPlanner
from shoal.storage.writer import TargetExistsError

SHARDS = 8


def _orders(n: int = 3_000, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    words = np.array([f"cust-{i:03d}" for i in range(40)])
    return pa.table(
        {
            "id": pa.array(np.arange(n), pa.int64()),
            "k": pa.array(rng.integers(0, 300, n), pa.int64(), mask=rng.random(n) < 0.05),
            "s": pa.array(words[rng.integers(0, len(words), n)], mask=rng.random(n) < 0.03),
            "d": pa.array(
                [Decimal(int(x)) / 4 for x in rng.integers(0, 200, n)],
                pa.decimal128(15, 2),
                mask=rng.random(n) < 0.03,
            ),
            "day": pa.array(
                [dt.date(2024, 1, 1) + dt.timedelta(days=int(x)) for x in rng.integers(0, 90, n)],
                pa.date32(),
            ),
            "v": pa.array(rng.uniform(0, 100, n)),
        }
    )


def _customers(n: int = 2_000, seed: int = 11) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "k": pa.array(rng.integers(0, 350, n), pa.int64(), mask=rng.random(n) < 0.05),
            "w": pa.array(rng.integers(0, 1_000, n), pa.int64()),
            "d": pa.array(
                [Decimal(int(x)) / 4 for x in rng.integers(0, 220, n)],
                pa.decimal128(15, 2),
                mask=rng.random(n) < 0.03,
            ),
        }
    )


ORDERS = _orders()
CUSTOMERS = _customers()
ORACLE = {"orders": ORDERS, "customers": CUSTOMERS}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """orders and customers written hash-partitioned on k (8 shards), and a few variants."""
    root = tmp_path_factory.mktemp("layout")
    con = shoal.connect(partitions=3)
    con.register_arrow("orders", ORDERS)
    con.register_arrow("customers", CUSTOMERS)
    con.write_partitioned("orders", root / "orders_k8", "k", SHARDS)
    con.write_partitioned("customers", root / "customers_k8", "k", SHARDS)
    con.write_partitioned("customers", root / "customers_k4", "k", 4)
    con.write_partitioned("orders", root / "orders_s8", "s", SHARDS)
    con.write_partitioned("orders", root / "orders_d8", ["d"], SHARDS)
    con.write_partitioned("customers", root / "customers_d8", "d", SHARDS)
    con.write_partitioned("SELECT k, d, id, v FROM orders", root / "orders_kd4", ["k", "d"], 4)
    con.write_partitioned("SELECT k, d, w FROM customers", root / "customers_kd4", ["k", "d"], 4)
    return root


def _connect(root: Path, partitions: int, **settings: object) -> shoal.Connection:
    con = shoal.connect(partitions=partitions, **settings)
    con.register_parquet("orders", root / "orders_k8")
    con.register_parquet("customers", root / "customers_k8")
    con.register_parquet("customers4", root / "customers_k4")
    con.register_parquet("orders_s", root / "orders_s8")
    con.register_parquet("orders_d", root / "orders_d8")
    con.register_parquet("customers_d", root / "customers_d8")
    con.register_parquet("orders_kd", root / "orders_kd4")
    con.register_parquet("customers_kd", root / "customers_kd4")
    con.register_arrow("plain_customers", CUSTOMERS)
    return con


ORACLE_ALIASES = {
    "orders": ORDERS,
    "customers": CUSTOMERS,
    "customers4": CUSTOMERS,
    "orders_s": ORDERS,
    "orders_d": ORDERS,
    "customers_d": CUSTOMERS,
    "orders_kd": ORDERS.select(["k", "d", "id", "v"]),
    "customers_kd": CUSTOMERS.select(["k", "d", "w"]),
    "plain_customers": CUSTOMERS,
}


def _check(con: shoal.Connection, sql: str, ordered: bool = False) -> pa.Table:
    actual = con.sql(sql).to_arrow()
    assert_same_result(actual, duckdb_result(sql, ORACLE_ALIASES), ordered=ordered, context=sql)
    return actual


def _stage_headers(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Stage ")]


def _scan_rows_read(result: shoal.Result) -> int:
    """Rows the scans decoded (before their filters), from the query's metrics."""
    return sum(
        om.rows_in
        for stage in result.metrics.stages.values()
        for om in stage.operators.values()
        if om.row_groups_read or om.row_groups_skipped
    )


def _shard_of(value: object, type_: pa.DataType, shards: int = SHARDS) -> int:
    return int(partition_ids([pa.array([value], type_)], shards)[0])


# ------------------------------------------------------------------ writing


def test_layout_file_and_shards(written: Path) -> None:
    folder = written / "orders_k8"
    doc = json.loads((folder / LAYOUT_FILE).read_text())
    assert doc["format"] == 1 and doc["partitioning"] == "hash"
    assert doc["keys"] == ["k"] and doc["shards"] == SHARDS
    assert doc["hash_function"] == HASH_FUNCTION
    assert doc["key_types"] == ["int64"]
    assert doc["files"] == [shard_file_name(i) for i in range(SHARDS)]
    assert sorted(os.listdir(folder)) == sorted(doc["files"] + [LAYOUT_FILE])
    total = 0
    null_shard = _shard_of(None, pa.int64())
    for i, name in enumerate(doc["files"]):
        part = pq.read_table(folder / name)
        total += part.num_rows
        assert part.num_rows == doc["rows_per_shard"][i]
        # Every row of file i hashes to shard i, NULL keys included.
        ids = partition_ids([part.column("k")], SHARDS)
        assert (ids == i).all(), name
        if part.column("k").null_count:
            assert i == null_shard
    assert total == ORDERS.num_rows
    # No staging folders left next to the output.
    assert not [p for p in os.listdir(written) if p.startswith(".")]


def test_round_trip_keeps_rows_and_types(written: Path) -> None:
    con = _connect(written, partitions=3)
    actual = con.sql("SELECT * FROM orders").to_arrow()
    assert actual.schema.types == ORDERS.schema.types  # int64, string, decimal128, date32
    assert_same_result(actual, ORDERS, ordered=False)
    src = con.catalog.get("orders")
    assert src.layout is not None and src.layout.keys == ("k",) and src.layout.shards == SHARDS
    assert src.layout_ignored_reason is None
    for name, original in (("orders_s", ORDERS), ("orders_d", ORDERS)):
        assert_same_result(con.sql(f"SELECT * FROM {name}").to_arrow(), original, ordered=False)


def test_empty_shards_are_written(tmp_path: Path) -> None:
    con = shoal.connect(partitions=2)
    con.register_arrow("t", pa.table({"k": pa.array([1, 1, 1], pa.int64()), "x": [1, 2, 3]}))
    summary = con.write_partitioned("t", tmp_path / "out", "k", 16)
    assert summary.shards == 16 and summary.rows == 3
    assert sorted(summary.rows_per_shard) == [0] * 15 + [3]
    assert len([f for f in os.listdir(tmp_path / "out") if f.endswith(".parquet")]) == 16
    con.register_parquet("back", tmp_path / "out")
    assert con.sql("SELECT sum(x) FROM back WHERE k = 1").fetchall() == [(6,)]


def test_write_errors_are_typed(tmp_path: Path, written: Path) -> None:
    con = shoal.connect(partitions=2)
    con.register_arrow("orders", ORDERS)
    with pytest.raises(TargetExistsError, match="already exists"):
        con.write_partitioned("orders", written / "orders_k8", "k", SHARDS)
    with pytest.raises(UnknownColumnError, match="nope"):
        con.write_partitioned("orders", tmp_path / "x", "nope", 4)
    with pytest.raises(UnknownTableError, match="ordrs"):
        con.write_partitioned("ordrs", tmp_path / "x", "k", 4)
    with pytest.raises(UserError, match="shard count"):
        con.write_partitioned("orders", tmp_path / "x", "k", 0)
    with pytest.raises(UserError, match="duplicate column"):
        con.write_partitioned("SELECT k, k FROM orders", tmp_path / "x", "k", 4)
    con.register_arrow("lists", pa.table({"l": pa.array([[1], [2]])}))
    with pytest.raises(TypeMismatchError, match="cannot hash-partition"):
        con.write_partitioned("lists", tmp_path / "x", "l", 4)
    assert not (tmp_path / "x").exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_overwrite(tmp_path: Path) -> None:
    con = shoal.connect(partitions=2)
    con.register_arrow("t", pa.table({"k": pa.array(range(100), pa.int64())}))
    out = tmp_path / "t"
    con.write_partitioned("t", out, "k", 4)
    with pytest.raises(TargetExistsError):
        con.write_partitioned("t", out, "k", 2)
    summary = con.write_partitioned("SELECT k FROM t WHERE k < 10", out, "k", 2, overwrite=True)
    assert summary.rows == 10
    assert json.loads((out / LAYOUT_FILE).read_text())["shards"] == 2
    assert sorted(os.listdir(out)) == [LAYOUT_FILE, shard_file_name(0), shard_file_name(1)]
    # A folder that shoal did not write is never replaced.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(TargetExistsError, match="not written by shoal"):
        con.write_partitioned("t", foreign, "k", 2, overwrite=True)
    assert (foreign / "precious.txt").read_text() == "keep me"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


# --------------------------------------------------------------- planning


def test_colocated_join_has_no_exchange(written: Path) -> None:
    con = _connect(written, partitions=SHARDS)
    sql = "SELECT o.id, o.k, c.w FROM orders o JOIN customers c ON o.k = c.k WHERE o.v > 10"
    text = con.explain(sql)
    assert len(_stage_headers(text)) == 1, text  # no exchange anywhere: one stage
    assert "HashRepartition" not in text and "Broadcast" not in text, text
    join_line = next(line for line in text.splitlines() if "HashJoin" in line)
    assert "strategy=colocated" in join_line, text
    assert text.count("layout=hash[k]x8 shards=8/8") == 2, text
    _check(con, sql)
    # Outer joins too: the NULL keys of both sides meet nothing, wherever they are.
    for kind in ("LEFT", "FULL"):
        outer = f"SELECT o.id, c.w FROM orders o {kind} JOIN customers c ON o.k = c.k"
        assert "strategy=colocated" in con.explain(outer)
        _check(con, outer)


def test_colocated_join_on_decimal_and_two_keys(written: Path) -> None:
    con = _connect(written, partitions=SHARDS)
    sql = "SELECT o.id, c.k FROM orders_d o JOIN customers_d c ON o.d = c.d"
    text = con.explain(sql)
    assert "strategy=colocated" in text and "HashRepartition" not in text, text
    _check(con, sql)
    con4 = _connect(written, partitions=4)
    sql2 = "SELECT o.id, c.w FROM orders_kd o JOIN customers_kd c ON o.d = c.d AND o.k = c.k"
    text2 = con4.explain(sql2)
    assert "strategy=colocated" in text2 and "HashRepartition" not in text2, text2
    _check(con4, sql2)


def test_aggregate_on_key_has_no_exchange(written: Path) -> None:
    con = _connect(written, partitions=SHARDS)
    sql = "SELECT k, count(*) AS n, sum(d) AS sd, max(day) AS md FROM orders GROUP BY k"
    text = con.explain(sql)
    assert "HashRepartition" not in text and len(_stage_headers(text)) == 1, text
    assert "Aggregate[single]" in text, text
    _check(con, sql)
    # Grouping on a superset of the key is co-located too.
    sql2 = "SELECT k, s, count(*) FROM orders GROUP BY k, s"
    assert "HashRepartition" not in con.explain(sql2)
    _check(con, sql2)
    # A string key.
    sql3 = "SELECT s, count(*), sum(v) FROM orders_s GROUP BY s"
    assert "HashRepartition" not in con.explain(sql3)
    _check(con, sql3)


def test_partitioning_not_claimed_without_key_column(written: Path) -> None:
    con = _connect(written, partitions=SHARDS)
    sql = "SELECT s, count(*) FROM orders GROUP BY s"  # k is not read
    text = con.explain(sql)
    assert "HashRepartition[" in text, text
    _check(con, sql)
    logical = con.prepare("SELECT s FROM orders").logical.plan
    scans = [
        n for n in PhysicalPlanner(con.settings).plan(logical).walk() if isinstance(n, ScanExec)
    ]
    assert isinstance(scans[0].output_partitioning(), UnknownPartitioning)


def test_task_count_follows_partitions_when_it_divides_shards(written: Path) -> None:
    # 8 shards on 4 tasks (pairs of consecutive shards) is Hash(k, 4): co-located with
    # a 4-shard table and with any side the engine shuffles into 4 partitions.
    con = _connect(written, partitions=4)
    plan = PhysicalPlanner(con.settings).plan(con.prepare("SELECT k FROM orders").logical.plan)
    scan = next(n for n in plan.walk() if isinstance(n, ScanExec))
    assert scan.output_partitioning() == HashPartitioned(scan.names, 4)
    sql = "SELECT o.id, c.w FROM orders o JOIN customers4 c ON o.k = c.k"
    text = con.explain(sql)
    assert "strategy=colocated" in text and "HashRepartition" not in text, text
    _check(con, sql)
    # The identity that makes this exact: shard // (8 / 4) == partition among 4.
    keys = [ORDERS.column("k"), ORDERS.column("s")]
    assert (partition_ids(keys, 8) // 2 == partition_ids(keys, 4)).all()
    assert (partition_ids(keys, 64) // 8 == partition_ids(keys, 8)).all()


@pytest.mark.parametrize("partitions", [3, 4])
def test_join_with_shuffled_side_at_other_partition_count(written: Path, partitions: int) -> None:
    # No broadcast: the non-laid-out side must be hash-exchanged into the layout's
    # partition count with the same hash, whichever side of the join it is on.
    con = _connect(written, partitions=partitions, broadcast_threshold_bytes=0)
    tasks = SHARDS if SHARDS % partitions else partitions
    for sql in (
        "SELECT o.id, c.w FROM orders o JOIN plain_customers c ON o.k = c.k",
        "SELECT o.id, c.w FROM plain_customers c JOIN orders o ON c.k = o.k",
        "SELECT o.id, c.w FROM orders o LEFT JOIN plain_customers c ON o.k = c.k",
    ):
        text = con.explain(sql)
        exchanges = re.findall(r"HashRepartition\[[^\]]*\] x(\d+)", text)
        assert exchanges == [str(tasks)], text  # only the plain side moves
        assert "strategy=partitioned" in text, text
        _check(con, sql)


def test_join_of_different_shard_counts_is_correct(written: Path) -> None:
    con = _connect(written, partitions=3, broadcast_threshold_bytes=0)
    sql = "SELECT o.id, c.w FROM orders o JOIN customers4 c ON o.k = c.k"
    _check(con, sql)


# ----------------------------------------------------------- shard pruning


def test_where_key_equals_const_reads_one_shard(written: Path) -> None:
    con = _connect(written, partitions=SHARDS)
    sql = "SELECT id, k, v FROM orders WHERE k = 42"
    text = con.explain(sql)
    assert "shards=1/8" in text, text
    result = con.sql(sql)
    expected = duckdb_result(sql, ORACLE_ALIASES)
    assert expected.num_rows > 0
    assert_same_result(result.to_arrow(), expected, ordered=False, context=sql)
    # The scan read exactly the rows of shard(42) — and only its row groups.
    target = _shard_of(42, pa.int64())
    shard_file = written / "orders_k8" / shard_file_name(target)
    assert _scan_rows_read(result) == pq.read_metadata(shard_file).num_rows
    analyze = result.explain_analyze()
    scan_line = next(line for line in analyze.splitlines() if "Scan orders" in line)
    assert "shards=1/8" in scan_line
    groups = pq.read_metadata(shard_file).num_row_groups
    assert f"row_groups={groups} " in scan_line, analyze
    assert f"rows={expected.num_rows} " in scan_line, analyze
    # Without the key filter every shard is read.
    full = con.sql("SELECT id FROM orders WHERE v > 50")
    assert _scan_rows_read(full) == ORDERS.num_rows


@pytest.mark.parametrize(
    ("sql", "shards"),
    [
        ("SELECT id FROM orders WHERE k IN (1, 2, 3)", {1, 2, 3}),
        ("SELECT id FROM orders WHERE k = 5 OR k = 250", {5, 250}),
        ("SELECT id FROM orders WHERE k IS NULL", {None}),
        ("SELECT id FROM orders WHERE k = 42 AND v > 50", {42}),
        ("SELECT id FROM orders WHERE k IN (42, 43) AND k = 43", {43}),
        ("SELECT id FROM orders WHERE k = 42 AND k = 43", set()),
    ],
)
def test_pruning_forms_int_key(written: Path, sql: str, shards: set[int | None]) -> None:
    con = _connect(written, partitions=SHARDS)
    wanted = {_shard_of(v, pa.int64()) for v in shards}
    text = con.explain(sql)
    assert f"shards={len(wanted)}/8" in text, text
    result = con.sql(sql)
    expected_read = sum(
        pq.read_metadata(written / "orders_k8" / shard_file_name(s)).num_rows for s in wanted
    )
    assert _scan_rows_read(result) == expected_read
    assert_same_result(
        result.to_arrow(), duckdb_result(sql, ORACLE_ALIASES), ordered=False, context=sql
    )


def test_pruning_string_decimal_and_multi_key(written: Path) -> None:
    con = _connect(written, partitions=SHARDS)
    cases = [
        ("SELECT id FROM orders_s WHERE s = 'cust-007'", "orders_s8", 1),
        ("SELECT id FROM orders_d WHERE d = 12.5", "orders_d8", 1),
        ("SELECT id FROM orders_d WHERE d = 12.50", "orders_d8", 1),
        ("SELECT id FROM orders_kd WHERE k = 7 AND d = 1.25", "orders_kd4", 1),
        ("SELECT id FROM orders_kd WHERE k = 7", "orders_kd4", None),  # one key of two
    ]
    for sql, folder, read in cases:
        text = con.explain(sql)
        shards = json.loads((written / folder / LAYOUT_FILE).read_text())["shards"]
        assert f"shards={read or shards}/{shards}" in text, (sql, text)
        _check(con, sql)


def test_pruned_scan_still_colocates(written: Path) -> None:
    con = _connect(written, partitions=SHARDS)
    sql = "SELECT o.id, c.w FROM orders o JOIN customers c ON o.k = c.k WHERE o.k = 42"
    text = con.explain(sql)
    assert "strategy=colocated" in text and "HashRepartition" not in text, text
    assert "shards=1/8" in text, text
    _check(con, sql)


def test_pruned_scan_pickles(written: Path) -> None:
    con = _connect(written, partitions=SHARDS)
    plan = PhysicalPlanner(con.settings).plan(
        con.prepare("SELECT id FROM orders WHERE k = 42").logical.plan
    )
    scan = next(n for n in plan.walk() if isinstance(n, ScanExec))
    copy = pickle.loads(pickle.dumps(scan))
    assert copy.assignment == scan.assignment and copy.shards_read == 1
    assert sum(1 for a in scan.assignment if a) == 1


# ------------------------------------------------------- layouts not usable


def _copy_folder(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_other_hash_function_is_ignored(written: Path, tmp_path: Path) -> None:
    tampered = _copy_folder(written / "orders_k8", tmp_path / "tampered")
    doc = json.loads((tampered / LAYOUT_FILE).read_text())
    doc["hash_function"] = "someone-elses-hash-v9"
    (tampered / LAYOUT_FILE).write_text(json.dumps(doc))
    con = _connect(written, partitions=SHARDS, broadcast_threshold_bytes=0)
    with pytest.warns(LayoutIgnoredWarning, match="someone-elses-hash-v9"):
        src = con.register_parquet("orders", tampered)
    assert src.layout is None
    assert src.layout_ignored_reason is not None and "hash function" in src.layout_ignored_reason
    join = "SELECT o.id, c.w FROM orders o JOIN customers c ON o.k = c.k"
    text = con.explain(join)
    assert "strategy=colocated" not in text and "HashRepartition" in text, text
    assert "layout=" not in text.split("Scan orders", 1)[1].splitlines()[0]
    _check(con, join)
    agg = "SELECT k, count(*) FROM orders GROUP BY k"
    assert "HashRepartition" in con.explain(agg)
    _check(con, agg)
    point = "SELECT id FROM orders WHERE k = 42"
    assert "shards=" not in con.explain(point)
    _check(con, point)


def test_changed_key_type_is_ignored(written: Path, tmp_path: Path) -> None:
    tampered = _copy_folder(written / "orders_k8", tmp_path / "tampered")
    doc = json.loads((tampered / LAYOUT_FILE).read_text())
    doc["key_types"] = ["int32"]
    (tampered / LAYOUT_FILE).write_text(json.dumps(doc))
    con = shoal.connect(partitions=2)
    with pytest.warns(LayoutIgnoredWarning, match="hashed as int32"):
        src = con.register_parquet("orders", tampered)
    assert src.layout is None
    assert con.sql("SELECT count(*) FROM orders").fetchall() == [(ORDERS.num_rows,)]


def test_only_files_named_in_the_layout_are_read(written: Path, tmp_path: Path) -> None:
    folder = _copy_folder(written / "orders_k8", tmp_path / "extra")
    shutil.copy(folder / shard_file_name(0), folder / "stray.parquet")
    (folder / "sub").mkdir()
    shutil.copy(folder / shard_file_name(1), folder / "sub" / "more.parquet")
    con = shoal.connect(partitions=2)
    con.register_parquet("orders", folder)
    assert con.sql("SELECT count(*) FROM orders").fetchall() == [(ORDERS.num_rows,)]


def test_broken_layouts_are_catalog_errors(written: Path, tmp_path: Path) -> None:
    missing = _copy_folder(written / "orders_k8", tmp_path / "missing")
    os.remove(missing / shard_file_name(3))
    con = shoal.connect(partitions=2)
    with pytest.raises(CatalogError, match="missing shard file"):
        con.register_parquet("t", missing)
    garbled = _copy_folder(written / "orders_k8", tmp_path / "garbled")
    (garbled / LAYOUT_FILE).write_text("{not json")
    with pytest.raises(CatalogError, match="cannot read the table layout"):
        con.register_parquet("t", garbled)
    future = _copy_folder(written / "orders_k8", tmp_path / "future")
    doc = json.loads((future / LAYOUT_FILE).read_text())
    doc["format"] = 99
    (future / LAYOUT_FILE).write_text(json.dumps(doc))
    with pytest.raises(CatalogError, match="unsupported format"):
        con.register_parquet("t", future)
    escaping = _copy_folder(written / "orders_k8", tmp_path / "escaping")
    doc = json.loads((escaping / LAYOUT_FILE).read_text())
    doc["files"][0] = "../orders/shard-00000.parquet"
    (escaping / LAYOUT_FILE).write_text(json.dumps(doc))
    with pytest.raises(CatalogError, match="bad file name"):
        con.register_parquet("t", escaping)


# ------------------------------------------------------------------- COPY


def test_copy_query_and_table(tmp_path: Path) -> None:
    con = shoal.connect(partitions=4)
    con.register_arrow("orders", ORDERS)
    out = tmp_path / "by_s"
    result = con.sql(
        f"COPY (SELECT s, k, sum(v) AS total FROM orders GROUP BY s, k) TO '{out}' "
        "(PARTITION BY HASH (s) INTO 4)"
    )
    assert result.column_names == ["path", "rows", "shards"]
    expected_rows = duckdb_result("SELECT DISTINCT s, k FROM orders", ORACLE).num_rows
    assert result.fetchall() == [(str(out), expected_rows, 4)]
    doc = json.loads((out / LAYOUT_FILE).read_text())
    assert doc["keys"] == ["s"] and doc["key_types"] == ["string"] and doc["shards"] == 4

    out2 = tmp_path / "by_kd"
    lowered = con.sql(
        f"copy orders to '{out2}' (FORMAT PARQUET, PARTITION BY HASH (K, d) INTO 4 SHARDS)"
    )
    assert lowered.fetchall() == [(str(out2), ORDERS.num_rows, 4)]
    assert json.loads((out2 / LAYOUT_FILE).read_text())["keys"] == ["k", "d"]
    with pytest.raises(TargetExistsError):
        con.sql(f"COPY orders TO '{out2}' (PARTITION BY HASH (k) INTO 2)")
    con.sql(f"COPY orders TO '{out2}' (PARTITION BY HASH (k) INTO 2, OVERWRITE)")
    con.register_parquet("back", out2)
    assert con.catalog.get("back").layout.shards == 2  # type: ignore[union-attr]
    sql = "SELECT k, count(*), sum(d) FROM back GROUP BY k"
    con2 = shoal.connect(partitions=2)
    con2.register_parquet("back", out2)
    assert "HashRepartition" not in con2.explain(sql)
    assert_same_result(
        con2.sql(sql).to_arrow(),
        duckdb_result("SELECT k, count(*), sum(d) FROM orders GROUP BY k", ORACLE),
        ordered=False,
    )


@pytest.mark.parametrize(
    ("sql", "error", "message"),
    [
        ("COPY orders TO '{p}' (PARTITION BY HASH (k))", SqlSyntaxError, "INTO"),
        ("COPY orders TO '{p}' (INTO 4)", SqlSyntaxError, "PARTITION BY HASH"),
        ("COPY orders TO '{p}' (PARTITION BY (k) INTO 4)", SqlSyntaxError, "HASH"),
        ("COPY orders TO '{p}' (PARTITION BY HASH (k + 1) INTO 4)", SqlSyntaxError, "column"),
        ("COPY orders TO '{p}' (PARTITION BY HASH (k) INTO 0)", SqlSyntaxError, "positive"),
        ("COPY orders TO '{p}' (PARTITION BY HASH (k) INTO 'x')", SqlSyntaxError, "positive"),
        ("COPY orders TO {p} (PARTITION BY HASH (k) INTO 4)", SqlSyntaxError, "COPY"),
        ("COPY orders FROM '{p}'", UnsupportedError, "FROM"),
        (
            "COPY orders TO '{p}' (FORMAT CSV, PARTITION BY HASH (k) INTO 4)",
            UnsupportedError,
            "CSV",
        ),
        (
            "COPY orders TO '{p}' (PARTITION BY HASH (k) INTO 4, COMPRESSION zstd)",
            UnsupportedError,
            "COMPRESSION",
        ),
        ("COPY orders TO '{p}' (PARTITION BY HASH (nope) INTO 4)", UnknownColumnError, "nope"),
        ("COPY nosuch TO '{p}' (PARTITION BY HASH (k) INTO 4)", UnknownTableError, "nosuch"),
        (
            "COPY (SELECT k FROM orders TO '{p}' (PARTITION BY HASH (k) INTO 4)",
            SqlSyntaxError,
            "syntax",
        ),
    ],
)
def test_bad_copy_raises_typed_errors(
    tmp_path: Path, sql: str, error: type[Exception], message: str
) -> None:
    con = shoal.connect(partitions=2)
    con.register_arrow("orders", ORDERS)
    with pytest.raises(error, match=message):
        con.sql(sql.format(p=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_filtered_copy_round_trip_matches_duckdb(tmp_path: Path) -> None:
    con = shoal.connect(partitions=3)
    con.register_arrow("orders", ORDERS)
    con.sql(
        f"COPY (SELECT id, k, d, day FROM orders WHERE v < 60) TO '{tmp_path / 'o'}' "
        "(PARTITION BY HASH (day) INTO 5)"
    )
    con.register_parquet("o", tmp_path / "o")
    day = dt.date(2024, 2, 1)
    sql = f"SELECT id, k, d FROM o WHERE day = DATE '{day.isoformat()}'"
    text = con.explain(sql)
    assert "shards=1/5" in text, text
    expected = ORDERS.filter(
        pc.and_(pc.less(ORDERS["v"], 60), pc.equal(ORDERS["day"], pa.scalar(day, pa.date32())))
    ).select(["id", "k", "d"])
    assert_same_result(con.sql(sql).to_arrow(), expected, ordered=False)


def test_pruning_through_a_widening_cast(tmp_path: Path) -> None:
    # An int16 key compared with an INTEGER literal is bound as CAST(k AS INTEGER) = 5.
    table = pa.table({"k": pa.array(np.arange(200) % 50, pa.int16()), "x": np.arange(200)})
    con = shoal.connect(partitions=4)
    con.register_arrow("t", table)
    con.write_partitioned("t", tmp_path / "t", "k", 4)
    con.register_parquet("lt", tmp_path / "t")
    text = con.explain("SELECT x FROM lt WHERE k = 5")
    assert "shards=1/4" in text, text
    assert sorted(con.sql("SELECT x FROM lt WHERE k = 5").fetchall()) == [
        (5,),
        (55,),
        (105,),
        (155,),
    ]
    # A literal the key type cannot hold prunes nothing (and matches nothing).
    big = "SELECT x FROM lt WHERE k = 3000000000"
    assert "shards=4/4" in con.explain(big)
    assert con.sql(big).fetchall() == []


def test_no_pruning_through_a_narrowing_cast(written: Path) -> None:
    # CAST(d AS DECIMAL(4,1)) may round several stored values onto the literal: all shards.
    con = _connect(written, partitions=SHARDS)
    sql = "SELECT id FROM orders_d WHERE CAST(d AS DECIMAL(4,1)) = 12.5"
    assert "shards=8/8" in con.explain(sql)
    sql2 = "SELECT id FROM orders WHERE CAST(k AS TINYINT) = 5"
    assert "shards=8/8" in con.explain(sql2)
