"""TPC-H test support: the shared queries and answers, and result comparison.

The queries and reference answers live outside the repository, in ``shared/tpch`` beside
the repository root (``$SHOAL_TPCH_DIR`` overrides). Answers are ``|``-separated text
with a header line; see that folder's README.md for the format.

:func:`assert_matches_answer` compares an Arrow result with an answer *by column
position* (engines name unaliased columns differently):

* exact numerics (integers and decimals) compare exactly as :class:`decimal.Decimal`
  numbers, so ``53758257134.8700`` equals ``53758257134.87``;
* floating point compares with a relative tolerance of 1e-6; a column counts as floating
  point when the result's column is, or when the answer's column is a DOUBLE (AVG and
  decimal division in the reference engine, listed in :data:`ANSWER_DOUBLE_COLUMNS`);
* dates compare as ISO ``yyyy-mm-dd`` strings;
* strings compare with trailing blanks stripped on both sides.

Rows must come in the answer's order, except that rows which tie on the query's ORDER BY
keys (:data:`ORDER_BY`) may come in any order among themselves.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pyarrow as pa

if TYPE_CHECKING:
    import shoal

TPCH_TABLES: tuple[str, ...] = (
    "lineitem",
    "orders",
    "customer",
    "part",
    "partsupp",
    "supplier",
    "nation",
    "region",
)

#: Every TPC-H query number.
ALL_QUERIES: tuple[int, ...] = tuple(range(1, 23))

#: Relative tolerance for floating-point values.
FLOAT_REL_TOL = 1e-6
#: Absolute tolerance for floating-point values (only matters next to zero).
FLOAT_ABS_TOL = 1e-12

#: ORDER BY of each query as (0-based column position, descending) pairs, read from the
#: query texts. Queries without ORDER BY (6, 14, 17, 19) return a single row.
ORDER_BY: dict[int, tuple[tuple[int, bool], ...]] = {
    1: ((0, False), (1, False)),  # l_returnflag, l_linestatus
    2: ((0, True), (2, False), (1, False), (3, False)),  # s_acctbal DESC, n_name, s_name, p_partkey
    3: ((1, True), (2, False)),  # revenue DESC, o_orderdate
    4: ((0, False),),  # o_orderpriority
    5: ((1, True),),  # revenue DESC
    6: (),
    7: ((0, False), (1, False), (2, False)),  # supp_nation, cust_nation, l_year
    8: ((0, False),),  # o_year
    9: ((0, False), (1, True)),  # nation, o_year DESC
    10: ((2, True),),  # revenue DESC
    11: ((1, True),),  # value DESC
    12: ((0, False),),  # l_shipmode
    13: ((1, True), (0, True)),  # custdist DESC, c_count DESC
    14: (),
    15: ((0, False),),  # s_suppkey
    16: ((3, True), (0, False), (1, False), (2, False)),  # supplier_cnt DESC, brand, type, size
    17: (),
    18: ((4, True), (3, False)),  # o_totalprice DESC, o_orderdate
    19: (),
    20: ((0, False),),  # s_name
    21: ((1, True), (0, False)),  # numwait DESC, s_name
    22: ((0, False),),  # cntrycode
}

#: LIMIT of each query that has one.
LIMITS: dict[int, int] = {2: 100, 3: 10, 10: 20, 18: 100, 21: 100}

#: Answer columns (0-based positions) that hold DOUBLE values: compared with a tolerance
#: whatever type the engine returns (an engine may keep AVG of a decimal as a decimal).
ANSWER_DOUBLE_COLUMNS: dict[int, frozenset[int]] = {
    1: frozenset({6, 7, 8}),  # avg_qty, avg_price, avg_disc
    8: frozenset({1}),  # mkt_share
    14: frozenset({0}),  # promo_revenue
    17: frozenset({0}),  # avg_yearly
}

#: (scale factor label, query) pairs whose full, un-LIMITed result ties on the ORDER BY
#: keys across the LIMIT boundary, so that which of the tied rows make the cut is not
#: determined. In the last tie group of those answers only the keys are compared. The
#: DuckDB oracle test (tests/test_tpch_answers_oracle.py) recomputes this set; it is empty
#: for SF 0.1 and SF 1.
LIMIT_BOUNDARY_TIES: frozenset[tuple[str, int]] = frozenset()


def tpch_shared_dir() -> Path:
    """The folder holding ``queries/`` and ``answers/`` (``$SHOAL_TPCH_DIR`` overrides)."""
    override = os.environ.get("SHOAL_TPCH_DIR")
    if override:
        return Path(override)
    # tests/support/tpch.py -> parents[2] is the repository root; shared/ is beside it.
    return Path(__file__).resolve().parents[3] / "shared" / "tpch"


def sf_label(sf: str | float) -> str:
    """Normalise a scale factor to its folder label: ``0.1``, ``"sf0.1"`` -> ``"sf0.1"``."""
    if isinstance(sf, str):
        text = sf.removeprefix("sf")
        return f"sf{float(text):g}"
    return f"sf{float(sf):g}"


def query_text(q: int) -> str:
    """The SQL text of TPC-H query ``q`` (1..22)."""
    return (tpch_shared_dir() / "queries" / f"q{q:02d}.sql").read_text()


def answer_path(sf: str | float, q: int) -> Path:
    """Path of the reference answer of query ``q`` at scale factor ``sf``."""
    return tpch_shared_dir() / "answers" / sf_label(sf) / f"q{q:02d}.csv"


@lru_cache(maxsize=128)
def _read_answer(path: Path) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    if not lines:
        raise ValueError(f"{path}: empty answer file")
    header = tuple(lines[0].split("|"))
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = tuple(line.split("|"))
        if len(fields) != len(header):
            raise ValueError(
                f"{path}:{number}: {len(fields)} fields, header has {len(header)}: {line!r}"
            )
        rows.append(fields)
    return header, tuple(rows)


def load_answer_header(sf: str | float, q: int) -> list[str]:
    """Column names of the answer of query ``q`` at ``sf``."""
    header, _ = _read_answer(answer_path(sf, q))
    return list(header)


def load_answer(sf: str | float, q: int) -> list[list[str]]:
    """Rows (without the header) of the answer of query ``q`` at ``sf``, as raw strings.

    ``sf`` is ``"0.1"``, ``"sf0.1"``, ``"1"``, ``"sf1"`` or a number.
    """
    _, rows = _read_answer(answer_path(sf, q))
    return [list(row) for row in rows]


def tpch_connection(data_dir: Path, partitions: int, **settings: Any) -> shoal.Connection:
    """A shoal connection with the 8 TPC-H tables of ``data_dir`` registered."""
    import shoal
    from shoal.datagen import tpch_tables
    from support.runtime import runtime_kwargs

    con = shoal.connect(partitions=partitions, **runtime_kwargs(), **settings)
    for name, path in tpch_tables(data_dir).items():
        con.register_parquet(name, str(path))
    return con


# ------------------------------------------------------------------------ comparison

# Normalised cell kinds.
_EXACT = "exact"
_FLOAT = "float"
_DATE = "date"
_STRING = "string"
_OTHER = "other"


def _column_kind(arrow_type: pa.DataType, position: int, q: int) -> str:
    t = arrow_type
    if pa.types.is_floating(t):
        return _FLOAT
    if pa.types.is_integer(t) or pa.types.is_decimal(t):
        return _FLOAT if position in ANSWER_DOUBLE_COLUMNS.get(q, ()) else _EXACT
    if pa.types.is_date(t):
        return _DATE
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_null(t)
    ):
        return _STRING
    if pa.types.is_dictionary(t):
        return _column_kind(t.value_type, position, q)
    return _OTHER


def _norm_expected(kind: str, text: str) -> Any:
    """Normalise an answer field for comparison with a column of ``kind``."""
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


def _norm_actual(kind: str, value: Any) -> Any:
    """Normalise a Python value from the result for comparison with an answer field."""
    if value is None:
        return None
    if kind == _EXACT:
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int | Decimal):
            return Decimal(value)
        return value
    if kind == _FLOAT:
        exponent = value.as_tuple().exponent if isinstance(value, Decimal) else None
        if isinstance(value, Decimal) and isinstance(exponent, int):
            # A decimal where the answer has a DOUBLE (e.g. AVG kept with 6 places): it
            # cannot be closer than its last place.
            return _Quantized(value, Decimal(1).scaleb(exponent))
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return float(value)
        return value
    if kind == _DATE:
        if isinstance(value, dt.date | dt.datetime):
            return value.isoformat()
        return str(value)
    if kind == _STRING:
        return str(value).rstrip(" ")
    return str(value)


class _Quantized(float):
    """A float from a decimal of limited scale; equal to values within one last place."""

    ulp: float

    def __new__(cls, value: Decimal, ulp: Decimal) -> _Quantized:
        self = super().__new__(cls, value)
        self.ulp = float(ulp)
        return self

    def __repr__(self) -> str:
        return f"{float(self)!r}(±{self.ulp:g})"


def _cells_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        abs_tol = max(FLOAT_ABS_TOL, getattr(a, "ulp", 0.0), getattr(b, "ulp", 0.0))
        return math.isclose(a, b, rel_tol=FLOAT_REL_TOL, abs_tol=abs_tol)
    if type(a) is not type(b):
        return False
    return bool(a == b)


def _rows_equal(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return len(a) == len(b) and all(_cells_equal(x, y) for x, y in zip(a, b, strict=True))


def _sort_key(row: Sequence[Any]) -> tuple[tuple[int, Any], ...]:
    """A total order over normalised rows (None first, then numbers, then strings)."""
    key: list[tuple[int, Any]] = []
    for cell in row:
        if cell is None:
            key.append((0, 0))
        elif isinstance(cell, float | Decimal):
            key.append((1, cell))
        else:
            key.append((2, str(cell)))
    return tuple(key)


@dataclass
class _Comparison:
    q: int
    label: str
    header: list[str]

    def describe_row(self, title: str, index: int, exp: Sequence[Any], act: Sequence[Any]) -> str:
        diff = [
            self.header[c] if c < len(self.header) else f"#{c}"
            for c in range(max(len(exp), len(act)))
            if c >= len(exp) or c >= len(act) or not _cells_equal(exp[c], act[c])
        ]
        return (
            f"{title} at row {index}; differing columns {diff}\n"
            f"  columns : {self.header}\n"
            f"  expected: {list(exp)}\n"
            f"  actual  : {list(act)}"
        )

    def fail(self, message: str) -> NoReturn:
        raise AssertionError(f"TPC-H Q{self.q} ({self.label}): {message}")


def _first_difference(expected: Sequence[Sequence[Any]], actual: Sequence[Sequence[Any]]) -> int:
    for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
        if not _rows_equal(e, a):
            return i
    return -1


def assert_matches_answer(table: pa.Table, sf: str | float, q: int) -> None:
    """Assert that ``table`` is the right result of TPC-H query ``q`` at scale factor ``sf``.

    Compares by column position (names are not checked). Raises :class:`AssertionError`
    naming the first differing row.
    """
    label = sf_label(sf)
    header = load_answer_header(label, q)
    expected_raw = load_answer(label, q)

    if table.num_columns != len(header):
        raise AssertionError(
            f"TPC-H Q{q} ({label}): {table.num_columns} columns, answer has {len(header)}\n"
            f"  answer columns: {header}\n  result schema : {table.schema}"
        )

    kinds = [_column_kind(f.type, i, q) for i, f in enumerate(table.schema)]
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    actual_raw = [list(row) for row in zip(*columns, strict=True)] if columns else []
    actual = [[_norm_actual(k, v) for k, v in zip(kinds, row, strict=True)] for row in actual_raw]
    expected = [
        [_norm_expected(k, v) for k, v in zip(kinds, row, strict=True)] for row in expected_raw
    ]
    cmp = _Comparison(q, label, header)

    # 1. Exactly the answer, in the answer's order.
    first = _first_difference(expected, actual)
    if first < 0 and len(expected) == len(actual):
        return

    if len(expected) != len(actual):
        detail = ""
        if first >= 0:
            detail = "\n" + cmp.describe_row(
                "first difference", first, expected[first], actual[first]
            )
        else:
            n = min(len(expected), len(actual))
            extra = expected[n] if len(expected) > n else actual[n]
            side = "missing" if len(expected) > n else "unexpected"
            detail = f"\n  first {side} row (row {n}): {extra}"
        cmp.fail(f"{len(actual)} rows, answer has {len(expected)}{detail}")

    # 2. The same rows in an order that the ORDER BY allows: the sequence of sort keys must
    #    be the answer's, and within each run of equal keys the rows must be the same
    #    multiset.
    keys = [pos for pos, _desc in ORDER_BY[q]]
    exp_keys = [[row[k] for k in keys] for row in expected]
    act_keys = [[row[k] for k in keys] for row in actual]
    key_diff = _first_difference(exp_keys, act_keys)
    if key_diff >= 0:
        cmp.fail(
            "rows differ or are out of ORDER BY order "
            f"(ORDER BY columns {[header[k] for k in keys]})\n"
            + cmp.describe_row("first difference", key_diff, expected[key_diff], actual[key_diff])
        )

    boundary_tie = (label, q) in LIMIT_BOUNDARY_TIES
    start = 0
    while start < len(expected):
        end = start + 1
        while end < len(expected) and _rows_equal(exp_keys[end], exp_keys[start]):
            end += 1
        exp_group = sorted(expected[start:end], key=_sort_key)
        act_group = sorted(actual[start:end], key=_sort_key)
        diff = _first_difference(exp_group, act_group)
        last_group = end == len(expected)
        if diff >= 0 and not (boundary_tie and last_group):
            if end - start == 1:
                cmp.fail(
                    cmp.describe_row("first difference", start, expected[start], actual[start])
                )
            cmp.fail(
                f"rows {start}..{end - 1} tie on the ORDER BY keys "
                f"{[header[k] for k in keys]} = {exp_keys[start]} but hold different values\n"
                + cmp.describe_row(
                    "first difference (tied rows sorted)",
                    start + diff,
                    exp_group[diff],
                    act_group[diff],
                )
            )
        start = end
