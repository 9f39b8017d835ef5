"""Scans of dictionary-encoded string columns: filters judged on dictionary values.

Low-cardinality string columns are read from Parquet as dictionaries; a filter
conjunct over one such column is evaluated once per distinct value and gathered by
index, and the columns are made plain only for the rows that pass. These queries
check that path against DuckDB, NULLs included (a NULL row has a NULL index).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.cases import Case, check_case, o, u

import shoal
from shoal.catalog.sources import ParquetSource
from shoal.physical.operators.scan import _open_parquet

N = 20_000


def _table() -> pa.Table:
    modes = ["MAIL", "SHIP", "AIR", "TRUCK", None, "RAIL"]
    flags = ["A", "N", "R", None]
    return pa.table(
        {
            "id": pa.array(range(N), pa.int64()),
            "mode": pa.array([modes[(i * 7) % len(modes)] for i in range(N)], pa.string()),
            "flag": pa.array([flags[(i * 3) % len(flags)] for i in range(N)], pa.string()),
            "qty": pa.array([i % 50 for i in range(N)], pa.int64()),
            "note": pa.array([f"note {i} {'x' * (i % 40)}" for i in range(N)], pa.string()),
        }
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[shoal.Connection, pa.Table]:
    table = _table()
    path = Path(tmp_path_factory.mktemp("dict")) / "t.parquet"
    # string_view on disk, as tpchgen writes it; small row groups for several batches.
    view = table.cast(
        pa.schema(
            [
                pa.field(f.name, pa.string_view() if f.type == pa.string() else f.type)
                for f in table.schema
            ]
        )
    )
    pq.write_table(view, path, row_group_size=4_000)
    con = shoal.connect(partitions=2)
    con.register_parquet("t", str(path))
    return con, table


CASES: list[Case] = [
    u("in_list", "SELECT id, mode FROM t WHERE mode IN ('MAIL', 'SHIP')"),
    u("not_in", "SELECT id, mode FROM t WHERE mode NOT IN ('MAIL', 'SHIP')"),
    u("is_null", "SELECT id, flag FROM t WHERE mode IS NULL"),
    u("is_not_null", "SELECT count(*) FROM t WHERE flag IS NOT NULL"),
    u("coalesce", "SELECT id FROM t WHERE coalesce(mode, 'none') = 'none'"),
    u("like", "SELECT id, mode FROM t WHERE mode LIKE '%AI%' AND qty < 10"),
    u("mixed", "SELECT id FROM t WHERE mode = 'AIR' OR flag = 'R'"),
    u(
        "two_dict",
        "SELECT mode, flag, count(*) FROM t WHERE mode <> 'RAIL' AND flag = 'N' GROUP BY 1, 2",
    ),
    u("nothing", "SELECT id FROM t WHERE mode = 'BOAT'"),
    u("with_plain", "SELECT id, note FROM t WHERE mode = 'TRUCK' AND note LIKE 'note 1%'"),
    # The dictionary conjuncts keep most rows: every conjunct is judged on the whole
    # batch and the rows copied once (NULL modes and flags must still drop out).
    u(
        "wide_with_plain",
        "SELECT id, mode, flag FROM t WHERE mode <> 'RAIL' AND flag <> 'A' AND qty > 7",
    ),
    u(
        "wide_null_verdict",
        "SELECT id FROM t WHERE mode IN ('MAIL', 'SHIP', 'AIR', 'TRUCK') AND qty % 3 = 1",
    ),
    u("case", "SELECT id FROM t WHERE CASE WHEN mode IS NULL THEN qty > 45 ELSE mode = 'MAIL' END"),
    o(
        "ordered",
        "SELECT mode, flag, sum(qty) FROM t GROUP BY mode, flag ORDER BY mode NULLS FIRST, flag NULLS FIRST",
    ),
    u("raising", "SELECT id FROM t WHERE mode = 'AIR' AND 100 % (qty - qty + 1) = 0"),
    # Group keys left dictionary-encoded up to the aggregate (KeepGroupKeysEncoded) ...
    u("keys", "SELECT mode, flag, count(*), sum(qty), avg(qty) FROM t GROUP BY mode, flag"),
    u("keys_filtered", "SELECT mode, count(*) FROM t WHERE qty > 10 GROUP BY mode"),
    u("keys_renamed", "SELECT m, c FROM (SELECT mode AS m, count(*) AS c FROM t GROUP BY mode)"),
    u("keys_distinct", "SELECT flag, count(DISTINCT mode) FROM t GROUP BY flag"),
    # ... and kept plain when anything else reads them.
    u("key_expr", "SELECT upper(mode), count(*) FROM t GROUP BY upper(mode)"),
    u("key_and_arg", "SELECT mode, min(mode), max(flag) FROM t GROUP BY mode"),
    u("key_and_output", "SELECT mode, mode || '!' AS loud, count(*) FROM t GROUP BY mode"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_dictionary_scan_matches_duckdb(
    setup: tuple[shoal.Connection, pa.Table], case: Case
) -> None:
    con, table = setup
    check_case(con, case, {"t": table}, 2)


def test_low_cardinality_columns_are_read_as_dictionaries(
    setup: tuple[shoal.Connection, pa.Table],
) -> None:
    con, _ = setup
    source = con.catalog.get("t")
    assert isinstance(source, ParquetSource)
    (path,) = source.files
    columns = ("mode", "flag", "note")
    target = pa.schema([pa.field(c, pa.string()) for c in columns])
    batch = next(_open_parquet(source, path, columns, target).iter_batches(columns=list(columns)))
    assert pa.types.is_dictionary(batch.column(0).type)
    assert pa.types.is_dictionary(batch.column(1).type)
    assert not pa.types.is_dictionary(batch.column(2).type)  # long distinct strings stay plain


@pytest.mark.parametrize(
    "sql, encoded",
    [
        ("SELECT mode, flag, count(*) FROM t GROUP BY mode, flag", "encoded=[flag, mode]"),
        ("SELECT mode, min(mode) FROM t GROUP BY mode", None),
        ("SELECT upper(mode), count(*) FROM t GROUP BY upper(mode)", None),
    ],
)
def test_group_keys_stay_encoded_only_when_nothing_else_reads_them(
    setup: tuple[shoal.Connection, pa.Table], sql: str, encoded: str | None
) -> None:
    con, _ = setup
    text = con.explain(sql)
    if encoded is None:
        assert "encoded=" not in text
    else:
        assert encoded in text
