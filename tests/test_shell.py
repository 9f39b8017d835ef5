"""The interactive shell driven through a pseudo-terminal (pexpect), and the progress
display: drawn on a terminal for a long query, absent when output is a pipe."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

PROMPT = "shoal> "
TIMEOUT = 60
# 1M probe rows with 1,000 partners each in a 100,000-row build side: 1e9 join rows,
# half a minute or more, made in small batches so that a cancel is seen at once. (With
# 100 partners the query ended in about 3 s, when the Ctrl-C tests send their SIGINT.)
LONG_QUERY = "SELECT count(*), sum(a.v + b.v) FROM big a JOIN small b ON a.k = b.k"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shell")
    items = pa.table(
        {
            "item_id": pa.array(range(1, 13), type=pa.int64()),
            "color": pa.array(["red", "green", "blue"] * 4),
            "price": pa.array([float(i) * 1.5 for i in range(1, 13)]),
        }
    )
    pq.write_table(items, root / "items.parquet")
    n = 1_000_000
    big = pa.table(
        {
            "k": pa.array([i % 100 for i in range(n)], pa.int64()),
            "v": pa.array(range(n), pa.int64()),
        }
    )
    pq.write_table(big, root / "big.parquet", row_group_size=8192)
    pq.write_table(big.slice(0, 100_000), root / "small.parquet")
    folder = root / "folder"
    folder.mkdir()
    pq.write_table(items.slice(0, 5), folder / "few.parquet")
    (root / "script.sql").write_text(
        "-- a script: a statement over two lines and a dot-command\n"
        "SELECT count(*) AS script_rows\n  FROM items;\n.mode csv\nSELECT 7 AS seven;\n"
    )
    return {
        "root": root,
        "items": root / "items.parquet",
        "big": root / "big.parquet",
        "small": root / "small.parquet",
    }


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SHOAL_HISTORY"] = str(tmp / "history")
    env["TERM"] = "xterm"
    env.pop("PYTHONSTARTUP", None)
    return env


@pytest.fixture
def shell(data: dict[str, Path], tmp_path: Path) -> Iterator[pexpect.spawn]:
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "shoal.cli",
            "--table",
            f"items={data['items']}",
            "--table",
            f"big={data['big']}",
            "--table",
            f"small={data['small']}",
        ],  # fmt: skip
        cwd=str(tmp_path),
        env=_env(tmp_path),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 120),
    )
    try:
        child.expect_exact(PROMPT)
        yield child
    finally:
        if child.isalive():
            os.kill(child.pid, signal.SIGKILL)
        child.close(force=True)


def _run(child: pexpect.spawn, line: str) -> str:
    """Send one line and return what the shell printed until the next prompt."""
    child.sendline(line)
    child.expect_exact(PROMPT)
    return _plain(child.before)


def _plain(text: str | None) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text or "").replace("\r", "")


def test_multi_line_statement(shell: pexpect.spawn) -> None:
    shell.sendline("SELECT color, count(*) AS n,")
    shell.expect_exact("...> ")
    shell.sendline("  sum(price) AS total FROM items")
    shell.expect_exact("...> ")
    out = _run(shell, "GROUP BY color ORDER BY color;")
    lines = [line.strip() for line in out.splitlines() if "|" in line]
    assert [c.strip() for c in lines[0].split("|")] == ["color", "n", "total"]
    assert [c.strip() for c in lines[1].split("|")] == ["blue", "4", "45.0"]
    assert [c.strip() for c in lines[3].split("|")] == ["red", "4", "33.0"]
    assert "(3 rows)" in out


def test_two_statements_on_one_line(shell: pexpect.spawn) -> None:
    shell.sendline("SELECT 1 AS first; SELECT 2 AS second;")
    shell.expect_exact(PROMPT)
    out = _plain(shell.before)
    assert "first" in out and "second" in out


def test_dot_commands(shell: pexpect.spawn, data: dict[str, Path]) -> None:
    assert _run(shell, ".tables").split() == [".tables", "big", "items", "small"]
    schema = _run(shell, ".schema items")
    assert "CREATE TABLE items" in schema and "price DOUBLE" in schema and "color VARCHAR" in schema
    help_text = _run(shell, ".help")
    for command in (".tables", ".schema", ".open", ".read", ".timer", ".mode", ".explain"):
        assert command in help_text
    assert ".register" in help_text and ".analyze" in help_text and ".quit" in help_text

    _run(shell, ".mode csv")
    out = _run(shell, "SELECT item_id, color FROM items WHERE item_id <= 2 ORDER BY item_id;")
    assert "item_id,color\n1,red\n2,green" in out
    _run(shell, ".mode json")
    out = _run(shell, "SELECT item_id, price FROM items WHERE item_id = 3;")
    assert '{"item_id": 3, "price": 4.5}' in out
    _run(shell, ".mode markdown")
    out = _run(shell, "SELECT color FROM items WHERE item_id = 1;")
    assert "| color |" in out and "| red |" in out
    _run(shell, ".mode table")
    assert "current output mode: table" in _run(shell, ".mode")
    assert "usage: .mode" in _run(shell, ".mode fancy")

    _run(shell, ".timer on")
    assert re.search(r"Run Time: \d+\.\d{3} s", _run(shell, "SELECT 1 AS one;"))
    _run(shell, ".timer off")
    assert "Run Time" not in _run(shell, "SELECT 1 AS one;")

    _run(shell, f".register again {data['items']}")
    assert "(1 row)" in _run(shell, "SELECT count(*) FROM again;")
    opened = _run(shell, f".open {data['root'] / 'folder'}")
    assert "registered 1 table(s): few" in opened
    assert "5" in _run(shell, "SELECT count(*) AS c FROM few;")

    script = _run(shell, f".read {data['root'] / 'script.sql'}")
    assert "script_rows" in script and "12" in script
    assert "seven\n7" in script  # the script switched the mode to CSV
    _run(shell, ".mode table")

    explain = _run(shell, ".explain SELECT color, count(*) FROM items GROUP BY color")
    assert "Stage 0" in explain and "Aggregate" in explain and "Scan items" in explain
    assert "rows=" not in explain  # EXPLAIN does not run the query
    _run(shell, "SELECT color FROM items WHERE price > 10;")
    analyze = _run(shell, ".analyze")  # the last query
    assert "Scan items" in analyze and "rows=" in analyze and "filter=" in analyze
    html = _run(shell, ".analyze --html plan.html SELECT count(*) FROM items")
    assert "wrote" in html and "plan.html" in html
    assert "unknown command .nope" in _run(shell, ".nope")


def test_explain_html_statement_writes_a_file(shell: pexpect.spawn) -> None:
    out = _run(shell, "EXPLAIN (FORMAT HTML) SELECT color FROM items;")
    path = Path(out.split("wrote ", 1)[1].split()[0])
    assert path.name == "shoal-explain.html"
    assert "<svg" in path.read_text()


def test_error_with_caret_then_a_working_query(shell: pexpect.spawn) -> None:
    out = _run(shell, "SELECT color FORM items;")
    assert "Error: syntax error (line 1, column 23)" in out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("LINE 1: "))
    assert lines[at] == "LINE 1: SELECT color FORM items"
    caret = lines[at + 1]
    # sqlglot points at 'items' (after "FORM" was taken as an alias): underline it.
    assert caret.index("^") == lines[at].index("items") and caret.strip() == "^^^^^"
    assert "Traceback" not in out

    out = _run(shell, "SELECT colour FROM items;")
    assert "unknown column 'colour'; did you mean 'color'?" in out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("LINE 1: "))
    assert lines[at + 1].index("^") == lines[at].index("colour")

    out = _run(shell, "SELECT count(*) AS c FROM items;")
    assert "12" in out and "(1 row)" in out


def test_ctrl_c_cancels_a_long_query(shell: pexpect.spawn) -> None:
    shell.sendline(LONG_QUERY + ";")
    # The progress display appears after about a second: the query is running.
    shell.expect("holding the query back", timeout=TIMEOUT)
    shell.expect(r"\d+/\d+ tasks", timeout=TIMEOUT)
    time.sleep(2.0)  # past the start-up (footers, build side): into the long probe
    sent = time.perf_counter()
    shell.sendintr()
    shell.expect_exact("Cancelled", timeout=TIMEOUT)
    shell.expect_exact(PROMPT, timeout=TIMEOUT)
    # Well under a second on an idle machine; the bound leaves room for a loaded one.
    assert time.perf_counter() - sent < 4.0
    assert "Traceback" not in _plain(shell.before)
    # The shell goes on, and the connection runs the next query.
    assert "12" in _run(shell, "SELECT count(*) FROM items;")


def test_ctrl_c_while_typing_discards_the_statement(shell: pexpect.spawn) -> None:
    shell.sendline("SELECT 1 AS never")
    shell.expect_exact("...> ")
    shell.sendintr()
    shell.expect_exact(PROMPT)
    out = _run(shell, "SELECT 2 AS two;")
    assert "two" in out and "never" not in out


def test_ctrl_d_exits_0(shell: pexpect.spawn) -> None:
    shell.sendeof()
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0


def test_quit_exits_0(shell: pexpect.spawn) -> None:
    shell.sendline(".quit")
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0


def test_completion_of_tables_and_columns(shell: pexpect.spawn) -> None:
    shell.send("SELECT pri\t")
    shell.expect_exact("price")
    shell.send(" FROM bi\t")
    shell.expect_exact("big")
    shell.sendintr()  # drop that line
    shell.expect_exact(PROMPT)
    shell.send("SELECT items.col\t")
    shell.expect_exact("items.color")
    shell.send(" FROM items WHERE item_id = 1;\r")
    shell.expect_exact(PROMPT)
    assert "red" in _plain(shell.before)
    shell.send(".sch\t")
    shell.expect_exact(".schema")


def test_history_is_kept_between_sessions(data: dict[str, Path], tmp_path: Path) -> None:
    def session(lines: list[str]) -> None:
        child = pexpect.spawn(
            sys.executable,
            ["-m", "shoal.cli", "--table", f"items={data['items']}"],
            cwd=str(tmp_path),
            env=_env(tmp_path),
            encoding="utf-8",
            timeout=TIMEOUT,
        )
        try:
            child.expect_exact(PROMPT)
            for line in lines:
                child.sendline(line)
                child.expect(r"(shoal> |\.\.\.> )")
            child.sendeof()
            child.expect(pexpect.EOF)
        finally:
            if child.isalive():
                os.kill(child.pid, signal.SIGKILL)
            child.close(force=True)

    session(["SELECT item_id", "FROM items WHERE item_id = 4;"])
    history = (tmp_path / "history").read_text()
    # A statement typed over two lines is one history entry.
    assert "SELECT item_id FROM items WHERE item_id = 4;" in history
    # A new session recalls it with the up arrow.
    child = pexpect.spawn(
        sys.executable,
        ["-m", "shoal.cli", "--table", f"items={data['items']}"],
        cwd=str(tmp_path),
        env=_env(tmp_path),
        encoding="utf-8",
        timeout=TIMEOUT,
    )
    try:
        child.expect_exact(PROMPT)
        child.send("\x1b[A\r")
        child.expect_exact("(1 row)")
        child.expect_exact(PROMPT)
    finally:
        if child.isalive():
            os.kill(child.pid, signal.SIGKILL)
        child.close(force=True)


def test_script_on_stdin_has_no_prompt_and_fails_with_1(data: dict[str, Path]) -> None:
    script = "SELECT count(*) AS c FROM items;\nSELECT nope FROM items;\nSELECT 5 AS five;\n"
    proc = subprocess.run(
        [sys.executable, "-m", "shoal.cli", "--table", f"items={data['items']}"],
        input=script,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert PROMPT not in proc.stdout
    assert "12" in proc.stdout and "five" in proc.stdout  # it went on after the error
    assert "unknown column 'nope'" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.returncode == 1


def test_query_progress_on_a_terminal(data: dict[str, Path], tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "shoal.cli",
            "query",
            LONG_QUERY,
            "--table",
            f"big={data['big']}",
            "--table",
            f"small={data['small']}",
        ],  # fmt: skip
        cwd=str(tmp_path),
        env=_env(tmp_path),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 120),
    )
    try:
        child.expect(r"stage +\d+ \[[#-]+\] \d+/\d+ tasks", timeout=TIMEOUT)
        child.expect_exact("holding the query back", timeout=TIMEOUT)
        child.sendintr()
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 130
    finally:
        if child.isalive():
            os.kill(child.pid, signal.SIGKILL)
        child.close(force=True)


def test_no_progress_when_stdout_is_a_pipe(data: dict[str, Path]) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shoal.cli",
            "query",
            LONG_QUERY,
            "--table",
            f"big={data['big']}",
            "--table",
            f"small={data['small']}",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait for the query's task threads (start-up may take seconds on a busy machine),
        # then well past the second after which a terminal would show progress.
        deadline = time.monotonic() + TIMEOUT
        while len(os.listdir(f"/proc/{proc.pid}/task")) < 5 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        time.sleep(2.0)
        assert proc.poll() is None, "the query should still run"
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130
    assert "interrupted" in err
    for text in (out, err):
        assert "tasks" not in text and "\x1b[" not in text and "holding" not in text
