"""TPC-DS test support: the shared 99 queries and answers, and result comparison.

The queries and reference answers live outside the repository, in ``shared/tpcds`` beside
the repository root (``$SHOAL_TPCDS_DIR`` overrides); see that folder's README.md. Answers
are DuckDB's, ``|``-separated with a header line, NULL written ``NULL``.

:func:`assert_matches_answer` compares *by column position*, with the TPC-H harness's cell
rules (``support/tpch.py``), except where TPC-DS differs:

* which columns are DOUBLE in the answer is read from the answer itself: a column whose
  fields have more decimal places than the result's decimal scale (or an exponent, or
  ``nan``/``inf``) is compared as floating point;
* the ORDER BY keys are read from the query text (by output position, alias or select
  item); a key that names no output column ends the checked prefix, and rows that tie on
  the checked keys may come in any order among themselves;
* q78's ``ratio`` rounds an exact tie (README: DuckDB rounds the double it got, other
  engines scale first), so there one unit in the last place is accepted.
"""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from support.tpch import (
    _DATE,
    _EXACT,
    _FLOAT,
    _OTHER,
    _STRING,
    _cells_equal,
    _first_difference,
    _norm_actual,
    _read_answer,
    _rows_equal,
    _sort_key,
    sf_label,
)

if TYPE_CHECKING:
    import shoal

#: Every TPC-DS query number.
ALL_QUERIES: tuple[int, ...] = tuple(range(1, 100))

#: (query, column position) pairs compared with an absolute tolerance of one last place.
LAST_PLACE_COLUMNS: dict[int, dict[int, float]] = {78: {3: 0.01}}


def tpcds_shared_dir() -> Path:
    """The folder holding ``queries/`` and ``answers/`` (``$SHOAL_TPCDS_DIR`` overrides)."""
    override = os.environ.get("SHOAL_TPCDS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "shared" / "tpcds"


def query_text(q: int) -> str:
    """The SQL text of TPC-DS query ``q`` (1..99)."""
    return (tpcds_shared_dir() / "queries" / f"q{q:02d}.sql").read_text()


def answer_path(sf: str | float, q: int) -> Path:
    return tpcds_shared_dir() / "answers" / sf_label(sf) / f"q{q:02d}.csv"


def tpcds_connection(data_dir: Path, partitions: int, **settings: Any) -> shoal.Connection:
    """A shoal connection with the 24 TPC-DS tables of ``data_dir`` registered."""
    import shoal
    from shoal.datagen import tpcds_tables

    con = shoal.connect(partitions=partitions, **settings)
    for name, path in tpcds_tables(data_dir).items():
        con.register_parquet(name, str(path))
    return con


@lru_cache(maxsize=128)
def order_by_positions(q: int) -> tuple[int, ...]:
    """Output positions of the query's outermost ORDER BY keys, up to the first key that
    is no output column (its order cannot be checked from the result)."""
    tree = sqlglot.parse_one(query_text(q), read="duckdb")
    order = tree.args.get("order")
    if order is None:
        return ()
    body = tree
    while isinstance(body, exp.SetOperation):
        body = body.left
    items: list[exp.Expression] = list(body.expressions) if isinstance(body, exp.Select) else []
    names = [(i.alias_or_name or "").lower() for i in items]
    plain = [i.this.sql() if isinstance(i, exp.Alias) else i.sql() for i in items]
    positions: list[int] = []
    for ordered in order.expressions:
        key = ordered.this
        if isinstance(key, exp.Literal) and not key.is_string:
            positions.append(int(key.this) - 1)
            continue
        if isinstance(key, exp.Column) and key.name.lower() in names:
            positions.append(names.index(key.name.lower()))
            continue
        if key.sql() in plain:
            positions.append(plain.index(key.sql()))
            continue
        break
    return tuple(positions)


def _is_double_field(text: str, scale: int) -> bool:
    lowered = text.lower()
    if lowered in ("nan", "inf", "-inf", "infinity", "-infinity"):
        return True
    if "e" in lowered:
        return True
    if "." in text:
        return len(text.split(".", 1)[1]) > scale
    return False


def _column_kind(arrow_type: pa.DataType, fields: list[str]) -> str:
    t = arrow_type
    if pa.types.is_dictionary(t):
        return _column_kind(t.value_type, fields)
    if pa.types.is_floating(t):
        return _FLOAT
    if pa.types.is_integer(t) or pa.types.is_decimal(t):
        scale = t.scale if pa.types.is_decimal(t) else 0
        doubles = any(f != "NULL" and _is_double_field(f, scale) for f in fields)
        return _FLOAT if doubles else _EXACT
    if pa.types.is_date(t):
        return _DATE
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_null(t)
    ):
        return _STRING
    return _OTHER


def _norm_expected(kind: str, text: str) -> Any:
    if text == "NULL":
        return None
    if kind == _EXACT:
        try:
            return Decimal(text)
        except InvalidOperation:
            return text
    if kind == _FLOAT:
        try:
            return float(text)
        except ValueError:
            return text
    if kind == _STRING:
        return text.rstrip(" ")
    return text


class _Near(float):
    """A float equal to values within ``ulp`` (q78's tie rounding)."""

    ulp: float

    def __new__(cls, value: float, ulp: float) -> _Near:
        self = super().__new__(cls, value)
        self.ulp = ulp
        return self


def assert_matches_answer(table: pa.Table, sf: str | float, q: int) -> None:
    """Assert that ``table`` is the right result of TPC-DS query ``q`` at ``sf``.

    Compares by column position; raises :class:`AssertionError` naming the first
    differing row.
    """
    label = sf_label(sf)
    header_t, rows_t = _read_answer(answer_path(label, q))
    header = list(header_t)
    title = f"TPC-DS Q{q} ({label})"
    if table.num_columns != len(header):
        raise AssertionError(
            f"{title}: {table.num_columns} columns, answer has {len(header)}\n"
            f"  answer columns: {header}\n  result schema : {table.schema}"
        )
    kinds = [_column_kind(f.type, [row[i] for row in rows_t]) for i, f in enumerate(table.schema)]
    near = LAST_PLACE_COLUMNS.get(q, {})

    def cell(position: int, value: Any) -> Any:
        if position in near and isinstance(value, float):
            return _Near(value, near[position])
        return value

    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    actual = [
        [cell(c, _norm_actual(k, v)) for c, (k, v) in enumerate(zip(kinds, row, strict=True))]
        for row in zip(*columns, strict=True)
    ]
    expected = [
        [cell(c, _norm_expected(k, v)) for c, (k, v) in enumerate(zip(kinds, row, strict=True))]
        for row in rows_t
    ]

    def same(a: list[Any], b: list[Any]) -> bool:
        if len(a) != len(b):
            return False
        for x, y in zip(a, b, strict=True):
            tol = max(getattr(x, "ulp", 0.0), getattr(y, "ulp", 0.0))
            if tol and isinstance(x, float) and isinstance(y, float):
                if abs(x - y) > tol * 1.000001:
                    return False
            elif not _cells_equal(x, y):
                return False
        return True

    def describe(index: int, exp_row: list[Any], act_row: list[Any]) -> str:
        return f"row {index}\n  columns : {header}\n  expected: {exp_row}\n  actual  : {act_row}"

    if len(expected) != len(actual):
        n = min(len(expected), len(actual))
        first = next((i for i in range(n) if not same(expected[i], actual[i])), n)
        exp_row = expected[first] if first < len(expected) else None
        act_row = actual[first] if first < len(actual) else None
        raise AssertionError(
            f"{title}: {len(actual)} rows, answer has {len(expected)}; first difference at "
            f"row {first}\n  expected: {exp_row}\n  actual  : {act_row}"
        )
    first = next((i for i in range(len(expected)) if not same(expected[i], actual[i])), -1)
    if first < 0:
        return

    # Rows in another order: the checked ORDER BY keys must run as in the answer, and each
    # run of equal keys must hold the same multiset of rows.
    keys = list(order_by_positions(q))
    exp_keys = [[row[k] for k in keys] for row in expected]
    act_keys = [[row[k] for k in keys] for row in actual]
    key_diff = _first_difference(exp_keys, act_keys)
    if key_diff >= 0:
        raise AssertionError(
            f"{title}: rows differ or are out of ORDER BY order (checked key columns "
            f"{[header[k] for k in keys]}) at "
            + describe(key_diff, expected[key_diff], actual[key_diff])
        )
    start = 0
    while start < len(expected):
        end = start + 1
        while end < len(expected) and _rows_equal(exp_keys[end], exp_keys[start]):
            end += 1
        exp_group = sorted(expected[start:end], key=_sort_key)
        act_group = sorted(actual[start:end], key=_sort_key)
        for i, (e_row, a_row) in enumerate(zip(exp_group, act_group, strict=True)):
            if not same(e_row, a_row):
                raise AssertionError(
                    f"{title}: rows {start}..{end - 1} tie on the checked ORDER BY keys but "
                    "hold different values; first difference (tied rows sorted) at "
                    + describe(start + i, e_row, a_row)
                )
        start = end
