"""Checks of the TPC-H comparison code itself (tests/support/tpch.py).

* Data-free tests: tables built from the answer files, perturbed in ways the comparison
  must accept (decimal scale, float noise, trailing blanks, tie order) or reject.
* DuckDB oracle (slow): all 22 queries run in DuckDB over the generated data must match
  every answer; it also re-derives the tables that tests/support/tpch.py hard-codes
  (ORDER BY keys, DOUBLE answer columns, ties across a LIMIT). About 5 s at SF 0.1 (plus
  generating the data once), 15 s at SF 1.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from support import tpch
from support.tpch import (
    ALL_QUERIES,
    ANSWER_DOUBLE_COLUMNS,
    LIMIT_BOUNDARY_TIES,
    LIMITS,
    ORDER_BY,
    TPCH_TABLES,
    assert_matches_answer,
    load_answer,
    load_answer_header,
    query_text,
)

# ------------------------------------------------------------------ data-free checks

D2 = pa.decimal128(38, 2)
D4 = pa.decimal128(38, 4)
D6 = pa.decimal128(38, 6)
F64 = pa.float64()
I64 = pa.int64()
STR = pa.string()

#: Result types DuckDB gives (and shoal should give) for a few queries.
Q1_TYPES = [STR, STR, D2, D2, D4, D6, F64, F64, F64, I64]
Q2_TYPES = [pa.decimal128(15, 2), STR, STR, I64, STR, STR, STR, STR]
Q3_TYPES = [I64, D4, pa.date32(), pa.int32()]


def _convert(text: str, arrow_type: pa.DataType) -> Any:
    if pa.types.is_decimal(arrow_type):
        return Decimal(text).quantize(Decimal(1).scaleb(-arrow_type.scale))
    if pa.types.is_integer(arrow_type):
        return int(text)
    if pa.types.is_floating(arrow_type):
        return float(text)
    if pa.types.is_date(arrow_type):
        return dt.date.fromisoformat(text)
    return text


def answer_table(
    sf: str,
    q: int,
    types: Sequence[pa.DataType],
    rows: Sequence[Sequence[str]] | None = None,
) -> pa.Table:
    """The answer (or ``rows`` in its format) as an Arrow table of the given column types."""
    header = load_answer_header(sf, q)
    data = load_answer(sf, q) if rows is None else [list(r) for r in rows]
    columns = [pa.array([_convert(row[i], t) for row in data], t) for i, t in enumerate(types)]
    return pa.Table.from_arrays(columns, names=[f"{name}_{i}" for i, name in enumerate(header)])


def _set(table: pa.Table, column: int, fn: Callable[[list[Any]], list[Any]]) -> pa.Table:
    field = table.schema.field(column)
    return table.set_column(
        column, field, pa.array(fn(table.column(column).to_pylist()), field.type)
    )


def test_answer_files_parse() -> None:
    for sf in ("0.1", "1"):
        for q in ALL_QUERIES:
            rows = load_answer(sf, q)
            assert rows, (sf, q)
            assert all(len(r) == len(load_answer_header(sf, q)) for r in rows)
    assert load_answer("sf0.1", 6) == load_answer("0.1", 6) == load_answer(0.1, 6)
    assert load_answer_header("1", 18)[-1] == "sum(l_quantity)"


def test_exact_answer_matches() -> None:
    assert_matches_answer(answer_table("0.1", 1, Q1_TYPES), "0.1", 1)
    assert_matches_answer(answer_table("0.1", 3, Q3_TYPES), "0.1", 3)
    assert_matches_answer(answer_table("1", 2, Q2_TYPES), "sf1", 2)


def test_decimal_compared_numerically_any_scale() -> None:
    wider = [pa.decimal128(38, 6) if t == D2 else t for t in Q1_TYPES]
    assert_matches_answer(answer_table("0.1", 1, wider), "0.1", 1)
    # AVG kept as a decimal with 6 places (not a double): within the float tolerance.
    avg_decimal = Q1_TYPES[:6] + [D6, D6, D6] + Q1_TYPES[9:]
    table = answer_table("0.1", 1, Q1_TYPES)
    for i in (6, 7, 8):
        values = [
            Decimal(repr(v)).quantize(Decimal("0.000001")) for v in table.column(i).to_pylist()
        ]
        table = table.set_column(i, pa.field(f"c{i}", D6), pa.array(values, D6))
    assert [f.type for f in table.schema] == avg_decimal
    assert_matches_answer(table, "0.1", 1)


def test_decimal_off_by_a_cent_fails() -> None:
    table = _set(
        answer_table("0.1", 1, Q1_TYPES), 2, lambda v: [v[0], v[1] + Decimal("0.01"), *v[2:]]
    )
    with pytest.raises(AssertionError, match=r"row 1.*sum_qty"):
        assert_matches_answer(table, "0.1", 1)


def test_integers_exact() -> None:
    table = _set(answer_table("0.1", 1, Q1_TYPES), 9, lambda v: [v[0] + 1, *v[1:]])
    with pytest.raises(AssertionError, match="count_order"):
        assert_matches_answer(table, "0.1", 1)
    # Integers may come as another integer type, or as decimal(38, 0).
    other = [pa.int32()] + Q3_TYPES[1:3] + [pa.decimal128(38, 0)]
    assert_matches_answer(answer_table("0.1", 3, other), "0.1", 3)


def test_float_relative_tolerance() -> None:
    base = answer_table("0.1", 1, Q1_TYPES)
    close = _set(base, 7, lambda v: [x * (1 + 1e-9) for x in v])
    assert_matches_answer(close, "0.1", 1)
    far = _set(base, 7, lambda v: [x * (1 + 1e-4) for x in v])
    with pytest.raises(AssertionError, match="avg_price"):
        assert_matches_answer(far, "0.1", 1)
    # A decimal answer column returned as a double: compared with the tolerance.
    as_double = [F64 if pa.types.is_decimal(t) else t for t in Q1_TYPES]
    assert_matches_answer(answer_table("0.1", 1, as_double), "0.1", 1)


def test_strings_trailing_blanks_and_dates() -> None:
    rows = load_answer("0.1", 2)
    assert any(r[7].endswith(" ") for r in rows)  # the answer has trailing blanks
    stripped = [[*r[:7], r[7].rstrip(" ")] for r in rows]
    assert_matches_answer(answer_table("0.1", 2, Q2_TYPES, stripped), "0.1", 2)
    padded = [[*r[:7], r[7] + "  "] for r in rows]
    assert_matches_answer(answer_table("0.1", 2, Q2_TYPES, padded), "0.1", 2)
    changed = [[*r[:7], r[7] + "x"] if i == 5 else r for i, r in enumerate(rows)]
    with pytest.raises(AssertionError, match=r"row 5.*s_comment"):
        assert_matches_answer(answer_table("0.1", 2, Q2_TYPES, changed), "0.1", 2)
    # Dates: date32 or an ISO string both match; a different date does not.
    as_string = Q3_TYPES[:2] + [STR] + Q3_TYPES[3:]
    assert_matches_answer(answer_table("0.1", 3, as_string), "0.1", 3)
    shifted = _set(answer_table("0.1", 3, Q3_TYPES), 2, lambda v: [v[0] + dt.timedelta(1), *v[1:]])
    with pytest.raises(AssertionError, match="o_orderdate"):
        assert_matches_answer(shifted, "0.1", 3)


def test_row_and_column_count_mismatch() -> None:
    table = answer_table("0.1", 3, Q3_TYPES)
    with pytest.raises(AssertionError, match="9 rows, answer has 10"):
        assert_matches_answer(table.slice(0, 9), "0.1", 3)
    with pytest.raises(AssertionError, match="3 columns, answer has 4"):
        assert_matches_answer(table.drop_columns([table.column_names[3]]), "0.1", 3)
    with pytest.raises(AssertionError, match="11 rows"):
        assert_matches_answer(pa.concat_tables([table, table.slice(0, 1)]), "0.1", 3)


def test_order_enforced_without_ties() -> None:
    table = answer_table("0.1", 3, Q3_TYPES)
    swapped = table.take([1, 0, *range(2, table.num_rows)])
    with pytest.raises(AssertionError, match="out of ORDER BY order"):
        assert_matches_answer(swapped, "0.1", 3)


def test_ties_may_come_in_any_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # No answer has ties on its ORDER BY keys, so pretend Q1 sorts by l_returnflag only:
    # then its rows 1 and 2 (N|F, N|O) tie.
    monkeypatch.setitem(ORDER_BY, 1, ((0, False),))
    table = answer_table("0.1", 1, Q1_TYPES)
    assert_matches_answer(table.take([0, 2, 1, 3]), "0.1", 1)
    with pytest.raises(AssertionError, match="out of ORDER BY order"):
        assert_matches_answer(table.take([1, 0, 2, 3]), "0.1", 1)
    # Tied rows are still compared value by value.
    bad = _set(table.take([0, 2, 1, 3]), 9, lambda v: [v[0], v[1] + 1, *v[2:]])
    with pytest.raises(AssertionError, match="tie on the ORDER BY keys"):
        assert_matches_answer(bad, "0.1", 1)


def test_single_row_queries_have_no_order_by() -> None:
    for q in ALL_QUERIES:
        if not ORDER_BY[q]:
            assert len(load_answer("0.1", q)) == 1 and len(load_answer("1", q)) == 1


# ------------------------------------------------------------------------ DuckDB oracle


def _duckdb_connection(data_dir: Path) -> Any:
    duckdb = pytest.importorskip("duckdb")
    from shoal.datagen import tpch_tables

    con = duckdb.connect()
    for name, path in tpch_tables(data_dir).items():
        pattern = (path / "*.parquet") if path.is_dir() else path
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{pattern.as_posix()}')")
    return con


def _is_sorted(table: pa.Table, q: int) -> bool:
    keys = ORDER_BY[q]
    if not keys:
        return True
    names = [f"c{i}" for i in range(table.num_columns)]
    renamed = table.rename_columns(names)
    order = pc.sort_indices(
        renamed, sort_keys=[(names[i], "descending" if d else "ascending") for i, d in keys]
    )
    key_cols = [names[i] for i, _ in keys]
    return bool(renamed.select(key_cols).take(order).equals(renamed.select(key_cols)))


def _limit_boundary_tie(con: Any, q: int) -> bool:
    """Whether the un-LIMITed result ties on the ORDER BY keys across the LIMIT."""
    limit = LIMITS[q]
    sql = re.sub(r"\s+LIMIT\s+\d+\s*$", "", query_text(q))
    assert sql != query_text(q), f"Q{q}: LIMIT not found"
    full = con.sql(sql).to_arrow_table()
    if full.num_rows <= limit:
        return False
    keys = [i for i, _ in ORDER_BY[q]]
    last, after = full.slice(limit - 1, 2).select(keys).to_pylist()
    return bool(list(last.values()) == list(after.values()))


def _oracle(data_dir: Path, sf: str) -> None:
    con = _duckdb_connection(data_dir)
    failures: list[str] = []
    for q in ALL_QUERIES:
        result = con.sql(query_text(q)).to_arrow_table()
        try:
            assert_matches_answer(result, sf, q)
        except AssertionError as exc:
            failures.append(str(exc))
            continue
        doubles = {i for i, f in enumerate(result.schema) if pa.types.is_floating(f.type)}
        assert doubles == set(ANSWER_DOUBLE_COLUMNS.get(q, ())), f"Q{q}: DOUBLE columns"
        assert _is_sorted(result, q), f"Q{q}: answer not sorted by ORDER_BY[{q}]"
        if q in LIMITS:
            tie = _limit_boundary_tie(con, q)
            assert tie == ((tpch.sf_label(sf), q) in LIMIT_BOUNDARY_TIES), f"Q{q}: LIMIT tie"
    assert not failures, "\n\n".join(failures)


def test_order_by_table_matches_query_texts() -> None:
    for q in ALL_QUERIES:
        sql = query_text(q)
        has_order_by = re.search(r"\bORDER\s+BY\b", sql, re.IGNORECASE) is not None
        assert has_order_by == bool(ORDER_BY[q]), q
        match = re.search(r"\bLIMIT\s+(\d+)\s*$", sql)
        assert (int(match.group(1)) if match else None) == LIMITS.get(q), q


@pytest.mark.slow
def test_duckdb_matches_answers_sf01(tpch_sf01_dir: Path) -> None:
    from shoal.datagen import TPCH_TABLES as GENERATED

    assert set(GENERATED) == set(TPCH_TABLES)
    _oracle(tpch_sf01_dir, "0.1")


@pytest.mark.slow
def test_duckdb_matches_answers_sf1(tpch_sf1_dir: Path) -> None:
    _oracle(tpch_sf1_dir, "1")
