"""Compare a query result from shoal with the one DuckDB (the oracle) gives.

Results are compared by column position (names are ignored), row count and
normalized values:

* NULL equals NULL and nothing else.
* Exact numbers (ints of any width, decimals of any scale) are compared exactly
  as ``decimal.Decimal`` values, so ``1.50 == 1.5`` and an int64 ``3`` equals a
  HUGEINT/DECIMAL(38,0) ``3``.
* If either side is a float, the two are compared numerically with a relative
  tolerance (and an absolute tolerance of 1e-12); NaN equals NaN.
* Booleans equal only booleans; strings compare exactly.
* Dates compare exactly; a date also equals a timestamp at midnight of that day
  (DuckDB types ``date + INTERVAL`` as TIMESTAMP; an engine may keep DATE).

With ``ordered=False`` both sides are first sorted by a total key that handles
NULLs and mixed types, so row order does not matter.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

ABS_TOL = 1e-12
_SHOW_ROWS = 8  # rows shown around the first difference

Row = tuple[Any, ...]


# --------------------------------------------------------------------- oracle


def duckdb_result(sql: str, tables: Mapping[str, pa.Table]) -> pa.Table:
    """Run ``sql`` on a fresh in-memory DuckDB with ``tables`` registered by name."""
    con = duckdb.connect(":memory:")
    try:
        for name, table in tables.items():
            con.register(name, table)
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def duckdb_rows(sql: str, tables: Mapping[str, pa.Table]) -> list[Row]:
    """Like :func:`duckdb_result`, but as Python rows (DuckDB's ``fetchall``)."""
    con = duckdb.connect(":memory:")
    try:
        for name, table in tables.items():
            con.register(name, table)
        return [tuple(row) for row in con.sql(sql).fetchall()]
    finally:
        con.close()


# ------------------------------------------------------------------ comparing


def table_rows(table: pa.Table) -> list[Row]:
    """The rows of ``table`` as tuples, by column position (duplicate names are fine)."""
    columns = [column.to_pylist() for column in table.columns]
    if not columns:
        return [() for _ in range(table.num_rows)]
    return list(zip(*columns, strict=True))


def assert_same_result(
    actual: pa.Table,
    expected: pa.Table,
    ordered: bool,
    rel_tol: float = 1e-9,
    *,
    context: str = "",
) -> None:
    """Assert that two Arrow tables hold the same result (see the module docstring).

    ``context`` (e.g. the SQL text) is put at the top of the failure message.
    """
    assert isinstance(actual, pa.Table), f"actual is {type(actual).__name__}, not pyarrow.Table"
    assert isinstance(expected, pa.Table), (
        f"expected is {type(expected).__name__}, not pyarrow.Table"
    )
    header = (
        (f"{context}\n" if context else "")
        + f"actual schema:   {_schema_text(actual.schema)}\n"
        + f"expected schema: {_schema_text(expected.schema)}"
    )
    if actual.num_columns != expected.num_columns:
        raise AssertionError(
            f"column count differs: actual {actual.num_columns}, "
            f"expected {expected.num_columns}\n{header}"
        )
    assert_same_rows(
        table_rows(actual), table_rows(expected), ordered=ordered, rel_tol=rel_tol, header=header
    )


def assert_same_rows(
    actual: Sequence[Sequence[Any]],
    expected: Sequence[Sequence[Any]],
    ordered: bool,
    rel_tol: float = 1e-9,
    header: str = "",
) -> None:
    """Assert that two lists of rows hold the same result (see the module docstring).

    ``header`` (e.g. the SQL text) is put at the top of the failure message.
    """
    actual_rows = [tuple(row) for row in actual]
    expected_rows = [tuple(row) for row in expected]
    widths = {len(row) for row in actual_rows} | {len(row) for row in expected_rows}
    if len(widths) > 1:
        raise AssertionError(f"rows have different widths: {sorted(widths)}\n{header}".rstrip())
    if not ordered:
        actual_rows.sort(key=sort_key)
        expected_rows.sort(key=sort_key)

    first_diff = None
    for index, (a_row, e_row) in enumerate(zip(actual_rows, expected_rows, strict=False)):
        if not rows_equal(a_row, e_row, rel_tol):
            first_diff = index
            break
    if first_diff is None and len(actual_rows) == len(expected_rows):
        return
    if first_diff is None:
        first_diff = min(len(actual_rows), len(expected_rows))
    raise AssertionError(
        _mismatch_message(actual_rows, expected_rows, first_diff, ordered, rel_tol, header)
    )


def rows_equal(a_row: Row, e_row: Row, rel_tol: float = 1e-9) -> bool:
    return len(a_row) == len(e_row) and all(
        values_equal(a, e, rel_tol) for a, e in zip(a_row, e_row, strict=True)
    )


def values_equal(a: Any, b: Any, rel_tol: float = 1e-9) -> bool:
    """Whether two result values are equal under the normalization rules."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        if isinstance(a, float) or isinstance(b, float):
            fa, fb = float(a), float(b)
            if math.isnan(fa) or math.isnan(fb):
                return math.isnan(fa) and math.isnan(fb)
            if math.isinf(fa) or math.isinf(fb):
                return fa == fb
            return math.isclose(fa, fb, rel_tol=rel_tol, abs_tol=ABS_TOL)
        return Decimal(a) == Decimal(b)  # exact, whatever the scale
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, dt.date) and isinstance(b, dt.date):  # also datetimes
        return _as_datetime(a) == _as_datetime(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(
            values_equal(x, y, rel_tol) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k], rel_tol) for k in a)
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------- sort order


def sort_key(row: Iterable[Any]) -> tuple[Any, ...]:
    """A total order over rows: NULLs last, then by type family, then by value."""
    return tuple(_value_key(value) for value in row)


# type-family ranks: values with the same rank are mutually comparable
_NUMBER, _NAN, _BOOL, _STR, _TEMPORAL, _BYTES, _OTHER = range(7)


def _value_key(value: Any) -> tuple[Any, ...]:
    if value is None:
        return (1, 0, 0)
    if isinstance(value, bool):
        return (0, _BOOL, int(value))
    if isinstance(value, int | Decimal):
        return (0, _NUMBER, Decimal(value))
    if isinstance(value, float):
        if math.isnan(value):
            return (0, _NAN, 0)
        # round so that last-bit differences do not reorder near-equal rows
        return (0, _NUMBER, float(f"{value:.10g}"))
    if isinstance(value, str):
        return (0, _STR, value)
    if isinstance(value, dt.date):
        return (0, _TEMPORAL, _as_datetime(value).isoformat())
    if isinstance(value, bytes):
        return (0, _BYTES, value)
    return (0, _OTHER, repr(value))


# ------------------------------------------------------------------ helpers


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _as_datetime(value: dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day)


def _schema_text(schema: pa.Schema) -> str:
    return ", ".join(f"{field.name}: {field.type}" for field in schema)


def _fmt_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"{value}d"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return repr(value)


def _fmt_row(row: Row) -> str:
    return "(" + ", ".join(_fmt_value(value) for value in row) + ")"


def _fingerprint(row: Row) -> tuple[Any, ...]:
    """A loose identity for diagnostics: numbers of any type as rounded floats."""
    out: list[Any] = []
    for value in row:
        if _is_number(value) and not (isinstance(value, float) and math.isnan(value)):
            out.append((0, _NUMBER, float(f"{float(value):.9g}")))
        else:
            out.append(_value_key(value))
    return tuple(out)


def _mismatch_message(
    actual: list[Row],
    expected: list[Row],
    first_diff: int,
    ordered: bool,
    rel_tol: float,
    header: str,
) -> str:
    mode = "ordered" if ordered else "unordered (both sides sorted)"
    lines = [
        f"results differ ({mode}, rel_tol={rel_tol}): "
        f"actual has {len(actual)} rows, expected {len(expected)}; "
        f"first difference at row {first_diff}",
    ]
    if header:
        lines.append(header)
    start = max(0, first_diff - 2)
    stop = first_diff + _SHOW_ROWS
    for label, rows in (("actual", actual), ("expected", expected)):
        lines.append(f"{label} rows {start}..{min(stop, len(rows)) - 1}:")
        for index in range(start, min(stop, len(rows))):
            marker = ">>" if index == first_diff else "  "
            lines.append(f"  {marker} [{index}] {_fmt_row(rows[index])}")
        if start >= len(rows):
            lines.append("     (no rows here)")
    if not ordered or len(actual) != len(expected):
        a_count = Counter(_fingerprint(row) for row in actual)
        e_count = Counter(_fingerprint(row) for row in expected)
        a_rows = {_fingerprint(row): row for row in actual}
        e_rows = {_fingerprint(row): row for row in expected}
        only_a = list((a_count - e_count).elements())
        only_e = list((e_count - a_count).elements())
        if len(only_a) == len(actual) and len(only_e) == len(expected):
            only_a = only_e = []  # nothing in common: the rows above say it all
        for label, extra, source in (
            ("only in actual", only_a, a_rows),
            ("only in expected", only_e, e_rows),
        ):
            if extra:
                lines.append(f"{label} ({len(extra)} rows, roughly), first ones:")
                for fingerprint in sorted(extra)[:_SHOW_ROWS]:
                    lines.append(f"     {_fmt_row(source[fingerprint])}")
    return "\n".join(lines)
