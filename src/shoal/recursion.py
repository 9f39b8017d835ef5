"""Room for deeply nested SQL: a raised recursion limit and threads with big stacks.

The parser, the binder, the optimizer and expression evaluation all recurse over
syntax and expression trees, so `300-deep parentheses` or a 500-term `+` chain
needs several thousand Python frames. While shoal plans or runs a query it raises
the interpreter's recursion limit (process-wide in CPython, so it is raised only
while some query needs it and put back after) and does the recursive work on
threads whose C stack is large enough for that limit.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

#: Frames a query may nest (DuckDB's max_expression_depth is 1000 expression levels;
#: one level here costs a handful of frames).
RECURSION_LIMIT = 40_000
#: C stack of a planning or task thread: enough for RECURSION_LIMIT frames that pass
#: through C (constructors, ``sorted(key=...)``). Only touched pages are committed.
STACK_BYTES = 512 << 20

_lock = threading.Lock()  # the reference count of deep_recursion's users
# Held while a thread starts under the raised stack size. Apart from ``_lock``: a start
# waits until the new thread runs, and a task entering deep_recursion meanwhile would
# wait for that (and for the GIL the started thread holds) before its first batch.
_stack_lock = threading.Lock()
_users = 0
_saved_limit = 0

T = TypeVar("T")


@contextmanager
def deep_recursion() -> Iterator[None]:
    """Raise the recursion limit while the block runs (reference-counted across threads)."""
    global _users, _saved_limit
    with _lock:
        if _users == 0:
            _saved_limit = sys.getrecursionlimit()
            if _saved_limit < RECURSION_LIMIT:
                sys.setrecursionlimit(RECURSION_LIMIT)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                sys.setrecursionlimit(_saved_limit)


def start_thread(target: Callable[..., Any], args: tuple[Any, ...], name: str) -> threading.Thread:
    """Start a daemon thread with a STACK_BYTES C stack."""
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    # The stack size is a process-wide setting read when a thread starts.
    with _stack_lock:
        previous = threading.stack_size(STACK_BYTES)
        try:
            thread.start()
        finally:
            threading.stack_size(previous)
    return thread


def call_deep(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a big-stack thread with the raised limit; its exception re-raised here."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, fn(*args)))
        except BaseException as err:  # noqa: BLE001 - handed to the caller as it is
            outcome.append((False, err))

    # The caller's context variables (the SQL text errors quote) go along.
    context = contextvars.copy_context()
    with deep_recursion():
        start_thread(context.run, (run,), "shoal-plan").join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]
