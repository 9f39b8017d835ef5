"""A query's result: Arrow first, with pandas / Python conversions."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from shoal.sql.explain import ExplainFormat, explain_format


class Result:
    def __init__(
        self,
        table: pa.Table,
        explain_analyze: str = "",
        metrics: Any = None,
        analyze_data: dict[str, Any] | None = None,
        sql: str = "",
    ):
        self._table = table
        self._explain_analyze = explain_analyze
        self.metrics = metrics
        self._analyze_data = analyze_data or {}
        self._sql = sql

    def to_arrow(self) -> pa.Table:
        return self._table

    def to_pandas(self) -> Any:
        return self._table.to_pandas()

    def to_polars(self) -> Any:
        import polars as pl

        return pl.from_arrow(self._table)

    def fetchall(self) -> list[tuple[Any, ...]]:
        columns = [c.to_pylist() for c in self._table.columns]
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

            return render_html(self._analyze_data, title="shoal EXPLAIN ANALYZE", sql=self._sql)
        return self._explain_analyze

    def explain_analyze_json(self) -> str:
        """The same figures as JSON: per stage its tasks and operators, per exchange
        rows/bytes per partition, buffer peak, blocked and wait time, skew."""
        import json

        return json.dumps(self._analyze_data, indent=2, default=str)

    def __len__(self) -> int:
        return self._table.num_rows

    def __repr__(self) -> str:
        return f"Result({self._table.num_rows} rows: {', '.join(self._table.column_names)})"
