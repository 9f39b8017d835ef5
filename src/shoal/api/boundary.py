"""The error boundary of the public API: only ``ShoalError`` subclasses leave it.

Every public entry point (``Connection`` methods, ``Result`` fetches, the CLI) is
decorated with ``entry_point``. A ``ShoalError`` passes through unchanged; running
out of recursion depth is reported as a query too deeply nested for shoal; running
out of memory is a ``ResourceError``; anything else is an ``InternalError`` (a bug
in shoal) chaining the original exception.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from shoal.errors import InternalError, ResourceError, ShoalError, UnsupportedError

P = ParamSpec("P")
R = TypeVar("R")


def entry_point(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a public function so that every exception it lets out is a ``ShoalError``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ShoalError:
            raise
        except Exception as err:  # noqa: BLE001 - the boundary: everything becomes typed
            raise as_shoal_error(err, fn.__qualname__) from err

    return wrapper


def as_shoal_error(err: Exception, where: str) -> ShoalError:
    """The typed error the public API raises for ``err`` (``err`` itself when typed)."""
    if isinstance(err, ShoalError):
        return err
    if isinstance(err, RecursionError):
        return UnsupportedError(
            "expressions or queries nested more deeply than shoal can process "
            f"(in {where}); flatten the nesting"
        )
    if isinstance(err, MemoryError):
        return ResourceError(f"out of memory in {where}")
    return InternalError.wrapping(where, err)
