"""The example report over the sharded reservations table: result and distributed plan."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPORT_SQL = """\
SELECT issuer, SUM(notional) AS total_notional
FROM reservations
WHERE trading_day = DATE '2026-03-02' AND risk_bucket >= 4 AND status = 'open'
GROUP BY issuer
ORDER BY total_notional DESC
LIMIT 20"""

#: The same report without ORDER BY/LIMIT: every group, to check the data has no ties.
ALL_GROUPS_SQL = """\
SELECT issuer, SUM(notional) AS total_notional
FROM reservations
WHERE trading_day = DATE '2026-03-02' AND risk_bucket >= 4 AND status = 'open'
GROUP BY issuer"""


def _duckdb_query(reservations_dir: Path, sql: str) -> pa.Table:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    try:
        glob = (reservations_dir / "*.parquet").as_posix().replace("'", "''")
        con.execute(f"CREATE VIEW reservations AS SELECT * FROM read_parquet('{glob}')")
        table: pa.Table = con.sql(sql).to_arrow_table()
        return table
    finally:
        con.close()


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """Rows as tuples; decimals come out as ``Decimal`` and compare numerically."""
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(zip(*columns, strict=True))


# ------------------------------------------------------------------------------ data


def test_reservations_data_shape(reservations_dir: Path) -> None:
    shards = sorted(reservations_dir.glob("*.parquet"))
    assert len(shards) == 8
    table = pq.read_table(reservations_dir)
    assert table.num_rows == 200_000
    assert [f.type for f in table.schema] == [
        pa.int64(),
        pa.string(),
        pa.date32(),
        pa.int32(),
        pa.string(),
        pa.decimal128(18, 2),
    ]
    assert table.column_names == [
        "reservation_id",
        "issuer",
        "trading_day",
        "risk_bucket",
        "status",
        "notional",
    ]
    assert table["issuer"].null_count > 0
    assert table["notional"].null_count > 0
    assert 200 <= len(table["issuer"].unique()) <= 301


def test_reservations_report_has_no_ties(reservations_dir: Path) -> None:
    """The report's groups have distinct, non-NULL sums: ORDER BY ... LIMIT is exact."""
    groups = _duckdb_query(reservations_dir, ALL_GROUPS_SQL)
    totals = groups["total_notional"].to_pylist()
    assert len(totals) > 20
    assert None not in totals
    assert len(set(totals)) == len(totals)
    assert None in groups["issuer"].to_pylist()  # NULL issuers form a group of their own


def test_reservations_deterministic(tmp_path: Path) -> None:
    from shoal.datagen import write_reservations

    a = pq.read_table(write_reservations(tmp_path / "a", rows=5_000, seed=3))
    b = pq.read_table(write_reservations(tmp_path / "b", rows=5_000, seed=3))
    c = pq.read_table(write_reservations(tmp_path / "c", rows=5_000, seed=4))
    assert a.equals(b)
    assert not a.equals(c)


# ---------------------------------------------------------------------------- result


@pytest.mark.parametrize("partitions", [1, 4, 7], ids=lambda p: f"p{p}")
def test_report_matches_duckdb(reservations_dir: Path, partitions: int) -> None:
    import shoal

    con = shoal.connect(partitions=partitions)
    con.register_parquet("reservations", str(reservations_dir))
    actual = con.sql(REPORT_SQL).to_arrow()
    expected = _duckdb_query(reservations_dir, REPORT_SQL)

    assert actual.column_names == ["issuer", "total_notional"]
    assert expected.num_rows == 20
    actual_rows = _rows(actual)
    expected_rows = _rows(expected)
    assert all(isinstance(total, Decimal) for _, total in actual_rows), actual.schema
    assert actual_rows == expected_rows


# ------------------------------------------------------------------------------ plan

_STAGE_HEADER = re.compile(r"^\s*Stage\s+(\d+)\b")


@dataclass
class Stage:
    """One stage of an EXPLAIN text: its header line and the operator lines under it."""

    number: int
    header: str
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join([self.header, *self.lines])

    def index_of(self, needle: str) -> int:
        """Index of the first line (header = 0) containing ``needle``, or -1."""
        for i, line in enumerate([self.header, *self.lines]):
            if needle in line:
                return i
        return -1


def parse_stages(explain: str) -> list[Stage]:
    """Split EXPLAIN output at its ``Stage N`` header lines; stages sorted by number."""
    stages: list[Stage] = []
    for line in explain.splitlines():
        match = _STAGE_HEADER.match(line)
        if match:
            stages.append(Stage(int(match.group(1)), line.strip(), []))
        elif stages and line.strip():
            stages[-1].lines.append(line)
    return sorted(stages, key=lambda s: s.number)


def _has_filter(stage: Stage) -> bool:
    """A Filter operator, or the filter pushed into the Scan (shown on its line)."""
    for line in stage.lines:
        if "Scan" in line:
            lowered = line.lower()
            if "filter" in lowered or "predicate" in lowered:
                return True
        elif "Filter" in line:
            return True
    return False


def check_report_plan(explain: str) -> None:
    """Assert the example report's plan: scan/partial agg -> final agg/partial top-k -> top-k.

    Stages are taken in increasing stage number (the leaf stage is numbered 0). Operator
    lines are printed parent first, so a parent's line comes before its child's.
    """
    stages = parse_stages(explain)
    context = f"\nEXPLAIN output:\n{explain}"
    assert len(stages) == 3, f"expected 3 stages, got {len(stages)}{context}"
    scan, final_agg, final_topk = stages

    # Stage 0: scan, filter, partial aggregate, hash exchange on issuer.
    assert scan.index_of("Scan") > 0, f"stage {scan.number} has no Scan{context}"
    assert "reservations" in scan.text, f"stage {scan.number} does not scan reservations{context}"
    assert _has_filter(scan), f"stage {scan.number} has no filter{context}"
    partial_agg = scan.index_of("Aggregate[partial]")
    assert partial_agg >= 0, f"stage {scan.number} has no partial aggregate{context}"
    assert partial_agg < scan.index_of("Scan"), f"partial aggregate not above the scan{context}"
    assert any(
        "HashRepartition" in line and "issuer" in line for line in [scan.header, *scan.lines]
    ), f"stage {scan.number} does not hash-repartition on issuer{context}"

    # Stage 1: final aggregate under a partial top-k, gathered to one partition.
    agg = final_agg.index_of("Aggregate[final]")
    topk = final_agg.index_of("TopK[partial]")
    assert agg >= 0, f"stage {final_agg.number} has no final aggregate{context}"
    assert topk >= 0, f"stage {final_agg.number} has no partial top-k{context}"
    assert topk < agg, f"partial top-k not above the final aggregate{context}"
    assert "Gather" in final_agg.text, f"stage {final_agg.number} is not gathered{context}"
    assert "issuer" in final_agg.lines[agg - 1], f"final aggregate not keyed on issuer{context}"

    # Stage 2: the final top-k, on one partition.
    assert final_topk.index_of("TopK[final]") >= 0, (
        f"stage {final_topk.number} has no final top-k{context}"
    )
    assert "partitions=1" in final_topk.header, f"final stage not single-partition{context}"
    for other in ("Scan", "Aggregate"):
        assert other not in final_topk.text, f"final stage holds a {other}{context}"


def test_report_explain_has_three_stages(reservations_dir: Path) -> None:
    import shoal

    con = shoal.connect(partitions=4)
    con.register_parquet("reservations", str(reservations_dir))
    check_report_plan(con.explain(REPORT_SQL))


# The plan text the engine is expected to print (format not final; adjust with it).
REFERENCE_EXPLAIN = """\
Stage 2 (partitions=1)
  TopK[final] keys=[total_notional DESC] limit=20
    ExchangeRead from stage 1
Stage 1 (partitions=4) -> Gather to stage 2
  TopK[partial] keys=[total_notional DESC] limit=20
    Aggregate[final] keys=[issuer] aggs=[sum(notional)]
      ExchangeRead from stage 0
Stage 0 (partitions=4) -> HashRepartition[issuer] x4 to stage 1
  Aggregate[partial] keys=[issuer] aggs=[sum(notional)]
    Filter (trading_day = 2026-03-02 AND risk_bucket >= 4 AND status = 'open')
      Scan reservations columns=[issuer, trading_day, risk_bucket, status, notional]
"""


def test_plan_checker_accepts_reference_format() -> None:
    check_report_plan(REFERENCE_EXPLAIN)
    pushed = REFERENCE_EXPLAIN.replace(
        "    Filter (trading_day = 2026-03-02 AND risk_bucket >= 4 AND status = 'open')\n"
        "      Scan reservations columns=[issuer, trading_day, risk_bucket, status, notional]",
        "    Scan reservations columns=[issuer, notional] filters=[trading_day = 2026-03-02, "
        "risk_bucket >= 4, status = 'open']",
    )
    assert "Filter (" not in pushed
    check_report_plan(pushed)


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda t: "\n".join(t.splitlines()[3:]), id="two-stages"),
        pytest.param(lambda t: t.replace("HashRepartition[issuer]", "RoundRobin"), id="no-hash"),
        pytest.param(lambda t: t.replace("TopK[partial]", "Project"), id="no-partial-topk"),
        pytest.param(lambda t: t.replace("    Filter (", "    Project ("), id="no-filter"),
        pytest.param(lambda t: t.replace("-> Gather", "-> Broadcast"), id="no-gather"),
    ],
)
def test_plan_checker_rejects_wrong_plans(broken: Any) -> None:
    with pytest.raises(AssertionError):
        check_report_plan(broken(REFERENCE_EXPLAIN))
