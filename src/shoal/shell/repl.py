"""The interactive shell: read statements ended by ``;``, run them, print the results.

Line editing, history and completion come from the standard library's ``readline``
(GNU readline on Linux): no dependency, it behaves in a pseudo-terminal exactly as in
a real one, and input that is not a terminal (a pipe, a script) is read as plain lines
with no prompt. Ctrl-C cancels the running query (the runtime stops every task) or
discards the statement being typed; Ctrl-D leaves with exit status 0.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlglot import exp

import shoal
from shoal.errors import ShoalError
from shoal.shell.completion import Completer, install_readline
from shoal.shell.messages import format_error
from shoal.shell.progress import TerminalProgress
from shoal.shell.registration import open_path, register_path
from shoal.shell.render import OutputMode, render
from shoal.shell.statements import StatementBuffer
from shoal.sql.explain import ExplainFormat, ExplainRequest, parse_explain
from shoal.sql.parser import parse_sql
from shoal.sql.statements import StatementKind, classify
from shoal.types import sql_type_name

PROMPT = "shoal> "
CONTINUE = "   ...> "
HISTORY_LENGTH = 2000


def history_path() -> Path:
    """``$SHOAL_HISTORY`` or ``~/.shoal_history``."""
    return Path(os.environ.get("SHOAL_HISTORY") or Path.home() / ".shoal_history")


@dataclass(frozen=True)
class Command:
    run: Callable[[Shell, str], bool]  # False: leave the shell
    usage: str
    help: str


class Shell:
    def __init__(
        self,
        con: shoal.Connection,
        stdin: TextIO,
        stdout: TextIO,
        stderr: TextIO,
        interactive: bool | None = None,
    ) -> None:
        self.con = con
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.interactive = stdin.isatty() if interactive is None else interactive
        self.mode = OutputMode.TABLE
        self.timer = False
        self.max_rows = 40
        self.last_sql: str | None = None
        self.failed = False
        self._readline = False
        self._history_mark = 0

    # ------------------------------------------------------------------ loop

    def run(self) -> int:
        """Until end of input or ``.quit``; 0, or 1 if a statement of a script failed."""
        if self.interactive:
            self._setup_readline()
            self._say('shoal shell: end statements with ";", ".help" lists the commands')
        buffer = StatementBuffer()
        while True:
            try:
                line = self._read(CONTINUE if buffer.pending else PROMPT)
            except EOFError:
                if self.interactive:
                    self.stdout.write("\n")
                break
            except KeyboardInterrupt:
                # Ctrl-C while typing: drop the statement, keep the shell.
                self.stdout.write("^C\n")
                buffer.clear()
                continue
            if not self.handle_line(line, buffer):
                break
        self._save_history()
        return 1 if self.failed and not self.interactive else 0

    def handle_line(self, line: str, buffer: StatementBuffer) -> bool:
        """One input line: a dot-command, or SQL that may complete statements."""
        if not buffer.pending and line.strip().startswith("."):
            return self.command(line.strip())
        for statement in buffer.feed(line):
            self._remember(statement)
            if not self.run_sql(statement):
                buffer.clear()  # after an error or a cancel, the rest of the line is dropped
                break
        return True

    def _read(self, prompt: str) -> str:
        if self.interactive:
            return input(prompt)
        line = self.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    # ------------------------------------------------------------------- SQL

    def run_sql(self, sql: str) -> bool:
        """Run and print one statement; False when it failed or was cancelled."""
        explain = _explain_request(sql)
        if explain is None:
            self.last_sql = sql
        started = time.perf_counter()
        try:
            with self._progress() as view:
                result = self.con.sql(sql, progress=view.tracker)
        except KeyboardInterrupt:
            self._error("Cancelled: the query was stopped (Ctrl-C)")
            return False
        except Exception as err:  # noqa: BLE001 - the shell shows every error and goes on
            self._error(format_error(err, sql))
            return False
        elapsed = time.perf_counter() - started
        table = result.to_arrow()
        if explain is not None and explain.format is ExplainFormat.HTML:
            target = Path("shoal-explain.html")
            target.write_text(table.column(0)[0].as_py())
            self._say(f"wrote {target.resolve()}")
        elif explain is not None:
            self._say("\n".join(str(v) for v in table.column(0).to_pylist()))
        else:
            self._print_table(table)
        if self.timer:
            self._say(f"Run Time: {elapsed:.3f} s")
        return True

    def _print_table(self, table: object) -> None:
        import pyarrow as pa

        assert isinstance(table, pa.Table)
        tty = self.stdout.isatty()
        width = shutil.get_terminal_size().columns if tty else None
        text = render(table, self.mode, width, self.max_rows if tty else None)
        if text:
            self._say(text)

    def _progress(self) -> TerminalProgress:
        # Drawn on stderr, and only when both streams are a terminal: a result piped
        # elsewhere must not be interleaved with escape sequences.
        on_terminal = self.stdout.isatty() and self.stderr.isatty()
        return TerminalProgress(self.stderr, enabled=on_terminal)

    # -------------------------------------------------------------- commands

    def command(self, line: str) -> bool:
        name, _, rest = line.partition(" ")
        cmd = COMMANDS.get(name)
        if cmd is None:
            self._error(f"Error: unknown command {name}; .help lists the commands")
            return True
        try:
            return cmd.run(self, rest.strip())
        except KeyboardInterrupt:
            self._error("Cancelled: the query was stopped (Ctrl-C)")
        except Exception as err:  # noqa: BLE001 - a failing command must not end the shell
            self._error(format_error(err, rest.strip() or None))
        return True

    def read_file(self, path: str) -> bool:
        buffer = StatementBuffer()
        for line in Path(path).expanduser().read_text().splitlines():
            if not self.handle_line(line, buffer):
                return False
        if buffer.pending:
            self._error(f"Error: {path} ends inside a statement (missing ';')")
        return True

    # --------------------------------------------------------------- helpers

    def _say(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def _error(self, text: str) -> None:
        self.failed = True
        self.stdout.flush()
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def _setup_readline(self) -> None:
        try:
            import readline
        except ImportError:  # a Python built without it: plain input() still works
            return
        self._readline = True
        install_readline(Completer(lambda: self.con, COMMANDS))
        readline.set_history_length(HISTORY_LENGTH)
        path = history_path()
        if path.exists():
            try:
                readline.read_history_file(path)
            except OSError:
                pass
        self._history_mark = readline.get_current_history_length()

    def _remember(self, statement: str) -> None:
        """Keep a multi-line statement as one history entry."""
        if not self._readline:
            return
        import readline

        while readline.get_current_history_length() > self._history_mark:
            readline.remove_history_item(readline.get_current_history_length() - 1)
        readline.add_history(" ".join(statement.split("\n")) + ";")
        self._history_mark = readline.get_current_history_length()
        self._save_history()

    def _save_history(self) -> None:
        if not self._readline:
            return
        import readline

        try:
            readline.write_history_file(history_path())
        except OSError:
            pass  # an unwritable home folder is no reason to stop the shell


# ------------------------------------------------------------------ commands


def _help(shell: Shell, _: str) -> bool:
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = [f"{c.usage.ljust(width)}  {c.help}" for c in COMMANDS.values()]
    lines.append("SQL statements end with ';' and may span lines. Ctrl-C cancels, Ctrl-D exits.")
    shell._say("\n".join(lines))
    return True


def _quit(shell: Shell, _: str) -> bool:
    return False


def _tables(shell: Shell, _: str) -> bool:
    names = shell.con.tables()
    shell._say("\n".join(names) if names else "(no tables: .register NAME PATH or .open FOLDER)")
    return True


def _schema(shell: Shell, arg: str) -> bool:
    names = [arg] if arg else shell.con.tables()
    out = []
    for name in names:
        source = shell.con.catalog.get(name)  # UnknownTableError suggests a close name
        columns = ",\n".join(f"  {f.name} {sql_type_name(f.type)}" for f in source.schema)
        out.append(f"CREATE TABLE {source.name} (\n{columns}\n);")
    shell._say("\n".join(out) if out else "(no tables)")
    return True


def _open(shell: Shell, arg: str) -> bool:
    if not arg:
        raise shoal.UserError("usage: .open FOLDER|FILE")
    names = open_path(shell.con, arg)
    shell._say(f"registered {len(names)} table(s): {', '.join(names)}")
    return True


def _read(shell: Shell, arg: str) -> bool:
    if not arg:
        raise shoal.UserError("usage: .read FILE")
    return shell.read_file(arg)


def _register(shell: Shell, arg: str) -> bool:
    parts = arg.split(None, 1)
    if len(parts) != 2:
        raise shoal.UserError("usage: .register NAME PATH")
    register_path(shell.con, parts[0], parts[1])
    return True


def _on_off(arg: str, usage: str) -> bool:
    if arg.lower() in ("on", "1", "true"):
        return True
    if arg.lower() in ("off", "0", "false"):
        return False
    raise shoal.UserError(f"usage: {usage}")


def _timer(shell: Shell, arg: str) -> bool:
    shell.timer = _on_off(arg, ".timer on|off")
    return True


def _mode(shell: Shell, arg: str) -> bool:
    if not arg:
        shell._say(f"current output mode: {shell.mode.value}")
        return True
    try:
        shell.mode = OutputMode(arg.lower())
    except ValueError:
        known = "|".join(m.value for m in OutputMode)
        raise shoal.UserError(f"usage: .mode {known}") from None
    return True


def _max_rows(shell: Shell, arg: str) -> bool:
    if not arg.isdigit() or int(arg) < 1:
        raise shoal.UserError("usage: .maxrows N (N >= 1)")
    shell.max_rows = int(arg)
    return True


def _explain_like(shell: Shell, arg: str, analyze: bool) -> bool:
    html: str | None = None
    if arg.startswith("--html"):
        parts = arg.split(None, 2)
        if len(parts) < 2:
            raise shoal.UserError("usage: .explain|.analyze [--html FILE] [SQL]")
        html, arg = parts[1], parts[2] if len(parts) > 2 else ""
    sql = arg.strip().rstrip(";").strip() or shell.last_sql
    if not sql:
        raise shoal.UserError("nothing to explain yet: give a query or run one first")
    fmt = ExplainFormat.HTML if html else ExplainFormat.TEXT
    if analyze:
        with shell._progress() as view:
            document = shell.con.explain_analyze(sql, format=fmt, progress=view.tracker)
    else:
        document = shell.con.explain(sql, format=fmt)
    if html:
        Path(html).expanduser().write_text(document)
        shell._say(f"wrote {Path(html).expanduser().resolve()}")
    else:
        shell._say(document)
    return True


COMMANDS: dict[str, Command] = {
    ".help": Command(_help, ".help", "show this list"),
    ".tables": Command(_tables, ".tables", "list the registered tables"),
    ".schema": Command(_schema, ".schema [TABLE]", "columns and types of a table (or all)"),
    ".register": Command(_register, ".register NAME PATH", "register a Parquet/CSV file or folder"),
    ".open": Command(_open, ".open FOLDER|FILE", "register every table in a folder (or one file)"),
    ".read": Command(_read, ".read FILE", "run the statements and commands in a file"),
    ".mode": Command(_mode, ".mode table|csv|json|markdown", "how results are printed"),
    ".maxrows": Command(_max_rows, ".maxrows N", "rows shown in table mode on a terminal"),
    ".timer": Command(_timer, ".timer on|off", "print each statement's run time"),
    ".explain": Command(
        lambda s, a: _explain_like(s, a, False),
        ".explain [--html FILE] [SQL]",
        "the stage graph of SQL (default: the last query)",
    ),
    ".analyze": Command(
        lambda s, a: _explain_like(s, a, True),
        ".analyze [--html FILE] [SQL]",
        "run SQL (default: the last query) and show what ran",
    ),
    ".quit": Command(_quit, ".quit", "leave the shell (also .exit, Ctrl-D)"),
    ".exit": Command(_quit, ".exit", "leave the shell"),
}


def _explain_request(sql: str) -> ExplainRequest | None:
    """The EXPLAIN request of ``sql`` (parsed and classified), or None when it is none or
    does not parse (running it then shows the error)."""
    try:
        statement = parse_sql(sql)
        if classify(statement) is not StatementKind.EXPLAIN:
            return None
    except ShoalError:
        return None
    assert isinstance(statement, exp.Command)
    return parse_explain(statement)
