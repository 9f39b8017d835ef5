"""The ``shoal`` command line, run as a separate process (``python -m shoal.cli``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

TIMEOUT = 60


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    items = pa.table(
        {
            "item_id": pa.array(range(1, 13), type=pa.int64()),
            "color": pa.array(["red", "green", "blue"] * 4),
            "price": pa.array([float(i) * 1.5 for i in range(1, 13)]),
        }
    )
    parquet = root / "items.parquet"
    pq.write_table(items, parquet, row_group_size=4)
    events = pa.table(
        {
            "event_id": pa.array(range(1, 7), type=pa.int64()),
            "color": pa.array(["red", "red", "blue", "green", "blue", "red"]),
            "amount": pa.array([10, 20, 30, 40, 50, 60], type=pa.int64()),
        }
    )
    csv = root / "events.csv"
    pacsv.write_csv(events, csv)
    return {"root": root, "parquet": parquet, "csv": csv}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.split("|")]


def test_query_parquet(files: dict[str, Path]) -> None:
    sql = (
        "SELECT color, count(*) AS n, sum(price) AS total FROM items GROUP BY color ORDER BY color"
    )
    proc = run(
        "-m", "shoal.cli", "query", sql, "--table", f"items={files['parquet']}",
        "--partitions", "2", cwd=files["root"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = _lines(proc.stdout)
    assert _cells(lines[0]) == ["color", "n", "total"]
    assert set(lines[1]) <= {"-", "+"}
    assert [_cells(line) for line in lines[2:5]] == [
        ["blue", "4", str(sum(i * 1.5 for i in (3, 6, 9, 12)))],
        ["green", "4", str(sum(i * 1.5 for i in (2, 5, 8, 11)))],
        ["red", "4", str(sum(i * 1.5 for i in (1, 4, 7, 10)))],
    ]
    assert lines[-1] == "(3 rows)"


def test_query_csv(files: dict[str, Path]) -> None:
    sql = "SELECT event_id, amount FROM events WHERE amount > 25 ORDER BY event_id"
    proc = run(
        "-m", "shoal.cli", "query", sql, "--table", f"events={files['csv']}", cwd=files["root"]
    )
    assert proc.returncode == 0, proc.stderr
    lines = _lines(proc.stdout)
    assert _cells(lines[0]) == ["event_id", "amount"]
    assert [_cells(line) for line in lines[2:-1]] == [
        ["3", "30"], ["4", "40"], ["5", "50"], ["6", "60"],
    ]  # fmt: skip
    assert lines[-1] == "(4 rows)"


def test_query_two_tables_and_max_rows(files: dict[str, Path]) -> None:
    sql = "SELECT color FROM items UNION ALL SELECT color FROM events"
    proc = run(
        "-m", "shoal.cli", "query", sql,
        "--table", f"items={files['parquet']}", "--table", f"events={files['csv']}",
        "--max-rows", "5", cwd=files["root"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = _lines(proc.stdout)
    # Header, rule, the first 3 and last 2 rows with an ellipsis row between, footer.
    assert len(lines) == 2 + 5 + 1 + 1
    assert lines[2 + 3] == "…"
    assert lines[-1] == "(18 rows, 5 shown)"


def test_query_null_shown_as_null(files: dict[str, Path]) -> None:
    proc = run("-m", "shoal.cli", "query", "SELECT NULL AS nothing, 1 AS one", cwd=files["root"])
    assert proc.returncode == 0, proc.stderr
    lines = _lines(proc.stdout)
    assert _cells(lines[2]) == ["NULL", "1"]
    assert lines[-1] == "(1 row)"


def test_explain(files: dict[str, Path]) -> None:
    sql = "SELECT color, count(*) FROM items GROUP BY color"
    proc = run(
        "-m", "shoal.cli", "explain", sql, "--table", f"items={files['parquet']}",
        "--partitions", "3", cwd=files["root"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("Stage ")
    assert "-> result" in out
    assert "HashRepartition" in out
    assert "Scan items" in out
    assert "rows=" not in out  # plain EXPLAIN does not run the query


def test_explain_analyze(files: dict[str, Path]) -> None:
    sql = "SELECT color, count(*) FROM items GROUP BY color"
    proc = run(
        "-m", "shoal.cli", "explain", "--analyze", sql, "--table", f"items={files['parquet']}",
        "--partitions", "3", cwd=files["root"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "rows=12" in out  # the scan read every row
    assert "exchange:" in out and "skew=" in out


def test_unknown_column_exits_1(files: dict[str, Path]) -> None:
    proc = run(
        "-m", "shoal.cli", "query", "SELECT colour FROM items",
        "--table", f"items={files['parquet']}", cwd=files["root"],
    )  # fmt: skip
    assert proc.returncode == 1
    assert "unknown column" in proc.stderr
    assert "colour" in proc.stderr and "color" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_missing_table_file_exits_1(files: dict[str, Path]) -> None:
    missing = files["root"] / "nope.parquet"
    proc = run("-m", "shoal.cli", "query", "SELECT 1", "--table", f"x={missing}", cwd=files["root"])
    assert proc.returncode == 1
    assert str(missing) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_syntax_error_exits_1(files: dict[str, Path]) -> None:
    proc = run("-m", "shoal.cli", "explain", "SELEC 1", cwd=files["root"])
    assert proc.returncode == 1
    assert "syntax error" in proc.stderr and "line 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_help(files: dict[str, Path]) -> None:
    proc = run("-m", "shoal.demo", "--help", cwd=files["root"])
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower()
    for option in ("--sf", "--query", "--partitions"):
        assert option in proc.stdout


def test_query_with_an_injected_fault(files: dict[str, Path]) -> None:
    """``--inject`` fails a chosen task: retried under --retry-policy task, fatal otherwise."""
    sql = "SELECT color, sum(price) AS total FROM items GROUP BY color ORDER BY color"
    table = f"items={files['parquet']}"
    fault = "stage=0,partition=0,attempt=0,kind=transient"
    base = ["-m", "shoal.cli", "query", sql, "--table", table, "--partitions", "2"]
    spool = files["root"] / "spool"
    retried = run(
        *base, "--retry-policy", "task", "--spool", str(spool), "--inject", fault, cwd=files["root"]
    )
    assert retried.returncode == 0, retried.stderr
    assert _cells(_lines(retried.stdout)[2]) == ["blue", "45.0"]
    assert list(spool.iterdir()) == []
    failed = run(*base, "--inject", fault, cwd=files["root"])
    assert failed.returncode == 1
    assert "Error: [stage 0, task 0, attempt 0" in failed.stderr
    assert "injected transient fault" in failed.stderr
    analyze = run(
        "-m",
        "shoal.cli",
        "explain",
        "--analyze",
        sql,
        "--table",
        table,
        "--partitions",
        "2",
        "--retry-policy",
        "task",
        "--inject",
        fault,
        cwd=files["root"],
    )
    assert analyze.returncode == 0, analyze.stderr
    assert "retries=1 failed=1" in analyze.stdout
    bad = run(*base, "--inject", "stage=0,kind=meteor", cwd=files["root"])
    assert bad.returncode == 1 and "kind must be one of" in bad.stderr
