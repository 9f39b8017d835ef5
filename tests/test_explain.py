"""EXPLAIN shows the distributed plan: stages, their pipelines and the exchanges.

Partitions are pinned (3) and the table has more splits (6 row groups) than
that, so every plan below is parallel. Each query's result is also checked
against DuckDB, so a plan that looks right but computes wrong shows up here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.compare import assert_same_result, duckdb_result

import shoal

PARTITIONS = 3
ROWS = 3_000
ROW_GROUP = 500  # 6 row groups: more splits than partitions


def _table() -> pa.Table:
    rng = np.random.default_rng(42)
    keys = np.array(["a", "b", "c", "d", "e", "f", "g"])
    return pa.table(
        {
            "id": pa.array(rng.permutation(ROWS), type=pa.int64()),
            "k": pa.array(keys[rng.integers(0, len(keys), ROWS)], mask=rng.random(ROWS) < 0.05),
            "x": pa.array(rng.integers(0, 1_000, ROWS), type=pa.int64()),
            "v": pa.array(rng.uniform(0, 100, ROWS)),
        }
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, Path]:
    table = _table()
    path = tmp_path_factory.mktemp("explain") / "t.parquet"
    pq.write_table(table, path, row_group_size=ROW_GROUP)
    assert pq.ParquetFile(path).num_row_groups == ROWS // ROW_GROUP
    return table, path


@pytest.fixture(scope="module")
def con(data: tuple[pa.Table, Path]) -> shoal.Connection:
    c = shoal.connect(partitions=PARTITIONS)
    c.register_parquet("t", data[1])
    return c


# ------------------------------------------------------------- explain parsing


@dataclass
class StageText:
    id: int
    partitions: int
    output: str  # "result" or the exchange description, e.g. "HashRepartition[k] x3"
    consumer: int | None
    operators: list[str]  # operator lines, indentation stripped, root first

    def has(self, prefix: str) -> bool:
        return any(op.startswith(prefix) for op in self.operators)

    def index(self, prefix: str) -> int:
        for i, op in enumerate(self.operators):
            if op.startswith(prefix):
                return i
        raise AssertionError(f"no operator starting with {prefix!r} in {self.operators}")


_HEADER = re.compile(
    r"^Stage (\d+) \(partitions=(\d+)\) -> (?:(result)|(.+) to stage (\d+))(?:\s\s\[.*\])?$"
)


def parse_explain(text: str) -> dict[int, StageText]:
    stages: dict[int, StageText] = {}
    current: StageText | None = None
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            sid, parts, result, exchange, consumer = m.groups()
            current = StageText(
                int(sid),
                int(parts),
                "result" if result else exchange,
                None if result else int(consumer),
                [],
            )
            stages[current.id] = current
            continue
        assert current is not None, f"text before the first stage header: {line!r}"
        stripped = line.strip()
        if stripped.startswith("exchange:"):
            continue
        current.operators.append(re.sub(r"\s+\(rows=.*\)$", "", stripped))
    assert stages, f"no stage headers in:\n{text}"
    return stages


def _root(stages: dict[int, StageText]) -> StageText:
    roots = [s for s in stages.values() if s.output == "result"]
    assert len(roots) == 1, roots
    return roots[0]


def _two_stages(con: shoal.Connection, sql: str) -> tuple[StageText, StageText, str]:
    """(producer, root, EXPLAIN text) of a plan that must be exactly one exchange deep."""
    text = con.explain(sql)
    stages = parse_explain(text)
    assert len(stages) == 2, text
    root = _root(stages)
    producer = stages[0]
    assert producer.partitions == PARTITIONS, text
    assert producer.consumer == root.id, text
    return producer, root, text


def _check_result(con: shoal.Connection, table: pa.Table, sql: str, ordered: bool) -> None:
    actual = con.sql(sql).to_arrow()
    expected = duckdb_result(sql, {"t": table})
    assert_same_result(actual, expected, ordered=ordered, context=sql)


# ---------------------------------------------------------------------- plans


def test_group_by_hash_repartitions(con: shoal.Connection, data) -> None:
    sql = "SELECT k, count(*), sum(x) FROM t GROUP BY k"
    producer, root, text = _two_stages(con, sql)
    assert producer.output.startswith("HashRepartition["), text
    assert producer.output.endswith(f"x{PARTITIONS}"), text
    assert producer.consumer == root.id
    assert producer.partitions == PARTITIONS and root.partitions == PARTITIONS
    assert producer.has("Aggregate[partial]") and producer.has("Scan t")
    assert root.has("Aggregate[final]") and root.has("ExchangeRead")
    assert root.index("Aggregate[final]") < root.index("ExchangeRead")
    _check_result(con, data[0], sql, ordered=False)


def test_order_by_sorts_per_partition_and_merges(con: shoal.Connection, data) -> None:
    sql = "SELECT id, k, x FROM t ORDER BY x DESC, id"
    producer, root, text = _two_stages(con, sql)
    assert producer.has("Sort"), text
    assert producer.output.startswith("OrderedMerge["), text
    assert "DESC" in producer.output
    assert root.partitions == 1
    assert not root.has("Sort"), "the merge keeps the order; no second sort"
    _check_result(con, data[0], sql, ordered=True)


def test_order_by_limit_is_partial_and_final_topk(con: shoal.Connection, data) -> None:
    sql = "SELECT id, x, v FROM t ORDER BY v DESC, id LIMIT 7"
    producer, root, text = _two_stages(con, sql)
    assert producer.has("TopK[partial]"), text
    assert producer.output == "Gather", text
    assert root.partitions == 1
    assert root.has("TopK[final]"), text
    assert "limit=7" in root.operators[root.index("TopK[final]")]
    _check_result(con, data[0], sql, ordered=True)


def test_global_aggregate_gathers(con: shoal.Connection, data) -> None:
    sql = "SELECT count(*), count(k), sum(x), min(v), max(id) FROM t"
    producer, root, text = _two_stages(con, sql)
    assert producer.output == "Gather", text
    assert producer.has("Aggregate[partial]")
    assert root.partitions == 1 and root.has("Aggregate[final]")
    _check_result(con, data[0], sql, ordered=False)


def test_limit_without_order_by(con: shoal.Connection, data) -> None:
    sql = "SELECT id, k FROM t LIMIT 10"
    producer, root, text = _two_stages(con, sql)
    assert producer.has("Limit[partial]"), text
    assert producer.output == "Gather", text
    assert root.partitions == 1 and root.has("Limit[final]"), text
    # Which 10 rows is not determined: check the count and that they are real rows.
    rows = con.sql(sql).fetchall()
    assert len(rows) == 10
    assert len({r[0] for r in rows}) == 10
    table = data[0]
    real = set(zip(table["id"].to_pylist(), table["k"].to_pylist(), strict=True))
    assert set(rows) <= real


def test_filter_project_only_is_one_stage(con: shoal.Connection, data) -> None:
    sql = "SELECT id, x * 2 FROM t WHERE k = 'c' AND v > 50"
    stages = parse_explain(con.explain(sql))
    assert len(stages) == 1
    root = _root(stages)
    assert root.partitions == PARTITIONS
    assert root.has("Scan t")
    _check_result(con, data[0], sql, ordered=False)


def test_explain_via_sql_statement(con: shoal.Connection) -> None:
    sql = "SELECT k, count(*) FROM t GROUP BY k"
    plan = con.sql("EXPLAIN " + sql).to_arrow()
    assert plan.column_names == ["plan"]
    assert "\n".join(plan.column("plan").to_pylist()) == con.explain(sql)


# ------------------------------------------------------------- explain analyze


def test_explain_analyze_has_rows_and_exchange_figures(con: shoal.Connection, data) -> None:
    sql = "SELECT k, count(*), sum(x) FROM t GROUP BY k"
    result = con.sql(sql)
    text = result.explain_analyze()
    assert "rows=" in text
    exchange_lines = [line for line in text.splitlines() if line.strip().startswith("exchange:")]
    assert exchange_lines, text
    assert all("skew=" in line for line in exchange_lines), exchange_lines
    # The scan read every row; the root produced one row per group.
    scan = [line for line in text.splitlines() if line.strip().startswith("Scan t")]
    assert len(scan) == 1 and f"rows={ROWS}" in scan[0], scan
    groups = len(set(data[0]["k"].to_pylist()))
    # (Under the header: the tasks' figures, then the root operator.)
    first_operator = next(
        line for line in text.splitlines()[1:] if not line.strip().startswith("task cpu:")
    )
    assert f"rows={groups}" in first_operator, first_operator
    assert result.num_rows == groups
    # The header of each stage carries its task count.
    stages = parse_explain(text)
    assert len(stages) == 2
    assert f"tasks={PARTITIONS}" in text


def test_explain_analyze_statement(con: shoal.Connection) -> None:
    plan = con.sql("EXPLAIN ANALYZE SELECT count(*) FROM t").to_arrow()
    text = "\n".join(plan.column("plan").to_pylist())
    assert f"rows={ROWS}" in text
    assert "exchange:" in text and "skew=" in text
    assert con.explain_analyze("SELECT count(*) FROM t").count("exchange:") == 1


def test_explain_analyze_json_has_the_same_figures(tmp_path) -> None:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    import shoal

    con = shoal.connect(partitions=3)
    table = pa.table({"k": [i % 7 for i in range(3000)], "v": list(range(3000))})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=500)
    con.register_parquet("t", tmp_path / "t.parquet")
    result = con.sql("SELECT k, sum(v) FROM t GROUP BY k")
    data = json.loads(result.explain_analyze_json())
    stages = {s["stage"]: s for s in data["stages"]}
    producer = [s for s in stages.values() if s["exchange"] is not None]
    assert len(producer) == 1
    exchange = producer[0]["exchange"]
    assert exchange["kind"] == "hash" and len(exchange["rows_per_partition"]) == 3
    assert sum(exchange["rows_per_partition"]) == exchange["rows"] > 0
    assert exchange["skew"] >= 1.0
    scan_rows = [
        op["rows"]
        for s in stages.values()
        for op in s["operators"]
        if op["operator"].startswith("Scan")
    ]
    assert scan_rows == [3000]
    assert data["stages"][0]["output"] == "result"
