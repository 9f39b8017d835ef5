"""What the user wrote: the SQL text being bound, so errors can quote it.

sqlglot normalizes functions to its own node classes (``approx_count_distinct`` becomes
``ApproxDistinct``, ``string_agg`` ``GroupConcat``); an error naming those would name
nothing the user typed. The connection sets the statement's text while it binds
(:func:`sql_text`); :func:`written` gives a node's name as it appears there, with its
line and column.
"""

from __future__ import annotations

import datetime
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
