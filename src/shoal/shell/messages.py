"""Errors as people read them: one message and, where the SQL has a place for it, that
line of the statement with a caret under it. Never a traceback.

Syntax errors carry their line and column (sqlglot's column is the *last* character
of the offending token, so the whole token is underlined). Unknown tables and columns
carry the name: its first occurrence as an identifier token in the statement is marked.
"""

from __future__ import annotations

from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

from shoal.errors import (
    ShoalError,
    SqlSyntaxError,
    UnknownColumnError,
    UnknownTableError,
)
from shoal.sql.parser import DIALECT


def format_error(err: BaseException, sql: str | None = None) -> str:
    """``Error: <message>`` plus, when a position is known, the line and a caret."""
    if isinstance(err, ShoalError):
        message = f"Error: {err}"
    else:
        # Not an error shoal raises on purpose: still one line, but say it is a bug.
        message = f"Internal error ({type(err).__name__}): {err}"
    if sql:
        marked = _mark(err, sql)
        if marked:
            message += "\n" + marked
    return message


def _mark(err: BaseException, sql: str) -> str | None:
    tokens = _tokens(sql)
    if isinstance(err, SqlSyntaxError) and err.line is not None and err.column is not None:
        token = next((t for t in tokens if t.line == err.line and t.col == err.column), None)
        lines = sql.split("\n")
        if not 1 <= err.line <= len(lines):
            return None
        if token is not None:
            return _caret(sql, token.start, token.end)
        offset = sum(len(line) + 1 for line in lines[: err.line - 1]) + err.column - 1
        return _caret(sql, min(offset, len(sql) - 1), min(offset, len(sql) - 1))
    if isinstance(err, UnknownTableError | UnknownColumnError):
        name = err.name
        wanted = name.lower().split(".")[-1]
        for t in tokens:
            if t.token_type in (TokenType.VAR, TokenType.IDENTIFIER) and t.text.lower() == wanted:
                return _caret(sql, t.start, t.end)
    return None


def _tokens(sql: str) -> list[Token]:
    from sqlglot.dialects.dialect import Dialect

    try:
        return Dialect.get_or_raise(DIALECT).tokenize(sql)
    except SqlglotError:
        return []


def _caret(sql: str, start: int, end: int) -> str:
    """The line holding ``sql[start]`` and ``^`` under ``start..end`` (inclusive)."""
    line_start = sql.rfind("\n", 0, start) + 1
    line_end = sql.find("\n", start)
    line_end = len(sql) if line_end < 0 else line_end
    line = sql[line_start:line_end]
    number = sql.count("\n", 0, start) + 1
    prefix = f"LINE {number}: "
    end = min(end, line_end - 1)
    marks = "^" * max(end - start + 1, 1)
    return f"{prefix}{line}\n{' ' * (len(prefix) + start - line_start)}{marks}"
