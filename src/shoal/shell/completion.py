"""Tab completion: dot-commands at the start of a line, else table names, column names
(``t.<TAB>`` completes the columns of table ``t``) and SQL keywords."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import shoal

KEYWORDS = (
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "ORDER", "HAVING", "LIMIT", "OFFSET", "JOIN",
    "LEFT", "RIGHT", "FULL", "INNER", "OUTER", "CROSS", "ON", "USING", "AS", "AND", "OR",
    "NOT", "IN", "EXISTS", "BETWEEN", "LIKE", "ILIKE", "IS", "NULL", "CASE", "WHEN", "THEN",
    "ELSE", "END", "DISTINCT", "UNION", "ALL", "INTERSECT", "EXCEPT", "WITH", "ASC", "DESC",
    "COUNT", "SUM", "AVG", "MIN", "MAX", "CAST", "DATE", "INTERVAL", "EXPLAIN", "ANALYZE",
    "COPY", "TO", "VALUES",
)  # fmt: skip


class Completer:
    """Candidates for the word being typed, from the connection's catalog as it is now."""

    def __init__(self, con: Callable[[], shoal.Connection], commands: Iterable[str]) -> None:
        self._con = con
        self._commands = sorted(commands)

    def candidates(self, line: str, word: str) -> list[str]:
        """Completions of ``word``, the last word of ``line`` (what is typed so far)."""
        if line.lstrip().startswith(".") and " " not in line.lstrip():
            return [c for c in self._commands if c.startswith(word)]
        catalog = self._con().catalog
        if "." in word:
            table, _, prefix = word.rpartition(".")
            try:
                names = catalog.get(table).schema.names
            except shoal.ShoalError:
                return []
            return [f"{table}.{n}" for n in names if n.lower().startswith(prefix.lower())]
        low = word.lower()
        tables = catalog.names()
        columns = sorted({n for t in tables for n in catalog.get(t).schema.names})
        found = [t for t in tables if t.lower().startswith(low)]
        found += [c for c in columns if c.lower().startswith(low) and c not in found]
        found += [k for k in KEYWORDS if k.lower().startswith(low)]
        if word.islower():
            found = [k.lower() if k in KEYWORDS else k for k in found]
        return found


def install_readline(completer: Completer) -> None:
    """Wire ``completer`` into GNU readline (or libedit, as macOS's Python has)."""
    import readline

    matches: list[str] = []

    def complete(text: str, state: int) -> str | None:
        if state == 0:
            matches[:] = completer.candidates(readline.get_line_buffer(), text)
        return matches[state] if state < len(matches) else None

    readline.set_completer(complete)
    # '.' stays inside a word so "t.co" completes as one; quotes and brackets split words.
    readline.set_completer_delims(" \t\n`~!@#$%^&*()-=+[{]}\\|;:'\",<>/?")
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
