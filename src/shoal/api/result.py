"""A query's result: Arrow first, with pandas / Python conversions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from shoal.api.boundary import entry_point
from shoal.errors import UnsupportedError
from shoal.sql.explain import ExplainFormat, explain_format


class Result:
    """A finished statement's table, and for a query its EXPLAIN ANALYZE figures.

    ``describe`` renders those figures (text and the JSON document) on first use:
    most callers never ask, and rendering a plan costs milliseconds per query.
    """

    def __init__(
        self,
        table: pa.Table,
        explain_analyze: str = "",
        metrics: Any = None,
        analyze_data: dict[str, Any] | None = None,
        sql: str = "",
        describe: Callable[[], tuple[str, dict[str, Any]]] | None = None,
    ):
        self._table = table
        self._text = explain_analyze
        self.metrics = metrics
        self._data = analyze_data or {}
        self._sql = sql
        self._describe = describe

    def _rendered(self) -> tuple[str, dict[str, Any]]:
        if self._describe is not None:
            self._text, self._data = self._describe()
            self._describe = None
        return self._text, self._data

    def to_arrow(self) -> pa.Table:
        return self._table

    @entry_point
    def to_pandas(self) -> Any:
        try:
            return self._table.to_pandas()
        except (ValueError, OverflowError) as err:
            # pandas (through Python dates) cannot hold every value Arrow can.
            raise UnsupportedError(
                f"to_pandas of this result ({err}); to_arrow() returns every value"
            ) from err

    @entry_point
    def to_polars(self) -> Any:
        import polars as pl

        return pl.from_arrow(self._table)

    @entry_point
    def fetchall(self) -> list[tuple[Any, ...]]:
        columns = [python_values(c) for c in self._table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    @property
    def column_names(self) -> list[str]:
        return list(self._table.column_names)

    @property
    def num_rows(self) -> int:
        return self._table.num_rows

    def explain_analyze(self, format: ExplainFormat | str = ExplainFormat.TEXT) -> str:
        """The stage graph with what ran: rows, time, exchange figures; as text, JSON
        (``explain_analyze_json``) or a self-contained HTML page drawing the graph."""
        fmt = explain_format(format)
        if fmt is ExplainFormat.JSON:
            return self.explain_analyze_json()
        if fmt is ExplainFormat.HTML:
            from shoal.viz.html import render_html

            return render_html(self._rendered()[1], title="shoal EXPLAIN ANALYZE", sql=self._sql)
        return self._rendered()[0]

    @entry_point
    def explain_analyze_json(self) -> str:
        """The same figures as JSON: per stage its tasks and operators, per exchange
        rows/bytes per partition, buffer peak, blocked and wait time, skew."""
        import json

        return json.dumps(self._rendered()[1], indent=2, default=str)

    def __len__(self) -> int:
        return self._table.num_rows

    def __repr__(self) -> str:
        return f"Result({self._table.num_rows} rows: {', '.join(self._table.column_names)})"


def python_values(column: pa.ChunkedArray) -> list[Any]:
    """A column as Python values, as DuckDB's Python client gives them.

    Nanosecond timestamps and durations become ``datetime``/``timedelta`` (truncated
    to microseconds); dates and timestamps outside Python's years 1–9999 become
    their ISO text.
    """
    t = column.type
    if pa.types.is_timestamp(t) and t.unit == "ns":
        column = column.cast(pa.timestamp("us", t.tz), safe=False)
    elif pa.types.is_duration(t) and t.unit == "ns":
        column = column.cast(pa.duration("us"), safe=False)
    try:
        return column.to_pylist()
    except (ValueError, OverflowError):
        if not (pa.types.is_date(t) or pa.types.is_timestamp(t)):
            raise
    text = pc.cast(column, pa.string()).to_pylist()
    out: list[Any] = []
    for i, scalar in enumerate(column):
        try:
            out.append(scalar.as_py())
        except (ValueError, OverflowError):
            out.append(text[i])
    return out
