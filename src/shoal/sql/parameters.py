"""Prepared-statement parameters: ``?`` and ``$n`` placeholders bound to typed values.

A parameter is never pasted into the SQL text. Each placeholder node of the parsed
tree carries its value as a typed ``Literal`` (in the node's ``meta``, which sqlglot
keeps through copies); the expression binder returns that literal as it is. A string such as
``x' OR '1'='1`` therefore stays one string value, whatever it contains.

Placeholders are either all positional (``?``, numbered left to right) or all
numbered (``$1``, ``$2``, …, each usable several times); mixing them is an error,
as is a count that does not match the values given.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from sqlglot import exp

from shoal.errors import TypeMismatchError, UserError
from shoal.expr.nodes import Literal
from shoal.sql.typing import literal_from_python


class ParameterError(UserError):
    """Placeholders and the values given for them do not match."""


_VALUE = "shoal_parameter"


def parameter_literal(node: exp.Placeholder) -> Literal:
    """The typed value bound to a placeholder; an error if none was given."""
    literal = node.meta.get(_VALUE)
    if not isinstance(literal, Literal):
        raise ParameterError(f"no value given for parameter {node.sql(dialect='duckdb')}")
    return literal


def literal_for_parameter(value: Any) -> Literal:
    """The typed literal a Python value binds to (DuckDB's types for the same values)."""
    if isinstance(value, datetime.datetime):
        unit_type = pa.timestamp("us", tz="UTC" if value.tzinfo is not None else None)
        return Literal(value, unit_type)
    if isinstance(value, datetime.time):
        return Literal(value, pa.time64("us"))
    if isinstance(value, bytes | bytearray | memoryview):
        return Literal(bytes(value), pa.binary())
    if isinstance(value, decimal.Decimal) and not value.is_finite():
        raise TypeMismatchError(f"parameter value {value} is not a finite decimal")
    try:
        return literal_from_python(value)
    except TypeMismatchError:
        raise TypeMismatchError(
            f"parameter of Python type {type(value).__name__} is not supported "
            "(int, float, Decimal, str, bytes, bool, date, datetime, time or None)"
        ) from None


def placeholders_in_text_order(statement: exp.Expr) -> list[exp.Placeholder]:
    """The statement's placeholders left to right, as they stand in the SQL text.

    A tree walk does not give that order (breadth-first puts ``c = ?`` of ``a = ? AND
    b = ? AND c = ?`` first; depth-first visits LIMIT before WHERE), so each placeholder
    of a copy is tagged, the copy printed, and the tags' positions read off the text:
    SQL's clause order is fixed, so the printed order is the written order.
    """
    found = [n for n in statement.walk(bfs=False) if isinstance(n, exp.Placeholder)]
    if len(found) < 2:
        return found
    probe = statement.copy()
    tagged = [n for n in probe.walk(bfs=False) if isinstance(n, exp.Placeholder)]
    for i, node in enumerate(tagged):
        node.set("this", f"shoalparam{i}x")
    text = probe.sql(dialect="duckdb")
    position = {i: text.find(f"shoalparam{i}x") for i in range(len(tagged))}
    return [found[i] for i in sorted(range(len(found)), key=lambda i: position[i])]


def bind_parameters(statement: exp.Expr, params: Sequence[Any] | None) -> exp.Expr:
    """``statement`` with every placeholder carrying its value's typed literal."""
    placeholders = placeholders_in_text_order(statement)
    values = list(params) if params is not None else []
    if isinstance(params, str | bytes):
        raise ParameterError("parameters must be a sequence of values, not a single string")
    if not placeholders:
        if values:
            raise ParameterError(f"{len(values)} parameter(s) given, but the query has none")
        return statement
    numbered = [p for p in placeholders if p.this is not None]
    if numbered and len(numbered) != len(placeholders):
        raise ParameterError("a query may use '?' or '$n' placeholders, not both")
    if numbered:
        wanted = max(_placeholder_number(p) for p in numbered)
    else:
        wanted = len(placeholders)
    if len(values) != wanted:
        raise ParameterError(f"the query has {wanted} parameter(s), {len(values)} given")
    literals = [literal_for_parameter(v) for v in values]
    for position, node in enumerate(placeholders):
        index = _placeholder_number(node) - 1 if numbered else position
        node.meta[_VALUE] = literals[index]
    return statement


def _placeholder_number(node: exp.Placeholder) -> int:
    try:
        number = int(str(node.this))
    except ValueError:
        raise ParameterError(
            f"named parameter ':{node.this}' is not supported; use ? or $n"
        ) from None
    if number < 1:
        raise ParameterError(f"parameter ${number}: numbering starts at $1")
    return number


def parameter_count(statement: exp.Expr) -> int:
    """How many values the statement's placeholders need (0 when it has none)."""
    placeholders = [n for n in statement.walk() if isinstance(n, exp.Placeholder)]
    numbered = [p for p in placeholders if p.this is not None]
    if numbered and len(numbered) != len(placeholders):
        raise ParameterError("a query may use '?' or '$n' placeholders, not both")
    if numbered:
        return max(_placeholder_number(p) for p in numbered)
    return len(placeholders)
