"""The shell's pieces without a terminal: result rendering and statement splitting."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from shoal.shell.render import OutputMode, render
from shoal.shell.statements import StatementBuffer, split_statements


def test_table_fits_the_width_and_truncates_rows() -> None:
    t = pa.table({"id": list(range(100)), "text": ["x" * 200] * 100, "n": [Decimal("1.50")] * 100})
    out = render(t, OutputMode.TABLE, width=60, max_rows=6).splitlines()
    assert all(len(line) <= 60 for line in out)
    assert out[-1] == "(100 rows, 6 shown)"
    assert out[2 + 3].strip().startswith("…")  # between the first 3 and the last 3 rows
    assert out[2].split("|")[0].strip() == "0" and out[-2].split("|")[0].strip() == "99"
    assert "…" in out[2]  # the long text was cut
    wide = pa.table({f"column_{i}": [i] for i in range(30)})
    lines = render(wide, OutputMode.TABLE, width=80).splitlines()
    assert all(len(line) <= 80 for line in lines) and "columns" in lines[-1]
    assert "column_0" in lines[0] and "column_29" in lines[0] and "…" in lines[0]


def test_other_modes() -> None:
    t = pa.table({"a": [1, None], "b": ["x,y", "q|r"], "d": [Decimal("0.10"), None]})
    assert render(t, OutputMode.CSV) == 'a,b,d\n1,"x,y",0.10\n,q|r,'
    assert render(t, OutputMode.JSON).splitlines() == [
        '{"a": 1, "b": "x,y", "d": 0.10}',
        '{"a": null, "b": "q|r", "d": null}',
    ]
    assert render(t, OutputMode.MARKDOWN).splitlines() == [
        "| a | b | d |",
        "|---:|---|---:|",
        "| 1 | x,y | 0.10 |",
        "| NULL | q\\|r | NULL |",
    ]


def test_statements_end_at_semicolons_outside_quotes_and_comments() -> None:
    text = "SELECT ';' AS s; -- a; comment\nSELECT \"a;b\" /* ; */ FROM t;\nSELECT 1"
    statements, rest = split_statements(text)
    assert statements == ["SELECT ';' AS s", '-- a; comment\nSELECT "a;b" /* ; */ FROM t']
    assert rest.strip() == "SELECT 1"
    buffer = StatementBuffer()
    assert buffer.feed("SELECT 'it''s;") == [] and buffer.pending
    assert buffer.feed("still' AS s;") == ["SELECT 'it''s;\nstill' AS s"]
    assert not buffer.pending
