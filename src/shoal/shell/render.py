"""Results as text: an aligned table that fits the terminal, CSV, JSON lines or Markdown.

The table mode shows at most ``max_rows`` rows, the first and the last ones with an
ellipsis row between (as DuckDB does), shrinks the widest columns (cutting values
with ``…``) until the table fits ``width``, and hides middle columns when even that
is not enough. The footer says how many rows (and columns) there are and are shown.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import enum
import io
import json
from typing import Any

import pyarrow as pa

MIN_COLUMN_WIDTH = 6
ELLIPSIS = "…"


class OutputMode(enum.Enum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    MARKDOWN = "markdown"


def render(
    table: pa.Table, mode: OutputMode, width: int | None = None, max_rows: int | None = 40
) -> str:
    """``table`` as text; ``width`` None means unlimited (output is not a terminal)."""
    if mode is OutputMode.CSV:
        return _csv(table)
    if mode is OutputMode.JSON:
        return _json(table)
    if mode is OutputMode.MARKDOWN:
        return _markdown(table)
    return _table(table, width, max_rows)


def cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    return str(value)


def _is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _rows(table: pa.Table, indices: list[int]) -> list[list[str]]:
    if not indices:
        return []
    picked = table.take(pa.array(indices, pa.int64())) if table.num_columns else table
    columns = [c.to_pylist() for c in picked.columns]
    return [[cell(v) for v in row] for row in zip(*columns, strict=True)]


def _table(table: pa.Table, width: int | None, max_rows: int | None) -> str:
    n = table.num_rows
    names = list(table.column_names)
    numeric = [_is_numeric(f.type) for f in table.schema]
    if max_rows is not None and n > max_rows:
        head = (max_rows + 1) // 2
        tail = max_rows - head
        shown = list(range(head)) + list(range(n - tail, n))
        gap_after = head
    else:
        shown, gap_after = list(range(n)), None
    rows = _rows(table, shown)
    widths = [max([len(name)] + [len(r[i]) for r in rows]) for i, name in enumerate(names)]
    columns = list(range(len(names)))
    hidden = 0
    if width is not None:
        columns, widths, hidden = _fit(columns, widths, names, width)
    gap = "…" if hidden else None

    def line(values: list[str], header: bool = False) -> str:
        cells = []
        for pos, col in enumerate(columns):
            if gap is not None and pos == len(columns) // 2:
                cells.append(ELLIPSIS)
            w = widths[pos]
            text = values[col]
            if len(text) > w:
                text = text[: w - 1] + ELLIPSIS
            right = numeric[col] and not header
            cells.append(text.rjust(w) if right else text.ljust(w))
        return " | ".join(cells).rstrip()

    rule_cells = ["-" * w for w in widths]
    if gap is not None:
        rule_cells.insert(len(columns) // 2, "-")
    out = [line(names, header=True), "-+-".join(rule_cells)]
    for index, row in enumerate(rows):
        if gap_after is not None and index == gap_after:
            out.append(line([ELLIPSIS] * len(names)))
        out.append(line(row))
    out.append(_footer(n, len(rows), len(names), len(columns)))
    return "\n".join(out)


def _fit(
    columns: list[int], widths: list[int], names: list[str], width: int
) -> tuple[list[int], list[int], int]:
    """Shrink the widest values (not below the column's name, up to 20 characters),
    then hide middle columns, until a line fits ``width``."""
    widths = list(widths)
    floors = [
        min(w, max(MIN_COLUMN_WIDTH, min(len(n), 20))) for w, n in zip(widths, names, strict=True)
    ]

    def total(ws: list[int], hidden: bool) -> int:
        return sum(ws) + 3 * (len(ws) - 1) + (4 if hidden else 0)

    while total(widths, False) > width:
        shrinkable = [i for i in range(len(widths)) if widths[i] > floors[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    hidden = 0
    while len(columns) > 1 and total(widths, hidden > 0) > width:
        middle = len(columns) // 2
        del columns[middle]
        del widths[middle]
        hidden += 1
    return columns, widths, hidden


def _footer(total_rows: int, shown_rows: int, total_cols: int, shown_cols: int) -> str:
    rows = f"{total_rows} row{'s' if total_rows != 1 else ''}"
    if shown_rows < total_rows:
        rows += f", {shown_rows} shown"
    if shown_cols < total_cols:
        rows += f"; {total_cols} columns, {shown_cols} shown"
    return f"({rows})"


def _csv(table: pa.Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.column_names)
    columns = [c.to_pylist() for c in table.columns]
    for row in zip(*columns, strict=True):
        writer.writerow(["" if v is None else cell(v) for v in row])
    return buf.getvalue().rstrip("\n")


def _json_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return str(value)  # exact: a JSON number, not a rounded float
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return json.dumps(value.isoformat())
    return json.dumps(cell(value), ensure_ascii=False)


def _json(table: pa.Table) -> str:
    """One JSON object per line (JSON Lines): easy to stream and to ``jq``."""
    names = [json.dumps(n, ensure_ascii=False) for n in table.column_names]
    columns = [c.to_pylist() for c in table.columns]
    lines = []
    for row in zip(*columns, strict=True):
        fields = ", ".join(f"{n}: {_json_value(v)}" for n, v in zip(names, row, strict=True))
        lines.append("{" + fields + "}")
    return "\n".join(lines)


def _markdown(table: pa.Table) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    numeric = [_is_numeric(f.type) for f in table.schema]
    out = ["| " + " | ".join(esc(n) for n in table.column_names) + " |"]
    out.append("|" + "|".join("---:" if num else "---" for num in numeric) + "|")
    columns = [c.to_pylist() for c in table.columns]
    for row in zip(*columns, strict=True):
        out.append("| " + " | ".join(esc(cell(v)) for v in row) + " |")
    return "\n".join(out)
