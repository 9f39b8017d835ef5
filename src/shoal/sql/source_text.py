"""What the user wrote: the SQL text being bound, so errors can quote it.

sqlglot normalizes functions to its own node classes (``approx_count_distinct`` becomes
``ApproxDistinct``, ``string_agg`` ``GroupConcat``); an error naming those would name
nothing the user typed. The connection sets the statement's text while it binds
(:func:`sql_text`); :func:`written` gives a node's name as it appears there, with its
line and column.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlglot import exp

_TEXT: ContextVar[str | None] = ContextVar("shoal_sql_text", default=None)
#: The statement's clock: read once, on first use, for current_date / current_timestamp.
_NOW: ContextVar[list[datetime.datetime] | None] = ContextVar("shoal_sql_now", default=None)


@contextmanager
def sql_text(text: str) -> Iterator[None]:
    """Make ``text`` the statement that errors raised inside quote (and give it one clock)."""
    token = _TEXT.set(text)
    clock = _NOW.set([])
    try:
        yield
    finally:
        _NOW.reset(clock)
        _TEXT.reset(token)


def statement_time() -> datetime.datetime:
    """The statement's current time (UTC), the same at every use while it is bound, so
    ``current_timestamp`` is one value per query — a literal in the plan that every task
    reads alike."""
    held = _NOW.get()
    if held is None:
        return datetime.datetime.now(datetime.UTC)
    if not held:
        held.append(datetime.datetime.now(datetime.UTC))
    return held[0]


def written(node: exp.Expr) -> str | None:
    """``name (line L, column C)`` for the token that starts ``node`` (a function's
    name), as the user wrote it; None when the text or the position is unknown."""
    text = _TEXT.get()
    meta = node.meta
    if text is None or "start" not in meta or "end" not in meta:
        return None
    start, end = int(meta["start"]), int(meta["end"])
    if not 0 <= start <= end < len(text):
        return None
    name = text[start : end + 1]
    line = int(meta.get("line", 1))
    column = int(meta.get("col", end - start + 1)) - (end - start)
    return f"{name} (line {line}, column {column})"


def position(node: exp.Expr) -> str | None:
    """``line L, column C`` of the first token of ``node`` that sqlglot kept a position
    for (a function name, an identifier), or None."""
    text = _TEXT.get()
    if text is None:
        return None
    starts = [int(n.meta["start"]) for n in node.walk() if "start" in n.meta]
    if not starts:
        return None
    offset = min(starts)
    line = text.count("\n", 0, offset) + 1
    return f"line {line}, column {offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


def as_written(node: exp.Expr) -> str:
    """``node``'s SQL (DuckDB's spelling, its function name as the user wrote it when
    known) with its position: what an unsupported-construct error names."""
    shown = node.sql(dialect="duckdb")
    name = written(node)
    where = position(node)
    typed: str | None = None
    if name is not None:
        typed, where = name.split(" (", 1)[0], name.split(" (", 1)[1].rstrip(")")
    else:
        found = _name_before_arguments(node)
        if found is not None:
            typed, where = found
    head = shown.split("(", 1)
    if typed is not None and len(head) == 2 and head[0].strip():
        shown = f"{typed}({head[1]}"
    return f"{shown} ({where})" if where else shown


def written_call(node: exp.Expr) -> str:
    """The call ``node`` as the user wrote it — the text from its function's name to its
    closing parenthesis (and a ``WITHIN GROUP (…)`` / ``FILTER (…)`` written after it),
    whitespace runs shown as one space — with its position. sqlglot's SQL for a node is
    no such thing (``count(DISTINCT a, b)`` comes back as a ``CASE``). Falls back to
    :func:`as_written` when the text or the position is unknown."""
    text = _TEXT.get()
    head = node.this if isinstance(node, exp.WithinGroup | exp.Filter) else node
    start = _start_offset(head) if text is not None and isinstance(head, exp.Expr) else None
    if text is None or start is None:
        return as_written(node)
    end = _balanced_end(text, start)
    if end is not None and isinstance(node, exp.WithinGroup | exp.Filter):
        tail = re.compile(r"\s*(WITHIN\s+GROUP|FILTER)\s*(?=\()", re.I).match(text, end)
        if tail is not None:
            end = _balanced_end(text, tail.end())
    if end is None:
        return as_written(node)
    shown = " ".join(text[start:end].split())
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return f"{shown} (line {line}, column {column})"


def _start_offset(node: exp.Expr) -> int | None:
    """Where in the text the function ``node`` starts (its name), or None."""
    text = _TEXT.get()
    if text is None:
        return None
    meta = node.meta
    if "start" in meta and 0 <= int(meta["start"]) < len(text):
        start = int(meta["start"])
        if re.match(r"[A-Za-z_][A-Za-z_0-9]*\s*\(", text[start:]):
            return start
    return _name_offset(node)


def _balanced_end(text: str, start: int) -> int | None:
    """Past the ``)`` closing the first ``(`` at or after ``start`` (quoted strings and
    identifiers skipped), or None."""
    opened = text.find("(", start)
    if opened < 0:
        return None
    depth = 0
    i = opened
    while i < len(text):
        c = text[i]
        if c in "'\"":
            close = text.find(c, i + 1)
            if close < 0:
                return None
            i = close + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _name_before_arguments(node: exp.Expr) -> tuple[str, str] | None:
    """A function sqlglot kept no position for (``min_by`` parsed as ``ArgMin``): its
    name as written is the word before the ``(`` that precedes its first argument."""
    text = _TEXT.get()
    offset = _name_offset(node)
    if text is None or offset is None:
        return None
    name = re.match(r"[A-Za-z_][A-Za-z_0-9]*", text[offset:])
    assert name is not None
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return name.group(0), f"line {line}, column {column}"


def _name_offset(node: exp.Expr) -> int | None:
    """Where the name of the function ``node`` starts in the text, found as the word
    before the ``(`` that precedes its first argument; None when unknown."""
    text = _TEXT.get()
    if text is None or not isinstance(node, exp.Func):
        return None
    starts = [int(n.meta["start"]) for n in node.walk() if n is not node and "start" in n.meta]
    if not starts:
        return None
    before = text[: min(starts)]
    match = re.search(r"([A-Za-z_][A-Za-z_0-9]*)\s*\(\s*(?:DISTINCT\s+)?$", before, re.I)
    if match is None:
        return None
    return match.start(1)
